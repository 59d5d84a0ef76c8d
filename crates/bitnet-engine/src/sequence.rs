//! One running continuation: its tokens, its block table and its sampler.

use std::sync::Arc;

use bitnet_generate::Sampler;

use crate::kv::BlockHash;
use crate::request::RequestId;

/// Settings shared by every choice of a request.
#[derive(Debug)]
pub(crate) struct SeqParams {
    pub(crate) max_tokens: Option<usize>,
    pub(crate) stop_tokens: Vec<u32>,
    pub(crate) logprobs: Option<usize>,
    pub(crate) prompt_len: usize,
}

pub(crate) type SeqId = u64;

/// A sequence in the engine: waiting (nothing computed or preempted) or running.
pub(crate) struct Seq {
    pub(crate) request: RequestId,
    pub(crate) index: usize,
    /// Prompt then generated tokens. The last one is not in the KV cache yet while decoding.
    pub(crate) tokens: Vec<u32>,
    /// Tokens whose keys and values are in the cache (positions `0..computed`).
    pub(crate) computed: usize,
    /// Block table: position p lives in `blocks[p / block_size]`.
    pub(crate) blocks: Vec<u32>,
    /// Prefix-cache hashes of the leading full blocks registered so far.
    pub(crate) hashes: Vec<BlockHash>,
    pub(crate) sampler: Sampler,
    pub(crate) params: Arc<SeqParams>,
    /// Choices still to fork from this one once its prompt is computed (`n − 1`).
    pub(crate) forks: usize,
    /// Admission order (older first); preemption takes the newest.
    pub(crate) arrival: u64,
    /// Prompt tokens taken from the prefix cache at the last admission.
    pub(crate) cached_tokens: usize,
    /// Whether this choice has produced its first event.
    pub(crate) started: bool,
    /// Grammar state for structured output.
    pub(crate) constraint: Option<crate::grammar::Constraint>,
}

impl Seq {
    /// Tokens generated so far.
    pub(crate) fn generated(&self) -> usize {
        self.tokens.len() - self.params.prompt_len
    }

    /// Tokens to compute before the next logits.
    pub(crate) fn pending(&self) -> usize {
        self.tokens.len() - self.computed
    }
}
