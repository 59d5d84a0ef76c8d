//! Kernel microbenchmarks at the BitNet b1.58 2B4T shapes (no external harness).
//!
//! `cargo bench -p bitnet-kernels [-- FILTER]` prints, per ISA path and thread count:
//! * `bw`: a streaming read of 1 GiB (the memory-bandwidth floor the kernels are judged by);
//! * `gemv`: ternary matvec per shape, weights cycled through > 512 MiB of copies so they come
//!   from DRAM as in decode (GB/s of packed weights, GOPS = 2·rows·cols/s);
//! * `gemm`: ternary matmul with 128 tokens (prefill; weights cache-resident, GOPS);
//! * `head`: the tied F16 / Q8 output head (128256 × 2560) GEMV;
//! * `token`: one full decode token of 2B4T weights (30 layers + head) as tokens/s, against
//!   the bandwidth floor.
//!
//! Environment: `BENCH_THREADS=1,2` (default 1,2), `BENCH_SECS` (per measurement, default 0.5),
//! `BENCH_N` (gemm tokens, default 128), `BENCH_CLOCK=cpu` (see [`time`]).

use bitnet_kernels::{
    available_isas, parallel_for, quantize_activations_with, set_num_threads, DenseMatrix, Isa,
    TernaryMatrix,
};
use std::hint::black_box;
mod common;
use common::{time, trits, Rng};

