//! Run-time state: the KV cache and every scratch buffer, allocated once so that decoding a
//! token allocates nothing.

use bitnet_kernels::HugeBuf;
use std::sync::Mutex;

use crate::{Config, ModelError, Result};

/// Mutable state of one sequence: KV cache for `context` positions and activations for up to
/// `max_batch` tokens per pass (longer prompts are processed in chunks of `max_batch`).
pub struct State {
    pub(crate) context: usize,
    pub(crate) max_batch: usize,
    /// Rows of `logits`: the most positions `Logits::All` can return.
    pub(crate) logit_rows: usize,
    /// Positions `0..filled` of the KV cache hold valid keys/values.
    pub(crate) filled: usize,
    /// Tokens in the last chunk of the last pass.
    pub(crate) last_n: usize,
    /// Shape fingerprint of the config this state was made for.
    pub(crate) shape: [usize; 8],
    /// Rows of one layer's KV cache: `context` for one sequence, `n_blocks × block_size` for
    /// a paged cache.
    pub(crate) kv_rows: usize,
    /// Paged caches: `(n_blocks, log2 block_size)`.
    pub(crate) paging: Option<(usize, u32)>,

    /// `[max_batch × dim]` residual stream.
    pub(crate) x: Vec<f32>,
    /// `[max_batch × dim]` normalized residual (input of Q/K/V and of the FFN, final norm).
    pub(crate) xb: Vec<f32>,
    /// Scratch of one BitLinear call.
    pub(crate) lin: LinearScratch,
    /// `[max_batch × q_dim]` queries.
    pub(crate) q: Vec<f32>,
    /// `[max_batch × kv_dim]` keys of this pass.
    pub(crate) k: Vec<f32>,
    /// `[max_batch × kv_dim]` values of this pass.
    pub(crate) v: Vec<f32>,
    /// `[max_batch × q_dim]` attention output (sub-normed in place for BitNet).
    pub(crate) att: Vec<f32>,
    /// `[max_batch × dim]` output of `wo` / `w_down`.
    pub(crate) proj: Vec<f32>,
    /// `[max_batch × ffn_dim]` gate, then act(gate)·up.
    pub(crate) gate: Vec<f32>,
    /// `[max_batch × ffn_dim]` up projection.
    pub(crate) up: Vec<f32>,
    /// Per query head: attention scratch, so heads run in parallel without sharing buffers.
    pub(crate) heads: Vec<Mutex<HeadScratch>>,
    /// The KV cache.
    pub(crate) kv: KvCache,
    /// `[context × head_dim/2]` RoPE cosines.
    pub(crate) rope_cos: Vec<f32>,
    /// `[context × head_dim/2]` RoPE sines.
    pub(crate) rope_sin: Vec<f32>,
    /// `[logit_rows × vocab]` logits of the last pass.
    pub(crate) logits: Vec<f32>,
}

/// Element type of the KV cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvType {
    /// f32: exactly the values transformers attends over.
    #[default]
    F32,
    /// f16 (round to nearest even): half the memory; keys and values are rounded to 11
    /// significant bits, which moves logits slightly (values beyond ±65504 become infinite).
    F16,
}

/// Keys (after RoPE) and values, each `[n_layers × kv_rows × kv_dim]` (`kv_rows` = context,
/// or blocks × block size for a paged cache).
pub(crate) enum KvCache {
    F32 {
        k: Vec<f32>,
        v: Vec<f32>,
    },
    F16 {
        k: Vec<half::f16>,
        v: Vec<half::f16>,
    },
}

impl KvCache {
    fn new(kv: KvType, len: usize) -> KvCache {
        match kv {
            KvType::F32 => KvCache::F32 {
                k: vec![0.0; len],
                v: vec![0.0; len],
            },
            KvType::F16 => KvCache::F16 {
                k: vec![half::f16::ZERO; len],
                v: vec![half::f16::ZERO; len],
            },
        }
    }

    fn bytes(&self) -> usize {
        match self {
            KvCache::F32 { k, v } => (k.len() + v.len()) * 4,
            KvCache::F16 { k, v } => (k.len() + v.len()) * 2,
        }
    }

