//! Writing BitNet checkpoints.
//!
//! * [`synth`]: deterministic random BitNet b1.58 models in every supported layout (HF packed,
//!   HF bf16 master, GGUF I2_S / TQ2_0 / TQ1_0) and named shapes (`tiny`, `gqa`, `2b4t`).
//! * [`gguf_stream`], [`safetensors_stream`]: writers that stream tensors one at a time.

mod error;
pub mod gguf_stream;
pub mod safetensors_stream;
pub mod synth;

pub use error::ConvertError;
