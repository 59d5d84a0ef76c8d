//! Compute kernels for BitNet b1.58 inference.
//!
//! The contract every path (scalar, AVX2, AVX-512 VNNI) must honour:
//!
//! * Activations are quantized per token with [`quantize_activations`]:
//!   `s = 127 / max(max|x|, 1e-5)`, `q = clamp(round_half_even(x·s), −128, 127)`.
//! * A [`TernaryMatrix`] `W` (rows × cols, trits in {−1, 0, +1}, one multiplicative f32 scale)
//!   computes `out[r] = (Σ_c W[r,c]·q[c]) as f32 / s · scale`, the integer sum exact.
//! * A [`DenseMatrix`] (f32 or f16 storage) computes `out[r] = Σ_c W[r,c]·x[c]` in f32.
//!
//! The scalar implementation in this file is the reference; the fast paths must give identical
//! integer results.

use half::f16;

mod isa;
mod pool;
mod quant;
mod ternary;

pub use isa::{active_isa, available_isas, detected_isa, Isa};
pub use pool::{num_threads, parallel_for, set_num_threads};
pub use quant::{
    quantize_activations, quantize_activations_with, quantize_scalar, rms_norm_quantize,
};
pub use ternary::{TernaryMatrix, KSTEP, PANEL};

/// Errors from building kernel-side weights.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("matrix {rows}x{cols}: expected {expected} elements, got {got}")]
    Shape {
        rows: usize,
        cols: usize,
        expected: usize,
        got: usize,
    },
    #[error("trit value {value} at index {index} is not -1, 0 or 1")]
    BadTrit { index: usize, value: i8 },
}

/// A dense (non-ternary) matrix: embeddings, output heads.
#[derive(Clone, Debug)]
pub enum DenseMatrix {
    F32 {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    },
    F16 {
        rows: usize,
        cols: usize,
        data: Vec<f16>,
    },
}

impl DenseMatrix {
    pub fn rows(&self) -> usize {
        match self {
            DenseMatrix::F32 { rows, .. } | DenseMatrix::F16 { rows, .. } => *rows,
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            DenseMatrix::F32 { cols, .. } | DenseMatrix::F16 { cols, .. } => *cols,
        }
    }
    pub fn bytes(&self) -> usize {
        match self {
            DenseMatrix::F32 { data, .. } => data.len() * 4,
            DenseMatrix::F16 { data, .. } => data.len() * 2,
        }
    }

    /// Copy row `i` into `out` as f32 (embedding lookup).
    pub fn row_into(&self, i: usize, out: &mut [f32]) {
        let c = self.cols();
        assert_eq!(out.len(), c);
        match self {
            DenseMatrix::F32 { data, .. } => out.copy_from_slice(&data[i * c..(i + 1) * c]),
            DenseMatrix::F16 { data, .. } => {
                for (o, v) in out.iter_mut().zip(&data[i * c..(i + 1) * c]) {
                    *o = v.to_f32();
                }
            }
        }
    }

    /// `out[r] = Σ_c W[r,c]·x[c]`.
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) {
        let c = self.cols();
        assert_eq!(x.len(), c);
        assert_eq!(out.len(), self.rows());
        match self {
            DenseMatrix::F32 { data, .. } => {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = data[r * c..(r + 1) * c]
                        .iter()
                        .zip(x)
                        .map(|(w, v)| w * v)
                        .sum();
                }
            }
            DenseMatrix::F16 { data, .. } => {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = data[r * c..(r + 1) * c]
                        .iter()
                        .zip(x)
                        .map(|(w, v)| w.to_f32() * v)
                        .sum();
                }
            }
        }
    }

    /// The same for `n` rows of `x` (n × cols) into `out` (n × rows).
    pub fn matmul(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let (r, c) = (self.rows(), self.cols());
        for t in 0..n {
            self.matvec(&x[t * c..(t + 1) * c], &mut out[t * r..(t + 1) * r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_quant_hand_computed() {
        // absmax 2 → s = 63.5; 1.0·63.5 = 63.5 rounds to even 64; −2 → −127; 0.5 → 31.75 → 32.
        let x = [1.0f32, -2.0, 0.5, 0.0];
        let mut q = [0i8; 4];
        let s = quantize_activations(&x, &mut q);
        assert_eq!(s, 63.5);
        assert_eq!(q, [64, -127, 32, 0]);
        // All zeros: scale clamps at 127/1e-5, every q is 0.
        let mut q = [1i8; 3];
        let s = quantize_activations(&[0.0; 3], &mut q);
        assert_eq!(s, 127.0 / 1e-5);
        assert_eq!(q, [0, 0, 0]);
    }

    #[test]
    fn ternary_matvec_hand_computed() {
        let w = TernaryMatrix::from_trits(2, 3, &[1, 0, -1, -1, 1, 1], 0.5).unwrap();
        let mut out = [0f32; 2];
        w.matvec(&[10, 20, 30], 2.0, &mut out);
        // row0: 10 − 30 = −20 → −20/2·0.5 = −5; row1: −10+20+30 = 40 → 10.
        assert_eq!(out, [-5.0, 10.0]);
        assert!(TernaryMatrix::from_trits(1, 2, &[2, 0], 1.0).is_err());
    }
}