    /// Store one position's key and value rows at element offset `at`.
    pub(crate) fn write(&mut self, at: usize, key: &[f32], value: &[f32]) {
        match self {
            KvCache::F32 { k, v } => {
                k[at..at + key.len()].copy_from_slice(key);
                v[at..at + value.len()].copy_from_slice(value);
            }
            KvCache::F16 { k, v } => {
                for (d, &x) in k[at..at + key.len()].iter_mut().zip(key) {
                    *d = half::f16::from_f32(x);
                }
                for (d, &x) in v[at..at + value.len()].iter_mut().zip(value) {
                    *d = half::f16::from_f32(x);
                }
            }
        }
    }
}

/// One query head's attention buffers.
pub(crate) struct HeadScratch {
    /// `[context]` attention scores of one query.
    pub(crate) scores: Vec<f32>,
    /// `[max_batch × head_dim]` this head's output for each token of the pass.
    pub(crate) out: Vec<f32>,
}

/// Buffers a linear layer uses between its input and its output.
pub(crate) struct LinearScratch {
    /// `[max_batch × max_in]` a BitLinear's own input RMSNorm output (use_rms_norm).
    pub(crate) xn: Vec<f32>,
    /// `[max_batch × max_in]` int8 activations (64-byte aligned: AMX reads tile rows in place).
    pub(crate) xq: HugeBuf<i8>,
    /// `[max_batch]` activation scales.
    pub(crate) xs: Vec<f32>,
    /// `[max_batch]` position of each row of the current pass.
    pub(crate) positions: Vec<usize>,
    /// Test instrumentation: sees every activation quantization (see [`crate::hook`]).
    pub(crate) hook: Option<Box<dyn crate::hook::QuantHook>>,
}

/// Memory the system can still give (Linux `MemAvailable`); `None` where unknown.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

pub(crate) fn shape_of(c: &Config) -> [usize; 8] {
    [
        c.vocab_size,
        c.dim,
        c.ffn_dim,
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.rope_theta.to_bits() as usize,
    ]
}

impl State {
    /// Allocate a state for `context` KV positions and passes of up to `max_batch` tokens,
    /// able to return logits for all of them (`Logits::All`).
    pub fn new(config: &Config, context: usize, max_batch: usize) -> Result<State> {
        Self::with_logit_rows(config, context, max_batch, max_batch)
    }

    /// Like [`State::new`], with room for only `logit_rows` rows of logits (1 is enough for
    /// generation, which reads the last position's logits: saves `max_batch × vocab` floats).
    pub fn with_logit_rows(
        config: &Config,
        context: usize,
        max_batch: usize,
        logit_rows: usize,
    ) -> Result<State> {
        Self::with_kv(config, context, max_batch, logit_rows, KvType::F32)
    }

    /// Like [`State::with_logit_rows`], with the KV cache stored as `kv`.
    pub fn with_kv(
        config: &Config,
        context: usize,
        max_batch: usize,
        logit_rows: usize,
        kv: KvType,
    ) -> Result<State> {
        if context == 0 || max_batch == 0 || logit_rows == 0 {
            return Err(ModelError::Invalid(format!(
                "state needs a positive context, batch size and logit rows \
                 (got context {context}, batch {max_batch}, logit rows {logit_rows})"
            )));
        }
        let max_batch = max_batch.min(context);
        Self::build(config, context, context, None, max_batch, logit_rows, kv)
    }

    /// A state over a paged KV cache for many sequences at once (see
    /// [`Model::forward_paged`](crate::Model::forward_paged)): `n_blocks` blocks of
    /// `block_size` positions (a power of two) shared by all sequences, passes of up to
    /// `max_batch` tokens in all, `logit_rows` rows of logits per pass, and sequences of up
    /// to `max_context` positions.
    pub fn paged(
        config: &Config,
        n_blocks: usize,
        block_size: usize,
        max_batch: usize,
        logit_rows: usize,
        max_context: usize,
        kv: KvType,
    ) -> Result<State> {
        if n_blocks == 0 || !block_size.is_power_of_two() || max_batch == 0 || logit_rows == 0 {
            return Err(ModelError::Invalid(format!(
                "a paged state needs blocks, a power-of-two block size, a batch size and logit \
                 rows (got {n_blocks} blocks of {block_size}, batch {max_batch}, logit rows \
                 {logit_rows})"
            )));
        }
        let rows = n_blocks.checked_mul(block_size).ok_or_else(|| {
            ModelError::Invalid(format!(
                "{n_blocks} KV blocks of {block_size} positions overflow"
            ))
        })?;
        let max_context = max_context.clamp(1, rows);
        let paging = Some((n_blocks, block_size.trailing_zeros()));
        Self::build(config, max_context, rows, paging, max_batch, logit_rows, kv)
    }

