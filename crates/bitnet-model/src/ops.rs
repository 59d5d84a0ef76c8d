//! Building blocks of the forward pass, each on one token's vector, in f32 as transformers does.

use bitnet_kernels::{active_isa, Isa};

use crate::config::RopeStyle;

/// RMSNorm as transformers' `LlamaRMSNorm`/`BitNetRMSNorm`: `x · rsqrt(mean(x²) + eps) · w`.
/// `x`, `w`, `out`: `[n]`. The mean is accumulated in f64 (closer to torch's pairwise f32 sum
/// than a sequential f32 sum), then everything else is f32.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert_eq!(x.len(), w.len());
    debug_assert_eq!(x.len(), out.len());
    let ss: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mean = (ss / x.len() as f64) as f32;
    let r = 1.0f32 / (mean + eps).sqrt();
    for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(w) {
        *o = wi * (xi * r);
    }
}

/// RMSNorm in place.
pub fn rmsnorm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let ss: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mean = (ss / x.len() as f64) as f32;
    let r = 1.0f32 / (mean + eps).sqrt();
    for (xi, &wi) in x.iter_mut().zip(w) {
        *xi = wi * (*xi * r);
    }
}

/// Fill a RoPE table for positions `0..n_pos`: `cos`/`sin` are `[n_pos × head_dim/2]`.
/// Frequencies as transformers computes them in f32: `inv_freq[i] = 1 / θ^(2i/d)`,
/// angle = `pos · inv_freq[i]` rounded to f32.
pub fn rope_table(theta: f32, head_dim: usize, n_pos: usize, cos: &mut [f32], sin: &mut [f32]) {
    let half = head_dim / 2;
    debug_assert_eq!(cos.len(), n_pos * half);
    debug_assert_eq!(sin.len(), n_pos * half);
    for i in 0..half {
        let inv_freq = 1.0f32 / theta.powf((2 * i) as f32 / head_dim as f32);
        for p in 0..n_pos {
            let angle = (p as f32 * inv_freq) as f64;
            cos[p * half + i] = angle.cos() as f32;
            sin[p * half + i] = angle.sin() as f32;
        }
    }
}

/// Rotate every head of `x` (`[n_heads × head_dim]`) by one position's `cos`/`sin` (`[head_dim/2]`).
pub fn rope(x: &mut [f32], head_dim: usize, cos: &[f32], sin: &[f32], style: RopeStyle) {
    let half = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..half {
            let (a, b) = match style {
                RopeStyle::Neox => (i, i + half),
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos[i] - x1 * sin[i];
            head[b] = x1 * cos[i] + x0 * sin[i];
        }
    }
}

/// Softmax in place, in f32, with the maximum subtracted first.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// An element type the KV cache can hold.
pub trait KvElem: Copy + Send + Sync {
    /// `Σ q[i]·k[i]` (f32 caches on the kernels' `isa` path).
    fn dot(isa: Isa, q: &[f32], k: &[Self]) -> f32;
    /// `out[i] += w·v[i]` (f32 caches on the kernels' `isa` path).
    fn axpy(isa: Isa, out: &mut [f32], w: f32, v: &[Self]);
}

impl KvElem for f32 {
    fn dot(isa: Isa, q: &[f32], k: &[f32]) -> f32 {
        bitnet_kernels::ops::dot_with(isa, q, k)
    }
    fn axpy(isa: Isa, out: &mut [f32], w: f32, v: &[f32]) {
        bitnet_kernels::ops::axpy_with(isa, out, w, v)
    }
}

impl KvElem for half::f16 {
    fn dot(_: Isa, q: &[f32], k: &[half::f16]) -> f32 {
        q.iter().zip(k).map(|(a, b)| a * b.to_f32()).sum()
    }
    fn axpy(_: Isa, out: &mut [f32], w: f32, v: &[half::f16]) {
        for (o, x) in out.iter_mut().zip(v) {
            *o += w * x.to_f32();
        }
    }
}

