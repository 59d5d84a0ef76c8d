//! Every ISA path the machine has gives exactly the reference result (integer sums exact, the
//! same float epilogue), on odd shapes and the BitNet b1.58 2B4T shapes.

mod common;

use bitnet_kernels::{available_isas, set_num_threads, Isa, TernaryMatrix};
use common::{ternary_ref, Rng};

fn check(rows: usize, cols: usize, n: usize, seed: u64) {
    let mut rng = Rng(seed);
    let trits = rng.trits(rows * cols);
    let scale = 0.75 + rng.f32().abs();
    let xq = rng.i8s(n * cols);
    let x_scales: Vec<f32> = (0..n).map(|_| 1.0 + 100.0 * rng.f32().abs()).collect();
    let w = TernaryMatrix::from_trits(rows, cols, &trits, scale).unwrap();
    let want = ternary_ref(rows, cols, &trits, scale, &xq, &x_scales);
    for isa in available_isas() {
        let mut got = vec![f32::NAN; n * rows];
        if n == 1 {
            w.matvec_with(isa, &xq, x_scales[0], &mut got);
        } else {
            w.matmul_with(isa, &xq, &x_scales, &mut got);
        }
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "{isa}: {rows}x{cols} n={n} token {} row {}: got {g}, want {e}",
                i / rows,
                i % rows
            );
        }
    }
}

#[test]
fn odd_shapes_every_isa() {
    let shapes = [
        (0, 5),
        (3, 0),
        (1, 1),
        (1, 4),
        (3, 5),
        (16, 16),
        (17, 100),
        (31, 33),
        (33, 256),
        (40, 257),
        (5, 8640),
        (64, 48),
        (100, 17),
    ];
    for (i, &(r, c)) in shapes.iter().enumerate() {
        for n in [1, 2, 5, 8, 9, 19, 33] {
            check(r, c, n, 1 + i as u64 * 31 + n as u64);
        }
    }
}

#[test]
fn extreme_activations_every_isa() {
    // All −128 / all +127 activations against all-±1 rows: the largest sums the kernels see.
    let (rows, cols) = (40, 6912);
    for (wv, xv) in [(1i8, -128i8), (-1, -128), (1, 127), (-1, 127)] {
        let trits = vec![wv; rows * cols];
        let w = TernaryMatrix::from_trits(rows, cols, &trits, 1.0).unwrap();
        let xq = vec![xv; 5 * cols];
        let xs = [1.0f32, 2.0, 4.0, 8.0, 0.5]; // 5 tokens: the batched (AMX) path too
        let want = ternary_ref(rows, cols, &trits, 1.0, &xq, &xs);
        assert_eq!(want[0], (wv as i32 * xv as i32 * cols as i32) as f32);
        for isa in available_isas() {
            let mut got = vec![0f32; 5 * rows];
            w.matmul_with(isa, &xq, &xs, &mut got);
            assert_eq!(got, want, "{isa} w={wv} x={xv}");
            let mut got1 = vec![0f32; rows];
            w.matvec_with(isa, &xq[..cols], 1.0, &mut got1);
            assert_eq!(got1, want[..rows], "{isa} matvec w={wv} x={xv}");
        }
    }
}

/// A CPU that advertises AMX-INT8 (Linux `/proc/cpuinfo`) must get the AMX path, so the
/// tests above really compare it (a detection bug would otherwise skip it silently).
#[test]
fn amx_path_is_detected_where_the_cpu_has_it() {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return; // not Linux: nothing to cross-check against
    };
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let cpu_amx = has("amx_int8") && has("amx_tile") && has("avx512_vnni");
    assert_eq!(
        Isa::Amx.is_available(),
        cpu_amx,
        "cpuinfo says amx_int8/amx_tile/avx512_vnni = {cpu_amx}"
    );
    assert_eq!(available_isas().contains(&Isa::Amx), cpu_amx);
}

#[test]
fn bitnet_2b4t_shapes_every_isa() {
    // (rows, cols) of q/o, k/v, gate/up, down in BitNet b1.58 2B4T.
    for (i, &(r, c)) in [(2560, 2560), (640, 2560), (6912, 2560), (2560, 6912)]
        .iter()
        .enumerate()
    {
        check(r, c, 1, 100 + i as u64);
        check(r, c, 3, 200 + i as u64);
        if i % 2 == 1 {
            check(r, c, 16 + i, 300 + i as u64); // pre-unpacked GEMM path
        }
        if i == 2 {
            check(r, c, 70, 400); // several 32-token AMX groups and a partial one
        }
    }
}

