//! Model hyperparameters, independent of the file format they came from.

use crate::{ModelError, Result};

/// Model family: decides which tensors a layer has and how they are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// BitNet b1.58 (2B4T, `bitnet-b1.58`, `bitnet-25`, llama.cpp's `bitnet`, `BitNetForCausalLM`):
    /// sub-norms before `o_proj` and `down_proj`.
    BitNet,
    /// Llama-shaped ternary checkpoints (`LlamaForCausalLM` with a bitnet quantization config,
    /// GGUF `llama` with ternary tensors): no sub-norms, optional per-linear input RMSNorm.
    LlamaBitNet,
}

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Rotate-half (HF, GPT-NeoX, ggml `NEOX`): dimension i pairs with i + head_dim/2.
    Neox,
    /// Interleaved (ggml `NORM`): dimension 2i pairs with 2i + 1 (converters that permute Q/K rows).
    Interleaved,
}

/// The gated FFN's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// relu(x)² (BitNet b1.58).
    Relu2,
    /// x·sigmoid(x) (Llama, llama.cpp's `bitnet`).
    Silu,
}

impl Activation {
    /// Parse an HF `hidden_act` / GGUF hidden_act string.
    pub fn parse(s: &str) -> Option<Activation> {
        match s {
            "relu2" | "relu_sqr" | "relu_squared" => Some(Activation::Relu2),
            "silu" | "swish" => Some(Activation::Silu),
            _ => None,
        }
    }
}

/// Hyperparameters of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub arch: Arch,
    /// The architecture string as the file states it (`bitnet-25`, `LlamaForCausalLM`, …).
    pub arch_name: String,
    pub vocab_size: usize,
    /// Hidden size (`embedding_length`, `hidden_size`).
    pub dim: usize,
    /// FFN inner size (`feed_forward_length`, `intermediate_size`).
    pub ffn_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f32,
    pub rope_style: RopeStyle,
    /// Epsilon of the model's RMSNorms.
    pub norm_eps: f32,
    /// Context length the model was trained for (a State may use less).
    pub max_context: usize,
    pub activation: Activation,
    /// `attn_sub_norm` / `ffn_sub_norm` present (BitNet).
    pub sub_norms: bool,
    /// `use_rms_norm`: each BitLinear normalizes its input with its own weight and this epsilon.
    pub linear_norm_eps: Option<f32>,
    /// The head reuses the token embedding.
    pub tied_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl Config {
    /// Width of all query heads together (`n_heads · head_dim`).
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of all key (or value) heads together (`n_kv_heads · head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Check the numbers fit together; `file` names the source in the error.
    pub fn validate(&self, file: &str) -> Result<()> {
        let bad = |key: &str, reason: String| {
            Err(ModelError::BadKey {
                file: file.to_string(),
                key: key.to_string(),
                reason,
            })
        };
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.dim),
            ("intermediate_size", self.ffn_dim),
            ("num_hidden_layers", self.n_layers),
            ("num_attention_heads", self.n_heads),
            ("num_key_value_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_context),
        ] {
            if v == 0 {
                return bad(key, "must be positive".into());
            }
        }
        // Products used for buffer sizes must not overflow.
        let sizes = [
            (
                "num_attention_heads",
                self.n_heads.checked_mul(self.head_dim),
            ),
            ("vocab_size", self.vocab_size.checked_mul(self.dim)),
            ("intermediate_size", self.ffn_dim.checked_mul(self.dim)),
        ];
        for (key, v) in sizes {
            if v.is_none_or(|v| v > isize::MAX as usize / 8) {
                return bad(key, "implies a matrix too large to address".into());
            }
        }
        for (key, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= self.vocab_size) {
                return bad(
                    key,
                    format!(
                        "{id} is not a token id below the vocabulary size {}",
                        self.vocab_size
                    ),
                );
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(
                "num_key_value_heads",
                format!(
                    "{} query heads are not a multiple of {} key/value heads",
                    self.n_heads, self.n_kv_heads
                ),
            );
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("{} is odd; RoPE needs pairs", self.head_dim),
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(
                "rope_theta",
                format!("{} is not a positive number", self.rope_theta),
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return bad(
                "rms_norm_eps",
                format!("{} is not a non-negative number", self.norm_eps),
            );
        }
        Ok(())
    }
}
