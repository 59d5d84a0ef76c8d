//! AMX-INT8 ternary GEMM (Sapphire Rapids and later) for batches of tokens.
//!
//! One `tdpbssd` multiplies a 16-token × 64-column activation tile by a 64-column × 16-row
//! weight tile: 16,384 multiply-adds, 256× one `vpdpbusd`. The weight tile's layout (16 rows
//! of 64 bytes, each row 16 weight rows × 4 columns) is exactly one unpacked sub-step of the
//! kernels' chunk layout (see [`super`]), so a panel pair is unpacked once to `u ∈ {0,1,2}`
//! bytes and fed to the tile unit as is; the activations are read in place, token-major.
//!
//! The integers are exact (`Σ u·x` in i32, then `− Σx`), and the final conversion is
//! [`finish16`]'s (the shared `finish`, lane-wise), so every output is bit-identical to the VNNI and scalar paths.
//!
//! Tiles: tmm0/tmm1 accumulate tokens 0..16 of a group against panels p/p+1, tmm2/tmm3 tokens
//! 16..32; tmm4/tmm5 hold those activations, tmm6/tmm7 the two weight tiles.

use super::x86_avx512::{finish16, store16};
use super::{Chunk, Geom, TernaryMatrix, PANEL};
use crate::amx::{self, tdp, tileload, tilestore, tilezero, TileCfg};
use crate::pool::SharedMut;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Columns per tile step (one row of an activation tile).
const KB: usize = 64;
/// Weight-tile rows per K step (64 columns / 4 per row).
const BROWS: usize = 16;
/// Tokens per activation tile.
const MT: usize = 16;

thread_local! {
    /// Per-thread unpacked panel pair: `2 × nkb × 16` rows of 64 bytes; grows once.
    static SCRATCH: RefCell<Vec<Chunk>> = const { RefCell::new(Vec::new()) };
}

/// The tile configuration for a group of `m0` (first 16 tokens) and `m1` (next 16; 0 = none)
/// tokens: accumulators tmm0–3, activations tmm4/5, weights tmm6/7 (16 × 64 bytes).
fn tile_cfg(m0: usize, m1: usize) -> TileCfg {
    if m1 > 0 {
        TileCfg::new([m0, m0, m1, m1, m0, m1, BROWS, BROWS])
    } else {
        // One activation tile: tmm2/tmm3 accumulate the odd K steps (two chains hide the
        // `tdpbssd` latency; integer sums do not depend on the split).
        TileCfg::new([m0, m0, m0, m0, m0, 0, BROWS, BROWS])
    }
}

/// Rows of panels `p0..p1` for every token (`n = x_scales.len()` ≥ 1).
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/VNNI and AMX-TILE/INT8, and the OS granted this process the tile
/// data state ([`crate::isa::Isa::Amx`] is available); `xq` is n × cols and `out` n × rows
/// with n = `x_scales.len()` = `sums.len()`; this task owns panels `p0..p1`.
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
    let nkb = g.nq.div_ceil(4);
    let full_kb = g.cols / KB;
    let prow = nkb * BROWS; // weight-tile rows per panel
                            // Decode batches (≤ 32 tokens) unpack one K step at a time into two 2 KiB buffers on the
                            // stack (nothing is allocated, whichever thread runs the claim); larger batches unpack the
                            // whole pair into a per-thread buffer that grows once.
    let mut local = [Chunk([0; 64]); 4 * BROWS];
    SCRATCH.with(|buf| {
        let mut buf = buf.borrow_mut();
        let bp = if n > 2 * MT {
            if buf.len() < 2 * prow {
                buf.resize(2 * prow, Chunk([0; 64]));
            }
            buf.as_mut_ptr()
        } else {
            local.as_mut_ptr()
        };
        let mut cfg_m = (usize::MAX, usize::MAX);
        let mut p = p0;
        while p < p1 {
            if p + 1 >= p1 {
                // A lone panel (never produced by the pair-wise schedulers): VNNI path.
                // SAFETY: forwarded from the caller (AVX-512 VNNI is implied).
                unsafe { super::x86_avx512::panels(m, g, p, p1, xq, x_scales, sums, out) };
                break;
            }
            let wp = m.panel_ptr(p);
            if n > 2 * MT {
                // Several token groups reuse the pair: unpack it whole once (L2-resident).
                // SAFETY: panels p, p+1 exist (2·nq chunks at wp); bp holds 2·prow rows.
                unsafe { unpack_pair(wp, g.nq, prow, bp) };
            }
            let mut t0 = 0;
            while t0 < n {
                let m0 = (n - t0).min(MT);
                let m1 = (n - t0 - m0).min(MT);
                if cfg_m != (m0, m1) {
                    // SAFETY: AMX is available (caller's contract).
                    unsafe { tile_cfg(m0, m1).load() };
                    cfg_m = (m0, m1);
                }
                let step = |kb: usize| -> (*const Chunk, *const Chunk) {
                    if n > 2 * MT {
                        // SAFETY: rows kb·16.. of each panel lie inside the unpacked pair.
                        unsafe { (bp.add(kb * BROWS), bp.add(prow + kb * BROWS)) }
                    } else {
                        // One group: unpack K steps one ahead into two alternating 2 KiB
                        // buffers (L1), so the stores have retired before the tile loads.
                        let buf = |k: usize| bp.wrapping_add((k % 2) * 2 * BROWS);
                        // SAFETY: bp is `local` (4·16 rows); chunks past nq are zero-filled.
                        unsafe {
                            if kb == 0 {
                                unpack_step(wp, g.nq, 0, buf(0));
                            }
                            if kb + 1 < nkb {
                                unpack_step(wp, g.nq, kb + 1, buf(kb + 1));
                            }
                        }
                        (
                            buf(kb) as *const Chunk,
                            buf(kb).wrapping_add(BROWS) as *const Chunk,
                        )
                    }
                };
                // SAFETY: tokens t0..t0+m0+m1 exist; `step` yields the pair's weight tiles.
                unsafe {
                    group(
                        g, nkb, full_kb, step, xq, t0, m0, m1, x_scales, sums, m.scale, p, out,
                    )
                };
                t0 += m0 + m1;
            }
            p += 2;
        }
        if cfg_m.0 != usize::MAX {
            // SAFETY: AMX is available (caller's contract).
            unsafe { amx::release() };
        }
    });
}

