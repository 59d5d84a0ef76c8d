//! The batched engine: many sequences per forward step over a paged KV cache.
//!
//! * [`kv`]: KV block bookkeeping — a pool of fixed-size blocks, reference counts (sequences
//!   that share a prefix share its blocks) and a prefix cache.
//! * [`backend`]: the [`Backend`] trait one step runs through, and [`CpuBackend`] over
//!   bitnet-model's kernels.
//! * [`engine`]: [`Engine`], the scheduler and step loop (continuous batching, chunked
//!   prefill, admission by free blocks, preemption by recompute, cancellation, `n > 1`).
//! * [`grammar`]: structured output — JSON schemas, Lark grammars and regexes compiled by
//!   llguidance into per-sequence logit masks.
//! * [`handle`]: [`EngineHandle`], the engine on its own thread with per-request event
//!   channels, text and stop strings.
//!
//! A sequence's logits inside any batch are bit-identical to the same sequence run alone
//! through `Model::forward` (every row is computed on its own; attention reads only the
//! sequence's blocks).

pub mod backend;
pub mod engine;
pub mod grammar;
pub mod handle;
pub mod kv;
mod request;
mod sequence;

pub use backend::{Backend, CpuBackend, Geometry};
pub use engine::{Engine, EngineConfig, EngineStats};
pub use grammar::{Constraint, GrammarCompiler};
pub use handle::{ChoiceEvent, EngineHandle, EventResult, Submission};
pub use request::{Logprob, Request, RequestId, TokenEvent};

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("token id {token} is out of range (vocabulary size {vocab})")]
    TokenOutOfRange { token: u32, vocab: usize },
    #[error("the prompt has {prompt} tokens; the context holds {context}")]
    PromptTooLong { prompt: usize, context: usize },
    #[error("n = {n}: must be between 1 and {max}")]
    BadN { n: usize, max: usize },
    #[error("stop strings must not be empty")]
    EmptyStopString,
    #[error("{0}")]
    Sampling(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error(transparent)]
    Model(#[from] bitnet_model::ModelError),
    #[error("backend: {0}")]
    Backend(String),
    #[error("grammar: {0}")]
    Grammar(String),
}
