//! Tokenizers and chat templates for BitNet-Rust.
//!
//! One trait, [`Tokenizer`], over every source a user may have:
//! - a tiktoken-format `tokenizer.model` (Llama 3, used by BitNet b1.58 2B4T) — [`tiktoken`];
//! - a SentencePiece `tokenizer.model` (protobuf) — [`sentencepiece`];
//! - a Hugging Face `tokenizer.json` (through the `tokenizers` crate) — [`hf`];
//! - the vocabulary embedded in a GGUF (`gpt2` BPE or `llama` SentencePiece) — [`gguf_vocab`];
//! - a model directory holding one of those plus its JSON configs — [`load_tokenizer`].
//!
//! The GGUF, tiktoken and SentencePiece paths share one engine ([`core::CoreTokenizer`]) that
//! reproduces llama.cpp's tokenizer (its test vectors pass exactly). [`StreamDecoder`] turns ids
//! into text incrementally without ever splitting a UTF-8 character. [`chat`] renders
//! conversations into prompts.
//!
//! ```no_run
//! use bitnet_tokenizer::chat::{ChatTemplate, Message};
//! use bitnet_tokenizer::{load_tokenizer, StreamDecoder};
//!
//! # fn main() -> bitnet_tokenizer::Result<()> {
//! let loaded = load_tokenizer("models/bitnet-b1.58-2B-4T")?; // or a .gguf / tokenizer.json / tokenizer.model
//! let tok = loaded.tokenizer.as_ref();
//! // Raw text: special-token spellings stay text.
//! let ids = tok.encode("Hello world", tok.add_bos_default(), false)?;
//! // Chat: the template adds BOS and markers; encode with parse_special = true, no extra BOS.
//! let chat = ChatTemplate::from_loaded(&loaded)?;
//! if let Some(note) = chat.override_note() {
//!     eprintln!("note: {note}");
//! }
//! let prompt = chat.render(&[Message::system("Be brief."), Message::user("Hi!")], true)?;
//! let prompt_ids = tok.encode(&prompt, false, true)?;
//! // Streaming output of generated ids (continuing after a prompt: no space stripping).
//! let mut stream = StreamDecoder::new(false, false);
//! for &id in &ids {
//!     if tok.is_eog(id) {
//!         break;
//!     }
//!     print!("{}", stream.push(tok, id));
//! }
//! print!("{}", stream.finish());
//! # let _ = prompt_ids;
//! # Ok(())
//! # }
//! ```

pub mod bpe;
pub mod bytelevel;
pub mod chat;
pub mod core;
pub mod error;
mod fxhash;
pub mod gguf_vocab;
pub mod hf;
pub mod loader;
pub mod pretok;
pub mod sentencepiece;
pub mod special;
pub mod spm;
pub mod stream;
pub mod tiktoken;

pub use error::{Result, TokenizerError};
pub use loader::{load_tokenizer, LoadedTokenizer};
pub use stream::StreamDecoder;

/// Special token ids and the default BOS/EOS behaviour of a vocabulary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence (end of text).
    pub eos: Option<u32>,
    /// End of turn (`<|eot_id|>` in Llama 3 chat).
    pub eot: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
    /// Unknown.
    pub unk: Option<u32>,
    /// Every id that ends generation (eos, eot and similar), sorted, deduplicated.
    pub eog: Vec<u32>,
    /// Whether prompts get BOS by default.
    pub add_bos: bool,
    /// Whether prompts get EOS by default.
    pub add_eos: bool,
}

impl SpecialTokens {
    /// Recompute `eog` from eos/eot plus `extra`.
    pub fn finish_eog(&mut self, extra: &[u32]) {
        let mut v: Vec<u32> = self.eos.into_iter().chain(self.eot).collect();
        v.extend_from_slice(extra);
        v.sort_unstable();
        v.dedup();
        self.eog = v;
    }
}

/// A piece of a prompt: its text and whether special-token spellings in it become special
/// tokens (template scaffolding: yes; message contents: no).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// Parse special-token spellings in this piece.
    pub parse_special: bool,
}

impl Segment {
    /// A segment whose special-token spellings are parsed.
    pub fn special(text: impl Into<String>) -> Segment {
        Segment {
            text: text.into(),
            parse_special: true,
        }
    }
    /// A segment of raw text.
    pub fn raw(text: impl Into<String>) -> Segment {
        Segment {
            text: text.into(),
            parse_special: false,
        }
    }
}

/// A tokenizer: text ↔ token ids.
pub trait Tokenizer: Send + Sync {
    /// Encode `text`. `add_bos` prepends the BOS id (if the vocabulary has one).
    /// `parse_special`: spell-outs of control tokens in the text (e.g. `<|eot_id|>`) become
    /// those tokens; when false (raw user text) they are tokenized as ordinary text.
    fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>>;

    /// Encode the concatenation of `segments` as one text, parsing special-token spellings
    /// only inside segments that allow it (so user text inside a chat prompt can never turn
    /// into control tokens). The default encodes segment by segment, which can differ from
    /// whole-text encoding at segment boundaries; the built-in tokenizers override it.
    fn encode_segments(&self, segments: &[Segment], add_bos: bool) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            out.extend(self.encode(&s.text, add_bos && i == 0, s.parse_special)?);
        }
        if add_bos && segments.is_empty() {
            out.extend(self.encode("", true, false)?);
        }
        Ok(out)
    }

    /// The bytes token `id` stands for. Control/unknown tokens give their text when
    /// `render_special`, else nothing. Out-of-range ids give nothing.
    fn token_to_piece(&self, id: u32, render_special: bool) -> Vec<u8>;

    /// Whether decoding strips one leading space from the first token (SentencePiece's dummy
    /// prefix).
    fn strips_leading_space(&self) -> bool {
        false
    }

    /// Decode ids to text (invalid UTF-8 becomes U+FFFD). Control tokens are dropped unless
    /// `render_special`.
    fn decode(&self, ids: &[u32], render_special: bool) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(&self.token_to_piece(id, render_special));
        }
        let s = if self.strips_leading_space() && bytes.first() == Some(&b' ') {
            &bytes[1..]
        } else {
            &bytes[..]
        };
        String::from_utf8_lossy(s).into_owned()
    }

    /// Number of ids (including special tokens).
    fn vocab_size(&self) -> usize;

    /// The vocabulary string of a token as stored by its source (e.g. `Ġthe`, `▁the`,
    /// `<|eot_id|>`).
    fn id_to_token(&self, id: u32) -> Option<String>;

    /// The id of a token given its vocabulary string (exact match), e.g. `"<|eot_id|>"`.
    fn token_to_id(&self, token: &str) -> Option<u32>;

    /// Whether `id` is a control (or unknown) token, i.e. not text.
    fn is_special(&self, id: u32) -> bool;

    /// Special ids and add-BOS/EOS defaults.
    fn special_tokens(&self) -> &SpecialTokens;

    /// Whether prompts get BOS by default (`special_tokens().add_bos`).
    fn add_bos_default(&self) -> bool {
        self.special_tokens().add_bos
    }

    /// Whether `id` ends generation.
    fn is_eog(&self, id: u32) -> bool {
        self.special_tokens().eog.binary_search(&id).is_ok()
    }

    /// One-line description of the tokenizer kind (for `inspect` and logs).
    fn describe(&self) -> String;
}
