//! AVX2 kernels: `vpmaddubsw` (u8 weights × i8 activations) over 8 rows × 4 columns per
//! 256-bit register, activations broadcast. Each 64-byte chunk is two registers (rows 0–7 and
//! 8–15 of the panel). Weights are unpacked to `u ∈ {0,1,2}`, so the sub-steps of
//! [`Q_BLOCK`] chunks can be summed in 16 bits before one `vpmaddwd` widens them.

use super::{store_rows, Chunk, Geom, TernaryMatrix, KSTEP, PANEL};
use crate::pool::SharedMut;
use std::arch::x86_64::*;

/// Tokens per register tile (4 half-chunks × 2 tokens = 8 accumulators).
const T_TILE: usize = 2;
/// Software prefetch distance in chunks (2 KiB).
const PF_AHEAD: usize = 32;
/// Chunks summed in 16 bits before widening: each adds at most 4·2·2·128 = 2048 in
/// magnitude per lane, so 8 chunks stay within ±16384 (no `vpmaddubsw`/`vpaddw` overflow).
const Q_BLOCK: usize = 8;

/// Rows of panels `p0..p1` for every token.
///
/// # Safety
/// The CPU supports AVX2; `xq` is n × cols and `out` n × rows with n = `x_scales.len()` =
/// `sums.len()`; this task owns panels `p0..p1`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn panels(
    m: &TernaryMatrix,
    g: Geom,
    p0: usize,
    p1: usize,
    xq: &[i8],
    x_scales: &[f32],
    sums: &[i32],
    out: SharedMut<f32>,
) {
    let n = x_scales.len();
    debug_assert!(p0.is_multiple_of(2) && p1.is_multiple_of(2));
    for p in (p0..p1).step_by(2) {
        let wp = m.panel_ptr(p);
        let mut t0 = 0;
        // Batches: 4 tokens at a time, one quarter of the pair (8 rows) at a time, so the
        // accumulators stay in registers (the pair, 2 KiB per 64 columns, stays in L1).
        while n - t0 >= H_TILE {
            // SAFETY: as below; tokens t0..t0+4 exist.
            unsafe { gemm_rows::<H_TILE>(wp, &g, xq, t0, x_scales, sums, m.scale, p, out) };
            t0 += H_TILE;
        }
        while t0 < n {
            let tn = (n - t0).min(T_TILE);
            // SAFETY: the pair (p, p+1) has 2·nq interleaved chunks; tokens t0..t0+tn exist.
            unsafe {
                match tn {
                    2 => gemm::<2>(wp, &g, xq, t0, x_scales, sums, m.scale, p, out),
                    _ => gemm::<1>(wp, &g, xq, t0, x_scales, sums, m.scale, p, out),
                }
            }
            t0 += tn;
        }
    }
}

/// Tokens per tile of [`gemm_rows`].
const H_TILE: usize = 4;

