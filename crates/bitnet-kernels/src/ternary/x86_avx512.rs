//! AVX-512 VNNI kernels: one `vpdpbusd` per 16 rows × 4 columns, activations broadcast.
//!
//! GEMV (decode, one token) avoids shifts: sub-step `s` of a chunk is `chunk & (3 << 2s)`,
//! i.e. `u·4^s`, accumulated in its own register and scaled back exactly (`>> 2s`) at the end.
//! GEMM (prefill) unpacks each chunk once (`(chunk >> 2s) & 3`) and reuses it for a tile of
//! up to [`T_TILE`] tokens and two panels (32 rows).

use super::{store_rows, Chunk, Geom, TernaryMatrix, KSTEP, PANEL};
use crate::pool::SharedMut;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// GEMV software prefetch distance in chunks (64 B each): 2 KiB ahead in each weight stream
/// measured ~10% faster single-threaded than relying on the hardware prefetcher alone.
const PF_AHEAD: usize = 32;

/// Tokens per GEMM register tile (2 panels × 8 tokens = 16 accumulators).
const T_TILE: usize = 8;

/// Rows of panels `p0..p1` for every token.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL and VNNI; `xq` is n × cols and `out` n × rows with
/// n = `x_scales.len()` = `sums.len()` (Σ xq per token); this task owns panels `p0..p1`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
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
    let mut p = p0;
    while p < p1 {
        let r = if p + 1 < p1 { 2 } else { 1 };
        let wp = m.panel_ptr(p);
        if n == 1 {
            let sx = sums[0];
            // SAFETY: the panels p..p+r exist (r chunks-runs of nq); xq has cols bytes.
            unsafe {
                if r == 2 {
                    gemv::<2>(wp, &g, xq, sx, x_scales[0], m.scale, p, out)
                } else {
                    gemv::<1>(wp, &g, xq, sx, x_scales[0], m.scale, p, out)
                }
            }
        } else if r == 2 && n >= PRE_UNPACK_MIN_TOKENS {
            SCRATCH.with(|buf| {
                let mut buf = buf.borrow_mut();
                let need = g.nq * 8;
                if buf.len() < need {
                    buf.resize(need, Chunk([0; 64]));
                }
                // SAFETY: wp points at 2·nq chunks; buf holds 8·nq chunks.
                unsafe { unpack_pair(wp, g.nq, buf.as_mut_ptr()) };
                let mut t0 = 0;
                while t0 < n {
                    let tn = (n - t0).min(T_TILE);
                    // SAFETY: buf holds the unpacked pair; tokens t0..t0+tn exist.
                    unsafe {
                        gemm_pre_dispatch(
                            tn,
                            buf.as_ptr(),
                            &g,
                            xq,
                            t0,
                            x_scales,
                            sums,
                            m.scale,
                            p,
                            out,
                        )
                    };
                    t0 += tn;
                }
            });
        } else {
            let mut t0 = 0;
            while t0 < n {
                let tn = (n - t0).min(T_TILE);
                // SAFETY: as above; tokens t0..t0+tn exist.
                unsafe {
                    if r == 2 {
                        gemm_dispatch::<2>(tn, wp, &g, xq, t0, x_scales, sums, m.scale, p, out)
                    } else {
                        gemm_dispatch::<1>(tn, wp, &g, xq, t0, x_scales, sums, m.scale, p, out)
                    }
                }
                t0 += tn;
            }
        }
        p += r;
    }
}

/// From this many tokens on, a panel pair is unpacked once to bytes and reused by every token
/// tile (the inner loop is then loads and `vpdpbusd` only).
const PRE_UNPACK_MIN_TOKENS: usize = 16;

thread_local! {
    /// Per-thread unpacked panel pair (8·nq chunks); grows once, then reused.
    static SCRATCH: RefCell<Vec<Chunk>> = const { RefCell::new(Vec::new()) };
}

