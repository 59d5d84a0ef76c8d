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

/// `R` f16 rows against `T` tokens (AVX-512): each 32-column slice of a row is widened once and
/// used by every token, each slice of a token's activations loaded once and used by every row.
/// Per (row, token) the accumulation is exactly [`f16_avx512`]'s (two 16-lane accumulators,
/// same order, same masked tail, same reduction), so each result equals what the one-token
/// kernel gives.
///
/// # Safety
/// AVX-512 F/BW/VL; `w` points at `R` rows of `c` readable halves (row stride `c`); every
/// `xs[t]` has `c` floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
unsafe fn f16_avx512_tile<const R: usize, const T: usize>(
    w: *const f16,
    c: usize,
    xs: [&[f32]; T],
) -> [[f32; T]; R] {
    let mut acc = [[[_mm512_setzero_ps(); 2]; T]; R];
    let full = c / 32 * 32;
    let mut k = 0;
    while k < full {
        // SAFETY: k + 32 <= c for every row and every token.
        unsafe {
            let mut wv = [[_mm512_setzero_ps(); 2]; R];
            for (i, wr) in wv.iter_mut().enumerate() {
                let p = w.add(i * c + k);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PF_HALVES) as *const i8);
                wr[0] = _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i));
                wr[1] = _mm512_cvtph_ps(_mm256_loadu_si256((p as *const __m256i).add(1)));
            }
            for t in 0..T {
                let xp = xs[t].as_ptr();
                let x0 = _mm512_loadu_ps(xp.add(k));
                let x1 = _mm512_loadu_ps(xp.add(k + 16));
                for i in 0..R {
                    acc[i][t][0] = _mm512_fmadd_ps(wv[i][0], x0, acc[i][t][0]);
                    acc[i][t][1] = _mm512_fmadd_ps(wv[i][1], x1, acc[i][t][1]);
                }
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
            for i in 0..R {
                let p = w.add(i * c + k) as *const i16;
                let w0 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m0, p));
                let w1 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m1, p.add(16)));
                for t in 0..T {
                    let xp = xs[t].as_ptr();
                    let a = &mut acc[i][t];
                    a[0] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m0, xp.add(k)), a[0]);
                    a[1] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(m1, xp.add(k + 16)), a[1]);
                }
            }
        }
    }
    std::array::from_fn(|i| {
        std::array::from_fn(|t| _mm512_reduce_add_ps(_mm512_add_ps(acc[i][t][0], acc[i][t][1])))
    })
}

/// Token tile of [`f16_rows_avx512_tokens`].
pub(super) const F16_TOKENS_512: usize = 4;
/// Row tile of [`f16_rows_avx512_tokens`] (rows × tokens × 2 accumulators = 24 registers).
const F16_ROWS_512: usize = 3;