/// Tokens `t0..t0+T` × the panel pair (p, p+1) at `wp`, one quarter (8 rows) at a time:
/// 2T accumulators instead of [`gemm`]'s 8T, so a tile of 4 tokens fits the 16 registers
/// (the weights are unpacked 4 times per quarter instead of once, but serve 4 tokens).
/// Integer sums, then the same final formula: results identical to [`gemm`]'s.
///
/// # Safety
/// As [`gemm`].
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_rows<const T: usize>(
    wp: *const Chunk,
    g: &Geom,
    xq: &[i8],
    t0: usize,
    x_scales: &[f32],
    sums: &[i32],
    scale: f32,
    p: usize,
    out: SharedMut<f32>,
) {
    let cols = g.cols;
    let xs_tok: [&[i8]; T] = std::array::from_fn(|t| &xq[(t0 + t) * cols..(t0 + t + 1) * cols]);
    let tails: [[i8; KSTEP]; T] = std::array::from_fn(|t| tail16(xs_tok[t], g));
    let m3 = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let sc = _mm256_set1_ps(scale);
    let mut fin = [[[0f32; 8]; 4]; T];
    for h in 0..4 {
        let mut acc = [_mm256_setzero_si256(); T];
        let mut s16 = [_mm256_setzero_si256(); T];
        macro_rules! step {
            ($q:expr, $xp:expr) => {{
                // SAFETY: chunks (p, q) and (p+1, q) are adjacent at wp + 2q; quarter h of
                // the 128 bytes is rows 8h..8h+8 of the pair (32-byte aligned).
                let w = unsafe {
                    _mm256_load_si256((wp.add(2 * $q) as *const u8).add(32 * h) as *const __m256i)
                };
                let wu = [
                    _mm256_and_si256(w, m3),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(w), m3),
                    _mm256_and_si256(_mm256_srli_epi16::<4>(w), m3),
                    _mm256_and_si256(_mm256_srli_epi16::<6>(w), m3),
                ];
                for t in 0..T {
                    let xp: *const i8 = $xp(t);
                    for (s, &wus) in wu.iter().enumerate() {
                        // SAFETY: xp has 16 readable bytes; 4s + 4 <= 16.
                        let xb = _mm256_set1_epi32(unsafe {
                            std::ptr::read_unaligned(xp.add(4 * s) as *const i32)
                        });
                        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(wus, xb));
                    }
                }
            }};
        }
        macro_rules! flush {
            () => {{
                for t in 0..T {
                    acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(s16[t], ones));
                    s16[t] = _mm256_setzero_si256();
                }
            }};
        }
        for q in 0..g.nq_full {
            if h == 0 {
                _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(2 * q + PF_AHEAD) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(2 * q + 1 + PF_AHEAD) as *const i8);
            }
            // SAFETY (in step): q·16 + 16 <= cols for each token row.
            step!(q, |t: usize| unsafe { xs_tok[t].as_ptr().add(q * KSTEP) });
            if (q + 1) % Q_BLOCK == 0 {
                flush!();
            }
        }
        if g.nq > g.nq_full {
            step!(g.nq_full, |t: usize| tails[t].as_ptr());
        }
        flush!();
        for (t, ft) in fin.iter_mut().enumerate() {
            let sx = _mm256_set1_epi32(sums[t0 + t]);
            let xs = _mm256_set1_ps(x_scales[t0 + t]);
            // Same operations, same order as `finish`: i32→f32, ÷ x_scale, × scale.
            let f = _mm256_mul_ps(
                _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[t], sx)), xs),
                sc,
            );
            // SAFETY: ft[h] holds 8 f32.
            unsafe { _mm256_storeu_ps(ft[h].as_mut_ptr(), f) };
        }
    }
    // SAFETY: as this function's.
    unsafe { store_pair(&fin, g, t0, p, out) };
}

/// Write the finished rows of a panel pair (`fin[t][h]`: rows 8h..8h+8 of the pair for
/// token t0 + t) into `out`.
///
/// # Safety
/// This task owns the pair (p, p+1) of every token t0..t0+T in `out` (n × rows).
unsafe fn store_pair<const T: usize>(
    fin: &[[[f32; 8]; 4]; T],
    g: &Geom,
    t0: usize,
    p: usize,
    out: SharedMut<f32>,
) {
    for (t, ft) in fin.iter().enumerate() {
        for r in 0..2 {
            let mut vals = [0f32; PANEL];
            vals[..8].copy_from_slice(&ft[2 * r]);
            vals[8..].copy_from_slice(&ft[2 * r + 1]);
            let r0 = (p + r) * PANEL;
            let nr = g.rows.saturating_sub(r0).min(PANEL); // 0 for a padding panel
                                                           // SAFETY: the caller owns the pair; r0 + nr <= rows; t0 + t < n.
            unsafe { store_rows(out, g, t0 + t, r0, &vals[..nr]) };
        }
    }
}

/// Zero-padded copy of the last partial 16-column step of `x`.
#[inline(always)]
fn tail16(x: &[i8], g: &Geom) -> [i8; KSTEP] {
    let mut t = [0i8; KSTEP];
    let c0 = g.nq_full * KSTEP;
    t[..g.cols - c0].copy_from_slice(&x[c0..g.cols]);
    t
}

