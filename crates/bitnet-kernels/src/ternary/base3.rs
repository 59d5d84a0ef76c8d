//! Experimental base-3 (1.6-bit) ternary layout for decode (GEMV only), kept to measure it
//! against the 2-bit layout (issue 4, item 2). Not used by the model; see docs/performance.md,
//! "Base-3 (1.6-bit) layout: measured".
//!
//! # Layout
//! As the 2-bit layout, rows come in panels of 16 (padded to an even number of panels) and the
//! two panels of a pair are interleaved chunk by chunk (one sequential stream). A chunk is 64
//! bytes and covers [`KSTEP3`] = 20 columns: byte `lane·4 + j` of chunk (p, q) holds the five
//! trits of row `16p + lane` at columns `20q + 4k + j`, k = 0..5, as TQ1_0 does:
//! `v = Σ_k u_k·3^(4−k)` with `u = w + 1 ∈ {0, 1, 2}`, stored as `b = ceil(v·256/243)`.
//!
//! # Decode without extracting digits
//! With `q_k = b·3^k mod 256` the digits are `u_k = ⌊3·q_k / 256⌋`, so
//! `256·u_k = 3·q_k − q_{k+1}` exactly. Hence per row
//! `256·Σ_k u_k·x_k = 3·Σ_k q_k·x_k − Σ_k q_{k+1}·x_k`: two `vpdpbusd` on the *bytes* `q_k`
//! (unsigned) per sub-step, and `q_{k+1} = 3·q_k` costs two `vpaddb`. That is 10 adds and
//! 10 `vpdpbusd` per 64 bytes (320 weights), against 4 ands and 4 `vpdpbusd` per 64 bytes
//! (256 weights) for the 2-bit layout.

use super::{finish, panel_base, store_rows, sum_i8, Chunk, Geom, CHUNK, PANEL};
use crate::buffer::HugeBuf;
use crate::isa::Isa;
use crate::pool::{guided_for, SharedMut};
use crate::KernelError;

/// Columns per 64-byte base-3 chunk (5 trits per byte, 4 bytes per row).
pub const KSTEP3: usize = 20;

/// Largest supported `cols`: keeps `256·Σ u·x` inside i32 (|Σ u·x| ≤ 256·cols).
pub const MAX_COLS: usize = 32767;

/// TQ1_0 byte for five unsigned digits `u[0..5]` (most significant first).
pub fn encode5(u: [u8; 5]) -> u8 {
    let v = u.iter().fold(0u32, |v, &d| v * 3 + d as u32);
    ((v * 256).div_ceil(243)) as u8
}

/// The five unsigned digits of a TQ1_0 byte (inverse of [`encode5`] on its image).
pub fn decode5(b: u8) -> [u8; 5] {
    let mut q = b;
    std::array::from_fn(|_| {
        let d = ((q as u16 * 3) >> 8) as u8;
        q = q.wrapping_mul(3);
        d
    })
}

/// A ternary matrix with one multiplicative scale in the base-3 layout (decode only).
#[derive(Clone, Debug)]
pub struct Base3Matrix {
    rows: usize,
    cols: usize,
    scale: f32,
    /// Chunks: chunk (p, q) at index `(p/2)·2·nq + 2q + p%2`; `panels × nq` of them.
    packed: HugeBuf<Chunk>,
}

impl Base3Matrix {
    /// Build from row-major trits (`trits[r*cols + c]` ∈ {−1, 0, 1}) and the scale.
    pub fn from_trits(
        rows: usize,
        cols: usize,
        trits: &[i8],
        scale: f32,
    ) -> Result<Self, KernelError> {
        let expected = rows.saturating_mul(cols);
        if trits.len() != expected || cols > MAX_COLS {
            return Err(KernelError::Shape {
                rows,
                cols,
                expected,
                got: trits.len(),
            });
        }
        if let Some((index, &value)) = trits
            .iter()
            .enumerate()
            .find(|(_, &t)| !(-1..=1).contains(&t))
        {
            return Err(KernelError::BadTrit { index, value });
        }
        let g = geom(rows, cols);
        // Padding encodes w = 0 (u = 1) everywhere.
        let pad = encode5([1; 5]);
        let mut packed = HugeBuf::filled(g.panels * g.nq, Chunk([pad; CHUNK]));
        for r in 0..rows {
            let (p, lane) = (r / PANEL, r % PANEL);
            let row = &trits[r * cols..(r + 1) * cols];
            let base = panel_base(p, g.nq);
            for q in 0..g.nq {
                let ch = &mut packed[base + 2 * q];
                for j in 0..4 {
                    let u: [u8; 5] = std::array::from_fn(|k| {
                        let c = q * KSTEP3 + 4 * k + j;
                        if c < cols {
                            (row[c] + 1) as u8
                        } else {
                            1
                        }
                    });
                    ch.0[lane * 4 + j] = encode5(u);
                }
            }
        }
        Ok(Base3Matrix {
            rows,
            cols,
            scale,
            packed,
        })
    }

