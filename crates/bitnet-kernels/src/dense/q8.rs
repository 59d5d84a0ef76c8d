//! Int8 dense matrix with one f32 scale per row (opt-in `--head q8`).
//!
//! `q[r,c] = clamp(round_half_even(W[r,c] / s_r), −127, 127)` with `s_r = max_c |W[r,c]| / 127`;
//! activations are quantized per token like the ternary path, so
//! `out[r] = (Σ_c q[r,c]·xq[c]) as f32 / x_scale · s_r` with an exact integer sum.
//!
//! Layout: groups of 64 rows (4 panels of 16), columns in steps of 4. For each (group, step)
//! four 64-byte chunks follow each other, one per panel; byte `lane·4 + j` of panel `i`'s chunk
//! is `q[64g + 16i + lane, 4k + j]`. One chunk is one `vpdpbusd` (16 rows × 4 columns, the 4
//! activation bytes broadcast), and the whole matrix is read as a single sequential stream.

use crate::buffer::HugeBuf;
use crate::isa::Isa;
use crate::pool::{parallel_for, SharedMut};
use crate::quant::quantize_activations_with;
use std::cell::RefCell;

/// Rows per group (4 panels of 16).
pub(super) const GROUP: usize = 64;
/// Groups per pool task.
const GROUPS_PER_TASK: usize = 4;

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Chunk([i8; 64]);

/// Int8 weights with per-row scales in the kernels' layout.
#[derive(Clone, Debug)]
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// Column steps of 4 (`ceil(cols / 4)`).
    nk: usize,
    data: HugeBuf<Chunk>,
    /// Per-row scale `s_r` (rows).
    scales: Vec<f32>,
    /// Per-row Σ_c q[r,c], padded to whole groups (for the unsigned-activation VNNI form).
    row_sums: Vec<i32>,
}

thread_local! {
    /// Per-thread activation scratch for [`Q8Matrix::matvec_with`]; grows once, then reused.
    static XQ: RefCell<Vec<i8>> = const { RefCell::new(Vec::new()) };
}

