//! The reference forward pass, top to bottom. Batched passes (prefill) use the kernels'
//! `matmul`, single tokens (decode) their `matvec`; both write into the preallocated State.

use bitnet_kernels::{active_isa, quantize_activations, TernaryMatrix};

use crate::hook::{QuantCall, QuantSite};
use crate::ops::{gated_act, rmsnorm, rmsnorm_inplace, rope, softmax, KvElem};
use crate::state::{shape_of, HeadScratch, KvCache, LinearScratch};
use crate::weights::{Linear, Proj};
use crate::{Model, ModelError, Result, State};

/// Which positions' logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// `[n × vocab]`, one row per input token (needs `n ≤ state.logit_rows()`).
    All,
    /// `[vocab]` for the last input token only.
    Last,
}

/// `out[t] = lin(x[t])` for `n` tokens: optional own RMSNorm, per-token int8 quantization,
/// ternary product (or a dense product for float modules). `x`: `[n × in]`; `out`: `[n × out]`.
fn linear(
    lin: &Linear,
    x: &[f32],
    n: usize,
    norm_eps: f32,
    sc: &mut LinearScratch,
    out: &mut [f32],
    site: (usize, QuantSite),
) {
    let (cols, rows) = (lin.in_features(), lin.out_features());
    let x = &x[..n * cols];
    let out = &mut out[..n * rows];
    let (xn, mut q) = sc.split();
    let src: &[f32] = match &lin.input_norm {
        Some(w) => {
            for (xi, oi) in x.chunks_exact(cols).zip(xn.chunks_exact_mut(cols)) {
                rmsnorm(xi, w, norm_eps, oi);
            }
            &xn[..n * cols]
        }
        None => x,
    };
    match &lin.proj {
        Proj::Ternary(m) => {
            quantize_rows(src, cols, n, &mut q, site);
            let xq = &q.xq[..n * cols];
            if n == 1 {
                m.matvec(xq, q.xs[0], out);
            } else {
                m.matmul(xq, &q.xs[..n], out);
            }
        }
        Proj::Dense(m) => {
            if n == 1 {
                m.matvec(src, out);
            } else {
                m.matmul(src, n, out);
            }
        }
    }
}

/// Per-token int8 quantization of `src` (`[n × cols]`) into `sc.xq` (`[n × cols]`) and
/// `sc.xs` (`[n]`); then the instrumentation hook, if any, sees (and may edit) the result.
fn quantize_rows(
    src: &[f32],
    cols: usize,
    n: usize,
    sc: &mut QuantOut<'_>,
    site: (usize, QuantSite),
) {
    let src = &src[..n * cols];
    for ((xi, qi), si) in src
        .chunks_exact(cols)
        .zip(sc.xq[..n * cols].chunks_exact_mut(cols))
        .zip(sc.xs.iter_mut())
    {
        *si = quantize_activations(xi, qi);
    }
    if let Some(hook) = sc.hook.as_mut() {
        let call = QuantCall {
            layer: site.0,
            site: site.1,
            positions: &sc.positions[..n],
            cols,
            src,
            scales: &sc.xs[..n],
        };
        hook.quantized(&call, &mut sc.xq[..n * cols]);
    }
}

/// The parts of [`LinearScratch`] a quantization writes (borrowed apart from `xn`, which
/// may be its input).
struct QuantOut<'a> {
    xq: &'a mut [i8],
    xs: &'a mut [f32],
    positions: &'a [usize],
    hook: &'a mut Option<Box<dyn crate::hook::QuantHook>>,
}

impl LinearScratch {
    /// The input-norm buffer and the quantization outputs, borrowed apart.
    fn split(&mut self) -> (&mut [f32], QuantOut<'_>) {
        (
            &mut self.xn,
            QuantOut {
                xq: &mut self.xq,
                xs: &mut self.xs,
                positions: &self.positions,
                hook: &mut self.hook,
            },
        )
    }
}

