//! On the GPU machine: every BitNet b1.58 2B4T-shaped ternary GEMV checked bit for bit against
//! the CPU kernels (1–8 tokens, fresh random weights and activations, output poisoned first),
//! then timed from DRAM (weights cycled through copies far larger than L2) against the copy
//! bandwidth measured in the same run. Prints a table; exits non-zero on any mismatch.
//!
//! `cargo build --release -p bitnet-cuda --example gemv_check`, then on the device
//! `bash scripts/cuda/run_on_device.sh`.

use bitnet_cuda::{Device, GemvKernel, GpuTernary};
use bitnet_kernels::{Isa, TernaryMatrix};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// (index into the per-token totals, tokens, kernel) of each timed variant.
fn variants() -> Vec<(Option<usize>, usize, GemvKernel)> {
    vec![
        (None, 1, GemvKernel::Shared),
        (None, 1, GemvKernel::L1Rows(1)),
        (None, 1, GemvKernel::L1Rows(2)),
        (Some(0), 1, bitnet_cuda::DEFAULT_GEMV1),
        (Some(1), 8, GemvKernel::Shared),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::open(0)?;
    println!("device: {}", dev.describe());
    let ctx = dev.context().clone();
    let timing = cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT;
    let stream = dev.stream().clone();

    // GEMV_CHECK_ONLY=1: correctness only (short enough for compute-sanitizer).
    let check_only = std::env::var_os("GEMV_CHECK_ONLY").is_some();
    // Copy bandwidth: 1 GiB device to device, bytes read + written.
    let n = if check_only { 1 << 20 } else { 1usize << 30 };
    let src = stream.alloc_zeros::<u8>(n)?;
    let mut dst = stream.alloc_zeros::<u8>(n)?;
    for _ in 0..3 {
        stream.memcpy_dtod(&src, &mut dst)?;
    }
    let (e0, e1) = (ctx.new_event(Some(timing))?, ctx.new_event(Some(timing))?);
    e0.record(&stream)?;
    let reps = 20;
    for _ in 0..reps {
        stream.memcpy_dtod(&src, &mut dst)?;
    }
    e1.record(&stream)?;
    e1.synchronize()?;
    let copy_gbs = (2 * n * reps) as f64 / (e0.elapsed_ms(&e1)? as f64 * 1e-3) / 1e9;
    println!("copy bandwidth (read + write): {copy_gbs:.0} GB/s");
    drop((src, dst));

    let shapes = [
        ("q/o 2560x2560", 2560, 2560, 2),
        ("k/v 640x2560", 640, 2560, 2),
        ("gate/up 6912x2560", 6912, 2560, 2),
        ("down 2560x6912", 2560, 6912, 1),
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut failures = 0;
    let mut token_us = [0f64; 2];
    println!("| matrix | tokens | checked | µs | GB/s | % of copy bw |");
    println!("|---|---|---|---|---|---|");
    for (name, rows, cols, per_layer) in shapes {
        let trits: Vec<i8> = (0..rows * cols)
            .map(|_| (rng.next() % 3) as i8 - 1)
            .collect();
        let scale = 0.5 + (rng.next() % 1000) as f32 / 1000.0;
        let g = GpuTernary::from_trits(rows, cols, &trits, scale)?;
        let cpu = TernaryMatrix::from_trits(rows, cols, &trits, scale)?;
        let dm = dev.upload(&g)?;
        // Correctness at 1..8 tokens.
        for nt in [1usize, 2, 3, 4, 5, 8] {
            let xq: Vec<i8> = (0..nt * cols).map(|_| rng.next() as i8).collect();
            let xs: Vec<f32> = (0..nt)
                .map(|_| 1.0 + (rng.next() % 5000) as f32 / 37.0)
                .collect();
            let mut want = vec![0f32; nt * rows];
            cpu.matmul_with(Isa::Scalar, &xq, &xs, &mut want);
            let acts = dev.upload_acts(&xq, &xs, cols, g.cols_pad)?;
            let mut kernels = vec![GemvKernel::Shared];
            if nt == 1 {
                kernels.extend([1, 2, 4].map(GemvKernel::L1Rows));
            }
            for k in kernels {
                let mut out = stream.memcpy_stod(&vec![f32::NAN; nt * rows])?;
                dev.gemv_with(k, &dm, &acts, &mut out)?;
                let got = dev.download(&out)?;
                let bad = got
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                if bad > 0 {
                    failures += 1;
                    println!(
                        "MISMATCH {name} n={nt} {k:?}: {bad} of {} outputs differ",
                        got.len()
                    );
                }
            }
        }
        if check_only {
            println!("| {name} | 1–8 | ✓ | | | |");
            continue;
        }
        // Timing from DRAM: enough copies of the matrix to exceed L2 many times over.
        let copies = (1usize << 30).div_ceil(g.bytes()).max(8);
        let mats: Vec<_> = (0..copies)
            .map(|_| dev.upload(&g))
            .collect::<Result<_, _>>()?;
        for (k, nt, kernel) in variants() {
            let xq: Vec<i8> = (0..nt * cols).map(|_| rng.next() as i8).collect();
            let xs = vec![3.0f32; nt];
            let acts = dev.upload_acts(&xq, &xs, cols, g.cols_pad)?;
            let mut out = dev.zeros(nt * rows)?;
            for m in mats.iter().take(4) {
                dev.gemv_with(kernel, m, &acts, &mut out)?;
            }
            let (a, b) = (ctx.new_event(Some(timing))?, ctx.new_event(Some(timing))?);
            let launches = 4 * copies;
            a.record(&stream)?;
            for i in 0..launches {
                dev.gemv_with(kernel, &mats[i % copies], &acts, &mut out)?;
            }
            b.record(&stream)?;
            b.synchronize()?;
            let us = a.elapsed_ms(&b)? as f64 * 1e3 / launches as f64;
            let gbs = g.bytes() as f64 / (us * 1e-6) / 1e9;
            if let Some(k) = k {
                token_us[k] += us * per_layer as f64;
            }
            println!(
                "| {name} | {nt} {kernel:?} | ✓ | {us:.2} | {gbs:.0} | {:.0}% |",
                100.0 * gbs / copy_gbs
            );
        }
    }
    // The kernel's own streaming rate, without launch gaps: one launch over a stack of 64
    // copies of each matrix (rows × 64), so that one launch reads 100–280 MB.
    if !check_only {
        println!("| stacked ×64, one launch | tokens | | µs | GB/s | % of copy bw |");
        for (name, rows, cols, _) in shapes {
            let stack = 64;
            let trits: Vec<i8> = (0..rows * cols * stack)
                .map(|_| (rng.next() % 3) as i8 - 1)
                .collect();
            let g = GpuTernary::from_trits(rows * stack, cols, &trits, 1.0)?;
            let dm = dev.upload(&g)?;
            for (_, nt, kernel) in variants() {
                let xq: Vec<i8> = (0..nt * cols).map(|_| rng.next() as i8).collect();
                let acts = dev.upload_acts(&xq, &vec![2.0; nt], cols, g.cols_pad)?;
                let mut out = dev.zeros(nt * rows * stack)?;
                dev.gemv_with(kernel, &dm, &acts, &mut out)?;
                let (a, b) = (ctx.new_event(Some(timing))?, ctx.new_event(Some(timing))?);
                let launches = 20;
                a.record(&stream)?;
                for _ in 0..launches {
                    dev.gemv_with(kernel, &dm, &acts, &mut out)?;
                }
                b.record(&stream)?;
                b.synchronize()?;
                let us = a.elapsed_ms(&b)? as f64 * 1e3 / launches as f64;
                let gbs = g.bytes() as f64 / (us * 1e-6) / 1e9;
                println!(
                    "| {name} ×64 | {nt} {kernel:?} | | {us:.1} | {gbs:.0} | {:.0}% |",
                    100.0 * gbs / copy_gbs
                );
            }
        }
    }
    // Stacked matrices (q, k, v with three scales; gate and up) on the device: each part's rows
    // bit-identical to the CPU kernels on that matrix alone.
    for parts in [
        vec![(2560usize, 0.7f32), (640, 1.3), (640, 0.9)],
        vec![(6912, 1.1), (6912, 0.6)],
    ] {
        let cols = 2560;
        let xq: Vec<i8> = (0..cols).map(|_| rng.next() as i8).collect();
        let mut gs = Vec::new();
        let mut want = Vec::new();
        for &(rows, scale) in &parts {
            let trits: Vec<i8> = (0..rows * cols)
                .map(|_| (rng.next() % 3) as i8 - 1)
                .collect();
            gs.push(GpuTernary::from_trits(rows, cols, &trits, scale)?);
            let mut w = vec![0f32; rows];
            TernaryMatrix::from_trits(rows, cols, &trits, scale)?.matmul_with(
                Isa::Scalar,
                &xq,
                &[4.5],
                &mut w,
            );
            want.extend(w);
        }
        let refs: Vec<&GpuTernary> = gs.iter().collect();
        let st = GpuTernary::stack(&refs)?;
        let dm = dev.upload(&st)?;
        let acts = dev.upload_acts(&xq, &[4.5], cols, st.cols_pad)?;
        for k in [GemvKernel::Shared, GemvKernel::L1Rows(4)] {
            let mut out = stream.memcpy_stod(&vec![f32::NAN; st.rows])?;
            dev.gemv_with(k, &dm, &acts, &mut out)?;
            let got = dev.download(&out)?;
            let bad = got
                .iter()
                .zip(&want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            if bad > 0 {
                failures += 1;
                println!(
                    "MISMATCH stacked {} rows {k:?}: {bad} outputs differ",
                    st.rows
                );
            }
        }
    }
    // One decode token's ternary GEMVs (30 layers × q, k, v, o, gate, up, down, each its own
    // matrix in DRAM) captured into one CUDA graph and replayed: the per-token figure without
    // host launch overhead.
    if !check_only {
        let layer = [
            (2560, 2560),
            (640, 2560),
            (640, 2560),
            (2560, 2560),
            (6912, 2560),
            (6912, 2560),
            (2560, 6912),
        ];
        let mut mats = Vec::new();
        for &(rows, cols) in layer.iter().cycle().take(30 * layer.len()) {
            let trits: Vec<i8> = (0..rows * cols)
                .map(|_| (rng.next() % 3) as i8 - 1)
                .collect();
            let g = GpuTernary::from_trits(rows, cols, &trits, 1.0)?;
            mats.push(dev.upload(&g)?);
        }
        let a2560 = dev.upload_acts(&vec![3i8; 2560], &[1.0], 2560, 2560)?;
        let a6912 = dev.upload_acts(&vec![3i8; 6912], &[1.0], 6912, 6912)?;
        // The same weights with q/k/v and gate/up stacked: 4 launches per layer instead of 7.
        let stacked_layer = [(3840, 2560), (2560, 2560), (13824, 2560), (2560, 6912)];
        let mut stacked = Vec::new();
        for &(rows, cols) in stacked_layer.iter().cycle().take(30 * stacked_layer.len()) {
            let trits: Vec<i8> = (0..rows * cols)
                .map(|_| (rng.next() % 3) as i8 - 1)
                .collect();
            stacked.push(dev.upload(&GpuTernary::from_trits(rows, cols, &trits, 1.0)?)?);
        }
        let mut out = dev.zeros(13824)?;
        for (what, set) in [
            ("210 launches (7 per layer)", &mats),
            ("120 launches (q/k/v and gate/up stacked)", &stacked),
        ] {
            let run =
                |out: &mut cudarc::driver::CudaSlice<f32>| -> Result<(), bitnet_cuda::CudaError> {
                    for m in set.iter() {
                        let a = if m.cols == 2560 { &a2560 } else { &a6912 };
                        dev.gemv(m, a, out)?;
                    }
                    Ok(())
                };
            run(&mut out)?;
            stream.begin_capture(
                cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_GLOBAL,
            )?;
            run(&mut out)?;
            let graph = stream
                .end_capture(cudarc::driver::sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH)?
                .ok_or("empty graph")?;
            graph.launch()?;
            let (a, b) = (ctx.new_event(Some(timing))?, ctx.new_event(Some(timing))?);
            for (label, graphed) in [("stream launches", false), ("CUDA graph", true)] {
                a.record(&stream)?;
                let reps = 50;
                for _ in 0..reps {
                    if graphed {
                        graph.launch()?;
                    } else {
                        run(&mut out)?;
                    }
                }
                b.record(&stream)?;
                b.synchronize()?;
                let us = a.elapsed_ms(&b)? as f64 * 1e3 / reps as f64;
                println!(
                    "one token's ternary GEMVs, {what}, {label}: {us:.0} µs ({:.0} GB/s of packed weights)",
                    set.iter().map(|m| m.rows * m.cols_pad / 4).sum::<usize>() as f64
                        / (us * 1e-6)
                        / 1e9
                );
            }
        }
    }
    let weights_per_layer: usize = [
        (2560, 2560, 2),
        (640, 2560, 2),
        (6912, 2560, 2),
        (2560, 6912, 1),
    ]
    .iter()
    .map(|&(r, c, k): &(usize, usize, usize)| r * c.div_ceil(64) * 64 / 4 * k)
    .sum();
    let floor_us = (30 * weights_per_layer) as f64 / (copy_gbs * 1e9) * 1e6;
    if !check_only {
        println!(
            "30 layers of ternary GEMVs: {:.0} µs/token at 1 token, {:.0} µs for 8 tokens; \
         floor at the copy bandwidth {floor_us:.0} µs ({:.1} MB of packed weights)",
            30.0 * token_us[0],
            30.0 * token_us[1],
            (30 * weights_per_layer) as f64 / 1e6
        );
    }
    if failures > 0 {
        return Err(format!("{failures} mismatching (matrix, tokens) cases").into());
    }
    println!("all GPU outputs bit-identical to the CPU kernels");
    Ok(())
}
