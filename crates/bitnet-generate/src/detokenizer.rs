//! [`TokenDecoder`] for bitnet-tokenizer: a tokenizer plus its UTF-8-safe stream decoder.

use bitnet_tokenizer::{StreamDecoder, Tokenizer};

use crate::generate::TokenDecoder;

/// Streams the text of generated tokens through `bitnet_tokenizer::StreamDecoder`.
pub struct Detokenizer<'t> {
    tokenizer: &'t dyn Tokenizer,
    stream: StreamDecoder,
}

impl<'t> Detokenizer<'t> {
    /// A detokenizer continuing after a prompt: no leading-space stripping, control tokens
    /// dropped unless `render_special`.
    pub fn new(tokenizer: &'t dyn Tokenizer, render_special: bool) -> Self {
        Self::with_stream(tokenizer, StreamDecoder::new(false, render_special))
    }

    /// A detokenizer with a custom stream decoder (e.g. one stripping SentencePiece's leading
    /// space when generating from BOS alone).
    pub fn with_stream(tokenizer: &'t dyn Tokenizer, stream: StreamDecoder) -> Self {
        Self { tokenizer, stream }
    }
}

impl TokenDecoder for Detokenizer<'_> {
    fn push(&mut self, token: u32) -> String {
        self.stream.push(self.tokenizer, token)
    }

    fn finish(&mut self) -> String {
        self.stream.finish()
    }
}