    fn build(
        config: &Config,
        context: usize,
        kv_rows: usize,
        paging: Option<(usize, u32)>,
        max_batch: usize,
        logit_rows: usize,
        kv: KvType,
    ) -> Result<State> {
        let logit_rows = logit_rows.min(max_batch);
        let c = config;
        let too_big = || {
            ModelError::Invalid(format!(
                "a KV cache of {kv_rows} positions for this model is too large to allocate"
            ))
        };
        c.n_layers
            .checked_mul(kv_rows)
            .and_then(|v| v.checked_mul(c.kv_dim()))
            .and_then(|v| v.checked_mul(8))
            .filter(|&v| v <= isize::MAX as usize)
            .ok_or_else(too_big)?;
        let max_in = c.dim.max(c.ffn_dim).max(c.q_dim());
        let half = c.head_dim / 2;
        let cache = c.n_layers * kv_rows * c.kv_dim();
        // What this state will hold, checked against the memory the machine has free
        // before any of it is allocated.
        let elem = match kv {
            KvType::F32 => 4u128,
            KvType::F16 => 2,
        };
        let need: u128 = 2 * cache as u128 * elem
            + 4 * (2 * context as u128 * half as u128 + c.n_heads as u128 * context as u128)
            + 4 * max_batch as u128
                * (3 * c.dim + 2 * max_in + 3 * c.q_dim() + 2 * c.kv_dim() + 2 * c.ffn_dim) as u128
            + 4 * logit_rows as u128 * c.vocab_size as u128;
        if let Some(avail) = available_memory() {
            if need > avail as u128 {
                let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
                return Err(ModelError::Invalid(format!(
                    "a KV cache of {kv_rows} positions (context {context}) needs {:.1} GiB, more \
                     than the {:.1} GiB of memory available; use a smaller context (-c)",
                    gib(need),
                    gib(avail as u128)
                )));
            }
        }
        let mut rope_cos = vec![0f32; context * half];
        let mut rope_sin = vec![0f32; context * half];
        crate::ops::rope_table(
            c.rope_theta,
            c.head_dim,
            context,
            &mut rope_cos,
            &mut rope_sin,
        );
        Ok(State {
            context,
            max_batch,
            logit_rows,
            filled: 0,
            shape: shape_of(c),
            kv_rows,
            paging,
            x: vec![0.0; max_batch * c.dim],
            xb: vec![0.0; max_batch * c.dim],
            lin: LinearScratch {
                xn: vec![0.0; max_batch * max_in],
                xq: HugeBuf::filled(max_batch * max_in, 0),
                xs: vec![0.0; max_batch],
                positions: vec![0; max_batch],
                hook: None,
            },
            last_n: 0,
            q: vec![0.0; max_batch * c.q_dim()],
            k: vec![0.0; max_batch * c.kv_dim()],
            v: vec![0.0; max_batch * c.kv_dim()],
            att: vec![0.0; max_batch * c.q_dim()],
            proj: vec![0.0; max_batch * c.dim],
            gate: vec![0.0; max_batch * c.ffn_dim],
            up: vec![0.0; max_batch * c.ffn_dim],
            heads: (0..c.n_heads)
                .map(|_| {
                    Mutex::new(HeadScratch {
                        scores: vec![0.0; context],
                        out: vec![0.0; max_batch * c.head_dim],
                    })
                })
                .collect(),
            kv: KvCache::new(kv, cache),
            rope_cos,
            rope_sin,
            logits: vec![0.0; logit_rows * c.vocab_size],
        })
    }

    /// Paged states: the number of KV blocks and their size in positions.
    pub fn paging(&self) -> Option<(usize, usize)> {
        self.paging.map(|(n, shift)| (n, 1 << shift))
    }

