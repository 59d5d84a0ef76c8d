//! Ternary weight matrices in the kernels' own layout, and their GEMV/GEMM.
//!
//! # Layout
//! Rows are grouped in panels of [`PANEL`] = 16 rows (padded with zero rows to an even number
//! of panels) and columns in steps of [`KSTEP`] = 16 (the last step padded with zero columns).
//! Each (panel, step) pair is one 64-byte, 64-byte-aligned chunk. The two panels of a pair are
//! interleaved step by step (chunk (p, q) at `(p/2)·2·nq + 2q + p%2`), so a two-panel kernel
//! reads the whole matrix as one sequential stream.
//! Byte `lane·4 + j` of chunk (p, q) holds, in bits `2s..2s+2`, the trit of row `16p + lane` at
//! column `16q + 4s + j`, stored unsigned as `u = w + 1 ∈ {0, 1, 2}` (2 bits per weight).
//!
//! One 512-bit register of a chunk is therefore 16 rows × 4 columns per sub-step `s`: exactly the
//! shape of `vpdpbusd` with the 4 activation bytes broadcast, so each 32-bit lane accumulates one
//! row and no horizontal reduction is ever needed. The unsigned encoding gives
//! `Σ w·x = Σ u·x − Σ x`; `Σ x` is computed once per token.

#![allow(clippy::too_many_arguments)] // kernels take geometry, operands and output explicitly

pub(crate) mod base3;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_amx;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_avx512;

use crate::buffer::HugeBuf;
use crate::isa::{active_isa, Isa};
use crate::pool::{guided_for, parallel_for, SharedMut};
use crate::KernelError;

/// Rows per panel.
pub const PANEL: usize = 16;
/// Columns per 64-byte chunk.
pub const KSTEP: usize = 16;
/// Most matrices one [`TernaryMatrix::matvec_many`] call takes.
pub const MAX_MANY: usize = 8;

/// From this many tokens on, the AMX path runs the tile unit (fewer: AVX-512 VNNI).
pub const AMX_MIN_TOKENS: usize = 4;

/// Tokens per matmul block (per-token sums are kept on the stack).
const TOK_BLOCK: usize = 1024;
/// Bytes per chunk.
pub(crate) const CHUNK: usize = 64;

/// One 64-byte aligned chunk of packed weights.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Chunk(pub(crate) [u8; CHUNK]);

/// A ternary weight matrix with one multiplicative scale, in the kernels' own layout.
#[derive(Clone, Debug)]
pub struct TernaryMatrix {
    rows: usize,
    cols: usize,
    scale: f32,
    /// Chunks: chunk (p, q) at index `(p/2)·2·nq + 2q + p%2`; `panels × nq` of them.
    packed: HugeBuf<Chunk>,
}

/// Geometry shared by the kernels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub rows: usize,
    pub cols: usize,
    /// Chunks per panel (`ceil(cols / 16)`).
    pub nq: usize,
    /// Chunks whose 16 columns are all real (`cols / 16`).
    pub nq_full: usize,
    pub panels: usize,
}