impl Q8Matrix {
    /// Quantize a rows × cols matrix; `fill(i, row)` writes row `i` as f32.
    pub fn from_rows(rows: usize, cols: usize, mut fill: impl FnMut(usize, &mut [f32])) -> Self {
        let nk = cols.div_ceil(4);
        let groups = rows.div_ceil(GROUP);
        let mut data = HugeBuf::filled(groups * nk * 4, Chunk([0; 64]));
        let mut scales = vec![0f32; rows];
        let mut row_sums = vec![0i32; groups * GROUP];
        let mut row = vec![0f32; cols];
        let mut q = vec![0i8; cols];
        for r in 0..rows {
            fill(r, &mut row);
            scales[r] = quantize_row(&row, &mut q);
            row_sums[r] = q.iter().map(|&v| v as i32).sum();
            let (g, pi, lane) = (r / GROUP, (r % GROUP) / 16, r % 16);
            for (c, &v) in q.iter().enumerate() {
                let (k, j) = (c / 4, c % 4);
                data[(g * nk + k) * 4 + pi].0[lane * 4 + j] = v;
            }
        }
        Q8Matrix {
            rows,
            cols,
            nk,
            data,
            scales,
            row_sums,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Bytes of weights and scales in memory.
    pub fn bytes(&self) -> usize {
        self.data.len() * 64 + self.scales.len() * 4 + self.row_sums.len() * 4
    }

    /// The int8 row `i` into `out` (cols); returns its scale.
    pub fn row_quants(&self, i: usize, out: &mut [i8]) -> f32 {
        assert_eq!(out.len(), self.cols);
        let (g, pi, lane) = (i / GROUP, (i % GROUP) / 16, i % 16);
        for (c, o) in out.iter_mut().enumerate() {
            *o = self.data[(g * self.nk + c / 4) * 4 + pi].0[lane * 4 + c % 4];
        }
        self.scales[i]
    }

    /// Dequantized row `i` into `out` (cols).
    pub fn row_into(&self, i: usize, out: &mut [f32]) {
        let (g, pi, lane) = (i / GROUP, (i % GROUP) / 16, i % 16);
        let s = self.scales[i];
        for (c, o) in out.iter_mut().enumerate() {
            *o = self.data[(g * self.nk + c / 4) * 4 + pi].0[lane * 4 + c % 4] as f32 * s;
        }
    }

    /// `out[r] ≈ Σ_c W[r,c]·x[c]`: quantizes `x` per token (absmax int8) into a reused
    /// per-thread buffer, then [`matvec_q8_with`](Self::matvec_q8_with).
    pub fn matvec_with(&self, isa: Isa, x: &[f32], out: &mut [f32]) {
        XQ.with(|b| {
            let mut b = b.borrow_mut();
            if b.len() < self.cols {
                b.resize(self.cols, 0);
            }
            let xq = &mut b[..self.cols];
            let xs = quantize_activations_with(isa, x, xq);
            self.matvec_q8_with(isa, xq, xs, out);
        })
    }

    /// `out[r] = (Σ_c q[r,c]·xq[c]) as f32 / x_scale · s_r`, the integer sum exact on every
    /// path (any i8 activations).
    pub fn matvec_q8_with(&self, isa: Isa, xq: &[i8], x_scale: f32, out: &mut [f32]) {
        assert_eq!(xq.len(), self.cols, "q8 matvec: xq length != cols");
        assert_eq!(out.len(), self.rows, "q8 matvec: out length != rows");
        let isa = isa.clamp_available();
        let groups = self.rows.div_ceil(GROUP);
        // Zero-padded last column step.
        let mut tail = [0i8; 4];
        let full = self.cols / 4;
        tail[..self.cols - full * 4].copy_from_slice(&xq[full * 4..]);
        let outp = SharedMut(out.as_mut_ptr());
        parallel_for(groups.div_ceil(GROUPS_PER_TASK), |task| {
            let g0 = task * GROUPS_PER_TASK;
            let g1 = (g0 + GROUPS_PER_TASK).min(groups);
            for g in g0..g1 {
                let dots = self.group_dots(isa, g, xq, &tail);
                let r0 = g * GROUP;
                let nr = (self.rows - r0).min(GROUP);
                // SAFETY: tasks own disjoint groups, so rows r0..r0+nr of `out` are written
                // by this task only; `out` outlives parallel_for.
                let o = unsafe { outp.slice(r0, nr) };
                for (i, ov) in o.iter_mut().enumerate() {
                    *ov = dots[i] as f32 / x_scale * self.scales[r0 + i];
                }
            }
        });
    }

    /// `matvec_with` for `n` tokens (`x`: n × cols, `out`: n × rows), each token's row
    /// exactly what `matvec_with` gives it. On AVX2 tokens go in tiles of 4 that read the
    /// weights once per tile (a batch of decode tokens reads the head ~4× less); other paths
    /// run one token at a time.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], n: usize, out: &mut [f32]) {
        const TILE: usize = 4;
        let (rows, cols) = (self.rows, self.cols);
        assert_eq!(x.len(), n * cols, "q8 matmul: x length != n × cols");
        assert_eq!(out.len(), n * rows, "q8 matmul: out length != n × rows");
        let isa = isa.clamp_available();
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Amx && n >= crate::ternary::AMX_MIN_TOKENS {
            return self.matmul_amx(x, n, out);
        }
        if n < TILE || isa != Isa::Avx2 {
            for t in 0..n {
                self.matvec_with(
                    isa,
                    &x[t * cols..(t + 1) * cols],
                    &mut out[t * rows..(t + 1) * rows],
                );
            }
            return;
        }
        let mut xq = vec![0i8; n * cols];
        let mut xs = vec![0f32; n];
        let mut tails = vec![[0i8; 4]; n];
        let full = cols / 4;
        for t in 0..n {
            let q = &mut xq[t * cols..(t + 1) * cols];
            xs[t] = quantize_activations_with(isa, &x[t * cols..(t + 1) * cols], q);
            tails[t][..cols - full * 4].copy_from_slice(&q[full * 4..]);
        }
        let groups = rows.div_ceil(GROUP);
        let outp = SharedMut(out.as_mut_ptr());
        parallel_for(groups.div_ceil(GROUPS_PER_TASK), |task| {
            let g0 = task * GROUPS_PER_TASK;
            let g1 = (g0 + GROUPS_PER_TASK).min(groups);
            for g in g0..g1 {
                let r0 = g * GROUP;
                let nr = (rows - r0).min(GROUP);
                let put = |t: usize, dots: &[i32; GROUP]| {
                    // SAFETY: tasks own disjoint groups, so rows r0..r0+nr of token t's output
                    // are written by this task only; `out` outlives parallel_for.
                    let o = unsafe { outp.slice(t * rows + r0, nr) };
                    for (i, ov) in o.iter_mut().enumerate() {
                        *ov = dots[i] as f32 / xs[t] * self.scales[r0 + i];
                    }
                };
                let mut t0 = 0;
                #[cfg(target_arch = "x86_64")]
                while t0 + TILE <= n {
                    let chunks = &self.data[g * self.nk * 4..(g + 1) * self.nk * 4];
                    let toks: [&[i8]; TILE] =
                        std::array::from_fn(|j| &xq[(t0 + j) * cols..(t0 + j + 1) * cols]);
                    let tl: [&[i8; 4]; TILE] = std::array::from_fn(|j| &tails[t0 + j]);
                    // SAFETY: isa is AVX2 (clamped above); chunks has nk·4 entries.
                    let dots = unsafe {
                        x86::group_avx2_tokens::<TILE>(
                            chunks.as_ptr() as *const i8,
                            self.nk,
                            toks,
                            tl,
                        )
                    };
                    for (j, d) in dots.iter().enumerate() {
                        put(t0 + j, d);
                    }
                    t0 += TILE;
                }
                for t in t0..n {
                    let dots = self.group_dots(isa, g, &xq[t * cols..(t + 1) * cols], &tails[t]);
                    put(t, &dots);
                }
            }
        });
    }

    /// [`matmul_with`](Self::matmul_with) on the AMX tile unit (see `q8_amx.rs`).
    #[cfg(target_arch = "x86_64")]
    fn matmul_amx(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        // 64-byte aligned rows for the tile loads, and 64 readable bytes past the last token.
        let mut xq = HugeBuf::filled(n * cols + 64, 0i8);
        let mut xs = vec![0f32; n];
        for (t, s) in xs.iter_mut().enumerate() {
            let q = &mut xq[t * cols..(t + 1) * cols];
            *s = quantize_activations_with(Isa::Amx, &x[t * cols..(t + 1) * cols], q);
        }
        let groups = rows.div_ceil(GROUP);
        let outp = SharedMut(out.as_mut_ptr());
        let put = |t: usize, g: usize, dots: &[i32; GROUP]| {
            let r0 = g * GROUP;
            let nr = (rows - r0).min(GROUP);
            // SAFETY: tasks own disjoint groups, so rows r0..r0+nr of token t's output are
            // written by this task only; `out` (n × rows) outlives parallel_for.
            let o = unsafe { outp.slice(t * rows + r0, nr) };
            for (i, ov) in o.iter_mut().enumerate() {
                *ov = dots[i] as f32 / xs[t] * self.scales[r0 + i];
            }
        };
        parallel_for(groups.div_ceil(GROUPS_PER_TASK), |task| {
            let g0 = task * GROUPS_PER_TASK;
            let g1 = (g0 + GROUPS_PER_TASK).min(groups);
            // SAFETY: the caller checked that the AMX path is available (clamped isa); `w` is
            // this matrix's chunk array in the layout q8_amx expects; xq holds n tokens and
            // 64 bytes of padding.
            unsafe {
                let w = self.data.as_ptr() as *const i8;
                super::q8_amx::groups(w, self.nk, cols, g0, g1, &xq, n, put)
            };
        });
    }

    /// Exact Σ q·xq for the 64 rows of group `g`.
    fn group_dots(&self, isa: Isa, g: usize, xq: &[i8], tail: &[i8; 4]) -> [i32; GROUP] {
        let chunks = &self.data[g * self.nk * 4..(g + 1) * self.nk * 4];
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Amx => {
                // SAFETY: `isa` is clamped to what the CPU supports; chunks has nk·4 entries.
                let mut d =
                    unsafe { x86::group_avx512(chunks.as_ptr() as *const i8, self.nk, xq, tail) };
                for (i, v) in d.iter_mut().enumerate() {
                    *v -= 128 * self.row_sums[g * GROUP + i];
                }
                d
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe {
                x86::group_avx2(chunks.as_ptr() as *const i8, self.nk, xq, tail)
            },
            _ => {
                let mut d = [0i32; GROUP];
                for k in 0..self.nk {
                    let xs: [i8; 4] = if 4 * k + 4 <= xq.len() {
                        [xq[4 * k], xq[4 * k + 1], xq[4 * k + 2], xq[4 * k + 3]]
                    } else {
                        *tail
                    };
                    for pi in 0..4 {
                        let ch = &chunks[k * 4 + pi].0;
                        for lane in 0..16 {
                            for j in 0..4 {
                                d[pi * 16 + lane] += ch[lane * 4 + j] as i32 * xs[j] as i32;
                            }
                        }
                    }
                }
                d
            }
        }
    }
}

/// Per-row quantization: returns `s = absmax / 127` (0 for an all-zero row).
fn quantize_row(w: &[f32], q: &mut [i8]) -> f32 {
    let amax = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let s = amax / 127.0;
    for (qi, &wi) in q.iter_mut().zip(w) {
        *qi = (wi / s).round_ties_even().clamp(-127.0, 127.0) as i8;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::GROUP;
    use std::arch::x86_64::*;

    /// The 4 activation bytes for column step `k` (from `tail` past the last full step).
    #[inline(always)]
    fn x4(xq: &[i8], tail: &[i8; 4], k: usize) -> i32 {
        match xq.get(4 * k..4 * k + 4) {
            Some(s) => i32::from_le_bytes([s[0] as u8, s[1] as u8, s[2] as u8, s[3] as u8]),
            None => i32::from_le_bytes(tail.map(|v| v as u8)),
        }
    }

    /// Σ (xq + 128)·q per row of one group (the caller subtracts 128·Σq).
    ///
    /// # Safety
    /// AVX-512 F/BW/VNNI; `w` points at `nk·4` 64-byte-aligned chunks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn group_avx512(
        w: *const i8,
        nk: usize,
        xq: &[i8],
        tail: &[i8; 4],
    ) -> [i32; GROUP] {
        let mut acc = [_mm512_setzero_si512(); 4];
        let flip = _mm512_set1_epi32(0x8080_8080u32 as i32);
        for k in 0..nk {
            // Unsigned activations x + 128 (flip the sign bit), broadcast to 16 lanes.
            let xb = _mm512_xor_si512(_mm512_set1_epi32(x4(xq, tail, k)), flip);
            for (i, a) in acc.iter_mut().enumerate() {
                // Prefetch 2 KiB ahead in the single weight stream (never faults).
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add((k * 4 + i) * 64 + 2048));
                // SAFETY: chunk k·4 + i < nk·4; aligned.
                let wv = unsafe { _mm512_load_si512(w.add((k * 4 + i) * 64) as *const __m512i) };
                *a = _mm512_dpbusd_epi32(*a, xb, wv);
            }
        }
        let mut out = [0i32; GROUP];
        for (i, a) in acc.iter().enumerate() {
            // SAFETY: out has 64 i32; 16i + 16 <= 64.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(16 * i) as *mut __m512i, *a) };
        }
        out
    }

