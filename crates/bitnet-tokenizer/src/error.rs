//! Typed errors of the tokenizer crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading a tokenizer, encoding text or rendering a chat.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Reading a file failed. (The I/O error is part of the message, not a separate
    /// `source()`, so error chains do not print it twice.)
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file exists but its content is not what its format requires.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// A GGUF key is missing or has the wrong type.
    #[error("{path}: GGUF key `{key}`: {msg}")]
    GgufKey {
        path: PathBuf,
        key: String,
        msg: String,
    },
    /// The GGUF reader itself failed.
    #[error(transparent)]
    Gguf(#[from] bitnet_gguf::GgufError),
    /// Nothing we know how to load at that path.
    #[error("{path}: {msg}")]
    Unsupported { path: PathBuf, msg: String },
    /// An error from the `tokenizers` crate (HF tokenizer.json).
    #[error("tokenizer.json: {0}")]
    Hf(String),
    /// A pre-tokenizer regex failed (bad pattern or backtracking limit).
    #[error("pre-tokenizer regex: {0}")]
    Regex(String),
    /// A token id outside the vocabulary.
    #[error("token id {id} is out of range (vocabulary size {vocab_size})")]
    BadId { id: u32, vocab_size: usize },
    /// A chat template failed to parse or render.
    #[error("chat template: {0}")]
    Template(String),
}

/// Result alias of this crate.
pub type Result<T, E = TokenizerError> = std::result::Result<T, E>;

impl TokenizerError {
    pub(crate) fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        TokenizerError::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