/// Software-prefetch the line 2 KiB past `p` (as the kernels do).
#[inline(always)]
fn prefetch_2k(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is baseline on x86-64; prefetches never fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            p.wrapping_add(256) as *const i8
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Streaming read of `buf` split across the pool; returns GB/s.
fn bandwidth(buf: &[u64], threads: usize, prefetch: bool) -> f64 {
    set_num_threads(threads);
    let chunks = threads * 8;
    let per = buf.len() / chunks;
    let s = time(|| {
        let sums: Vec<std::sync::atomic::AtomicU64> = (0..chunks).map(|_| 0.into()).collect();
        parallel_for(chunks, |i| {
            let part = &buf[i * per..(i + 1) * per];
            // Eight independent lanes so the loop is load-bound, not add-latency-bound.
            let mut acc = [0u64; 8];
            for (j, c) in part.chunks_exact(8).enumerate() {
                if prefetch && j % 4 == 0 {
                    prefetch_2k(c.as_ptr());
                }
                for k in 0..8 {
                    acc[k] = acc[k].wrapping_add(c[k]);
                }
            }
            sums[i].store(
                acc.iter().fold(0, |a, &b| a ^ b),
                std::sync::atomic::Ordering::Relaxed,
            );
        });
        black_box(&sums);
    });
    (per * chunks * 8) as f64 / s / 1e9
}

const SHAPES: [(&str, usize, usize); 4] = [
    ("q/o 2560x2560", 2560, 2560),
    ("k/v 640x2560", 640, 2560),
    ("gate/up 6912x2560", 6912, 2560),
    ("down 2560x6912", 2560, 6912),
];

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let threads: Vec<usize> = std::env::var("BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let isas = available_isas();
    println!("# bitnet-kernels bench; ISAs available: {isas:?}; threads {threads:?}");
    let mut rng = Rng(1);

    let mut bw = vec![0f64; threads.iter().max().copied().unwrap_or(1) + 1];
    let mut bw_small = bw.clone();
    if want("bw") || want("token") {
        let buf: Vec<u64> = (0..(1usize << 27)).map(|i| i as u64).collect(); // 1 GiB
        for &t in &threads {
            let plain = bandwidth(&buf, t, false);
            let pf = bandwidth(&buf, t, true);
            bw_small[t] = plain.max(pf);
            println!(
                "bw      read 1 GiB, 4 KiB pages    threads={t}  {plain:7.2} GB/s plain, {pf:7.2} GB/s with prefetch"
            );
        }
        drop(buf);
        // The same read from 2 MiB pages (the kernels' weights live on huge pages).
        let mut hb: Vec<u64> = Vec::with_capacity((1usize << 27) + (1 << 18));
        let hb = {
            let p = hb.as_mut_ptr() as usize;
            let a = (p + (1 << 21) - 1) & !((1 << 21) - 1);
            #[cfg(target_os = "linux")]
            // SAFETY: a..a+1 GiB lies inside the (untouched) capacity of `hb`; the advice only
            // changes the page size backing it.
            unsafe {
                libc::madvise(a as *mut libc::c_void, 1 << 30, libc::MADV_HUGEPAGE);
            }
            hb.extend((0..(1usize << 27) + (1 << 18)).map(|i| i as u64));
            let off = (a - p) / 8;
            &hb[off..off + (1 << 27)]
        };
        for &t in &threads {
            bw[t] = bandwidth(hb, t, false).max(bandwidth(hb, t, true));
            println!(
                "bw      read 1 GiB, 2 MiB pages    threads={t}  {:7.2} GB/s",
                bw[t]
            );
        }
    }

    if want("gemv") {
        for &(name, rows, cols) in &SHAPES {
            let w = TernaryMatrix::from_trits(rows, cols, &trits(&mut rng, rows * cols), 1.0)
                .expect("shape");
            let copies = ((1usize << 30) / w.bytes()).max(1); // > any cache
            let ws: Vec<TernaryMatrix> = (0..copies).map(|_| w.clone()).collect();
            let xq: Vec<i8> = (0..cols).map(|_| (rng.next() >> 56) as i8).collect();
            let mut out = vec![0f32; rows];
            for &isa in &isas {
                for &t in &threads {
                    set_num_threads(t);
                    let mut k = 0;
                    let s = time(|| {
                        for wk in &ws[k % copies..(k % copies + 8).min(copies)] {
                            wk.matvec_with(isa, &xq, 1.0, &mut out);
                        }
                        k += 8;
                    }) / 8f64.min(copies as f64);
                    println!(
                        "gemv    {name:<22} {isa:<6} threads={t}  {:8.1} us  {:6.2} GB/s  {:6.1} GOPS",
                        s * 1e6,
                        w.bytes() as f64 / s / 1e9,
                        2.0 * (rows * cols) as f64 / s / 1e9
                    );
                }
            }
        }
    }

    if want("gemm") {
        let n: usize = std::env::var("BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128);
        for &(name, rows, cols) in &SHAPES {
            let w = TernaryMatrix::from_trits(rows, cols, &trits(&mut rng, rows * cols), 1.0)
                .expect("shape");
            let xq: Vec<i8> = (0..n * cols).map(|_| (rng.next() >> 56) as i8).collect();
            let xs = vec![1.0f32; n];
            let mut out = vec![0f32; n * rows];
            for &isa in &isas {
                if isa == Isa::Scalar && n > 16 {
                    continue; // minutes per call; the scalar path is the reference, not a target
                }
                for &t in &threads {
                    set_num_threads(t);
                    let s = time(|| w.matmul_with(isa, &xq, &xs, &mut out));
                    println!(
                        "gemm    {name:<22} {isa:<6} threads={t}  n={n} {:8.1} us  {:6.1} GOPS",
                        s * 1e6,
                        2.0 * (n * rows * cols) as f64 / s / 1e9
                    );
                }
            }
        }
    }

    if want("quant") {
        let x: Vec<f32> = (0..6912).map(|_| rng.f32()).collect();
        let mut q = vec![0i8; 6912];
        for &isa in &isas {
            let s = time(|| {
                for _ in 0..100 {
                    black_box(quantize_activations_with(isa, &x, &mut q));
                }
            }) / 100.0;
            println!(
                "quant   6912 f32 -> i8          {isa:<6}            {:8.2} us",
                s * 1e6
            );
        }
    }

    let need_head = want("head") || want("token");
    let head = need_head.then(|| {
        let (rows, cols) = (128256usize, 2560usize);
        let data: Vec<half::f16> = (0..rows * cols)
            .map(|_| half::f16::from_f32(rng.f32() * 0.05))
            .collect();
        let h = DenseMatrix::F16 { rows, cols, data };
        if std::env::var("BENCH_NO_HUGE").is_err() {
            println!(
                "# F16 head on huge pages (MADV_COLLAPSE): {}",
                h.advise_huge_pages()
            );
        }
        h
    });
    let head_q8 = head.as_ref().map(|h| h.to_q8());
    let fast: Vec<Isa> = isas.iter().copied().filter(|&i| i != Isa::Scalar).collect();
    if want("head") {
        let x: Vec<f32> = (0..2560).map(|_| rng.f32()).collect();
        let mut out = vec![0f32; 128256];
        for (name, h) in [("f16", head.as_ref()), ("q8", head_q8.as_ref())] {
            let Some(h) = h else { continue };
            for &isa in &fast {
                for &t in &threads {
                    set_num_threads(t);
                    let s = time(|| h.matvec_with(isa, &x, &mut out));
                    println!(
                        "head    {name} 128256x2560         {isa:<6} threads={t}  {:8.2} ms  {:6.2} GB/s",
                        s * 1e3,
                        h.bytes() as f64 / s / 1e9
                    );
                }
            }
        }
    }

    if want("token") {
        // One 2B4T decoder layer's ternary matrices, cloned 30 times (distinct memory).
        let layer: Vec<TernaryMatrix> = [
            (2560, 2560),
            (640, 2560),
            (640, 2560),
            (2560, 2560),
            (6912, 2560),
            (6912, 2560),
            (2560, 6912),
        ]
        .iter()
        .map(|&(r, c)| {
            TernaryMatrix::from_trits(r, c, &trits(&mut rng, r * c), 1.0).expect("shape")
        })
        .collect();
        let layers: Vec<Vec<TernaryMatrix>> = (0..30).map(|_| layer.clone()).collect();
        let tern_bytes: usize = layers.iter().flatten().map(|m| m.bytes()).sum();
        let x: Vec<f32> = (0..6912).map(|_| rng.f32()).collect();
        let mut xq = vec![0i8; 6912];
        let mut o1 = vec![0f32; 2 * 6912];
        let mut logits = vec![0f32; 128256];
        for (hname, h) in [("f16", head.as_ref()), ("q8", head_q8.as_ref())] {
            let Some(h) = h else { continue };
            for &isa in &fast {
                for &t in &threads {
                    set_num_threads(t);
                    let s = time(|| {
                        for l in &layers {
                            // As the model can run it: one quantization per distinct input,
                            // q/k/v and gate/up each in one dispatch.
                            let sx = quantize_activations_with(isa, &x[..2560], &mut xq[..2560]);
                            {
                                let (a, rest) = o1.split_at_mut(2560);
                                let (b, rest) = rest.split_at_mut(640);
                                let mut outs = [a, b, &mut rest[..640]];
                                TernaryMatrix::matmul_many_with(
                                    isa,
                                    &[&l[0], &l[1], &l[2]],
                                    &xq[..2560],
                                    &[sx],
                                    &mut outs,
                                );
                            }
                            let sx = quantize_activations_with(isa, &x[..2560], &mut xq[..2560]);
                            l[3].matvec_with(isa, &xq[..2560], sx, &mut o1[..2560]);
                            let sx = quantize_activations_with(isa, &x[..2560], &mut xq[..2560]);
                            {
                                let (a, b) = o1.split_at_mut(6912);
                                let mut outs = [a, &mut b[..6912]];
                                TernaryMatrix::matmul_many_with(
                                    isa,
                                    &[&l[4], &l[5]],
                                    &xq[..2560],
                                    &[sx],
                                    &mut outs,
                                );
                            }
                            let sx = quantize_activations_with(isa, &x, &mut xq);
                            l[6].matvec_with(isa, &xq, sx, &mut o1[..2560]);
                        }
                        h.matvec_with(isa, &x[..2560], &mut logits);
                    });
                    let bytes = (tern_bytes + h.bytes()) as f64;
                    let floor = bytes / (bw[t] * 1e9);
                    let floor_small = bytes / (bw_small[t] * 1e9);
                    println!(
                        "token   2B4T decode, {hname} head   {isa:<6} threads={t}  {:8.2} ms  {:6.2} tok/s  {:6.2} GB/s  {:5.1}% of huge-page floor ({:.2} tok/s), {:5.1}% of 4K-page floor ({:.2} tok/s); {:.3} GB/token",
                        s * 1e3,
                        1.0 / s,
                        bytes / s / 1e9,
                        100.0 * floor / s,
                        1.0 / floor,
                        100.0 * floor_small / s,
                        1.0 / floor_small,
                        bytes / 1e9,
                    );
                }
            }
        }
    }
}
