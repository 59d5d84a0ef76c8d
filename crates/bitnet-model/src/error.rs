//! Errors from loading a model or running it. Every variant names the file, key or tensor at fault.

/// Errors from configuration parsing, weight loading and the forward pass.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    // Causes are part of the messages (not `source()`), so printed error chains do not repeat them.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error(transparent)]
    Gguf(#[from] bitnet_gguf::GgufError),
    #[error("{path}: invalid JSON: {error}")]
    Json {
        path: String,
        error: serde_json::Error,
    },
    #[error("{file}: missing key {key:?}")]
    MissingKey { file: String, key: String },
    #[error("{file}: key {key:?}: {reason}")]
    BadKey {
        file: String,
        key: String,
        reason: String,
    },
    #[error("{file}: unknown or unsupported architecture {arch:?} (supported: {supported})")]
    UnknownArchitecture {
        file: String,
        arch: String,
        supported: &'static str,
    },
    #[error("{file}: missing tensor {name:?}")]
    MissingTensor { file: String, name: String },
    #[error("{file}: tensor {name:?}: shape {got:?}, expected {expected:?}")]
    TensorShape {
        file: String,
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{file}: tensor {name:?}: {reason}")]
    BadTensor {
        file: String,
        name: String,
        reason: String,
    },
    #[error("{file}: {error}")]
    Quant {
        file: String,
        error: bitnet_quants::QuantError,
    },
    #[error("{path}: {reason}")]
    Safetensors { path: String, reason: String },
    #[error(
        "context overflow: positions {start}..{end} do not fit the KV cache of {context} positions"
    )]
    ContextOverflow {
        start: usize,
        end: usize,
        context: usize,
    },
    #[error("start position {start} leaves a gap: the KV cache holds only {filled} positions")]
    PositionGap { start: usize, filled: usize },
    #[error("token id {token} at index {index} is out of range (vocabulary size {vocab})")]
    TokenOutOfRange {
        token: u32,
        index: usize,
        vocab: usize,
    },
    #[error("forward pass over an empty token list")]
    EmptyInput,
    #[error(
        "logits for all {n} positions requested, but this state holds {logit_rows} rows of \
         logits (create it with State::new(config, context, {n}))"
    )]
    BatchTooLarge { n: usize, logit_rows: usize },
    #[error("state was created for a different model shape ({0})")]
    StateMismatch(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
