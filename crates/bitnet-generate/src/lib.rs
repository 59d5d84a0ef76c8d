//! Sampling and text generation for BitNet-Rust.
//!
//! * [`sampling`]: a llama.cpp-style sampler chain (logit bias → penalties → top-k → top-p →
//!   min-p → temperature → softmax → draw) with its own seeded PRNG and preallocated scratch
//!   buffers, so drawing a token never allocates.
//! * [`generate`]: the prefill + token-by-token decode loop, generic over the small
//!   [`generate::LanguageModel`] and [`generate::TokenDecoder`] traits, with stop tokens, stop
//!   strings, max-token and context limits, streaming text, timings and cancellation.
//! * [`ModelRunner`] (feature `model`, on by default): the [`LanguageModel`] implementation
//!   for bitnet-model's `Model` and its KV-cached `State`.
//! * [`perplexity`]: llama-perplexity's measurement (chunks, BOS, second half scored, PPL ±
//!   standard error) over any [`perplexity::ChunkScorer`]; `ModelScorer` for `Model`.
//! * `Detokenizer` (feature `tokenizer`, off by default): the [`TokenDecoder`] implementation
//!   over bitnet-tokenizer's UTF-8-safe `StreamDecoder`.

#[cfg(feature = "tokenizer")]
mod detokenizer;
pub mod generate;
#[cfg(feature = "model")]
mod model_runner;
pub mod perplexity;
pub mod sampling;

#[cfg(feature = "tokenizer")]
pub use detokenizer::Detokenizer;
#[cfg(feature = "model")]
pub use model_runner::ModelRunner;

pub use generate::{
    generate, FinishReason, GenerateConfig, GenerateError, Generation, LanguageModel, Scan,
    Session, StopMatcher, StopReason, Timings, TokenDecoder,
};

pub use sampling::{parse_logit_bias, Candidate, Sampler, SamplerConfig, SamplingError};
