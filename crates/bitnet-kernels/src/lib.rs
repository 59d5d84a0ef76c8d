//! Compute kernels for BitNet b1.58 inference.
//!
//! The contract every path (scalar, AVX2, AVX-512 VNNI) must honour:
//!
//! * Activations are quantized per token with [`quantize_activations`]:
//!   `s = 127 / max(max|x|, 1e-5)`, `q = clamp(round_half_even(x·s), −128, 127)`, bit-identical
//!   on every path.
//! * A [`TernaryMatrix`] `W` (rows × cols, trits in {−1, 0, +1}, one multiplicative f32 scale)
//!   computes `out[r] = (Σ_c W[r,c]·q[c]) as f32 / s · scale`, the integer sum exact, so every
//!   path gives bit-identical outputs.
//! * A [`DenseMatrix`] (f32 or f16 storage) computes `out[r] = Σ_c W[r,c]·x[c]` in f32 (float
//!   rounding differs between paths); the opt-in `Q8` form quantizes weights per row and
//!   activations per token and is exact in integers.
//!
//! The path is chosen once from CPUID ([`active_isa`], overridable with `BITNET_ISA`); every
//! entry point has a `*_with(isa, ..)` twin so tests run each path the machine has. Work runs
//! on a persistent pool ([`set_num_threads`]) and allocates nothing per call after warm-up.
//! Module map: `isa` (dispatch), `pool` (threads), `quant` (activations), `ternary` (layout
//! and GEMV/GEMM per ISA), `dense` (F32/F16/Q8 head), `ops` (vector helpers), `buffer`
//! (huge-page weight memory), `metrics` (head accuracy). See docs/performance.md.

#[cfg(target_arch = "x86_64")]
mod amx;
mod buffer;
mod dense;
mod isa;
mod metrics;
pub mod ops;
mod pool;
mod quant;
mod ternary;

/// Experiments kept for measurement only, not used by the model (no stability promise).
#[doc(hidden)]
pub mod experimental {
    pub use crate::ternary::base3::{decode5, encode5, Base3Matrix, KSTEP3, MAX_COLS};
}

pub use buffer::{advise_huge_pages, HugeBuf};
pub use dense::{DenseMatrix, Q8Matrix};
pub use isa::{active_isa, available_isas, detected_isa, resolve as resolve_isa, Isa};
pub use metrics::logit_divergence;
pub use pool::{num_threads, parallel_for, set_num_threads};
pub use quant::{
    quantize_activations, quantize_activations_with, quantize_scalar, rms_norm_quantize,
};
pub use ternary::{TernaryMatrix, KSTEP, MAX_MANY, PANEL};

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
