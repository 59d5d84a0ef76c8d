//! The two small interfaces the generation loop needs: a model with a KV cache and a
//! streaming detokenizer. The real model and tokenizer crates are adapted to them.

/// A causal language model with a KV cache (one sequence).
///
/// Contract: the cache holds `position()` tokens; [`LanguageModel::prefill`] appends a batch of
/// tokens at positions `position()..position() + tokens.len()` and returns the logits
/// (`[vocab_size]`) after the last one; [`LanguageModel::decode`] appends one token. The loop
/// never asks for more than `context_length()` positions in total.
pub trait LanguageModel {
    /// The model's error type (boxed into [`super::GenerateError::Model`]).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Number of logits per position.
    fn vocab_size(&self) -> usize;

    /// KV cache capacity in positions.
    fn context_length(&self) -> usize;

    /// Tokens currently in the KV cache; the next token goes at this position.
    fn position(&self) -> usize;

    /// Runs `tokens` (non-empty) in one batched pass after the cached ones and returns the
    /// last position's logits, `[vocab_size]`.
    fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], Self::Error>;

    /// Runs one token after the cached ones and returns its logits, `[vocab_size]`.
    fn decode(&mut self, token: u32) -> Result<&[f32], Self::Error> {
        self.prefill(&[token])
    }

    /// Empties the KV cache (`position()` becomes 0).
    fn reset(&mut self);
}

/// Streaming detokenizer: token ids in, text out, never splitting a UTF-8 character
/// (bytes of an incomplete character are held back until a later token completes it).
pub trait TokenDecoder {
    /// Feeds one token; returns the text that became complete (possibly empty).
    fn push(&mut self, token: u32) -> String;

    /// End of stream: returns whatever is held back (an incomplete character as U+FFFD).
    fn finish(&mut self) -> String;
}
