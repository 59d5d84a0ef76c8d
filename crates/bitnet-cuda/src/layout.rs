//! The GPU-native 2-bit ternary layout, built and checked on the host.
//!
//! Each row is padded to `cols_pad = ceil(cols / 64) · 64` columns (padding weights are 0) and
//! stored as `cols_pad / 16` little-endian `u32` words, one per 16 columns; a warp lane loads 4
//! consecutive words (64 columns) with one 128-bit load, so a warp reads 2 KiB of a row per
//! coalesced step. Word `g` holds `u = w + 1 ∈ {0, 1, 2}` of column `16g + 4s + k` in bits
//! `8k + 2s .. 8k + 2s + 2`: `(word >> 2s) & 0x03030303` is then the four unsigned weights of
//! columns `16g + 4s .. 16g + 4s + 4`, one per byte — exactly one `dp4a` operand against the
//! four activation bytes at the same columns, with no shuffling. As on the CPU,
//! `Σ w·x = Σ u·x − Σ x`.

use crate::CudaError;

/// Columns per 128-bit lane load.
pub const LANE_COLS: usize = 64;

/// A ternary matrix in the GPU layout (host copy), with a scale per row (one matrix has one
/// scale; [`GpuTernary::stack`] joins matrices that share their input, each keeping its own).
#[derive(Clone, Debug, PartialEq)]
pub struct GpuTernary {
    pub rows: usize,
    pub cols: usize,
    /// Columns per row as stored (a multiple of [`LANE_COLS`]).
    pub cols_pad: usize,
    /// `rows` scales.
    pub scales: Vec<f32>,
    /// `rows × cols_pad / 16` words.
    pub words: Vec<u32>,
}

impl GpuTernary {
    /// Pack row-major trits (`trits[r·cols + c] ∈ {−1, 0, 1}`).
    pub fn from_trits(
        rows: usize,
        cols: usize,
        trits: &[i8],
        scale: f32,
    ) -> Result<GpuTernary, CudaError> {
        let n = rows
            .checked_mul(cols)
            .ok_or(CudaError::Shape(format!("{rows} × {cols} overflows")))?;
        if trits.len() != n {
            return Err(CudaError::Shape(format!(
                "{rows} × {cols} matrix needs {n} trits, got {}",
                trits.len()
            )));
        }
        if let Some(i) = trits.iter().position(|t| !(-1..=1).contains(t)) {
            return Err(CudaError::Shape(format!(
                "trit {i} is {}, not -1, 0 or 1",
                trits[i]
            )));
        }
        let cols_pad = cols.div_ceil(LANE_COLS) * LANE_COLS;
        let wpr = cols_pad / 16;
        let mut words = vec![0u32; rows * wpr];
        for r in 0..rows {
            let row = &trits[r * cols..(r + 1) * cols];
            for (g, word) in words[r * wpr..(r + 1) * wpr].iter_mut().enumerate() {
                let mut v = 0u32;
                for s in 0..4 {
                    for k in 0..4 {
                        let c = 16 * g + 4 * s + k;
                        let u = row.get(c).map_or(1, |&t| (t + 1) as u32); // padding: w = 0
                        v |= u << (8 * k + 2 * s);
                    }
                }
                *word = v;
            }
        }
        Ok(GpuTernary {
            rows,
            cols,
            cols_pad,
            scales: vec![scale; rows],
            words,
        })
    }

    /// Matrices with the same input stacked row-wise into one (q, k, v → one GEMV launch),
    /// each row keeping its matrix's scale.
    pub fn stack(parts: &[&GpuTernary]) -> Result<GpuTernary, CudaError> {
        let first = parts
            .first()
            .ok_or_else(|| CudaError::Shape("stack of no matrices".into()))?;
        if let Some(p) = parts.iter().find(|p| p.cols != first.cols) {
            return Err(CudaError::Shape(format!(
                "stack: {} columns beside {}",
                p.cols, first.cols
            )));
        }
        Ok(GpuTernary {
            rows: parts.iter().map(|p| p.rows).sum(),
            cols: first.cols,
            cols_pad: first.cols_pad,
            scales: parts
                .iter()
                .flat_map(|p| p.scales.iter().copied())
                .collect(),
            words: parts.iter().flat_map(|p| p.words.iter().copied()).collect(),
        })
    }

    /// Words per row.
    pub fn words_per_row(&self) -> usize {
        self.cols_pad / 16
    }

    /// Bytes of packed weights (what one GEMV reads).
    pub fn bytes(&self) -> usize {
        self.words.len() * 4
    }

    /// Row-major trits decoded from the layout.
    pub fn to_trits(&self) -> Vec<i8> {
        let wpr = self.words_per_row();
        let mut out = vec![0i8; self.rows * self.cols];
        for r in 0..self.rows {
            for c in 0..self.cols {
                let (g, s, k) = (c / 16, (c % 16) / 4, c % 4);
                let word = self.words[r * wpr + g];
                out[r * self.cols + c] = ((word >> (8 * k + 2 * s)) & 3) as i8 - 1;
            }
        }
        out
    }

    /// What the GEMV kernel computes, on the host, step for step: per row the sum over
    /// words and sub-steps of `dp4a((word >> 2s) & 0x03030303, x[16g + 4s ..])`, minus `Σx`,
    /// then `dot as f32 / x_scale · scale[row]`. `xq`: n × cols, `out`: n × rows.
    pub fn matmul_host(&self, xq: &[i8], x_scales: &[f32], out: &mut [f32]) {
        let n = x_scales.len();
        assert_eq!(xq.len(), n * self.cols);
        assert_eq!(out.len(), n * self.rows);
        let wpr = self.words_per_row();
        for t in 0..n {
            let mut x = vec![0i8; self.cols_pad];
            x[..self.cols].copy_from_slice(&xq[t * self.cols..(t + 1) * self.cols]);
            let sx: i32 = x.iter().map(|&v| v as i32).sum();
            for r in 0..self.rows {
                let mut acc = 0i32;
                for g in 0..wpr {
                    let word = self.words[r * wpr + g];
                    for s in 0..4 {
                        let u = (word >> (2 * s)) & 0x0303_0303;
                        for k in 0..4 {
                            let ub = ((u >> (8 * k)) & 0xff) as i32;
                            acc += ub * x[16 * g + 4 * s + k] as i32;
                        }
                    }
                }
                out[t * self.rows + r] = (acc - sx) as f32 / x_scales[t] * self.scales[r];
            }
        }
    }
}
