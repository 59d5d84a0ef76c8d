//! Dense (non-ternary) matrices: embeddings and the output head.
//!
//! F32/F16 rows are stored row-major as given; GEMV is vectorised (F16C / AVX-512 conversion,
//! 4 rows per pass sharing the activation loads) and split over the pool by row blocks. The
//! opt-in [`Q8Matrix`] (int8 weights with one scale per row, int8 activations) halves the
//! bytes of an F16 head at a measurable accuracy cost (see [`crate::logit_divergence`]).

mod q8;
#[cfg(target_arch = "x86_64")]
mod q8_amx;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use q8::Q8Matrix;

use crate::isa::{active_isa, Isa};
use crate::pool::{parallel_for, SharedMut};
use half::f16;

/// A dense (non-ternary) matrix: embeddings, output heads.
#[derive(Clone, Debug)]
pub enum DenseMatrix {
    /// Row-major f32, `data.len() == rows·cols`.
    F32 {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    },
    /// Row-major f16, `data.len() == rows·cols`.
    F16 {
        rows: usize,
        cols: usize,
        data: Vec<f16>,
    },
    /// Int8 with per-row scales (opt-in `--head q8`), in the kernels' panel layout.
    Q8(Q8Matrix),
}

/// Rows per pool task for dense GEMV.
const ROWS_PER_TASK: usize = 256;