/// `outs[i] = lins[i](x)` for linears that read the same input (q/k/v, gate/up). When all are
/// ternary without their own input norm, the input is quantized once and the products run in
/// one pool dispatch (`matvec_many`/`matmul_many_with`, each result exactly what `matvec` /
/// `matmul` gives); otherwise each goes through [`linear`]. `x`: `[n × in]`; `outs[i]`:
/// `[≥ n × lins[i].out]`.
fn linear_many<const K: usize>(
    lins: [&Linear; K],
    x: &[f32],
    n: usize,
    norm_eps: f32,
    sc: &mut LinearScratch,
    outs: [&mut [f32]; K],
    site: (usize, QuantSite),
) {
    fn ternary(l: &Linear) -> Option<&TernaryMatrix> {
        match (&l.proj, &l.input_norm) {
            (Proj::Ternary(m), None) => Some(m),
            _ => None,
        }
    }
    let Some(first) = ternary(lins[0]) else {
        for (l, o) in lins.into_iter().zip(outs) {
            linear(l, x, n, norm_eps, sc, o, site);
        }
        return;
    };
    let mut mats: [&TernaryMatrix; K] = [first; K];
    for (m, l) in mats.iter_mut().zip(lins) {
        match ternary(l) {
            Some(t) if t.cols() == first.cols() => *m = t,
            _ => {
                for (l, o) in lins.into_iter().zip(outs) {
                    linear(l, x, n, norm_eps, sc, o, site);
                }
                return;
            }
        }
    }
    let cols = first.cols();
    let (_, mut q) = sc.split();
    quantize_rows(x, cols, n, &mut q, site);
    let xq = &q.xq[..n * cols];
    let mut outs = outs;
    for (o, m) in outs.iter_mut().zip(&mats) {
        *o = &mut std::mem::take(o)[..n * m.rows()];
    }
    if n == 1 {
        TernaryMatrix::matvec_many(&mats, xq, q.xs[0], &mut outs);
    } else {
        TernaryMatrix::matmul_many_with(active_isa(), &mats, xq, &q.xs[..n], &mut outs);
    }
}

/// Maps a sequence's position to its row in one layer's KV cache.
pub(crate) trait RowMap: Sync {
    fn row(&self, pos: usize) -> usize;
}

/// One sequence in one contiguous cache: position p is row p.
pub(crate) struct Contiguous;

impl RowMap for Contiguous {
    #[inline(always)]
    fn row(&self, pos: usize) -> usize {
        pos
    }
}

/// A paged cache: position p lives in block `table[p / block_size]` at slot `p % block_size`
/// (block sizes are powers of two).
pub(crate) struct Paged<'a> {
    pub(crate) table: &'a [u32],
    pub(crate) shift: u32,
}

impl RowMap for Paged<'_> {
    #[inline(always)]
    fn row(&self, pos: usize) -> usize {
        let mask = (1usize << self.shift) - 1;
        ((self.table[pos >> self.shift] as usize) << self.shift) | (pos & mask)
    }
}

/// One sequence's slice of a batched pass: rows `row0..row0 + len` of the flat batch are its
/// tokens at positions `pos..pos + len`, its keys/values live where `map` says.
pub(crate) struct SegView<'a, R: RowMap> {
    pub(crate) row0: usize,
    pub(crate) len: usize,
    pub(crate) pos: usize,
    pub(crate) map: &'a R,
}