/// Unpack panels (p, p+1) at `wp` (interleaved, `2·nq` chunks) into weight-tile rows: row
/// `r·prow + 4q + s` is sub-step `s` of chunk q of panel r; rows past `4·nq` are zero.
///
/// # Safety
/// AVX-512 F/BW; `wp` points at `2·nq` chunks, `dst` at `2·prow` writable chunks, `prow ≥ 4·nq`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn unpack_pair(wp: *const Chunk, nq: usize, prow: usize, dst: *mut Chunk) {
    let m3 = _mm512_set1_epi8(3);
    for r in 0..2 {
        // SAFETY (block): chunk (p+r, q) is at wp + 2q + r < 2·nq; destination rows
        // r·prow + 4q + s < r·prow + 4·nq ≤ (r+1)·prow; chunks are 64-byte aligned.
        unsafe {
            let d = dst.add(r * prow) as *mut __m512i;
            for q in 0..nq {
                let w = _mm512_load_si512(wp.add(2 * q + r) as *const __m512i);
                _mm512_store_si512(d.add(4 * q), _mm512_and_si512(w, m3));
                _mm512_store_si512(
                    d.add(4 * q + 1),
                    _mm512_and_si512(_mm512_srli_epi16::<2>(w), m3),
                );
                _mm512_store_si512(
                    d.add(4 * q + 2),
                    _mm512_and_si512(_mm512_srli_epi16::<4>(w), m3),
                );
                _mm512_store_si512(
                    d.add(4 * q + 3),
                    _mm512_and_si512(_mm512_srli_epi16::<6>(w), m3),
                );
            }
            for row in 4 * nq..prow {
                _mm512_store_si512(d.add(row), _mm512_setzero_si512());
            }
        }
    }
}

/// Unpack K step `kb` (chunks 4kb..4kb+4) of panels (p, p+1) at `wp` into 32 weight-tile
/// rows at `dst` (16 per panel); chunks past `nq` give zero rows.
///
/// # Safety
/// AVX-512 F/BW; `wp` points at `2·nq` chunks, `dst` at 32 writable chunks.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn unpack_step(wp: *const Chunk, nq: usize, kb: usize, dst: *mut Chunk) {
    let m3 = _mm512_set1_epi8(3);
    let d = dst as *mut __m512i;
    for r in 0..2 {
        for i in 0..4 {
            let q = 4 * kb + i;
            // SAFETY: chunk (p+r, q) is at wp + 2q + r < 2·nq when q < nq; rows
            // 16r + 4i + s < 32; chunks are 64-byte aligned.
            unsafe {
                let o = d.add(BROWS * r + 4 * i);
                if q < nq {
                    let w = _mm512_load_si512(wp.add(2 * q + r) as *const __m512i);
                    _mm512_store_si512(o, _mm512_and_si512(w, m3));
                    _mm512_store_si512(o.add(1), _mm512_and_si512(_mm512_srli_epi16::<2>(w), m3));
                    _mm512_store_si512(o.add(2), _mm512_and_si512(_mm512_srli_epi16::<4>(w), m3));
                    _mm512_store_si512(o.add(3), _mm512_and_si512(_mm512_srli_epi16::<6>(w), m3));
                } else {
                    for s in 0..4 {
                        _mm512_store_si512(o.add(s), _mm512_setzero_si512());
                    }
                }
            }
        }
    }
}