/// [`f16_rows_avx2_tokens`] on AVX-512 (tiles of [`F16_ROWS_512`] rows × [`F16_TOKENS_512`]
/// tokens); results bit-identical to [`f16_rows_avx512`] per token.
///
/// # Safety
/// AVX-512 F/BW/VL available; otherwise as [`f16_rows_avx2_tokens`] with
/// `tiles·F16_TOKENS_512` tokens.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn f16_rows_avx512_tokens(
    w: &[f16],
    cols: usize,
    x: &[f32],
    tiles: usize,
    out: *mut f32,
    rows_total: usize,
    row0: usize,
    out_rows: usize,
) {
    debug_assert_eq!(w.len(), out_rows * cols);
    let xs_of = |tile: usize| -> [&[f32]; F16_TOKENS_512] {
        let t0 = tile * F16_TOKENS_512;
        std::array::from_fn(|t| &x[(t0 + t) * cols..(t0 + t + 1) * cols])
    };
    // Token tiles outer: a tile's activations (4 × cols floats, 40 KiB at 2B4T) stay in L1
    // while every row of this task (≤ 256 rows, L2-resident after the first tile) passes.
    for tile in 0..tiles {
        let t0 = tile * F16_TOKENS_512;
        let xs = xs_of(tile);
        let mut r = 0;
        while r < out_rows {
            let nr = (out_rows - r).min(F16_ROWS_512);
            let wp = w[r * cols..].as_ptr();
            let put = |i: usize, v: &[f32; F16_TOKENS_512]| {
                for (t, &val) in v.iter().enumerate() {
                    // SAFETY: (t0 + t, row0 + r + i) lies in the caller's part of `out`.
                    unsafe { *out.add((t0 + t) * rows_total + row0 + r + i) = val };
                }
            };
            // SAFETY (both arms): rows r..r+nr exist; features forwarded.
            if nr == F16_ROWS_512 {
                let v = unsafe { f16_avx512_tile::<F16_ROWS_512, F16_TOKENS_512>(wp, cols, xs) };
                for (i, vi) in v.iter().enumerate() {
                    put(i, vi);
                }
            } else {
                for i in 0..nr {
                    let v =
                        unsafe { f16_avx512_tile::<1, F16_TOKENS_512>(wp.add(i * cols), cols, xs) };
                    put(i, &v[0]);
                }
            }
            r += nr;
        }
    }
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

/// One f16 row against `T` token vectors at once (AVX2 + F16C): the row is widened once per
/// 16 columns and used by every token. Per token the accumulation is exactly
/// [`f16_avx2`]'s (two 8-lane accumulators, same order, same tail), so each result equals
/// what the one-token kernel gives.
///
/// # Safety
/// AVX2/F16C/FMA; `w` points at `c` readable halves; every `xs[t]` has `c` floats.
#[target_feature(enable = "avx2,f16c,fma")]
unsafe fn f16_avx2_tokens<const T: usize>(w: *const f16, c: usize, xs: [&[f32]; T]) -> [f32; T] {
    let mut acc = [[_mm256_setzero_ps(); 2]; T];
    let full = c / 16 * 16;
    let mut k = 0;
    while k < full {
        // SAFETY: k + 16 <= c for the row and every token.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(k + PF_HALVES) as *const i8);
            let p = w.add(k) as *const __m128i;
            let w0 = _mm256_cvtph_ps(_mm_loadu_si128(p));
            let w1 = _mm256_cvtph_ps(_mm_loadu_si128(p.add(1)));
            for (t, a) in acc.iter_mut().enumerate() {
                let xp = xs[t].as_ptr();
                a[0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xp.add(k)), a[0]);
                a[1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xp.add(k + 8)), a[1]);
            }
        }
        k += 16;
    }
    std::array::from_fn(|t| {
        let mut s = hsum256(_mm256_add_ps(acc[t][0], acc[t][1]));
        for j in full..c {
            // SAFETY: j < c within the row.
            s += unsafe { (*w.add(j)).to_f32() } * xs[t][j];
        }
        s
    })
}

/// Token tile of [`f16_rows_avx2_tokens`].
pub(super) const F16_TOKENS: usize = 4;

/// `out[t·rows_total + r] = Σ_c w[r·cols + c]·x[t·cols + c]` for rows of `w` (`out_rows`
/// rows, written at `row0` of each token's output) and tokens `0..tiles·F16_TOKENS` of `x`,
/// row by row (a row, `cols` halves, stays in L1 while every tile of tokens uses it);
/// results bit-identical to [`f16_rows_avx2`] per token.
///
/// # Safety
/// AVX2/F16C/FMA available; `w.len() == out_rows · cols`; `x` holds at least
/// `tiles·F16_TOKENS` tokens of `cols` floats; `out` points at an `n × rows_total` buffer the
/// caller owns rows `row0..row0+out_rows` of for these tokens.
#[target_feature(enable = "avx2,f16c,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn f16_rows_avx2_tokens(
    w: &[f16],
    cols: usize,
    x: &[f32],
    tiles: usize,
    out: *mut f32,
    rows_total: usize,
    row0: usize,
    out_rows: usize,
) {
    debug_assert_eq!(w.len(), out_rows * cols);
    for r in 0..out_rows {
        for tile in 0..tiles {
            let t0 = tile * F16_TOKENS;
            let xs: [&[f32]; F16_TOKENS] =
                std::array::from_fn(|t| &x[(t0 + t) * cols..(t0 + t + 1) * cols]);
            // SAFETY: row r exists; features forwarded.
            let v = unsafe { f16_avx2_tokens::<F16_TOKENS>(w[r * cols..].as_ptr(), cols, xs) };
            for (t, &val) in v.iter().enumerate() {
                // SAFETY: (t0 + t, row0 + r) lies in the caller's part of `out`.
                unsafe { *out.add((t0 + t) * rows_total + row0 + r) = val };
            }
        }
    }
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
