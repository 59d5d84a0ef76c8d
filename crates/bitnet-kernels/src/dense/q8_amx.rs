//! AMX-INT8 batched GEMM for [`Q8Matrix`](super::Q8Matrix): the Q8 layout's 4 chunks per
//! (group, column step) are already weight tiles — panel `i`'s chunks for 16 consecutive steps,
//! 256 bytes apart, are one 16 × 64-byte `tdpbssd` operand — so the weights are read in
//! place, once per 16 tokens. Integer sums are exact (`Σ q·x`, signed × signed), so every
//! result is the same bits as the one-token VNNI path.

use super::q8::GROUP;
use crate::amx::{self, tdp, tileload, tilestore, tilezero, TileCfg};

/// Tokens per activation tile.
const MT: usize = 16;

/// Exact `Σ_c q[r,c]·xq[t,c]` for rows of groups `g0..g1` and tokens `0..n`, handed to
/// `put(t, g, dots)` one (token, group) at a time.
///
/// # Safety
/// AMX is available to this process; `w` points at the matrix's chunks (`groups · nk · 4` of
/// 64 bytes, chunk (g, k, panel i) at `(g·nk + k)·4 + i`, zero past the real columns); `xq`
/// holds `n` tokens of `cols` bytes followed by at least 64 readable bytes.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn groups(
    w: *const i8,
    nk: usize,
    cols: usize,
    g0: usize,
    g1: usize,
    xq: &[i8],
    n: usize,
    mut put: impl FnMut(usize, usize, &[i32; GROUP]),
) {
    debug_assert!(xq.len() >= n * cols + 64);
    let nkb = nk / 16; // full 64-column steps
    let mut cfg_m = 0;
    for g in g0..g1 {
        let wg = w.wrapping_add(g * nk * 4 * 64);
        let mut t0 = 0;
        while t0 < n {
            let mt = (n - t0).min(MT);
            if cfg_m != mt {
                // Accumulators tmm0–3 (one per panel), activations tmm4, weights tmm5–7.
                // SAFETY: AMX available (caller's contract).
                unsafe { TileCfg::new([mt, mt, mt, mt, mt, 16, 16, 16]).load() };
                cfg_m = mt;
            }
            let mut c = [[[0i32; 16]; MT]; 4];
            // SAFETY (block): activation rows t0..t0+mt < n, columns kb·64..kb·64+64 ≤
            // 4·nk, which is < cols + 64 (the caller's padding); weight rows are chunks
            // (g, kb·16 + s, i) for s < 16, inside the matrix; stores write mt rows of 64
            // bytes into `c[i]` (16 rows).
            unsafe {
                tilezero!("0");
                tilezero!("1");
                tilezero!("2");
                tilezero!("3");
                let xa = xq.as_ptr().add(t0 * cols);
                for kb in 0..nkb {
                    let b = wg.add(kb * 16 * 4 * 64);
                    tileload!("4", xa.add(kb * 64), cols);
                    tileload!("5", b, 256usize);
                    tdp!("0", "4", "5");
                    tileload!("6", b.add(64), 256usize);
                    tdp!("1", "4", "6");
                    tileload!("7", b.add(128), 256usize);
                    tdp!("2", "4", "7");
                    tileload!("5", b.add(192), 256usize);
                    tdp!("3", "4", "5");
                }
                tilestore!("0", c[0].as_mut_ptr(), 64usize);
                tilestore!("1", c[1].as_mut_ptr(), 64usize);
                tilestore!("2", c[2].as_mut_ptr(), 64usize);
                tilestore!("3", c[3].as_mut_ptr(), 64usize);
            }
            // Column steps past the last full 64 (fewer than 16 of 4 columns): scalar.
            for k in nkb * 16..nk {
                for t in 0..mt {
                    let x = &xq[(t0 + t) * cols..];
                    // Columns past `cols` meet zero weights (the layout's padding).
                    let x4 = [x[4 * k], x[4 * k + 1], x[4 * k + 2], x[4 * k + 3]];
                    for (i, ci) in c.iter_mut().enumerate() {
                        // SAFETY: chunk (g, k, i) lies inside the matrix.
                        let ch =
                            unsafe { std::slice::from_raw_parts(wg.add((k * 4 + i) * 64), 64) };
                        for (lane, v) in ci[t].iter_mut().enumerate() {
                            for (j, &xj) in x4.iter().enumerate() {
                                *v += ch[lane * 4 + j] as i32 * xj as i32;
                            }
                        }
                    }
                }
            }
            for t in 0..mt {
                let mut dots = [0i32; GROUP];
                for (i, ci) in c.iter().enumerate() {
                    dots[16 * i..16 * i + 16].copy_from_slice(&ci[t]);
                }
                put(t0 + t, g, &dots);
            }
            t0 += mt;
        }
    }
    if cfg_m != 0 {
        // SAFETY: AMX available (caller's contract).
        unsafe { amx::release() };
    }
}