/// One group of `m0 + m1` (≤ 32) tokens from `t0` against panels (p, p+1), whose weight
/// tiles for K step `kb` `step(kb)` returns (16 rows of 64 bytes each, stride 64); the tile
/// configuration for (m0, m1) is loaded.
///
/// # Safety
/// AMX available and configured for (m0, m1); tokens `t0..t0+m0+m1` exist in `xq`;
/// `step` returns readable tiles; see [`store_rows`] for `out`.
#[allow(clippy::too_many_arguments)]
unsafe fn group(
    g: Geom,
    nkb: usize,
    full_kb: usize,
    mut step: impl FnMut(usize) -> (*const Chunk, *const Chunk),
    xq: &[i8],
    t0: usize,
    m0: usize,
    m1: usize,
    x_scales: &[f32],
    sums: &[i32],
    scale: f32,
    p: usize,
    out: SharedMut<f32>,
) {
    let cols = g.cols;
    let mt = m0 + m1;
    // Zero-padded last partial K step of every token (only read when cols % 64 != 0).
    let mut tail = [[0i8; KB]; 2 * MT];
    if full_kb < nkb {
        let c0 = full_kb * KB;
        for (t, row) in tail.iter_mut().enumerate().take(mt) {
            let x = &xq[(t0 + t) * cols..(t0 + t + 1) * cols];
            row[..cols - c0].copy_from_slice(&x[c0..]);
        }
    }
    let xa = xq[t0 * cols..].as_ptr();
    // SAFETY (block): every tile load stays inside its operand: activation tile rows are
    // tokens t0.. (< n) and columns kb·64..kb·64+64 ≤ cols for kb < full_kb (else the padded
    // `tail`); weight tiles come from `step`.
    unsafe {
        tilezero!("0");
        tilezero!("1");
        tilezero!("2");
        tilezero!("3");
        for kb in 0..nkb {
            let (a0, a1, stride) = if kb < full_kb {
                (xa.add(kb * KB), xa.wrapping_add(MT * cols + kb * KB), cols)
            } else {
                (tail[0].as_ptr(), tail[MT].as_ptr(), KB)
            };
            let (b0, b1) = step(kb);
            tileload!("6", b0, 64usize);
            tileload!("7", b1, 64usize);
            tileload!("4", a0, stride);
            if m1 > 0 {
                tdp!("0", "4", "6");
                tdp!("1", "4", "7");
                tileload!("5", a1, stride);
                tdp!("2", "5", "6");
                tdp!("3", "5", "7");
            } else if kb % 2 == 0 {
                tdp!("0", "4", "6");
                tdp!("1", "4", "7");
            } else {
                tdp!("2", "4", "6");
                tdp!("3", "4", "7");
            }
        }
    }
    // Accumulators out: c[r][t][i] = Σ u·x of row 16(p+r)+i for token t (of 32).
    let mut c = [[[0i32; PANEL]; 2 * MT]; 2];
    // SAFETY: each store writes ≤ 16 rows of 64 bytes into `c` (2 × 32 × 16 i32) or `odd`.
    unsafe {
        tilestore!("0", c[0].as_mut_ptr(), 64usize);
        tilestore!("1", c[1].as_mut_ptr(), 64usize);
        tilestore!("2", c[0][MT..].as_mut_ptr(), 64usize);
        tilestore!("3", c[1][MT..].as_mut_ptr(), 64usize);
    }
    if m1 == 0 {
        // Tokens 0..m0: even K steps in rows 0..16, odd K steps in rows 16..32.
        for cr in c.iter_mut() {
            let (even, odd) = cr.split_at_mut(MT);
            for (e, o) in even.iter_mut().zip(odd.iter()).take(m0) {
                for (a, b) in e.iter_mut().zip(o) {
                    *a += b;
                }
            }
        }
    }
    // SAFETY: AVX-512F is available (implied by AMX here); see [`store16`] for `out`.
    unsafe { epilogue(&c, mt, t0, sums, x_scales, scale, &g, p, out) };
}

/// Outputs of one group: `finish` of every accumulator, 16 rows at a time (the same IEEE
/// operations per lane as the scalar epilogue, so the same bits).
///
/// # Safety
/// AVX-512F; tokens `t0..t0+mt` exist; this task owns panels p, p+1 (see [`store16`]).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn epilogue(
    c: &[[[i32; PANEL]; 2 * MT]; 2],
    mt: usize,
    t0: usize,
    sums: &[i32],
    x_scales: &[f32],
    scale: f32,
    g: &Geom,
    p: usize,
    out: SharedMut<f32>,
) {
    for (r, cr) in c.iter().enumerate() {
        for (t, ct) in cr.iter().enumerate().take(mt) {
            let tok = t0 + t;
            // SAFETY: `ct` is 16 i32 (unaligned load); the rest is forwarded.
            unsafe {
                let dot = _mm512_loadu_si512(ct.as_ptr() as *const __m512i);
                let f = finish16(dot, sums[tok], x_scales[tok], scale);
                store16(f, g, p + r, tok, out);
            }
        }
    }
}