/// Attention of every segment's tokens for every query head, in parallel on the kernels'
/// pool; head h writes its outputs `[rows × head_dim]` (flat batch rows) into
/// `heads[h].out`. One task per head group runs all segments, so tasks stay balanced whatever
/// the sequences' lengths; a batch of more than one row runs heads of one GQA group together
/// (see [`attend_heads`]), so each K/V row is read once per task rather than once per head.
fn attention_heads<T: KvElem, R: RowMap>(
    c: &crate::Config,
    q: &[f32],
    kc: &[T],
    vc: &[T],
    heads: &[std::sync::Mutex<HeadScratch>],
    segs: &[SegView<'_, R>],
) {
    let (q_dim, kv_dim, hd) = (c.q_dim(), c.kv_dim(), c.head_dim);
    let group = c.n_heads / c.n_kv_heads;
    // head_dim^-0.5 rounded once to f32, as torch applies the Python float `scaling`.
    let att_scale = (1.0 / (hd as f64).sqrt()) as f32;
    // The kernels' path, resolved once here instead of in every dot/axpy call.
    let isa = active_isa().clamp_available();
    let rows: usize = segs.iter().map(|s| s.len).sum();
    let sub = if rows == 1 {
        1
    } else {
        heads_per_task(group, c.n_heads, bitnet_kernels::num_threads())
    };
    bitnet_kernels::parallel_for(c.n_heads / sub, |task| {
        let h0 = task * sub;
        // A poisoned lock only means another head's task panicked, which parallel_for
        // re-raises; the scratch itself is still usable.
        let mut guards: [Option<std::sync::MutexGuard<HeadScratch>>; MAX_GROUP_TASK] =
            Default::default();
        for (g, m) in guards.iter_mut().zip(&heads[h0..h0 + sub]) {
            *g = Some(m.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let mut scores: [&mut [f32]; MAX_GROUP_TASK] = Default::default();
        let mut outs: [&mut [f32]; MAX_GROUP_TASK] = Default::default();
        for ((g, sc), o) in guards.iter_mut().zip(&mut scores).zip(&mut outs) {
            if let Some(g) = g {
                let HeadScratch { scores, out } = &mut **g;
                *sc = scores;
                *o = out;
            }
        }
        for seg in segs {
            let mut seg_outs: [&mut [f32]; MAX_GROUP_TASK] = Default::default();
            for (so, o) in seg_outs.iter_mut().zip(outs.iter_mut()).take(sub) {
                *so = &mut o[seg.row0 * hd..(seg.row0 + seg.len) * hd];
            }
            attend_heads(
                isa,
                &q[seg.row0 * q_dim..(seg.row0 + seg.len) * q_dim],
                q_dim,
                h0,
                kc,
                vc,
                kv_dim,
                (h0 / group) * hd,
                hd,
                seg.len,
                seg.pos,
                seg.map,
                att_scale,
                &mut scores[..sub],
                &mut seg_outs[..sub],
            );
        }
    });
}

/// Most query heads one attention task takes together.
const MAX_GROUP_TASK: usize = 8;

/// Heads per prefill attention task: the largest divisor of the GQA group size (at most
/// [`MAX_GROUP_TASK`]) that leaves a task count divisible by the thread count, so the pool's
/// threads get equal work (e.g. 2B4T, 20 heads in groups of 4, 2 threads: 2 heads a task).
fn heads_per_task(group: usize, n_heads: usize, threads: usize) -> usize {
    (1..=group.min(MAX_GROUP_TASK))
        .rev()
        .find(|&d| group.is_multiple_of(d) && (n_heads / d).is_multiple_of(threads.max(1)))
        .unwrap_or(1)
}

/// Causal attention of query heads `h0..h0 + outs.len()` (all of one KV head, at `kv_offset`)
/// for `n` tokens at positions `p0..p0+n`: for each token, each K row is read once for all
/// these heads, then each V row. Per head the arithmetic is exactly [`crate::ops::attend_with`]'s, in the
/// same order, whatever rows `map` gives the positions. `q`: `[n × q_stride]`; `scores[j]`:
/// `[≥ p0 + n]`; `outs[j]`: `[≥ n × hd]`.
#[allow(clippy::too_many_arguments)]
fn attend_heads<T: KvElem, R: RowMap>(
    isa: bitnet_kernels::Isa,
    q: &[f32],
    q_stride: usize,
    h0: usize,
    kc: &[T],
    vc: &[T],
    kv_stride: usize,
    kv_offset: usize,
    hd: usize,
    n: usize,
    p0: usize,
    map: &R,
    scale: f32,
    scores: &mut [&mut [f32]],
    outs: &mut [&mut [f32]],
) {
    for t in 0..n {
        let n_ctx = p0 + t + 1;
        let qt = &q[t * q_stride..(t + 1) * q_stride];
        for p in 0..n_ctx {
            let at = map.row(p) * kv_stride + kv_offset;
            let k = &kc[at..at + hd];
            for (j, sc) in scores.iter_mut().enumerate() {
                let h = h0 + j;
                sc[p] = T::dot(isa, &qt[h * hd..(h + 1) * hd], k) * scale;
            }
        }
        for sc in scores.iter_mut() {
            softmax(&mut sc[..n_ctx]);
        }
        for o in outs.iter_mut() {
            o[t * hd..(t + 1) * hd].fill(0.0);
        }
        for p in 0..n_ctx {
            let at = map.row(p) * kv_stride + kv_offset;
            let v = &vc[at..at + hd];
            for (sc, o) in scores.iter().zip(outs.iter_mut()) {
                T::axpy(isa, &mut o[t * hd..(t + 1) * hd], sc[p], v);
            }
        }
    }
}

impl Model {
    /// Run `tokens` at positions `start_pos..start_pos + n`, appending their keys/values to the
    /// cache (positions from `start_pos` on are overwritten, so a caller may rewind), and return
    /// logits (`[n × vocab]` for `Logits::All`, `[vocab]` for `Logits::Last`) borrowed from
    /// `state`. Prompts longer than `state.max_batch()` run in chunks (with `Logits::Last`).
    pub fn forward<'s>(
        &self,
        state: &'s mut State,
        tokens: &[u32],
        start_pos: usize,
        which: Logits,
    ) -> Result<&'s [f32]> {
        let c = &self.config;
        let n = tokens.len();
        if state.shape != shape_of(c) {
            return Err(ModelError::StateMismatch(format!(
                "state {:?}, model {:?}",
                state.shape,
                shape_of(c)
            )));
        }
        if n == 0 {
            return Err(ModelError::EmptyInput);
        }
        if let Some((index, &token)) = tokens
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= c.vocab_size)
        {
            return Err(ModelError::TokenOutOfRange {
                token,
                index,
                vocab: c.vocab_size,
            });
        }
        if start_pos > state.filled {
            return Err(ModelError::PositionGap {
                start: start_pos,
                filled: state.filled,
            });
        }
        if start_pos + n > state.context {
            return Err(ModelError::ContextOverflow {
                start: start_pos,
                end: start_pos + n,
                context: state.context,
            });
        }
        if which == Logits::All && n > state.logit_rows {
            return Err(ModelError::BatchTooLarge {
                n,
                logit_rows: state.logit_rows,
            });
        }
        let mut pos = start_pos;
        let chunks = tokens.chunks(state.max_batch);
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            let seg = SegView {
                row0: 0,
                len: chunk.len(),
                pos,
                map: &Contiguous,
            };
            self.forward_chunk(state, &[seg], &[chunk]);
            pos += chunk.len();
            state.filled = pos;
            let truncated = state
                .lin
                .hook
                .as_ref()
                .is_some_and(|h| h.last_layer().is_some());
            if i + 1 == n_chunks && !truncated {
                match which {
                    Logits::All => self.head(state, 0..chunk.len()),
                    Logits::Last => self.head(state, chunk.len() - 1..chunk.len()),
                }
            }
        }
        let v = c.vocab_size;
        Ok(match which {
            Logits::All => &state.logits[..n * v],
            Logits::Last => &state.logits[..v],
        })
    }

    /// All transformer blocks for the segments' tokens (`tokens[i]` are the tokens of
    /// `segs[i]`, whose rows follow each other from row 0, at most `max_batch` in all); leaves
    /// the residual stream in `state.x`. Every row is computed on its own except attention,
    /// which reads the keys and values of its own segment, so a token's numbers do not depend
    /// on what else is in the batch.
    pub(crate) fn forward_chunk<R: RowMap>(
        &self,
        s: &mut State,
        segs: &[SegView<'_, R>],
        tokens: &[&[u32]],
    ) {
        let c = &self.config;
        let w = &self.weights;
        let n: usize = segs.iter().map(|g| g.len).sum();
        let (dim, q_dim, kv_dim, hd, ffn) = (c.dim, c.q_dim(), c.kv_dim(), c.head_dim, c.ffn_dim);
        let half = hd / 2;
        let lin_eps = c.linear_norm_eps.unwrap_or(c.norm_eps);
        let layer_cache = s.kv_rows * kv_dim;

        s.last_n = n;
        for seg in segs {
            for i in 0..seg.len {
                s.lin.positions[seg.row0 + i] = seg.pos + i;
            }
        }
        if let Some(h) = &mut s.lin.hook {
            h.begin_pass(n);
        }

        // Embedding: x[t] = token_embd[tokens[t]].
        for (seg, toks) in segs.iter().zip(tokens) {
            for (t, &tok) in toks.iter().enumerate() {
                let r = seg.row0 + t;
                w.token_embd
                    .row_into(tok as usize, &mut s.x[r * dim..(r + 1) * dim]);
            }
        }

        let last_layer = s.lin.hook.as_ref().and_then(|h| h.last_layer());
        for (l, layer) in w.layers.iter().enumerate() {
            if last_layer.is_some_and(|m| l > m) {
                break;
            }
            // ---- attention ----
            // xb = RMSNorm(x)
            for t in 0..n {
                rmsnorm(
                    &s.x[t * dim..(t + 1) * dim],
                    &layer.attn_norm,
                    c.norm_eps,
                    &mut s.xb[t * dim..(t + 1) * dim],
                );
            }
            // q, k, v = BitLinear(xb)
            linear_many(
                [&layer.wq, &layer.wk, &layer.wv],
                &s.xb,
                n,
                lin_eps,
                &mut s.lin,
                [&mut s.q, &mut s.k, &mut s.v],
                (l, QuantSite::Qkv),
            );
            if let Some(h) = &mut s.lin.hook {
                h.kv(
                    l,
                    &s.lin.positions[..n],
                    kv_dim,
                    &s.k[..n * kv_dim],
                    &s.v[..n * kv_dim],
                );
            }
            // RoPE on q and k at each row's position, then store k and v in its KV row.
            let base = l * layer_cache;
            for seg in segs {
                for i in 0..seg.len {
                    let (t, p) = (seg.row0 + i, seg.pos + i);
                    let (cos, sin) = (
                        &s.rope_cos[p * half..(p + 1) * half],
                        &s.rope_sin[p * half..(p + 1) * half],
                    );
                    rope(
                        &mut s.q[t * q_dim..(t + 1) * q_dim],
                        hd,
                        cos,
                        sin,
                        c.rope_style,
                    );
                    rope(
                        &mut s.k[t * kv_dim..(t + 1) * kv_dim],
                        hd,
                        cos,
                        sin,
                        c.rope_style,
                    );
                    let at = base + seg.map.row(p) * kv_dim;
                    let rows = t * kv_dim..(t + 1) * kv_dim;
                    s.kv.write(at, &s.k[rows.clone()], &s.v[rows]);
                }
            }
            // Grouped-query causal attention (token t of a segment sees its positions
            // 0..=pos+t); each head writes its own scratch, gathered into `att` afterwards.
            let range = base..base + layer_cache;
            match &s.kv {
                KvCache::F32 { k, v } => {
                    attention_heads(c, &s.q, &k[range.clone()], &v[range], &s.heads, segs)
                }
                KvCache::F16 { k, v } => {
                    attention_heads(c, &s.q, &k[range.clone()], &v[range], &s.heads, segs)
                }
            }
            for (h, head) in s.heads.iter_mut().enumerate() {
                let out = &head.get_mut().unwrap_or_else(|e| e.into_inner()).out;
                for t in 0..n {
                    s.att[t * q_dim + h * hd..t * q_dim + (h + 1) * hd]
                        .copy_from_slice(&out[t * hd..(t + 1) * hd]);
                }
            }
            if let Some(sub) = &layer.attn_sub_norm {
                for t in 0..n {
                    rmsnorm_inplace(&mut s.att[t * q_dim..(t + 1) * q_dim], sub, c.norm_eps);
                }
            }
            // x += wo(att)
            linear(
                &layer.wo,
                &s.att,
                n,
                lin_eps,
                &mut s.lin,
                &mut s.proj,
                (l, QuantSite::AttnOut),
            );
            for (xi, pi) in s.x[..n * dim].iter_mut().zip(&s.proj[..n * dim]) {
                *xi += pi;
            }

            // ---- feed-forward ----
            for t in 0..n {
                rmsnorm(
                    &s.x[t * dim..(t + 1) * dim],
                    &layer.ffn_norm,
                    c.norm_eps,
                    &mut s.xb[t * dim..(t + 1) * dim],
                );
            }
            linear_many(
                [&layer.w_gate, &layer.w_up],
                &s.xb,
                n,
                lin_eps,
                &mut s.lin,
                [&mut s.gate, &mut s.up],
                (l, QuantSite::GateUp),
            );
            // h = act(gate) · up, then the BitNet sub-norm.
            for t in 0..n {
                let g = &mut s.gate[t * ffn..(t + 1) * ffn];
                gated_act(g, &s.up[t * ffn..(t + 1) * ffn], c.activation);
                if let Some(sub) = &layer.ffn_sub_norm {
                    rmsnorm_inplace(g, sub, c.norm_eps);
                }
            }
            // x += w_down(h)
            linear(
                &layer.w_down,
                &s.gate,
                n,
                lin_eps,
                &mut s.lin,
                &mut s.proj,
                (l, QuantSite::Down),
            );
            for (xi, pi) in s.x[..n * dim].iter_mut().zip(&s.proj[..n * dim]) {
                *xi += pi;
            }
        }
    }

    /// Final norm and head for residual rows `rows` of the last pass, into `state.logits`
    /// (the i-th row given lands at logits row i).
    pub(crate) fn head(&self, s: &mut State, rows: impl IntoIterator<Item = usize>) {
        let c = &self.config;
        let dim = c.dim;
        let mut k = 0;
        for (i, t) in rows.into_iter().enumerate() {
            rmsnorm(
                &s.x[t * dim..(t + 1) * dim],
                &self.weights.output_norm,
                c.norm_eps,
                &mut s.xb[i * dim..(i + 1) * dim],
            );
            k = i + 1;
        }
        let head = self.weights.head();
        let v = c.vocab_size;
        if k == 1 {
            head.matvec(&s.xb[..dim], &mut s.logits[..v]);
        } else if k > 1 {
            head.matmul(&s.xb[..k * dim], k, &mut s.logits[..k * v]);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Heads of a GQA group taken together give bit for bit what one head at a time gives.
    #[test]
    fn grouped_attention_is_bit_identical_per_head() {
        let (hd, n_heads, n_kv, n, p0) = (8, 8, 2, 5, 3);
        let (q_stride, kv_stride, ctx) = (n_heads * hd, n_kv * hd, p0 + n);
        let mut seed = 12345u32;
        let mut rnd = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
                })
                .collect()
        };
        let (q, kc, vc) = (
            rnd(n * q_stride),
            rnd(ctx * kv_stride),
            rnd(ctx * kv_stride),
        );
        let isa = bitnet_kernels::active_isa();
        let scale = (1.0 / (hd as f64).sqrt()) as f32;
        // Heads 4..8 share KV head 1 (offset hd).
        let mut sc: Vec<Vec<f32>> = vec![vec![0.0; ctx]; 4];
        let mut out: Vec<Vec<f32>> = vec![vec![0.0; n * hd]; 4];
        {
            let mut scs: Vec<&mut [f32]> = sc.iter_mut().map(|v| &mut v[..]).collect();
            let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|v| &mut v[..]).collect();
            super::attend_heads(
                isa,
                &q,
                q_stride,
                4,
                &kc,
                &vc,
                kv_stride,
                hd,
                hd,
                n,
                p0,
                &super::Contiguous,
                scale,
                &mut scs,
                &mut outs,
            );
        }
        for (j, grouped) in out.iter().enumerate() {
            let mut s1 = vec![0.0; ctx];
            let mut o1 = vec![0.0; n * hd];
            super::attend_heads(
                isa,
                &q,
                q_stride,
                4 + j,
                &kc,
                &vc,
                kv_stride,
                hd,
                hd,
                n,
                p0,
                &super::Contiguous,
                scale,
                &mut [&mut s1[..]],
                &mut [&mut o1[..]],
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(grouped), bits(&o1), "head {}", 4 + j);
            assert!(o1.iter().any(|&x| x != 0.0));
        }
    }

    #[test]
    fn heads_per_task_balances_threads() {
        // 2B4T: 20 heads in groups of 4.
        assert_eq!(super::heads_per_task(4, 20, 1), 4);
        assert_eq!(super::heads_per_task(4, 20, 2), 2);
        assert_eq!(super::heads_per_task(4, 20, 4), 1);
        assert_eq!(super::heads_per_task(4, 20, 5), 4);
        // No GQA: one head per task.
        assert_eq!(super::heads_per_task(1, 12, 2), 1);
        // Groups larger than MAX_GROUP_TASK are split.
        assert_eq!(super::heads_per_task(16, 32, 1), 8);
    }
}