impl TernaryMatrix {
    /// Build from row-major trits (`trits[r*cols + c]` ∈ {−1, 0, 1}) and the multiplicative
    /// scale; packs them into the kernel layout once.
    pub fn from_trits(
        rows: usize,
        cols: usize,
        trits: &[i8],
        scale: f32,
    ) -> Result<Self, KernelError> {
        let expected = rows.checked_mul(cols).ok_or(KernelError::Shape {
            rows,
            cols,
            expected: usize::MAX,
            got: trits.len(),
        })?;
        if trits.len() != expected {
            return Err(KernelError::Shape {
                rows,
                cols,
                expected,
                got: trits.len(),
            });
        }
        // Validate in blocks with a branch-free (vectorisable) test, then locate the first bad
        // value exactly.
        for (bi, block) in trits.chunks(4096).enumerate() {
            if block
                .iter()
                .fold(false, |bad, &t| bad | ((t as u8).wrapping_add(1) > 2))
            {
                if let Some((i, &value)) = block
                    .iter()
                    .enumerate()
                    .find(|(_, &t)| !(-1..=1).contains(&t))
                {
                    return Err(KernelError::BadTrit {
                        index: bi * 4096 + i,
                        value,
                    });
                }
            }
        }
        let nq = cols.div_ceil(KSTEP);
        let panels = rows.div_ceil(PANEL).div_ceil(2) * 2;
        // Padding encodes w = 0 (u = 1): 0b01010101.
        let mut packed = HugeBuf::filled(panels * nq, Chunk([0x55; CHUNK]));
        // Pack panel pairs in parallel: each pair owns chunks [pair·2·nq, (pair+1)·2·nq).
        let real_panels = rows.div_ceil(PANEL);
        let pk = SharedMut(packed.as_mut_ptr());
        parallel_for(real_panels.div_ceil(2), |pair| {
            // SAFETY: this task alone writes the pair's 2·nq chunks, inside `packed`, which
            // outlives parallel_for.
            let dst = unsafe { pk.slice(pair * 2 * nq, 2 * nq) };
            for p in 2 * pair..(2 * pair + 2).min(real_panels) {
                for lane in 0..PANEL.min(rows - p * PANEL) {
                    let r = p * PANEL + lane;
                    let row = &trits[r * cols..(r + 1) * cols];
                    for q in 0..nq {
                        let ch = &mut dst[2 * q + p % 2];
                        let c0 = q * KSTEP;
                        let mut w = [0i8; KSTEP]; // zero padding (u = 1)
                        let cn = (cols - c0).min(KSTEP);
                        w[..cn].copy_from_slice(&row[c0..c0 + cn]);
                        for j in 0..4 {
                            let mut b = 0u8;
                            for s in 0..4 {
                                b |= ((w[4 * s + j] + 1) as u8) << (2 * s);
                            }
                            ch.0[lane * 4 + j] = b;
                        }
                    }
                }
            }
        });
        Ok(TernaryMatrix {
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
    /// The multiplicative weight scale.
    pub fn scale(&self) -> f32 {
        self.scale
    }
    /// Bytes the packed weights occupy in memory (2 bits per weight plus padding).
    pub fn bytes(&self) -> usize {
        self.packed.len() * CHUNK
    }

    /// Row-major trits, decoded from the packed layout.
    pub fn to_trits(&self) -> Vec<i8> {
        let g = self.geom();
        let mut out = vec![0i8; self.rows * self.cols];
        for r in 0..self.rows {
            let (p, lane) = (r / PANEL, r % PANEL);
            for c in 0..self.cols {
                let (q, s, j) = (c / KSTEP, (c % KSTEP) / 4, c % 4);
                let byte = self.packed[panel_base(p, g.nq) + 2 * q].0[lane * 4 + j];
                out[r * self.cols + c] = ((byte >> (2 * s)) & 3) as i8 - 1;
            }
        }
        out
    }

    pub(crate) fn geom(&self) -> Geom {
        Geom {
            rows: self.rows,
            cols: self.cols,
            nq: self.cols.div_ceil(KSTEP),
            nq_full: self.cols / KSTEP,
            panels: self.rows.div_ceil(PANEL).div_ceil(2) * 2,
        }
    }

    /// Pointer to chunk (p, 0); chunk (p, q) is at `+ 2q`, and for even `p` chunk (p+1, q) at
    /// `+ 2q + 1`. Valid for `p < panels`.
    pub(crate) fn panel_ptr(&self, p: usize) -> *const Chunk {
        let g = self.geom();
        assert!(p < g.panels);
        // wrapping_add: with cols == 0 there are no chunks (and nothing is read).
        self.packed.as_ptr().wrapping_add(panel_base(p, g.nq))
    }

    /// `out[r] = (Σ_c W[r,c]·xq[c]) as f32 / x_scale · scale` for one token (`xq`: cols,
    /// `out`: rows), on the [`active_isa`] path and the global thread pool.
    pub fn matvec(&self, xq: &[i8], x_scale: f32, out: &mut [f32]) {
        self.matvec_with(active_isa(), xq, x_scale, out)
    }

    /// [`matvec`](Self::matvec) on a chosen path (clamped to what the CPU supports).
    pub fn matvec_with(&self, isa: Isa, xq: &[i8], x_scale: f32, out: &mut [f32]) {
        assert_eq!(xq.len(), self.cols, "matvec: xq length != cols");
        assert_eq!(out.len(), self.rows, "matvec: out length != rows");
        self.matmul_with(isa, xq, std::slice::from_ref(&x_scale), out)
    }

    /// The same for `n = x_scales.len()` tokens: `xq` is n × cols, `out` n × rows.
    pub fn matmul(&self, xq: &[i8], x_scales: &[f32], out: &mut [f32]) {
        self.matmul_with(active_isa(), xq, x_scales, out)
    }

    /// [`matmul`](Self::matmul) on a chosen path (clamped to what the CPU supports).
    pub fn matmul_with(&self, isa: Isa, xq: &[i8], x_scales: &[f32], out: &mut [f32]) {
        let n = x_scales.len();
        assert_eq!(xq.len(), n * self.cols, "matmul: xq length != n × cols");
        assert_eq!(out.len(), n * self.rows, "matmul: out length != n × rows");
        if n == 0 || self.rows == 0 {
            return;
        }
        let isa = isa.clamp_available();
        // Token blocks of at most TOK_BLOCK so the per-token sums live on the stack.
        let mut sums = [0i32; TOK_BLOCK];
        for t0 in (0..n).step_by(TOK_BLOCK) {
            let nb = (n - t0).min(TOK_BLOCK);
            for (t, s) in sums[..nb].iter_mut().enumerate() {
                *s = sum_i8(&xq[(t0 + t) * self.cols..(t0 + t + 1) * self.cols]);
            }
            self.matmul_block(
                isa,
                &xq[t0 * self.cols..(t0 + nb) * self.cols],
                &x_scales[t0..t0 + nb],
                &sums[..nb],
                &mut out[t0 * self.rows..(t0 + nb) * self.rows],
            );
        }
    }

    /// One block of tokens with precomputed Σx.
    fn matmul_block(&self, isa: Isa, xq: &[i8], x_scales: &[f32], sums: &[i32], out: &mut [f32]) {
        let n = x_scales.len();
        let g = self.geom();
        // Tiny products run inline without the pool.
        let outp = SharedMut(out.as_mut_ptr());
        if g.rows * g.cols * n < (1 << 18) {
            self.run_panels(isa, g, 0, g.panels, xq, x_scales, sums, outp);
            return;
        }
        // Guided self-scheduling over panel pairs (the last claims are a single pair, 32 rows).
        // Each claim covers rows of its own panels (for every token): disjoint writes.
        guided_for(g.panels / 2, |start, end| {
            self.run_panels(isa, g, 2 * start, 2 * end, xq, x_scales, sums, outp);
        });
    }

    /// Several matrices applied to the same input in one pool dispatch (e.g. q, k, v or
    /// gate, up): `outs[i] = mats[i] · xq` for one token, as [`matvec`](Self::matvec) would
    /// compute each. All matrices must have the same `cols`; at most [`MAX_MANY`].
    pub fn matvec_many(mats: &[&TernaryMatrix], xq: &[i8], x_scale: f32, outs: &mut [&mut [f32]]) {
        Self::matmul_many_with(active_isa(), mats, xq, std::slice::from_ref(&x_scale), outs)
    }

    /// [`matvec_many`](Self::matvec_many) for `n = x_scales.len()` tokens on a chosen path:
    /// `xq` is n × cols, `outs[i]` is n × `mats[i].rows()`.
    pub fn matmul_many_with(
        isa: Isa,
        mats: &[&TernaryMatrix],
        xq: &[i8],
        x_scales: &[f32],
        outs: &mut [&mut [f32]],
    ) {
        assert_eq!(
            mats.len(),
            outs.len(),
            "matmul_many: mats and outs differ in number"
        );
        assert!(
            mats.len() <= MAX_MANY,
            "matmul_many: at most {MAX_MANY} matrices"
        );
        let n = x_scales.len();
        if mats.is_empty() || n == 0 {
            return;
        }
        let cols = mats[0].cols;
        assert_eq!(xq.len(), n * cols, "matmul_many: xq length != n × cols");
        for (m, o) in mats.iter().zip(outs.iter()) {
            assert_eq!(m.cols, cols, "matmul_many: matrices differ in cols");
            assert_eq!(o.len(), n * m.rows, "matmul_many: out length != n × rows");
        }
        let isa = isa.clamp_available();
        let k = mats.len();
        let mut geoms = [mats[0].geom(); MAX_MANY];
        // starts[i]: first global pair index of matrix i.
        let mut starts = [0usize; MAX_MANY + 1];
        for i in 0..k {
            geoms[i] = mats[i].geom();
            starts[i + 1] = starts[i] + geoms[i].panels / 2;
        }
        let total = starts[k];
        let work: usize = mats.iter().map(|m| m.rows * cols).sum::<usize>() * n;
        let mut sums = [0i32; TOK_BLOCK];
        for t0 in (0..n).step_by(TOK_BLOCK) {
            let nb = (n - t0).min(TOK_BLOCK);
            for (t, s) in sums[..nb].iter_mut().enumerate() {
                *s = sum_i8(&xq[(t0 + t) * cols..(t0 + t + 1) * cols]);
            }
            let xb = &xq[t0 * cols..(t0 + nb) * cols];
            let xs = &x_scales[t0..t0 + nb];
            let sb = &sums[..nb];
            let mut ptrs = [SharedMut(std::ptr::null_mut::<f32>()); MAX_MANY];
            for i in 0..k {
                ptrs[i] = SharedMut(outs[i][t0 * mats[i].rows..].as_mut_ptr());
            }
            // Global pairs a..b, split at matrix boundaries.
            let run = |a: usize, b: usize| {
                for i in 0..k {
                    let lo = a.max(starts[i]);
                    let hi = b.min(starts[i + 1]);
                    if lo < hi {
                        let (lo, hi) = (lo - starts[i], hi - starts[i]);
                        mats[i].run_panels(isa, geoms[i], 2 * lo, 2 * hi, xb, xs, sb, ptrs[i]);
                    }
                }
            };
            if work < (1 << 18) {
                run(0, total);
                continue;
            }
            // Claims are disjoint pair ranges: disjoint rows of each output.
            guided_for(total, run);
        }
    }

    /// Compute rows of panels `p0..p1` for all tokens.
    #[allow(clippy::too_many_arguments)]
    fn run_panels(
        &self,
        isa: Isa,
        g: Geom,
        p0: usize,
        p1: usize,
        xq: &[i8],
        x_scales: &[f32],
        sums: &[i32],
        out: SharedMut<f32>,
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` came from clamp_available(), so the CPU has AMX-INT8 with the tile
            // state granted, and AVX-512 VNNI.
            Isa::Amx if x_scales.len() >= AMX_MIN_TOKENS => unsafe {
                x86_amx::panels(self, g, p0, p1, xq, x_scales, sums, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` came from clamp_available(), so the CPU has AVX-512 F/BW/VL/VNNI.
            Isa::Avx512 | Isa::Amx => unsafe {
                x86_avx512::panels(self, g, p0, p1, xq, x_scales, sums, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` came from clamp_available(), so the CPU has AVX2.
            Isa::Avx2 => unsafe { x86_avx2::panels(self, g, p0, p1, xq, x_scales, sums, out) },
            _ => scalar::panels(self, g, p0, p1, xq, x_scales, sums, out),
        }
    }
}

/// Index of chunk (p, 0) in the interleaved layout.
#[inline]
pub(crate) fn panel_base(p: usize, nq: usize) -> usize {
    (p / 2) * 2 * nq + (p % 2)
}

/// Σ x over one token's quantized activations.
#[inline]
pub(crate) fn sum_i8(x: &[i8]) -> i32 {
    x.iter().map(|&v| v as i32).sum()
}

/// Write `vals` to `out[t·rows + r0 ..]` (the rows of one panel for token `t`).
///
/// # Safety
/// `out` points at an n × rows buffer, `t < n`, `r0 + vals.len() <= rows` unless `vals` is
/// empty, and no other task
/// writes these rows of this token (tasks own disjoint panels).
#[inline(always)]
pub(crate) unsafe fn store_rows(out: SharedMut<f32>, g: &Geom, t: usize, r0: usize, vals: &[f32]) {
    if vals.is_empty() {
        return; // padding panel: r0 may lie past the last row
    }
    // SAFETY: guaranteed by the caller.
    unsafe { out.slice(t * g.rows + r0, vals.len()) }.copy_from_slice(vals);
}

/// The final per-row formula shared by every path (keeps results bit-identical).
#[inline(always)]
pub(crate) fn finish(dot: i32, x_scale: f32, scale: f32) -> f32 {
    dot as f32 / x_scale * scale
}
