//! GGUF container format: reading (zero-copy over mmap) and writing.
//!
//! This crate knows the container only: the header, metadata key/values, tensor infos and
//! where each tensor's bytes lie. What the bytes of a quantized tensor mean is the business of
//! `bitnet-quants`; what the metadata keys mean is the business of `bitnet-model`.
//!
//! Layout of a GGUF file (v2/v3, little-endian):
//! ```text
//! magic "GGUF" | version u32 | n_tensors u64 | n_kv u64
//! n_kv × (key: string, value_type: u32, value)
//! n_tensors × (name: string, n_dims: u32, dims: u64 × n_dims, ggml_type: u32, offset: u64)
//! padding to `general.alignment` (default 32)
//! tensor data (each tensor at data_start + offset)
//! ```
//! Strings are `u64 length + UTF-8 bytes`; v1 files (u32 lengths and counts) are refused.

mod reader;
mod stream;
mod types;
mod value;
mod writer;

pub use reader::{GgufFile, GgufHeader, TensorInfo};
pub use stream::{CountingWriter, GgufLayout, GgufStreamWriter, TensorSlot, TensorSpec};
pub use types::GgmlType;
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;

/// Default alignment of the tensor data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Errors from parsing or writing a GGUF file. Every variant says what was wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a GGUF file (magic {0:?}, expected \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("big-endian GGUF files are not supported")]
    BigEndian,
    #[error("unsupported GGUF version {0} (supported: 2, 3)")]
    UnsupportedVersion(u32),
    #[error("file truncated: needed {needed} bytes at offset {offset} while reading {what}, file has {len}")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        len: u64,
    },
    #[error("metadata key {key:?}: unknown value type id {type_id}")]
    UnknownValueType { key: String, type_id: u32 },
    #[error("metadata key #{index}: {reason}")]
    BadKey { index: u64, reason: String },
    #[error("metadata key {key:?}: {reason}")]
    BadValue { key: String, reason: String },
    #[error("tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("tensor {name:?}: unknown ggml type id {type_id}")]
    UnknownTensorType { name: String, type_id: u32 },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
