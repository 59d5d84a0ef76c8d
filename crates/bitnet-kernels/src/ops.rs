//! Vectorised f32 helpers for the rest of the token path (attention over the KV cache,
//! residual updates), dispatched like the matrix kernels. Reductions use several lanes, so
//! results differ from a sequential sum by rounding only (tests bound it against f64).

use crate::isa::{active_isa, Isa};

/// `Σ a[i]·b[i]` (equal lengths).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with(active_isa(), a, b)
}

/// [`dot`] on a chosen path (clamped to what the CPU supports).
pub fn dot_with(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    match isa.clamp_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: clamp_available() confirmed AVX-512F.
        Isa::Avx512 | Isa::Amx => unsafe { x86::dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: clamp_available() confirmed AVX2/FMA.
        Isa::Avx2 => unsafe { x86::dot_avx2(a, b) },
        _ => {
            let mut acc = [0f32; 8];
            let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
            let (ra, rb) = (ca.remainder(), cb.remainder());
            for (x, y) in ca.zip(cb) {
                for k in 0..8 {
                    acc[k] += x[k] * y[k];
                }
            }
            acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
        }
    }
}

/// `y[i] += alpha·x[i]` (equal lengths).
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    axpy_with(active_isa(), y, alpha, x)
}

/// [`axpy`] on a chosen path (clamped to what the CPU supports).
pub fn axpy_with(isa: Isa, y: &mut [f32], alpha: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len(), "axpy: lengths differ");
    match isa.clamp_available() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: clamp_available() confirmed AVX-512F.
        Isa::Avx512 | Isa::Amx => unsafe { x86::axpy_avx512(y, alpha, x) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: clamp_available() confirmed AVX2/FMA.
        Isa::Avx2 => unsafe { x86::axpy_avx2(y, alpha, x) },
        _ => {
            for (yi, &xi) in y.iter_mut().zip(x) {
                *yi += alpha * xi;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (k, ak) in acc.iter_mut().enumerate() {
                // SAFETY: i + 16k + 16 <= n for both slices.
                unsafe {
                    let x = _mm512_loadu_ps(a.as_ptr().add(i + 16 * k));
                    let y = _mm512_loadu_ps(b.as_ptr().add(i + 16 * k));
                    *ak = _mm512_fmadd_ps(x, y, *ak);
                }
            }
            i += 64;
        }
        while i < n {
            let rem = (n - i).min(16);
            let m: __mmask16 = if rem == 16 { 0xffff } else { (1u16 << rem) - 1 };
            // SAFETY: masked loads read only lanes below `rem`, in bounds.
            unsafe {
                let x = _mm512_maskz_loadu_ps(m, a.as_ptr().add(i));
                let y = _mm512_maskz_loadu_ps(m, b.as_ptr().add(i));
                acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
            }
            i += 16;
        }
        let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(s)
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn axpy_avx512(y: &mut [f32], alpha: f32, x: &[f32]) {
        let n = y.len();
        let va = _mm512_set1_ps(alpha);
        let mut i = 0;
        while i < n {
            let rem = (n - i).min(16);
            let m: __mmask16 = if rem == 16 { 0xffff } else { (1u16 << rem) - 1 };
            // SAFETY: masked loads/stores touch only lanes below `rem`, in bounds.
            unsafe {
                let xv = _mm512_maskz_loadu_ps(m, x.as_ptr().add(i));
                let yv = _mm512_maskz_loadu_ps(m, y.as_ptr().add(i));
                _mm512_mask_storeu_ps(y.as_mut_ptr().add(i), m, _mm512_fmadd_ps(va, xv, yv));
            }
            i += 16;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, ak) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8k + 8 <= n for both slices.
                unsafe {
                    let x = _mm256_loadu_ps(a.as_ptr().add(i + 8 * k));
                    let y = _mm256_loadu_ps(b.as_ptr().add(i + 8 * k));
                    *ak = _mm256_fmadd_ps(x, y, *ak);
                }
            }
            i += 32;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0f32; 8];
        // SAFETY: lanes holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
        let mut total: f32 = lanes.iter().sum();
        for j in i..n {
            total += a[j] * b[j];
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy_avx2(y: &mut [f32], alpha: f32, x: &[f32]) {
        let n = y.len();
        let va = _mm256_set1_ps(alpha);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n for both slices.
            unsafe {
                let xv = _mm256_loadu_ps(x.as_ptr().add(i));
                let yv = _mm256_loadu_ps(y.as_ptr().add(i));
                _mm256_storeu_ps(y.as_mut_ptr().add(i), _mm256_fmadd_ps(va, xv, yv));
            }
            i += 8;
        }
        for j in i..n {
            y[j] += alpha * x[j];
        }
    }
}
