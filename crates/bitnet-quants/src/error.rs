//! The error type of this crate.

use bitnet_gguf::GgmlType;

/// What went wrong while decoding or encoding a tensor. Decoders know the bytes but not the
/// tensor's name; callers add it with [`QuantError::with_tensor`].
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The type is not handled by the called function (e.g. Q4_K in [`crate::dequantize`]).
    #[error("{ty} is not supported {context}")]
    Unsupported {
        ty: GgmlType,
        /// Which operation and what it supports, e.g. "for dequantization (supported: F32, …)".
        context: &'static str,
    },
    /// The byte count does not match what the type and element count imply.
    #[error("{format} data of {n_elements} elements needs {expected} bytes, got {got}")]
    SizeMismatch {
        format: String,
        n_elements: u64,
        expected: u64,
        got: u64,
    },
    /// The shape does not fit the format (e.g. rows not a multiple of 4 for HF packing).
    #[error("{format}: {reason}")]
    BadShape { format: String, reason: String },
    /// A 2-bit code 3, which no ternary writer produces (codes 0, 1, 2 mean −1, 0, +1).
    #[error("{format}: invalid 2-bit code 3 for element {index} (codes 0, 1, 2 mean -1, 0, +1)")]
    InvalidCode { format: &'static str, index: u64 },
    /// A trit outside {−1, 0, +1} in a [`crate::Ternary`] given to an encoder.
    #[error("ternary value {value} at element {index} is not -1, 0 or +1")]
    InvalidTrit { value: i8, index: u64 },
    /// TQ1_0/TQ2_0 block scales that differ within one tensor (only a single per-tensor
    /// scale can be represented by [`crate::Ternary`]).
    #[error(
        "{format}: block {block} has scale d = {d:e} but block {first_block} has d = {first_d:e}; \
         a ternary tensor needs one scale per tensor (all-zero blocks excepted)"
    )]
    InconsistentScale {
        format: &'static str,
        block: u64,
        d: f32,
        first_block: u64,
        first_d: f32,
    },
    /// The error happened while handling the named tensor.
    #[error("tensor {name:?}: {inner}")]
    InTensor {
        name: String,
        inner: Box<QuantError>,
    },
}

impl QuantError {
    /// Attach the tensor's name (done once; an error that already names a tensor is kept).
    pub fn with_tensor(self, name: &str) -> QuantError {
        match self {
            e @ QuantError::InTensor { .. } => e,
            e => QuantError::InTensor {
                name: name.to_string(),
                inner: Box::new(e),
            },
        }
    }
}

/// Check that `got` bytes is exactly `expected` for `n_elements` of `format`.
pub(crate) fn check_size(
    format: impl std::fmt::Display,
    n_elements: usize,
    expected: u64,
    got: usize,
) -> Result<(), QuantError> {
    if got as u64 != expected {
        return Err(QuantError::SizeMismatch {
            format: format.to_string(),
            n_elements: n_elements as u64,
            expected,
            got: got as u64,
        });
    }
    Ok(())
}
