//! x86 dense GEMV: several rows per pass share the activation loads; F16 rows are widened
//! with `vcvtph2ps` (F16C / AVX-512F) and accumulated with FMA in f32.

#![allow(clippy::needless_range_loop)] // tails index rows and x together

use half::f16;
use std::arch::x86_64::*;

/// Rows per pass.
const R: usize = 4;
/// Software prefetch distance for F16 rows, in halves (2 KiB).
const PF_HALVES: usize = 1024;

macro_rules! rows_driver {
    ($name:ident, $kernel:ident, $ty:ty, $feat:literal) => {
        /// `out[r] = Σ_c w[r·cols + c]·x[c]` with `cols = x.len()`.
        ///
        /// # Safety
        /// The CPU has the enabled features; `w.len() == out.len() · x.len()`.
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn $name(w: &[$ty], x: &[f32], out: &mut [f32]) {
            let c = x.len();
            debug_assert_eq!(w.len(), out.len() * c);
            let mut r = 0;
            while r + R <= out.len() {
                // SAFETY: rows r..r+R exist; features forwarded.
                let v = unsafe { $kernel::<R>(w[r * c..].as_ptr(), c, x) };
                out[r..r + R].copy_from_slice(&v);
                r += R;
            }
            while r < out.len() {
                // SAFETY: row r exists; features forwarded.
                let v = unsafe { $kernel::<1>(w[r * c..].as_ptr(), c, x) };
                out[r] = v[0];
                r += 1;
            }
        }
    };
}

rows_driver!(
    f16_rows_avx512,
    f16_avx512,
    f16,
    "avx512f,avx512bw,avx512vl,f16c,fma"
);
rows_driver!(f16_rows_avx2, f16_avx2, f16, "avx2,f16c,fma");
rows_driver!(
    f32_rows_avx512,
    f32_avx512,
    f32,
    "avx512f,avx512bw,avx512vl,fma"
);
rows_driver!(f32_rows_avx2, f32_avx2, f32, "avx2,fma");

/// `N` f16 rows starting at `w` (row stride `c`) against `x` (length `c`).
///
/// # Safety
/// AVX-512 F/BW/VL; `w` points at `N·c` readable halves.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
unsafe fn f16_avx512<const N: usize>(w: *const f16, c: usize, x: &[f32]) -> [f32; N] {
    let mut acc = [[_mm512_setzero_ps(); 2]; N];
    let full = c / 32 * 32;
    let xp = x.as_ptr();
    let mut k = 0;
    while k < full {
        // SAFETY: k + 32 <= c for x and every row.
        unsafe {
            let x0 = _mm512_loadu_ps(xp.add(k));
            let x1 = _mm512_loadu_ps(xp.add(k + 16));
            for (i, a) in acc.iter_mut().enumerate() {
                // Prefetch 2 KiB ahead in this row's stream (never faults; wrapping arithmetic).
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(i * c + k + PF_HALVES) as *const i8);
                let p = w.add(i * c + k) as *const __m256i;
                a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(p)), x0, a[0]);
                a[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(p.add(1))), x1, a[1]);
            }
        }
        k += 32;
    }
    if k < c {
        let rem = c - k;
        let m0: __mmask16 = if rem >= 16 { 0xffff } else { (1u16 << rem) - 1 };
        let m1: __mmask16 = if rem > 16 {
            (1u16 << (rem - 16)) - 1
        } else {
            0
        };
        // SAFETY: masked loads read only lanes below `rem` (in bounds); masked-off lanes do
        // not fault.
        unsafe {
            let x0 = _mm512_maskz_loadu_ps(m0, xp.add(k));
            let x1 = _mm512_maskz_loadu_ps(m1, xp.add(k + 16));
            for (i, a) in acc.iter_mut().enumerate() {
                let p = w.add(i * c + k) as *const i16;
                let h0 = _mm256_maskz_loadu_epi16(m0, p);
                let h1 = _mm256_maskz_loadu_epi16(m1, p.add(16));
                a[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(h0), x0, a[0]);
                a[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(h1), x1, a[1]);
            }
        }
    }
    std::array::from_fn(|i| _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1])))
}

/// `N` f32 rows (AVX-512).
///
/// # Safety
/// AVX-512 F; `w` points at `N·c` readable floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn f32_avx512<const N: usize>(w: *const f32, c: usize, x: &[f32]) -> [f32; N] {
    let mut acc = [_mm512_setzero_ps(); N];
    let xp = x.as_ptr();
    let mut k = 0;
    while k < c {
        let rem = c - k;
        let m: __mmask16 = if rem >= 16 { 0xffff } else { (1u16 << rem) - 1 };
        // SAFETY: masked loads read only in-bounds lanes.
        unsafe {
            let xv = _mm512_maskz_loadu_ps(m, xp.add(k));
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w.add(i * c + k)), xv, *a);
            }
        }
        k += 16;
    }
    std::array::from_fn(|i| _mm512_reduce_add_ps(acc[i]))
}

/// Horizontal sum of 8 floats.
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
    _mm_cvtss_f32(s)
}

/// `N` f16 rows (AVX2 + F16C).
///
/// # Safety
/// AVX2/F16C/FMA; `w` points at `N·c` readable halves.
#[target_feature(enable = "avx2,f16c,fma")]
unsafe fn f16_avx2<const N: usize>(w: *const f16, c: usize, x: &[f32]) -> [f32; N] {
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    let full = c / 16 * 16;
    let xp = x.as_ptr();
    let mut k = 0;
    while k < full {
        // SAFETY: k + 16 <= c for x and every row.
        unsafe {
            let x0 = _mm256_loadu_ps(xp.add(k));
            let x1 = _mm256_loadu_ps(xp.add(k + 8));
            for (i, a) in acc.iter_mut().enumerate() {
                // Prefetch 2 KiB ahead in this row's stream (never faults; wrapping arithmetic).
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(i * c + k + PF_HALVES) as *const i8);
                let p = w.add(i * c + k) as *const __m128i;
                a[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p)), x0, a[0]);
                a[1] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(p.add(1))), x1, a[1]);
            }
        }
        k += 16;
    }
    std::array::from_fn(|i| {
        let mut s = hsum256(_mm256_add_ps(acc[i][0], acc[i][1]));
        for j in full..c {
            // SAFETY: j < c within row i.
            s += unsafe { (*w.add(i * c + j)).to_f32() } * x[j];
        }
        s
    })
}

/// `N` f32 rows (AVX2).
///
/// # Safety
/// AVX2/FMA; `w` points at `N·c` readable floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_avx2<const N: usize>(w: *const f32, c: usize, x: &[f32]) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let full = c / 8 * 8;
    let xp = x.as_ptr();
    let mut k = 0;
    while k < full {
        // SAFETY: k + 8 <= c.
        unsafe {
            let xv = _mm256_loadu_ps(xp.add(k));
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(i * c + k)), xv, *a);
            }
        }
        k += 8;
    }
    std::array::from_fn(|i| {
        let mut s = hsum256(acc[i]);
        for j in full..c {
            // SAFETY: j < c within row i.
            s += unsafe { *w.add(i * c + j) } * x[j];
        }
        s
    })
}