/// Causal attention of one query head over cached positions `0..n_ctx` (for f32 caches the
/// dot products and the weighted sum of values use the kernels' vectorized `dot`/`axpy`).
/// `q`: `[head_dim]`; `k_cache`/`v_cache`: `[positions × kv_stride]`, this head's slice at
/// `kv_offset`; `scores`: scratch `[≥ n_ctx]`; `out`: `[head_dim]`.
#[allow(clippy::too_many_arguments)]
pub fn attend<T: KvElem>(
    q: &[f32],
    k_cache: &[T],
    v_cache: &[T],
    kv_stride: usize,
    kv_offset: usize,
    n_ctx: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_with(
        active_isa(),
        q,
        k_cache,
        v_cache,
        kv_stride,
        kv_offset,
        n_ctx,
        scale,
        scores,
        out,
    )
}

/// [`attend`] with the kernels' path chosen by the caller (resolved once per forward pass
/// rather than per dot product).
#[allow(clippy::too_many_arguments)]
pub fn attend_with<T: KvElem>(
    isa: Isa,
    q: &[f32],
    k_cache: &[T],
    v_cache: &[T],
    kv_stride: usize,
    kv_offset: usize,
    n_ctx: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    let scores = &mut scores[..n_ctx];
    for (p, s) in scores.iter_mut().enumerate() {
        let k = &k_cache[p * kv_stride + kv_offset..p * kv_stride + kv_offset + hd];
        *s = T::dot(isa, q, k) * scale;
    }
    softmax(scores);
    out.fill(0.0);
    for (p, &w) in scores.iter().enumerate() {
        let v = &v_cache[p * kv_stride + kv_offset..p * kv_stride + kv_offset + hd];
        T::axpy(isa, out, w, v);
    }
}

/// `gate ← act(gate) · up`, elementwise.
pub fn gated_act(gate: &mut [f32], up: &[f32], act: crate::Activation) {
    match act {
        crate::Activation::Relu2 => {
            for (g, &u) in gate.iter_mut().zip(up) {
                let r = g.max(0.0);
                *g = r * r * u;
            }
        }
        crate::Activation::Silu => {
            // torch: silu(x) = x · sigmoid(x), sigmoid(x) = 1 / (1 + e^−x); then · up.
            for (g, &u) in gate.iter_mut().zip(up) {
                let sig = 1.0 / (1.0 + (-*g).exp());
                *g = (*g * sig) * u;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmsnorm_hand_computed() {
        // x = [3, 4]: mean(x²) = 12.5, rsqrt(12.5) = 0.28284271; w = [1, 2].
        let mut out = [0f32; 2];
        rmsnorm(&[3.0, 4.0], &[1.0, 2.0], 0.0, &mut out);
        assert!((out[0] - 0.848_528_1).abs() < 1e-6);
        assert!((out[1] - 2.262_741_7).abs() < 1e-6);
    }

    #[test]
    fn rope_neox_and_interleaved_rotate_the_right_pairs() {
        // head_dim 4, one position with angle 90° for pair 0 and 0.01 rad-ish for pair 1.
        let cos = [0.0f32, 1.0];
        let sin = [1.0f32, 0.0];
        let mut x = [1.0f32, 2.0, 3.0, 4.0];
        rope(&mut x, 4, &cos, &sin, RopeStyle::Neox);
        // pair (0,2): (1,3) → (1·0 − 3·1, 3·0 + 1·1) = (−3, 1); pair (1,3) unchanged.
        assert_eq!(x, [-3.0, 2.0, 1.0, 4.0]);
        let mut y = [1.0f32, 2.0, 3.0, 4.0];
        rope(&mut y, 4, &cos, &sin, RopeStyle::Interleaved);
        // pair (0,1): (1,2) → (−2, 1); pair (2,3) unchanged.
        assert_eq!(y, [-2.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn activations_hand_computed() {
        let mut g = [-1.0f32, 2.0];
        gated_act(&mut g, &[5.0, 3.0], crate::Activation::Relu2);
        assert_eq!(g, [0.0, 12.0]);
        let mut g = [0.0f32, 1.0];
        gated_act(&mut g, &[5.0, 2.0], crate::Activation::Silu);
        // silu(1) = 1/(1+e^-1) = 0.7310586
        assert_eq!(g[0], 0.0);
        assert!((g[1] - 1.462_117_2).abs() < 1e-6);
    }

    #[test]
    fn softmax_hand_computed() {
        let mut x = [0.0f32, (2.0f32).ln()];
        softmax(&mut x);
        assert!((x[0] - 1.0 / 3.0).abs() < 1e-7 && (x[1] - 2.0 / 3.0).abs() < 1e-7);
    }
}
