//! The generation loop: one batched prefill of the prompt, then sample → detokenize → check
//! stops → decode, token by token.
//!
//! Generic over [`LanguageModel`] (KV-cached forward passes) and [`TokenDecoder`] (streaming,
//! UTF-8-safe detokenization) so it does not depend on the model or tokenizer crates.

mod run;
mod session;
mod stop;
mod timings;
mod traits;

pub use run::{generate, FinishReason, GenerateConfig, Generation, StopReason};
pub use session::Session;
pub use timings::Timings;
pub use traits::{LanguageModel, TokenDecoder};

use crate::sampling::SamplingError;

/// Errors of [`generate`]. Hitting a limit is not an error: it is a [`FinishReason`].
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// No prompt tokens: there is nothing to compute next-token logits from.
    #[error("the prompt is empty: at least one token is needed to start generating")]
    EmptyPrompt,
    /// The prompt does not fit in what is left of the context.
    #[error(
        "the prompt of {prompt} tokens does not fit in the context: {used} of {context} \
         positions are already in use"
    )]
    PromptTooLong {
        /// Prompt tokens.
        prompt: usize,
        /// Positions already in the KV cache.
        used: usize,
        /// The model's context length.
        context: usize,
    },
    /// A stop string is empty (it would match everywhere).
    #[error("stop string #{index} is empty")]
    EmptyStopString {
        /// Its index in [`GenerateConfig::stop_strings`].
        index: usize,
    },
    /// The sampler and the model disagree on the vocabulary size.
    #[error(
        "the sampler was built for {sampler} tokens but the model has a vocabulary of {model}"
    )]
    VocabMismatch {
        /// [`crate::Sampler::vocab_size`].
        sampler: usize,
        /// [`LanguageModel::vocab_size`].
        model: usize,
    },
    /// Sampling failed (e.g. every logit was banned).
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The model's forward pass failed.
    #[error("model forward pass failed: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
}
