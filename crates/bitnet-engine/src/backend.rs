//! The boundary between the scheduler and the hardware: a backend runs one batched forward
//! step over the paged KV cache it owns. The CPU backend wraps bitnet-model's kernels; a GPU
//! backend implements the same trait.

use std::sync::Arc;

use bitnet_model::{KvType, Model, Segment, State};

use crate::EngineError;

/// Sizes a backend was built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Logits per token.
    pub vocab_size: usize,
    /// KV blocks in the pool.
    pub n_blocks: usize,
    /// Positions per block (a power of two).
    pub block_size: usize,
    /// Most tokens in one step, over all sequences.
    pub max_batch_tokens: usize,
    /// Most rows of logits one step returns (= most sequences in one step).
    pub max_seqs: usize,
    /// Most positions of one sequence.
    pub max_context: usize,
}

/// One batched forward step over a paged KV cache.
pub trait Backend: Send {
    /// The sizes this backend holds.
    fn geometry(&self) -> Geometry;

    /// Run every segment (see [`Segment`]) and return the logits of the last token of each
    /// segment with `logits: true`, in order, `[k × vocab]`.
    fn step(&mut self, segs: &[Segment<'_>]) -> Result<&[f32], EngineError>;

    /// Copy the keys and values of block `src` onto block `dst` (copy-on-write).
    fn copy_block(&mut self, src: u32, dst: u32) -> Result<(), EngineError>;
}

/// The CPU backend: bitnet-model's forward pass on the kernels' thread pool.
pub struct CpuBackend {
    model: Arc<Model>,
    state: State,
    geometry: Geometry,
}

impl CpuBackend {
    /// A backend whose KV pool holds `n_blocks` blocks of `block_size` positions (f32),
    /// running up to `max_batch_tokens` tokens of up to `max_seqs` sequences per step, each
    /// sequence up to `max_context` positions.
    pub fn new(
        model: Arc<Model>,
        n_blocks: usize,
        block_size: usize,
        max_batch_tokens: usize,
        max_seqs: usize,
        max_context: usize,
    ) -> Result<Self, EngineError> {
        let state = State::paged(
            &model.config,
            n_blocks,
            block_size,
            max_batch_tokens,
            max_seqs,
            max_context,
            KvType::F32,
        )?;
        let geometry = Geometry {
            vocab_size: model.config.vocab_size,
            n_blocks,
            block_size,
            max_batch_tokens: state.max_batch(),
            max_seqs: state.logit_rows(),
            max_context: state.context(),
        };
        Ok(Self {
            model,
            state,
            geometry,
        })
    }

    /// Bytes of one KV block (keys and values of every layer, f32).
    pub fn block_bytes(model: &Model, block_size: usize) -> usize {
        let c = &model.config;
        2 * 4 * c.n_layers * block_size * c.kv_dim()
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
}

impl Backend for CpuBackend {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn step(&mut self, segs: &[Segment<'_>]) -> Result<&[f32], EngineError> {
        Ok(self.model.forward_paged(&mut self.state, segs)?)
    }

    fn copy_block(&mut self, src: u32, dst: u32) -> Result<(), EngineError> {
        Ok(self.state.copy_block(src as usize, dst as usize)?)
    }
}