impl DenseMatrix {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            DenseMatrix::F32 { rows, .. } | DenseMatrix::F16 { rows, .. } => *rows,
            DenseMatrix::Q8(m) => m.rows(),
        }
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        match self {
            DenseMatrix::F32 { cols, .. } | DenseMatrix::F16 { cols, .. } => *cols,
            DenseMatrix::Q8(m) => m.cols(),
        }
    }
    /// Bytes the weights occupy in memory.
    pub fn bytes(&self) -> usize {
        match self {
            DenseMatrix::F32 { data, .. } => data.len() * 4,
            DenseMatrix::F16 { data, .. } => data.len() * 2,
            DenseMatrix::Q8(m) => m.bytes(),
        }
    }

    /// Ask the OS to back the weights with 2 MiB pages (see [`crate::advise_huge_pages`]);
    /// call once after loading a large head. Best effort; returns whether it took effect.
    /// Q8 matrices are allocated on huge pages already.
    pub fn advise_huge_pages(&self) -> bool {
        match self {
            DenseMatrix::F32 { data, .. } => crate::buffer::advise_huge_pages(data),
            DenseMatrix::F16 { data, .. } => crate::buffer::advise_huge_pages(data),
            DenseMatrix::Q8(_) => true,
        }
    }

    /// An int8 copy with per-row scales (for `--head q8`).
    pub fn to_q8(&self) -> DenseMatrix {
        match self {
            DenseMatrix::Q8(m) => DenseMatrix::Q8(m.clone()),
            _ => {
                let (r, c) = (self.rows(), self.cols());
                let mut row = vec![0f32; c];
                DenseMatrix::Q8(Q8Matrix::from_rows(r, c, |i, out| {
                    self.row_into(i, &mut row);
                    out.copy_from_slice(&row);
                }))
            }
        }
    }

    /// Copy row `i` into `out` as f32 (embedding lookup; Q8 rows are dequantized).
    pub fn row_into(&self, i: usize, out: &mut [f32]) {
        let c = self.cols();
        assert_eq!(out.len(), c, "row_into: out length != cols");
        assert!(i < self.rows(), "row_into: row {i} out of range");
        match self {
            DenseMatrix::F32 { data, .. } => out.copy_from_slice(&data[i * c..(i + 1) * c]),
            DenseMatrix::F16 { data, .. } => {
                for (o, v) in out.iter_mut().zip(&data[i * c..(i + 1) * c]) {
                    *o = v.to_f32();
                }
            }
            DenseMatrix::Q8(m) => m.row_into(i, out),
        }
    }

    /// `out[r] = Σ_c W[r,c]·x[c]` (`x`: cols, `out`: rows) on the [`active_isa`] path.
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) {
        self.matvec_with(active_isa(), x, out)
    }

    /// [`matvec`](Self::matvec) on a chosen path (clamped to what the CPU supports).
    pub fn matvec_with(&self, isa: Isa, x: &[f32], out: &mut [f32]) {
        let (rows, cols) = (self.rows(), self.cols());
        assert_eq!(x.len(), cols, "matvec: x length != cols");
        assert_eq!(out.len(), rows, "matvec: out length != rows");
        let isa = isa.clamp_available();
        if let DenseMatrix::Q8(m) = self {
            return m.matvec_with(isa, x, out);
        }
        let n_tasks = rows.div_ceil(ROWS_PER_TASK);
        let outp = SharedMut(out.as_mut_ptr());
        parallel_for(n_tasks, |task| {
            let r0 = task * ROWS_PER_TASK;
            let r1 = (r0 + ROWS_PER_TASK).min(rows);
            // SAFETY: tasks write disjoint row ranges r0..r1 of `out` (rows long), which
            // outlives parallel_for.
            let o = unsafe { outp.slice(r0, r1 - r0) };
            match self {
                DenseMatrix::F32 { data, .. } => f32_rows(isa, &data[r0 * cols..r1 * cols], x, o),
                DenseMatrix::F16 { data, .. } => f16_rows(isa, &data[r0 * cols..r1 * cols], x, o),
                DenseMatrix::Q8(_) => unreachable!(),
            }
        });
    }

    /// The same for `n` rows of `x` (n × cols) into `out` (n × rows), on the [`active_isa`]
    /// path. F32/F16 weights are read from memory once: each task keeps its block of rows
    /// cache-resident while it runs every token.
    pub fn matmul(&self, x: &[f32], n: usize, out: &mut [f32]) {
        self.matmul_with(active_isa(), x, n, out)
    }

    /// [`matmul`](Self::matmul) on a chosen path (clamped to what the CPU supports).
    pub fn matmul_with(&self, isa: Isa, x: &[f32], n: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows(), self.cols());
        assert_eq!(x.len(), n * cols, "matmul: x length != n × cols");
        assert_eq!(out.len(), n * rows, "matmul: out length != n × rows");
        if let DenseMatrix::Q8(m) = self {
            return m.matmul_with(isa, x, n, out);
        }
        if n == 1 {
            for t in 0..n {
                self.matvec_with(
                    isa,
                    &x[t * cols..(t + 1) * cols],
                    &mut out[t * rows..(t + 1) * rows],
                );
            }
            return;
        }
        let isa = isa.clamp_available();
        let n_tasks = rows.div_ceil(ROWS_PER_TASK);
        let outp = SharedMut(out.as_mut_ptr());
        parallel_for(n_tasks, |task| {
            let r0 = task * ROWS_PER_TASK;
            let r1 = (r0 + ROWS_PER_TASK).min(rows);
            let mut t_first = 0;
            // F16 on AVX2: tokens in tiles, each weight row widened once per tile (same
            // per-token sums as below, so the results are the same bits).
            #[cfg(target_arch = "x86_64")]
            if let (DenseMatrix::F16 { data, .. }, Isa::Avx2) = (self, isa) {
                let tiles = n / x86::F16_TOKENS;
                // SAFETY: AVX2 is available (isa was clamped); this task owns rows r0..r1 of
                // every token's output in `out` (n × rows), which outlives the pool.
                unsafe {
                    x86::f16_rows_avx2_tokens(
                        &data[r0 * cols..r1 * cols],
                        cols,
                        x,
                        tiles,
                        outp.0,
                        rows,
                        r0,
                        r1 - r0,
                    )
                };
                t_first = tiles * x86::F16_TOKENS;
            }
            // The same on AVX-512 (the AMX path's dense kernels are the AVX-512 ones).
            #[cfg(target_arch = "x86_64")]
            if let (DenseMatrix::F16 { data, .. }, Isa::Avx512 | Isa::Amx) = (self, isa) {
                let tiles = n / x86::F16_TOKENS_512;
                // SAFETY: AVX-512 is available (isa was clamped); this task owns rows r0..r1
                // of every token's output in `out` (n × rows), which outlives the pool.
                unsafe {
                    x86::f16_rows_avx512_tokens(
                        &data[r0 * cols..r1 * cols],
                        cols,
                        x,
                        tiles,
                        outp.0,
                        rows,
                        r0,
                        r1 - r0,
                    )
                };
                t_first = tiles * x86::F16_TOKENS_512;
            }
            for t in t_first..n {
                let xt = &x[t * cols..(t + 1) * cols];
                // SAFETY: tasks own disjoint row ranges r0..r1; for token t these are
                // out[t·rows + r0 .. t·rows + r1], inside `out`, which outlives parallel_for.
                let o = unsafe { outp.slice(t * rows + r0, r1 - r0) };
                match self {
                    DenseMatrix::F32 { data, .. } => {
                        f32_rows(isa, &data[r0 * cols..r1 * cols], xt, o)
                    }
                    DenseMatrix::F16 { data, .. } => {
                        f16_rows(isa, &data[r0 * cols..r1 * cols], xt, o)
                    }
                    DenseMatrix::Q8(_) => unreachable!(),
                }
            }
        });
    }
}

/// Rows of an f32 matrix (`w`: out.len() × x.len()).
fn f32_rows(isa: Isa, w: &[f32], x: &[f32], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` is clamped to what the CPU supports.
        Isa::Avx512 | Isa::Amx => unsafe { x86::f32_rows_avx512(w, x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::f32_rows_avx2(w, x, out) },
        _ => {
            let c = x.len();
            for (r, o) in out.iter_mut().enumerate() {
                *o = w[r * c..(r + 1) * c]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum();
            }
        }
    }
}

/// Rows of an f16 matrix (`w`: out.len() × x.len()).
fn f16_rows(isa: Isa, w: &[f16], x: &[f32], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` is clamped to what the CPU supports.
        Isa::Avx512 | Isa::Amx => unsafe { x86::f16_rows_avx512(w, x, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::f16_rows_avx2(w, x, out) },
        _ => {
            let c = x.len();
            for (r, o) in out.iter_mut().enumerate() {
                *o = w[r * c..(r + 1) * c]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a.to_f32() * b)
                    .sum();
            }
        }
    }
}