/// Tokens `t0..t0+T` × the panel pair (p, p+1) at `wp`.
///
/// # Safety
/// AVX2; `p` is even and `wp` points at chunk (p, 0) of the interleaved pair; `xq` holds tokens `t0..t0+T`; `out` as in [`panels`].
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<const T: usize>(
    wp: *const Chunk,
    g: &Geom,
    xq: &[i8],
    t0: usize,
    x_scales: &[f32],
    sums: &[i32],
    scale: f32,
    p: usize,
    out: SharedMut<f32>,
) {
    let cols = g.cols;
    let xs_tok: [&[i8]; T] = std::array::from_fn(|t| &xq[(t0 + t) * cols..(t0 + t + 1) * cols]);
    let tails: [[i8; KSTEP]; T] = std::array::from_fn(|t| tail16(xs_tok[t], g));
    let m3 = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); T]; 4];
    let mut s16 = [[_mm256_setzero_si256(); T]; 4];
    macro_rules! step {
        ($q:expr, $xp:expr) => {{
            // Prefetch ahead in the pair's single stream (never faults).
            _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(2 * $q + PF_AHEAD) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(2 * $q + 1 + PF_AHEAD) as *const i8);
            for h in 0..4 {
                // SAFETY: chunks (p, q) and (p+1, q) are adjacent at wp + 2q; half h of the
                // 128 bytes is rows 8h..8h+8 of the pair (32-byte aligned).
                let w = unsafe {
                    _mm256_load_si256((wp.add(2 * $q) as *const u8).add(32 * h) as *const __m256i)
                };
                let wu = [
                    _mm256_and_si256(w, m3),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(w), m3),
                    _mm256_and_si256(_mm256_srli_epi16::<4>(w), m3),
                    _mm256_and_si256(_mm256_srli_epi16::<6>(w), m3),
                ];
                for t in 0..T {
                    let xp: *const i8 = $xp(t);
                    for (s, &wus) in wu.iter().enumerate() {
                        // SAFETY: xp has 16 readable bytes; 4s + 4 <= 16.
                        let xb = _mm256_set1_epi32(unsafe {
                            std::ptr::read_unaligned(xp.add(4 * s) as *const i32)
                        });
                        s16[h][t] = _mm256_add_epi16(s16[h][t], _mm256_maddubs_epi16(wus, xb));
                    }
                }
            }
        }};
    }
    // Widen the 16-bit partial sums into the 32-bit accumulators.
    macro_rules! flush {
        () => {{
            for h in 0..4 {
                for t in 0..T {
                    acc[h][t] = _mm256_add_epi32(acc[h][t], _mm256_madd_epi16(s16[h][t], ones));
                    s16[h][t] = _mm256_setzero_si256();
                }
            }
        }};
    }
    for q in 0..g.nq_full {
        // SAFETY (in step): q·16 + 16 <= cols for each token row.
        step!(q, |t: usize| unsafe { xs_tok[t].as_ptr().add(q * KSTEP) });
        if (q + 1) % Q_BLOCK == 0 {
            flush!();
        }
    }
    if g.nq > g.nq_full {
        step!(g.nq_full, |t: usize| tails[t].as_ptr());
    }
    flush!();
    let sc = _mm256_set1_ps(scale);
    let mut fin = [[[0f32; 8]; 4]; T];
    for (t, ft) in fin.iter_mut().enumerate() {
        let sx = _mm256_set1_epi32(sums[t0 + t]);
        let xs = _mm256_set1_ps(x_scales[t0 + t]);
        for (h, fh) in ft.iter_mut().enumerate() {
            // Same operations, same order as `finish`: i32→f32, ÷ x_scale, × scale.
            let f = _mm256_mul_ps(
                _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[h][t], sx)), xs),
                sc,
            );
            // SAFETY: fh holds 8 f32.
            unsafe { _mm256_storeu_ps(fh.as_mut_ptr(), f) };
        }
    }
    // SAFETY: as this function's.
    unsafe { store_pair(&fin, g, t0, p, out) };
}
