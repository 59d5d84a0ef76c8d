//! Base-3 (1.6-bit, `experimental::Base3Matrix`) against the 2-bit `TernaryMatrix` GEMV, both
//! AVX-512 VNNI, in the same run, at the BitNet b1.58 2B4T shapes (issue 4, item 2).
//!
//! `cargo bench -p bitnet-kernels --bench base3 [-- gemv|token]` prints, per thread count:
//! * `gemv`: per shape, µs per call, GB/s of each layout's own bytes and G weights/s, weights
//!   cycled through > 1 GiB of copies (from DRAM, as in decode); the layouts alternate
//!   `BENCH_ROUNDS` times (default 3) and the best round of each is kept;
//! * `token`: the 30 layers' ternary matrices of one 2B4T token (q, k, v, o, gate, up, down;
//!   two distinct copies of the model cycled so they exceed the L3), one `matvec_with` each,
//!   as tokens/s of the ternary part alone, with each layout's bytes per token.
//!
//! Environment: `BENCH_THREADS` (default 1,2), `BENCH_SECS` (default 0.5),
//! `BENCH_CLOCK=cpu` (single thread: the calling thread's CPU time per call, which
//! time-slicing by other processes does not inflate).

use bitnet_kernels::experimental::Base3Matrix;
use bitnet_kernels::{set_num_threads, Isa, TernaryMatrix};
mod common;
use common::{env_f64, time, trits, Rng};

/// A matrix both layouts can run.
trait Gemv {
    fn run(&self, xq: &[i8], out: &mut [f32]);
    fn shape(&self) -> (usize, usize);
    fn rows(&self) -> usize {
        self.shape().0
    }
    fn cols(&self) -> usize {
        self.shape().1
    }
}
impl Gemv for TernaryMatrix {
    fn run(&self, xq: &[i8], out: &mut [f32]) {
        self.matvec_with(Isa::Avx512, xq, 1.0, out)
    }
    fn shape(&self) -> (usize, usize) {
        (Self::rows(self), Self::cols(self))
    }
}
impl Gemv for Base3Matrix {
    fn run(&self, xq: &[i8], out: &mut [f32]) {
        self.matvec_with(Isa::Avx512, xq, 1.0, out)
    }
    fn shape(&self) -> (usize, usize) {
        (Self::rows(self), Self::cols(self))
    }
}

/// Seconds per GEMV, cycling through `ws` (8 calls per timed sample).
fn time_gemv<M: Gemv>(ws: &[M], xq: &[i8], out: &mut [f32]) -> f64 {
    let n = ws.len();
    let mut k = 0;
    time(|| {
        for i in 0..8 {
            ws[(k + i) % n].run(xq, out);
        }
        k += 8;
    }) / 8.0
}

/// One 2B4T layer: q, k, v, o, gate, up, down (rows, cols).
const LAYER: [(usize, usize); 7] = [
    (2560, 2560),
    (640, 2560),
    (640, 2560),
    (2560, 2560),
    (6912, 2560),
    (6912, 2560),
    (2560, 6912),
];