/// Unpack panels (p, p+1) to `u ∈ {0,1,2}` bytes: chunk `(q·4 + s)·2 + r` holds sub-step `s`
/// of chunk q of panel r.
///
/// # Safety
/// AVX-512 F/BW; `wp` points at an interleaved pair (`2·nq` chunks), `dst` at `8·nq` writable chunks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn unpack_pair(wp: *const Chunk, nq: usize, dst: *mut Chunk) {
    let m3 = _mm512_set1_epi8(3);
    for q in 0..nq {
        for r in 0..2 {
            // SAFETY: chunk (p+r, q) is at wp + 2q + r < 2·nq; destinations (q·4 + s)·2 + r < 8·nq; aligned.
            unsafe {
                let w = _mm512_load_si512(wp.add(2 * q + r) as *const __m512i);
                let d = |s: usize| dst.add((q * 4 + s) * 2 + r) as *mut __m512i;
                _mm512_store_si512(d(0), _mm512_and_si512(w, m3));
                _mm512_store_si512(d(1), _mm512_and_si512(_mm512_srli_epi16::<2>(w), m3));
                _mm512_store_si512(d(2), _mm512_and_si512(_mm512_srli_epi16::<4>(w), m3));
                _mm512_store_si512(d(3), _mm512_and_si512(_mm512_srli_epi16::<6>(w), m3));
            }
        }
    }
}

/// Pick the const tile width for `tn` tokens (pre-unpacked pair).
///
/// # Safety
/// As for [`gemm_pre`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_pre_dispatch(
    tn: usize,
    up: *const Chunk,
    g: &Geom,
    xq: &[i8],
    t0: usize,
    x_scales: &[f32],
    sums: &[i32],
    scale: f32,
    p: usize,
    out: SharedMut<f32>,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match tn {
            8 => gemm_pre::<8>(up, g, xq, t0, x_scales, sums, scale, p, out),
            7 => gemm_pre::<7>(up, g, xq, t0, x_scales, sums, scale, p, out),
            6 => gemm_pre::<6>(up, g, xq, t0, x_scales, sums, scale, p, out),
            5 => gemm_pre::<5>(up, g, xq, t0, x_scales, sums, scale, p, out),
            4 => gemm_pre::<4>(up, g, xq, t0, x_scales, sums, scale, p, out),
            3 => gemm_pre::<3>(up, g, xq, t0, x_scales, sums, scale, p, out),
            2 => gemm_pre::<2>(up, g, xq, t0, x_scales, sums, scale, p, out),
            _ => gemm_pre::<1>(up, g, xq, t0, x_scales, sums, scale, p, out),
        }
    }
}

/// Tokens `t0..t0+T` × the unpacked panel pair at `up` (see [`unpack_pair`]).
///
/// # Safety
/// AVX-512 F/BW/VNNI; `up` points at `8·nq` chunks; `xq` holds tokens `t0..t0+T`; see
/// [`store16`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn gemm_pre<const T: usize>(
    up: *const Chunk,
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
    let mut acc = [[_mm512_setzero_si512(); T]; 2];
    macro_rules! step {
        ($q:expr, $xp:expr) => {{
            for s in 0..4 {
                // SAFETY: chunks (q·4 + s)·2 + {0,1} < 8·nq; aligned.
                let (w0, w1) = unsafe {
                    (
                        _mm512_load_si512(up.add(($q * 4 + s) * 2) as *const __m512i),
                        _mm512_load_si512(up.add(($q * 4 + s) * 2 + 1) as *const __m512i),
                    )
                };
                for t in 0..T {
                    let xp: *const i8 = $xp(t);
                    // SAFETY: xp has 16 readable bytes; 4s + 4 <= 16.
                    let xb = unsafe { bcast4(xp.add(4 * s)) };
                    acc[0][t] = _mm512_dpbusd_epi32(acc[0][t], w0, xb);
                    acc[1][t] = _mm512_dpbusd_epi32(acc[1][t], w1, xb);
                }
            }
        }};
    }
    for q in 0..g.nq_full {
        // SAFETY (in step): q·16 + 16 <= cols for each token row.
        step!(q, |t: usize| unsafe { xs_tok[t].as_ptr().add(q * KSTEP) });
    }
    if g.nq > g.nq_full {
        step!(g.nq_full, |t: usize| tails[t].as_ptr());
    }
    let mut fin = [[_mm512_setzero_ps(); T]; 2];
    for (fr, ar) in fin.iter_mut().zip(&acc) {
        for (t, (f, &a)) in fr.iter_mut().zip(ar).enumerate() {
            // SAFETY: AVX-512F is enabled in this function.
            *f = unsafe { finish16(a, sums[t0 + t], x_scales[t0 + t], scale) };
        }
    }
    for (r, fr) in fin.iter().enumerate() {
        for (t, &f) in fr.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            unsafe { store16(f, g, p + r, t0 + t, out) };
        }
    }
}

