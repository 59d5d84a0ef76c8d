//! The generation loop: one batched prefill of the prompt, then sample → detokenize → check
//! stops → decode, token by token.
//!
//! Generic over [`LanguageModel`] (KV-cached forward passes) and [`TokenDecoder`] (streaming,
//! UTF-8-safe detokenization) so it does not depend on the model or tokenizer crates.
//!
//! ```
//! use bitnet_generate::{
//!     generate, GenerateConfig, LanguageModel, Sampler, SamplerConfig, TokenDecoder,
//! };
//!
//! /// A toy model over 4 tokens that always predicts `(last + 1) % 4`.
//! struct Counter { pos: usize, logits: [f32; 4] }
//!
//! impl LanguageModel for Counter {
//!     type Error = std::io::Error;
//!     fn vocab_size(&self) -> usize { 4 }
//!     fn context_length(&self) -> usize { 16 }
//!     fn position(&self) -> usize { self.pos }
//!     fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], Self::Error> {
//!         self.pos += tokens.len();
//!         self.logits = [0.0; 4];
//!         self.logits[(*tokens.last().unwrap() as usize + 1) % 4] = 5.0;
//!         Ok(&self.logits)
//!     }
//!     fn reset(&mut self) { self.pos = 0; }
//! }
//!
//! /// Token `t` reads as the letter `a + t`.
//! struct Letters;
//! impl TokenDecoder for Letters {
//!     fn push(&mut self, t: u32) -> String { char::from(b'a' + t as u8).to_string() }
//!     fn finish(&mut self) -> String { String::new() }
//! }
//!
//! let mut model = Counter { pos: 0, logits: [0.0; 4] };
//! let mut sampler = Sampler::new(SamplerConfig::greedy(), 4)?;
//! let config = GenerateConfig { max_tokens: Some(10), stop_strings: vec!["da".into()], ..Default::default() };
//! let out = generate(&mut model, &mut sampler, &mut Letters, &[0], &config, |chunk| print!("{chunk}"))?;
//! assert_eq!(out.tokens, [1, 2, 3, 0]);
//! assert_eq!(out.text, "bc"); // "bcda": the text before the stop string "da"
//! assert_eq!(out.finish_reason.as_str(), "stop");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod run;
mod session;
mod stop;
mod timings;
mod traits;

pub use run::{generate, FinishReason, GenerateConfig, Generation, StopReason};
pub use session::Session;
pub use stop::{Scan, StopMatcher};
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
