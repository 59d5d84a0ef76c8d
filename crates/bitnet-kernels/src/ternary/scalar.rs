//! Portable reference kernel over the packed layout.

use super::{finish, panel_base, store_rows, Geom, TernaryMatrix, KSTEP, PANEL};
use crate::pool::SharedMut;

/// Rows of panels `p0..p1` for every token (`xq`: n × cols, `out`: n × rows).
pub(super) fn panels(
    m: &TernaryMatrix,
    g: Geom,
    p0: usize,
    p1: usize,
    xq: &[i8],
    x_scales: &[f32],
    sums: &[i32],
    out: SharedMut<f32>,
) {
    for (t, &xs) in x_scales.iter().enumerate() {
        let x = &xq[t * g.cols..(t + 1) * g.cols];
        let sx = sums[t];
        for p in p0..p1 {
            let r0 = p * PANEL;
            if r0 >= g.rows {
                continue; // padding panel
            }
            let base = panel_base(p, g.nq);
            let mut acc = [0i32; PANEL];
            for q in 0..g.nq {
                let ch = &m.packed[base + 2 * q];
                let mut xb = [0i8; KSTEP];
                let c0 = q * KSTEP;
                let cn = (g.cols - c0).min(KSTEP);
                xb[..cn].copy_from_slice(&x[c0..c0 + cn]);
                // Lane-parallel form (16 independent row accumulators, constant shifts) so
                // LLVM vectorises it on any target, e.g. NEON where this is the only path.
                let mut words = [0u32; PANEL];
                for (w, b) in words.iter_mut().zip(ch.0.chunks_exact(4)) {
                    *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                for s in 0..4 {
                    for j in 0..4 {
                        let xv = xb[4 * s + j] as i32;
                        let sh = 8 * j + 2 * s;
                        for (a, &w) in acc.iter_mut().zip(&words) {
                            *a += ((w >> sh) & 3) as i32 * xv;
                        }
                    }
                }
            }
            let nr = (g.rows - r0).min(PANEL);
            let mut vals = [0f32; PANEL];
            for (v, &a) in vals.iter_mut().zip(&acc) {
                *v = finish(a - sx, xs, m.scale);
            }
            // SAFETY: this task owns panel p; r0 + nr <= rows; t < n.
            unsafe { store_rows(out, &g, t, r0, &vals[..nr]) };
        }
    }
}