/// Zero-padded copy of the last partial 16-column step of `x` (all zeros if cols % 16 == 0).
#[inline(always)]
fn tail16(x: &[i8], g: &Geom) -> [i8; KSTEP] {
    let mut t = [0i8; KSTEP];
    let c0 = g.nq_full * KSTEP;
    t[..g.cols - c0].copy_from_slice(&x[c0..g.cols]);
    t
}

/// Broadcast the 4 activation bytes at `p` to every 32-bit lane.
///
/// # Safety
/// `p..p+4` is readable.
#[inline(always)]
unsafe fn bcast4(p: *const i8) -> __m512i {
    // SAFETY: guaranteed by the caller; unaligned read.
    _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(p as *const i32) })
}

/// Convert 16 lane sums `Σ u·x` to outputs: the same operations, in the same order, as
/// `finish` (subtract Σx, i32→f32, ÷ x_scale, × scale).
///
/// # Safety
/// AVX-512F available (called from the kernels' `target_feature` functions only).
#[inline(always)]
pub(super) unsafe fn finish16(tot: __m512i, sx: i32, xs: f32, scale: f32) -> __m512 {
    // SAFETY: register arithmetic only; AVX-512F guaranteed by the caller.
    unsafe {
        let tot = _mm512_sub_epi32(tot, _mm512_set1_epi32(sx));
        _mm512_mul_ps(
            _mm512_div_ps(_mm512_cvtepi32_ps(tot), _mm512_set1_ps(xs)),
            _mm512_set1_ps(scale),
        )
    }
}

/// Store the real rows of panel `p` for token `t`.
///
/// Kept separate from the accumulation: converting every accumulator first (branch-free) and
/// storing afterwards keeps LLVM from spilling the accumulator tile (a branch in the
/// epilogue halved GEMM speed).
///
/// # Safety
/// As for [`store_rows`]; AVX-512F available.
#[inline(always)]
pub(super) unsafe fn store16(f: __m512, g: &Geom, p: usize, t: usize, out: SharedMut<f32>) {
    let mut vals = [0f32; PANEL];
    // SAFETY: vals holds 16 f32.
    unsafe { _mm512_storeu_ps(vals.as_mut_ptr(), f) };
    let r0 = p * PANEL;
    let nr = g.rows.saturating_sub(r0).min(PANEL); // 0 for a padding panel
                                                   // SAFETY: forwarded from the caller.
    unsafe { store_rows(out, g, t, r0, &vals[..nr]) };
}

/// One token, `R` panels starting at `wp`.
///
/// # Safety
/// AVX-512 F/BW/VNNI; `wp` points at chunk (p, 0) of an interleaved pair (`2·nq` chunks); `x` has `cols` bytes; see [`store16`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemv<const R: usize>(
    wp: *const Chunk,
    g: &Geom,
    x: &[i8],
    sx: i32,
    xs: f32,
    scale: f32,
    p: usize,
    out: SharedMut<f32>,
) {
    let masks = [
        _mm512_set1_epi8(0x03),
        _mm512_set1_epi8(0x0c),
        _mm512_set1_epi8(0x30),
        _mm512_set1_epi8(0xc0u8 as i8),
    ];
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    let tail = tail16(x, g);
    macro_rules! step {
        ($q:expr, $xp:expr) => {{
            // SAFETY: $xp has 16 readable bytes (a full step of x, or `tail`).
            let xb = unsafe {
                [
                    bcast4($xp),
                    bcast4($xp.add(4)),
                    bcast4($xp.add(8)),
                    bcast4($xp.add(12)),
                ]
            };
            for r in 0..R {
                // Prefetch ahead in each weight stream (prefetches never fault, so running
                // past the matrix end is harmless); wrapping_add keeps the address arithmetic
                // defined.
                _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(2 * $q + r + PF_AHEAD) as *const i8);
                // SAFETY: chunk (p+r, q) is at wp + 2q + r, inside the pair's 2·nq chunks; aligned.
                let w = unsafe { _mm512_load_si512(wp.add(2 * $q + r) as *const __m512i) };
                for s in 0..4 {
                    acc[r][s] =
                        _mm512_dpbusd_epi32(acc[r][s], _mm512_and_si512(w, masks[s]), xb[s]);
                }
            }
        }};
    }
    for q in 0..g.nq_full {
        // SAFETY: q·16 + 16 <= cols.
        let xp = unsafe { x.as_ptr().add(q * KSTEP) };
        step!(q, xp);
    }
    if g.nq > g.nq_full {
        let xp = tail.as_ptr();
        step!(g.nq_full, xp);
    }
    let mut fin = [_mm512_setzero_ps(); R];
    for (f, a) in fin.iter_mut().zip(&acc) {
        let tot = _mm512_add_epi32(
            _mm512_add_epi32(a[0], _mm512_srai_epi32::<2>(a[1])),
            _mm512_add_epi32(_mm512_srai_epi32::<4>(a[2]), _mm512_srai_epi32::<6>(a[3])),
        );
        // SAFETY: AVX-512F is enabled in this function.
        *f = unsafe { finish16(tot, sx, xs, scale) };
    }
    for (r, &f) in fin.iter().enumerate() {
        // SAFETY: forwarded from the caller.
        unsafe { store16(f, g, p + r, 0, out) };
    }
}

