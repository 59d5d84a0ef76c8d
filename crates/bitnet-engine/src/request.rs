//! What a caller asks the engine for and what it gets back, token by token.

use bitnet_generate::{FinishReason, SamplerConfig};

/// Identifies a request for its whole life in the engine.
pub type RequestId = u64;

/// One generation request: `n` continuations of one prompt.
#[derive(Clone, Debug)]
pub struct Request {
    /// Prompt token ids (non-empty).
    pub prompt: Vec<u32>,
    /// Sampling settings; with `n > 1` choice `i` uses `seed + i` when a seed is given.
    pub sampling: SamplerConfig,
    /// Most tokens to generate per choice (including a final stop token); `None`: until a
    /// stop or the context is full.
    pub max_tokens: Option<usize>,
    /// Token ids that end a choice (EOS, EOT…); empty to ignore them.
    pub stop_tokens: Vec<u32>,
    /// Number of choices (≥ 1). The prompt is computed once; the choices share its KV blocks.
    pub n: usize,
    /// With `Some(k)`: every generated token gets its log-probability under the model and the
    /// `k` most likely alternatives (the raw distribution, before sampling settings).
    pub logprobs: Option<usize>,
    /// Structured output: only tokens this grammar allows are sampled (see
    /// [`crate::GrammarCompiler`]); a choice ends when the grammar is complete.
    pub constraint: Option<crate::grammar::Constraint>,
}

impl Request {
    /// A request for one greedy-or-sampled continuation with no stop tokens.
    pub fn new(prompt: Vec<u32>, sampling: SamplerConfig, max_tokens: Option<usize>) -> Self {
        Self {
            prompt,
            sampling,
            max_tokens,
            stop_tokens: Vec::new(),
            n: 1,
            logprobs: None,
            constraint: None,
        }
    }
}

/// Log-probability of a generated token and the most likely alternatives at its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Logprob {
    /// `ln p(token)`.
    pub logprob: f32,
    /// `(token, ln p)` of the most likely tokens, most likely first (ties: lower id).
    pub top: Vec<(u32, f32)>,
}

/// One generated token of one choice (or the end of a choice without a token).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEvent {
    pub request: RequestId,
    /// Choice index, `0..n`.
    pub index: usize,
    /// The token, `None` when the choice ended without producing one (e.g. cancelled, or
    /// `max_tokens: Some(0)`).
    pub token: Option<u32>,
    pub logprob: Option<Logprob>,
    /// Set on the last event of a choice.
    pub finish: Option<FinishReason>,
    /// Prompt tokens of the request (for usage figures).
    pub prompt_tokens: usize,
    /// Prompt tokens found in the prefix cache instead of computed (first token of a choice).
    pub cached_tokens: usize,
}