/// Seconds per token of ternary matvecs over `model` (2 copies × 30 layers × 7; one copy per
/// token, alternating).
fn time_token<M: Gemv>(model: &[Vec<M>], xq: &[i8], out: &mut [f32]) -> f64 {
    let mut tok = 0;
    let per_copy = model.len() / 2;
    time(|| {
        for layer in &model[(tok % 2) * per_copy..(tok % 2 + 1) * per_copy] {
            for m in layer {
                m.run(&xq[..m.cols()], &mut out[..m.rows()]);
            }
        }
        tok += 1;
    })
}
fn main() {
    if !Isa::Avx512.is_available() {
        println!("# base3 bench: AVX-512 VNNI not available, nothing to compare");
        return;
    }
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
    let rounds = env_f64("BENCH_ROUNDS", 3.0) as usize;
    println!(
        "# base-3 vs 2-bit GEMV (AVX-512 VNNI); threads {threads:?}; clock {}",
        std::env::var("BENCH_CLOCK").unwrap_or_else(|_| "wall".into())
    );
    let mut rng = Rng(1);
    if want("gemv") {
        for &(rows, cols) in &[(2560usize, 2560usize), (6912, 2560), (2560, 6912)] {
            let tr = trits(&mut rng, rows * cols);
            let w2 = TernaryMatrix::from_trits(rows, cols, &tr, 1.0).expect("shape");
            let w3 = Base3Matrix::from_trits(rows, cols, &tr, 1.0).expect("shape");
            let c2 = ((1usize << 30) / w2.bytes()).max(1);
            let c3 = ((1usize << 30) / w3.bytes()).max(1);
            let ws2: Vec<TernaryMatrix> = (0..c2).map(|_| w2.clone()).collect();
            let ws3: Vec<Base3Matrix> = (0..c3).map(|_| w3.clone()).collect();
            let xq: Vec<i8> = (0..cols).map(|_| (rng.next() >> 56) as i8).collect();
            let mut out = vec![0f32; rows];
            for &t in &threads {
                set_num_threads(t);
                let (mut s2, mut s3) = (f64::INFINITY, f64::INFINITY);
                for _ in 0..rounds {
                    s2 = s2.min(time_gemv(&ws2, &xq, &mut out));
                    s3 = s3.min(time_gemv(&ws3, &xq, &mut out));
                }
                for (name, s, b) in [("2-bit ", s2, w2.bytes()), ("base-3", s3, w3.bytes())] {
                    println!(
                        "gemv  {rows}x{cols}  {name} threads={t}  {:7.1} us  {:6.2} GB/s  {:6.1} G weights/s",
                        s * 1e6,
                        b as f64 / s / 1e9,
                        (rows * cols) as f64 / s / 1e9
                    );
                }
                println!(
                    "gemv  {rows}x{cols}  base-3 / 2-bit time = {:.3} (bytes {:.3})",
                    s3 / s2,
                    w3.bytes() as f64 / w2.bytes() as f64
                );
            }
        }
    }
    if want("token") {
        let layer: Vec<Vec<i8>> = LAYER.iter().map(|&(r, c)| trits(&mut rng, r * c)).collect();
        let l2: Vec<TernaryMatrix> = LAYER
            .iter()
            .zip(&layer)
            .map(|(&(r, c), t)| TernaryMatrix::from_trits(r, c, t, 1.0).expect("shape"))
            .collect();
        let l3: Vec<Base3Matrix> = LAYER
            .iter()
            .zip(&layer)
            .map(|(&(r, c), t)| Base3Matrix::from_trits(r, c, t, 1.0).expect("shape"))
            .collect();
        // Two copies of the 30 layers (distinct memory): > the L3, as a real model is.
        let m2: Vec<Vec<TernaryMatrix>> = (0..60).map(|_| l2.clone()).collect();
        let m3: Vec<Vec<Base3Matrix>> = (0..60).map(|_| l3.clone()).collect();
        let b2: usize = m2[..30].iter().flatten().map(|m| m.bytes()).sum();
        let b3: usize = m3[..30].iter().flatten().map(|m| m.bytes()).sum();
        let xq: Vec<i8> = (0..6912).map(|_| (rng.next() >> 56) as i8).collect();
        let mut out = vec![0f32; 6912];
        for &t in &threads {
            set_num_threads(t);
            let (mut s2, mut s3) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..rounds {
                s2 = s2.min(time_token(&m2, &xq, &mut out));
                s3 = s3.min(time_token(&m3, &xq, &mut out));
            }
            for (name, s, b) in [("2-bit ", s2, b2), ("base-3", s3, b3)] {
                println!(
                    "token 2B4T ternary only  {name} threads={t}  {:7.2} ms  {:6.2} tok/s  {:6.2} GB/s  {:.1} MB/token",
                    s * 1e3,
                    1.0 / s,
                    b as f64 / s / 1e9,
                    b as f64 / 1e6
                );
            }
            println!(
                "token 2B4T ternary only  base-3 / 2-bit time = {:.3} (bytes {:.3})",
                s3 / s2,
                b3 as f64 / b2 as f64
            );
        }
    }
}
