//! Per-token int8 activation quantization (absmax), identical on every path.
//!
//! `s = 127 / max(max|x|, 1e-5)`, `q = clamp(round_half_even(x·s), −128, 127)`. Every step is a
//! single IEEE operation (max, one multiply, round-to-nearest-even, clamp), so the vector paths
//! give bit-identical results to the scalar formula.

use crate::isa::{active_isa, Isa};

/// Quantize one token's activations to int8 (`x.len() == q.len()`); returns the scale `s`
/// (q ≈ x·s). Uses [`active_isa`].
pub fn quantize_activations(x: &[f32], q: &mut [i8]) -> f32 {
    quantize_activations_with(active_isa(), x, q)
}

/// [`quantize_activations`] on a chosen path (clamped to what the CPU supports).
pub fn quantize_activations_with(isa: Isa, x: &[f32], q: &mut [i8]) -> f32 {
    assert_eq!(
        x.len(),
        q.len(),
        "quantize_activations: x and q lengths differ"
    );
    match isa.clamp_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: clamp_available() confirmed AVX-512 F/BW/VL support.
        Isa::Avx512 | Isa::Amx => unsafe { x86::quantize_avx512(x, q) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: clamp_available() confirmed AVX2 support.
        Isa::Avx2 => unsafe { x86::quantize_avx2(x, q) },
        _ => quantize_scalar(x, q),
    }
}

/// The scale for a given absmax.
#[inline]
pub(crate) fn scale_for(amax: f32) -> f32 {
    127.0f32 / amax.max(1e-5)
}

/// Scalar reference.
pub fn quantize_scalar(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let s = scale_for(amax);
    for (qi, &xi) in q.iter_mut().zip(x) {
        *qi = (xi * s).round_ties_even().clamp(-128.0, 127.0) as i8;
    }
    s
}

/// `x · (1/rms(x)) · w` (RMSNorm with weight `w`, epsilon `eps`) into `y`, then quantize `y`
/// into `q`; returns the activation scale. One pass fewer than norm-then-quantize when the
/// caller needs both the normed values and their quantization.
pub fn rms_norm_quantize(x: &[f32], w: &[f32], eps: f32, y: &mut [f32], q: &mut [i8]) -> f32 {
    assert_eq!(x.len(), w.len());
    assert_eq!(x.len(), y.len());
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32;
    let inv = 1.0 / (ss + eps).sqrt();
    for ((yi, &xi), &wi) in y.iter_mut().zip(x).zip(w) {
        *yi = xi * inv * wi;
    }
    quantize_activations(y, q)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::scale_for;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantize_avx512(x: &[f32], q: &mut [i8]) -> f32 {
        let n = x.len();
        let full = n / 16 * 16;
        let absmask = _mm512_set1_epi32(0x7fff_ffff);
        let mut m = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= n.
            let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
            let a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), absmask));
            // max(a, m) returns m when a is NaN, like f32::max in the scalar fold.
            m = _mm512_max_ps(a, m);
            i += 16;
        }
        let mut amax = _mm512_reduce_max_ps(m);
        for &v in &x[full..] {
            amax = amax.max(v.abs());
        }
        let s = scale_for(amax);
        let vs = _mm512_set1_ps(s);
        let lo = _mm512_set1_ps(-128.0);
        let hi = _mm512_set1_ps(127.0);
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= n for both x and q (equal lengths).
            unsafe {
                let v = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr().add(i)), vs);
                let r =
                    _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
                let c = _mm512_max_ps(lo, _mm512_min_ps(hi, r));
                let b = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(c));
                _mm_storeu_si128(q.as_mut_ptr().add(i) as *mut __m128i, b);
            }
            i += 16;
        }
        for (qi, &xi) in q[full..].iter_mut().zip(&x[full..]) {
            *qi = (xi * s).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantize_avx2(x: &[f32], q: &mut [i8]) -> f32 {
        let n = x.len();
        let full = n / 32 * 32;
        let absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut m = _mm256_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 32 <= n.
            unsafe {
                let a = _mm256_and_ps(_mm256_loadu_ps(x.as_ptr().add(i)), absmask);
                let b = _mm256_and_ps(_mm256_loadu_ps(x.as_ptr().add(i + 8)), absmask);
                let c = _mm256_and_ps(_mm256_loadu_ps(x.as_ptr().add(i + 16)), absmask);
                let d = _mm256_and_ps(_mm256_loadu_ps(x.as_ptr().add(i + 24)), absmask);
                m = _mm256_max_ps(a, m);
                m = _mm256_max_ps(b, m);
                m = _mm256_max_ps(c, m);
                m = _mm256_max_ps(d, m);
            }
            i += 32;
        }
        let mut lanes = [0f32; 8];
        // SAFETY: lanes holds 8 f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
        let mut amax = lanes.iter().fold(0f32, |a, &v| a.max(v));
        for &v in &x[full..] {
            amax = amax.max(v.abs());
        }
        let s = scale_for(amax);
        let vs = _mm256_set1_ps(s);
        let lo = _mm256_set1_ps(-128.0);
        let hi = _mm256_set1_ps(127.0);
        let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let mut i = 0;
        while i < full {
            // SAFETY: i + 32 <= n for both x and q.
            unsafe {
                let mut r = [_mm256_setzero_si256(); 4];
                for (k, rk) in r.iter_mut().enumerate() {
                    let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(i + 8 * k)), vs);
                    let v = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
                    let v = _mm256_max_ps(lo, _mm256_min_ps(hi, v));
                    // NaN → 0 like `NaN as i8` in the scalar formula.
                    let v = _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
                    *rk = _mm256_cvtps_epi32(v);
                }
                // packs work per 128-bit lane; the final permute restores element order.
                let ab = _mm256_packs_epi32(r[0], r[1]);
                let cd = _mm256_packs_epi32(r[2], r[3]);
                let abcd = _mm256_packs_epi16(ab, cd);
                let out = _mm256_permutevar8x32_epi32(abcd, perm);
                _mm256_storeu_si256(q.as_mut_ptr().add(i) as *mut __m256i, out);
            }
            i += 32;
        }
        for (qi, &xi) in q[full..].iter_mut().zip(&x[full..]) {
            *qi = (xi * s).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
        s
    }
}