    /// Number of rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Bytes the packed weights occupy (1.6 bits per weight plus padding).
    pub fn bytes(&self) -> usize {
        self.packed.len() * CHUNK
    }

    /// `out[r] = (Σ_c W[r,c]·xq[c]) as f32 / x_scale · scale` (`xq`: cols, `out`: rows) on
    /// `isa` (AVX-512 VNNI if asked for and available, else the scalar reference), on the
    /// global thread pool; integer sums exact, so results equal `TernaryMatrix`'s bit for bit.
    pub fn matvec_with(&self, isa: Isa, xq: &[i8], x_scale: f32, out: &mut [f32]) {
        assert_eq!(xq.len(), self.cols, "matvec: xq length != cols");
        assert_eq!(out.len(), self.rows, "matvec: out length != rows");
        if self.rows == 0 {
            return;
        }
        let isa = isa.clamp_available();
        let g = geom(self.rows, self.cols);
        let sx = sum_i8(xq);
        let outp = SharedMut(out.as_mut_ptr());
        if g.rows * g.cols < (1 << 18) {
            self.run_panels(isa, g, 0, g.panels, xq, sx, x_scale, outp);
            return;
        }
        // Guided self-scheduling over panel pairs, as TernaryMatrix does; claims are disjoint
        // pair ranges: disjoint rows of `out`.
        guided_for(g.panels / 2, |start, end| {
            self.run_panels(isa, g, 2 * start, 2 * end, xq, sx, x_scale, outp);
        });
    }