/// Pick the const tile width for `tn` tokens.
///
/// # Safety
/// As for [`gemm`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_dispatch<const R: usize>(
    tn: usize,
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
    // SAFETY: forwarded from the caller.
    unsafe {
        match tn {
            8 => gemm::<R, 8>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            7 => gemm::<R, 7>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            6 => gemm::<R, 6>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            5 => gemm::<R, 5>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            4 => gemm::<R, 4>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            3 => gemm::<R, 3>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            2 => gemm::<R, 2>(wp, g, xq, t0, x_scales, sums, scale, p, out),
            _ => gemm::<R, 1>(wp, g, xq, t0, x_scales, sums, scale, p, out),
        }
    }
}

/// Tokens `t0..t0+T` × `R` panels starting at `wp`.
///
/// # Safety
/// AVX-512 F/BW/VNNI; `wp` points at chunk (p, 0) of an interleaved pair (`2·nq` chunks); `xq` holds tokens `t0..t0+T`
/// (`cols` bytes each); see [`store16`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<const R: usize, const T: usize>(
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
    let m3 = _mm512_set1_epi8(3);
    let mut acc = [[_mm512_setzero_si512(); T]; R];
    macro_rules! step {
        ($q:expr, $xp:expr) => {{
            let mut wv = [_mm512_setzero_si512(); R];
            for (r, w) in wv.iter_mut().enumerate() {
                // SAFETY: chunk (p+r, q) is at wp + 2q + r, inside the pair's chunks; aligned.
                *w = unsafe { _mm512_load_si512(wp.add(2 * $q + r) as *const __m512i) };
            }
            for s in 0..4 {
                let mut wu = [_mm512_setzero_si512(); R];
                for r in 0..R {
                    let sh = match s {
                        0 => wv[r],
                        1 => _mm512_srli_epi16::<2>(wv[r]),
                        2 => _mm512_srli_epi16::<4>(wv[r]),
                        _ => _mm512_srli_epi16::<6>(wv[r]),
                    };
                    wu[r] = _mm512_and_si512(sh, m3);
                }
                for t in 0..T {
                    let xp: *const i8 = $xp(t);
                    // SAFETY: xp has 16 readable bytes; 4s + 4 <= 16.
                    let xb = unsafe { bcast4(xp.add(4 * s)) };
                    for r in 0..R {
                        acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], wu[r], xb);
                    }
                }
            }
        }};
    }
    for q in 0..g.nq_full {
        // SAFETY (in step): q·16 + 16 <= cols for each token row.
        step!(q, |t: usize| unsafe { xs_tok[t].as_ptr().add(q * KSTEP) });
    }
    if g.nq > g.nq_full {
        step!(g.nq_full, |t: usize| tails[t].as_ptr());
    }
    let mut fin = [[_mm512_setzero_ps(); T]; R];
    for (fr, ar) in fin.iter_mut().zip(&acc) {
        for (t, (f, &a)) in fr.iter_mut().zip(ar).enumerate() {
            // SAFETY: AVX-512F is enabled in this function.
            *f = unsafe { finish16(a, sums[t0 + t], x_scales[t0 + t], scale) };
        }
    }
    for (r, fr) in fin.iter().enumerate() {
        for (t, &f) in fr.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            unsafe { store16(f, g, p + r, t0 + t, out) };
        }
    }
}