#[test]
fn thread_counts_do_not_change_results() {
    let (rows, cols, n) = (300, 520, 11);
    let mut rng = Rng(77);
    let trits = rng.trits(rows * cols);
    let xq = rng.i8s(n * cols);
    let xs: Vec<f32> = (0..n).map(|i| 1.0 + i as f32).collect();
    let w = TernaryMatrix::from_trits(rows, cols, &trits, 0.5).unwrap();
    let want = ternary_ref(rows, cols, &trits, 0.5, &xq, &xs);
    for threads in [1, 3, 2] {
        set_num_threads(threads);
        let mut got = vec![0f32; n * rows];
        w.matmul(&xq, &xs, &mut got);
        assert_eq!(got, want, "threads={threads}");
    }
}

#[test]
fn layout_roundtrip_and_errors() {
    let mut rng = Rng(5);
    for (r, c) in [(1, 1), (17, 33), (3, 100)] {
        let t = rng.trits(r * c);
        let w = TernaryMatrix::from_trits(r, c, &t, 1.0).unwrap();
        assert_eq!(w.to_trits(), t);
        assert_eq!((w.rows(), w.cols(), w.scale()), (r, c, 1.0));
    }
    // 2 bits per weight, no padding on 2B4T shapes; odd panel counts get one zero panel.
    let w = TernaryMatrix::from_trits(33, 16, &vec![0; 33 * 16], 1.0).unwrap();
    assert_eq!(w.bytes(), 4 * 64); // 3 panels of 16 rows, padded to 4
    let w = TernaryMatrix::from_trits(640, 2560, &vec![0; 640 * 2560], 1.0).unwrap();
    assert_eq!(w.bytes(), 640 * 2560 / 4);
    // Large matrices live on huge pages (HugeBuf); clones are deep and identical.
    let t = rng.trits(2560 * 700);
    let w = TernaryMatrix::from_trits(700, 2560, &t, 1.0).unwrap();
    let c = w.clone();
    drop(w);
    assert_eq!(c.to_trits(), t);
    // Advising someone else's buffer never changes its contents.
    let v: Vec<u32> = (0..3 << 20).collect();
    let _ = bitnet_kernels::advise_huge_pages(&v);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    assert!(TernaryMatrix::from_trits(2, 2, &[0, 0, 0], 1.0).is_err());
    assert!(TernaryMatrix::from_trits(1, 2, &[0, -2], 1.0).is_err());
    // The first bad value is reported exactly, also past the first validation block.
    let mut t = vec![1i8; 3 * 5000];
    t[9001] = 7;
    t[12000] = -5;
    match TernaryMatrix::from_trits(3, 5000, &t, 1.0) {
        Err(bitnet_kernels::KernelError::BadTrit { index, value }) => {
            assert_eq!((index, value), (9001, 7))
        }
        other => panic!("expected BadTrit, got {other:?}"),
    }
}

#[test]
fn forced_unavailable_isa_falls_back() {
    // Asking for any path is safe: it is clamped to what the CPU runs.
    let w = TernaryMatrix::from_trits(2, 3, &[1, 0, -1, -1, 1, 1], 0.5).unwrap();
    for isa in Isa::ALL {
        let mut out = [0f32; 2];
        w.matvec_with(isa, &[10, 20, 30], 2.0, &mut out);
        assert_eq!(out, [-5.0, 10.0], "{isa}");
    }
}

#[test]
fn many_matrices_in_one_dispatch_every_isa() {
    // q/k/v-like (different rows, same cols) and an odd set; one token and several.
    let mut rng = Rng(41);
    for &(ref rows, cols) in &[
        (vec![256usize, 64, 64], 2560usize),
        (vec![17, 1, 40, 33], 100),
    ] {
        let trits: Vec<Vec<i8>> = rows.iter().map(|&r| rng.trits(r * cols)).collect();
        let mats: Vec<TernaryMatrix> = rows
            .iter()
            .zip(&trits)
            .enumerate()
            .map(|(i, (&r, t))| TernaryMatrix::from_trits(r, cols, t, 0.5 + i as f32).unwrap())
            .collect();
        let refs: Vec<&TernaryMatrix> = mats.iter().collect();
        for n in [1usize, 19] {
            let xq = rng.i8s(n * cols);
            let xs: Vec<f32> = (0..n).map(|t| 3.0 + t as f32).collect();
            for isa in available_isas() {
                let mut bufs: Vec<Vec<f32>> = rows.iter().map(|&r| vec![f32::NAN; n * r]).collect();
                let mut outs: Vec<&mut [f32]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
                TernaryMatrix::matmul_many_with(isa, &refs, &xq, &xs, &mut outs);
                for (i, b) in bufs.iter().enumerate() {
                    let want = ternary_ref(rows[i], cols, &trits[i], 0.5 + i as f32, &xq, &xs);
                    assert_eq!(b, &want, "{isa} matrix {i} n={n}");
                }
            }
        }
    }
}