    /// Rows of panels `p0..p1` (`p0` even).
    fn run_panels(
        &self,
        isa: Isa,
        g: Geom,
        p0: usize,
        p1: usize,
        xq: &[i8],
        sx: i32,
        xs: f32,
        out: SharedMut<f32>,
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` came from clamp_available(), so the CPU has AVX-512 F/BW/VL/VNNI;
            // panels p0..p1 exist and this task owns their rows.
            Isa::Avx512 | Isa::Amx => unsafe { avx512::panels(self, g, p0, p1, xq, sx, xs, out) },
            _ => self.panels_scalar(g, p0, p1, xq, sx, xs, out),
        }
    }

    /// Portable reference over the packed layout: decode every digit, exact integer dot.
    fn panels_scalar(
        &self,
        g: Geom,
        p0: usize,
        p1: usize,
        x: &[i8],
        sx: i32,
        xs: f32,
        out: SharedMut<f32>,
    ) {
        for p in p0..p1 {
            let r0 = p * PANEL;
            if r0 >= g.rows {
                continue; // padding panel
            }
            let base = panel_base(p, g.nq);
            let mut acc = [0i32; PANEL]; // Σ u·x per row
            for q in 0..g.nq {
                let ch = &self.packed[base + 2 * q];
                for (lane, a) in acc.iter_mut().enumerate() {
                    for j in 0..4 {
                        let u = decode5(ch.0[lane * 4 + j]);
                        for (k, &d) in u.iter().enumerate() {
                            let c = q * KSTEP3 + 4 * k + j;
                            if c < g.cols {
                                *a += d as i32 * x[c] as i32;
                            }
                        }
                    }
                }
            }
            let nr = (g.rows - r0).min(PANEL);
            let mut vals = [0f32; PANEL];
            for (v, &a) in vals.iter_mut().zip(&acc) {
                *v = finish(a - sx, xs, self.scale);
            }
            // SAFETY: this task owns panel p; r0 + nr <= rows; one token.
            unsafe { store_rows(out, &g, 0, r0, &vals[..nr]) };
        }
    }
}

/// Geometry of the base-3 layout (`nq` counts 20-column chunks).
fn geom(rows: usize, cols: usize) -> Geom {
    Geom {
        rows,
        cols,
        nq: cols.div_ceil(KSTEP3),
        nq_full: cols / KSTEP3,
        panels: rows.div_ceil(PANEL).div_ceil(2) * 2,
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{store_rows, Base3Matrix, Chunk, Geom, SharedMut, KSTEP3, PANEL};
    use crate::ternary::panel_base;
    use std::arch::x86_64::*;

    /// Prefetch distance in chunks, as the 2-bit GEMV.
    const PF_AHEAD: usize = 32;

    /// Rows of panels `p0..p1` for one token.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL/VNNI available; `x` has `cols` bytes; `p0` even, `p1 <= panels`; this
    /// task owns the rows of panels `p0..p1` in `out` (rows floats).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn panels(
        m: &Base3Matrix,
        g: Geom,
        p0: usize,
        p1: usize,
        x: &[i8],
        sx: i32,
        xs: f32,
        out: SharedMut<f32>,
    ) {
        let mut p = p0;
        while p < p1 {
            // wrapping_add: with cols == 0 there are no chunks (and nothing is read).
            let wp = m.packed.as_ptr().wrapping_add(panel_base(p, g.nq));
            // SAFETY: panels p, p+1 exist (panels is even, p even); forwarded otherwise.
            unsafe {
                if p + 1 < p1 {
                    gemv::<2>(wp, &g, x, sx, xs, m.scale, p, out)
                } else {
                    gemv::<1>(wp, &g, x, sx, xs, m.scale, p, out)
                }
            }
            p += 2;
        }
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

    /// One token, `R` panels starting at `wp` (chunk (p, 0) of an interleaved pair).
    ///
    /// # Safety
    /// AVX-512 F/BW/VNNI; `wp` points at the pair's `2·nq` chunks; `x` has `cols` bytes;
    /// this task owns the rows of panels `p..p+R`.
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
        // a: Σ q_k·x_k, b: Σ q_{k+1}·x_k, two accumulators each (even / odd k).
        let mut a = [[_mm512_setzero_si512(); 2]; R];
        let mut b = [[_mm512_setzero_si512(); 2]; R];
        let mut tail = [0i8; KSTEP3]; // zero-padded last partial step of x
        let c0 = g.nq_full * KSTEP3;
        tail[..g.cols - c0].copy_from_slice(&x[c0..]);
        macro_rules! step {
            ($q:expr, $xp:expr) => {{
                // SAFETY: $xp has 20 readable bytes (a full step of x, or `tail`).
                let xb: [__m512i; 5] = std::array::from_fn(|k| unsafe { bcast4($xp.add(4 * k)) });
                for r in 0..R {
                    _mm_prefetch::<_MM_HINT_T0>(
                        wp.wrapping_add(2 * $q + r + PF_AHEAD) as *const i8
                    );
                    // SAFETY: chunk (p+r, q) is at wp + 2q + r inside the pair; aligned.
                    let mut qk = unsafe { _mm512_load_si512(wp.add(2 * $q + r) as *const __m512i) };
                    for (k, &xk) in xb.iter().enumerate() {
                        let next = _mm512_add_epi8(qk, _mm512_add_epi8(qk, qk)); // 3·q_k mod 256
                        a[r][k & 1] = _mm512_dpbusd_epi32(a[r][k & 1], qk, xk);
                        b[r][k & 1] = _mm512_dpbusd_epi32(b[r][k & 1], next, xk);
                        qk = next;
                    }
                }
            }};
        }
        for q in 0..g.nq_full {
            // SAFETY: q·20 + 20 <= cols.
            let xp = unsafe { x.as_ptr().add(q * KSTEP3) };
            step!(q, xp);
        }
        if g.nq > g.nq_full {
            let xp = tail.as_ptr();
            step!(g.nq_full, xp);
        }
        for r in 0..R {
            let ar = _mm512_add_epi32(a[r][0], a[r][1]);
            let br = _mm512_add_epi32(b[r][0], b[r][1]);
            // 256·Σ u·x = 3·A − B (exact: |Σ u·x| ≤ 256·cols, cols ≤ MAX_COLS).
            let t = _mm512_sub_epi32(_mm512_add_epi32(ar, _mm512_add_epi32(ar, ar)), br);
            let tot = _mm512_sub_epi32(_mm512_srai_epi32::<8>(t), _mm512_set1_epi32(sx));
            // Same operations, same order as `finish`: i32→f32, ÷ x_scale, × scale.
            let f = _mm512_mul_ps(
                _mm512_div_ps(_mm512_cvtepi32_ps(tot), _mm512_set1_ps(xs)),
                _mm512_set1_ps(scale),
            );
            let mut vals = [0f32; PANEL];
            // SAFETY: vals holds 16 f32.
            unsafe { _mm512_storeu_ps(vals.as_mut_ptr(), f) };
            let r0 = (p + r) * PANEL;
            let nr = g.rows.saturating_sub(r0).min(PANEL); // 0 for a padding panel
                                                           // SAFETY: this task owns panel p + r; r0 + nr <= rows; one token.
            unsafe { store_rows(out, g, 0, r0, &vals[..nr]) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tq1_digits_roundtrip_all_243() {
        // Every 5-digit base-3 value survives encode → decode (the TQ1_0 scheme is exact).
        for v in 0..243u32 {
            let u: [u8; 5] = std::array::from_fn(|k| ((v / 3u32.pow(4 - k as u32)) % 3) as u8);
            assert_eq!(decode5(encode5(u)), u, "v = {v}");
        }
        // Hand-computed: all twos (v = 242) → ceil(242·256/243) = 255; all zeros → 0.
        assert_eq!(encode5([2; 5]), 255);
        assert_eq!(encode5([0; 5]), 0);
    }
}