    /// Paged states: copy KV block `src` onto block `dst` in every layer (copy-on-write of a
    /// shared, partly filled block).
    pub fn copy_block(&mut self, src: usize, dst: usize) -> Result<()> {
        let Some((n, shift)) = self.paging else {
            return Err(ModelError::Invalid(
                "copy_block on a state without paging".into(),
            ));
        };
        if src >= n || dst >= n {
            return Err(ModelError::Invalid(format!(
                "copy_block {src} -> {dst}: the cache has {n} blocks"
            )));
        }
        let kv_dim = self.shape[5] * self.shape[6];
        let block = (1usize << shift) * kv_dim;
        let layer = self.kv_rows * kv_dim;
        for l in 0..self.shape[3] {
            let (s0, d0) = (l * layer + src * block, l * layer + dst * block);
            match &mut self.kv {
                KvCache::F32 { k, v } => {
                    k.copy_within(s0..s0 + block, d0);
                    v.copy_within(s0..s0 + block, d0);
                }
                KvCache::F16 { k, v } => {
                    k.copy_within(s0..s0 + block, d0);
                    v.copy_within(s0..s0 + block, d0);
                }
            }
        }
        Ok(())
    }

    /// KV cache capacity in positions.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Most tokens processed in one batched pass.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Most positions `Logits::All` can return.
    pub fn logit_rows(&self) -> usize {
        self.logit_rows
    }

    /// Number of positions the KV cache holds; the next token goes at this position.
    pub fn pos(&self) -> usize {
        self.filled
    }

    /// Turn tracking of int8 rounding margins on or off (off by default; costs one extra pass
    /// over each quantized activation vector while on): installs a
    /// [`MarginTracker`](crate::hook::MarginTracker) as the quantization hook (replacing any
    /// other). See [`State::rounding_margin`].
    pub fn track_rounding_margin(&mut self, on: bool) {
        self.lin.hook = on.then(|| {
            Box::new(crate::hook::MarginTracker::default()) as Box<dyn crate::hook::QuantHook>
        });
    }

    /// With tracking on: for each token of the last pass (the last chunk of a long prompt), the
    /// smallest relative distance `|y − b| / |y|` between any of its quantized activations
    /// `y = x·s` and a rounding boundary `b` (…, −0.5, 0.5, 1.5, …). A margin of a few f32 ulps
    /// (≲ 1e-6) means a last-bit difference in the input could flip that rounding: another
    /// float32 implementation (transformers on CPU vs GPU, for one) may then legitimately
    /// disagree from this position on.
    pub fn rounding_margin(&self) -> Option<&[f32]> {
        let t = self
            .quant_hook()?
            .as_any()
            .downcast_ref::<crate::hook::MarginTracker>()?;
        Some(&t.margins[..self.last_n.min(t.margins.len())])
    }

    /// Install (or remove) the quantization hook; returns the previous one.
    pub fn set_quant_hook(
        &mut self,
        hook: Option<Box<dyn crate::hook::QuantHook>>,
    ) -> Option<Box<dyn crate::hook::QuantHook>> {
        std::mem::replace(&mut self.lin.hook, hook)
    }

    /// The quantization hook, to read what it collected.
    pub fn quant_hook(&self) -> Option<&dyn crate::hook::QuantHook> {
        self.lin.hook.as_deref()
    }

    /// Forget the sequence (keeps the allocation).
    pub fn reset(&mut self) {
        self.filled = 0;
    }

    /// Bytes allocated by this state.
    pub fn bytes(&self) -> usize {
        4 * (self.x.len()
            + self.xb.len()
            + self.lin.xn.len()
            + self.lin.xs.len()
            + self.q.len()
            + self.k.len()
            + self.v.len()
            + self.att.len()
            + self.proj.len()
            + self.gate.len()
            + self.up.len()
            + self
                .heads
                .iter()
                .map(|h| h.lock().map_or(0, |h| h.scores.len() + h.out.len()))
                .sum::<usize>()
            + self.rope_cos.len()
            + self.rope_sin.len()
            + self.logits.len())
            + self.lin.xq.len()
            + self.kv.bytes()
    }

    /// Element type of the KV cache.
    pub fn kv_type(&self) -> KvType {
        match self.kv {
            KvCache::F32 { .. } => KvType::F32,
            KvCache::F16 { .. } => KvType::F16,
        }
    }
}
