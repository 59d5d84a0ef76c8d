//! Test doubles shared by the integration tests: a mock model and a byte-level decoder.
#![allow(dead_code)]

use bitnet_generate::{LanguageModel, TokenDecoder};

#[derive(Debug)]
pub struct MockError(String);

impl std::fmt::Display for MockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MockError {}

/// Logits: 10 for `(last + 1) % vocab`, 0 elsewhere (or all 0 when `flat`). Records every
/// call and refuses (with an error) to go past its context, like a real KV cache.
pub struct Mock {
    pub vocab: usize,
    pub context: usize,
    pub pos: usize,
    pub flat: bool,
    /// Fail the n-th decode call (0-based).
    pub fail_decode_at: Option<usize>,
    /// `[vocab]`.
    pub logits: Vec<f32>,
    pub prefills: Vec<(usize, Vec<u32>)>,
    pub decodes: Vec<(usize, u32)>,
}

impl Mock {
    pub fn new(vocab: usize, context: usize) -> Self {
        Self {
            vocab,
            context,
            pos: 0,
            flat: false,
            fail_decode_at: None,
            logits: vec![0.0; vocab],
            prefills: Vec::new(),
            decodes: Vec::new(),
        }
    }

    fn run(&mut self, tokens: &[u32]) -> Result<&[f32], MockError> {
        let last = *tokens
            .last()
            .ok_or_else(|| MockError("empty batch".into()))?;
        if self.pos + tokens.len() > self.context {
            return Err(MockError(format!(
                "context overflow: {} + {} > {}",
                self.pos,
                tokens.len(),
                self.context
            )));
        }
        self.pos += tokens.len();
        self.logits.fill(0.0);
        if !self.flat {
            self.logits[(last as usize + 1) % self.vocab] = 10.0;
        }
        Ok(&self.logits)
    }
}

impl LanguageModel for Mock {
    type Error = MockError;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn context_length(&self) -> usize {
        self.context
    }
    fn position(&self) -> usize {
        self.pos
    }
    fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], MockError> {
        self.prefills.push((self.pos, tokens.to_vec()));
        self.run(tokens)
    }
    fn decode(&mut self, token: u32) -> Result<&[f32], MockError> {
        if self.fail_decode_at == Some(self.decodes.len()) {
            return Err(MockError("decode exploded".into()));
        }
        self.decodes.push((self.pos, token));
        self.run(&[token])
    }
    fn reset(&mut self) {
        self.pos = 0;
    }
}

/// Byte-level detokenizer over a piece table, holding back incomplete UTF-8 like the
/// tokenizer crate's stream decoder.
pub struct Pieces {
    pieces: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

impl Pieces {
    pub fn new(pieces: &[&[u8]]) -> Self {
        Self {
            pieces: pieces.iter().map(|p| p.to_vec()).collect(),
            pending: Vec::new(),
        }
    }
}

impl TokenDecoder for Pieces {
    fn push(&mut self, token: u32) -> String {
        self.pending
            .extend_from_slice(&self.pieces[token as usize % self.pieces.len()]);
        take_valid_utf8(&mut self.pending)
    }
    fn finish(&mut self) -> String {
        take_all(&mut self.pending)
    }
}

/// Remove and return the longest valid UTF-8 prefix of `pending` (an incomplete character
/// at the end stays for the next piece).
pub fn take_valid_utf8(pending: &mut Vec<u8>) -> String {
    let valid = match std::str::from_utf8(pending) {
        Ok(_) => pending.len(),
        Err(e) => e.valid_up_to(),
    };
    let out = String::from_utf8_lossy(&pending[..valid]).into_owned();
    pending.drain(..valid);
    out
}

/// Remove and return everything left in `pending` (invalid bytes as U+FFFD).
pub fn take_all(pending: &mut Vec<u8>) -> String {
    let out = String::from_utf8_lossy(pending).into_owned();
    pending.clear();
    out
}

/// Pieces of tokens 0..10.
pub const TEXT: [&[u8]; 10] = [
    b"<s>", b"A", b"Hel", b"lo ", b"wor", b"ld", b"!", b" more", b"x", b"<eos>",
];
