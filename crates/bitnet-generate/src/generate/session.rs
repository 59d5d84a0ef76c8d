//! [`Session`]: multi-turn generation over one KV cache (for `bitnet chat`).

use super::{generate, GenerateConfig, GenerateError, Generation, LanguageModel, TokenDecoder};
use crate::sampling::Sampler;

/// A conversation over one KV cache. [`generate`] leaves the last generated token of a
/// reply un-fed (it may end the conversation); the session feeds it in front of the next
/// turn's tokens, so each turn only prefills what is new.
pub struct Session<M: LanguageModel> {
    model: M,
    /// Last token of the previous reply, not yet in the KV cache.
    pending: Option<u32>,
    /// Every token of the conversation so far (in the cache, plus `pending`).
    tokens: Vec<u32>,
}

impl<M: LanguageModel> Session<M> {
    /// A session starting from the model's current cache, which must be empty
    /// (`model.position() == 0`; call `reset` on it first otherwise).
    pub fn new(mut model: M) -> Self {
        model.reset();
        Self {
            model,
            pending: None,
            tokens: Vec::new(),
        }
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Every token of the conversation so far (prompts and replies, in order).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Positions still free: how many more tokens (next prompt plus reply) fit in the
    /// context.
    pub fn remaining(&self) -> usize {
        let used = self.model.position() + usize::from(self.pending.is_some());
        self.model.context_length().saturating_sub(used)
    }

    /// Forgets the conversation (empties the KV cache).
    pub fn reset(&mut self) {
        self.model.reset();
        self.pending = None;
        self.tokens.clear();
    }

    /// Runs one turn: prefills the previous reply's last token and `new_tokens` (the next
    /// turn's prompt, e.g. a rendered user message and assistant header), then generates.
    ///
    /// A turn that does not fit fails with [`GenerateError::PromptTooLong`] before anything
    /// runs, leaving the session unchanged (the caller may [`Session::reset`] and retry).
    /// After any other error the cache content is unknown: reset before the next turn.
    pub fn turn<D, F>(
        &mut self,
        sampler: &mut Sampler,
        decoder: &mut D,
        new_tokens: &[u32],
        config: &GenerateConfig,
        on_text: F,
    ) -> Result<Generation, GenerateError>
    where
        D: TokenDecoder + ?Sized,
        F: FnMut(&str),
    {
        let mut prompt = Vec::with_capacity(new_tokens.len() + 1);
        prompt.extend(self.pending);
        prompt.extend_from_slice(new_tokens);
        let start = self.model.position();
        let generation = generate(&mut self.model, sampler, decoder, &prompt, config, on_text)?;
        if self.model.position() == start {
            // Cancelled before the prefill: nothing was consumed.
            return Ok(generation);
        }
        self.tokens.extend_from_slice(new_tokens);
        self.tokens.extend_from_slice(&generation.tokens);
        self.pending = generation.tokens.last().copied();
        Ok(generation)
    }
}
