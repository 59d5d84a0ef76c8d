//! The error type of this crate.

use bitnet_quants::QuantError;

/// What went wrong while writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    // The cause is part of the message (not `source()`), so printed error chains do not
    // repeat it.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// GGUF serialization failed (I/O, or a tensor of the wrong size, naming it).
    #[error(transparent)]
    Gguf(#[from] bitnet_gguf::GgufError),
    /// A tensor generator wrote a different number of bytes than its declared size.
    #[error("tensor {name:?}: wrote {got} bytes, declared {expected}")]
    SizeMismatch {
        name: String,
        expected: u64,
        got: u64,
    },
    #[error("{0}")]
    Invalid(String),
}

impl ConvertError {
    /// Wrap an I/O error with the path it happened on.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> ConvertError {
        ConvertError::Io {
            path: path.display().to_string(),
            error: source,
        }
    }
}