    /// [`group_avx2`] for `T` tokens at once, 8 rows at a time so that the accumulators stay
    /// in registers: the group's weights are read from memory once per tile of tokens (then
    /// from cache). Exact integer sums, so each token's result equals `group_avx2`'s.
    ///
    /// # Safety
    /// AVX2; `w` points at `nk·4` 64-byte-aligned chunks.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn group_avx2_tokens<const T: usize>(
        w: *const i8,
        nk: usize,
        xq: [&[i8]; T],
        tail: [&[i8; 4]; T],
    ) -> [[i32; GROUP]; T] {
        let ones = _mm256_set1_epi16(1);
        let mut out = [[0i32; GROUP]; T];
        for h in 0..8 {
            let mut acc = [_mm256_setzero_si256(); T];
            for k in 0..nk {
                if h == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(k * 4 * 64 + 2048));
                    _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(k * 4 * 64 + 2048 + 64));
                    _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(k * 4 * 64 + 2048 + 128));
                    _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(k * 4 * 64 + 2048 + 192));
                }
                // SAFETY: half h of chunk k·4 + h/2 is in bounds; 32-byte aligned.
                let wv =
                    unsafe { _mm256_load_si256(w.add((k * 4) * 64 + 32 * h) as *const __m256i) };
                for (t, a) in acc.iter_mut().enumerate() {
                    let xb = _mm256_set1_epi32(x4(xq[t], tail[t], k));
                    let p = _mm256_maddubs_epi16(_mm256_abs_epi8(xb), _mm256_sign_epi8(wv, xb));
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(p, ones));
                }
            }
            for (t, a) in acc.iter().enumerate() {
                // SAFETY: out[t] has 64 i32; 8h + 8 <= 64.
                unsafe { _mm256_storeu_si256(out[t].as_mut_ptr().add(8 * h) as *mut __m256i, *a) };
            }
        }
        out
    }

    /// Σ xq·q per row of one group, `maddubs(|x|, sign(q, x))` (no 16-bit saturation since
    /// |q| ≤ 127).
    ///
    /// # Safety
    /// AVX2; `w` points at `nk·4` 64-byte-aligned chunks.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn group_avx2(
        w: *const i8,
        nk: usize,
        xq: &[i8],
        tail: &[i8; 4],
    ) -> [i32; GROUP] {
        let mut acc = [_mm256_setzero_si256(); 8];
        let ones = _mm256_set1_epi16(1);
        for k in 0..nk {
            let xb = _mm256_set1_epi32(x4(xq, tail, k));
            let ax = _mm256_abs_epi8(xb);
            for i in 0..4 {
                // Prefetch 2 KiB ahead in the single weight stream (never faults).
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add((k * 4 + i) * 64 + 2048));
            }
            for (h, a) in acc.iter_mut().enumerate() {
                // SAFETY: half h of chunk k·4 + h/2 is in bounds; 32-byte aligned.
                let wv =
                    unsafe { _mm256_load_si256(w.add((k * 4) * 64 + 32 * h) as *const __m256i) };
                let p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xb));
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(p, ones));
            }
        }
        let mut out = [0i32; GROUP];
        for (h, a) in acc.iter().enumerate() {
            // SAFETY: out has 64 i32; 8h + 8 <= 64.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(8 * h) as *mut __m256i, *a) };
        }
        out
    }
}
