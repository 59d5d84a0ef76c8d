//! Llama-shaped ternary models (Falcon3-1.58bit, Llama3-8B-1.58, Falcon-E, bitllama2.c):
//! no sub-norms, SiLU-gated FFN, optionally a per-BitLinear input RMSNorm (`use_rms_norm`).
//!
//! RoPE: HF checkpoints use rotate-half. llama.cpp's converter permutes Q/K rows of `llama`
//! GGUFs for its interleaved `LLAMA_ROPE_TYPE_NORM`, so those files use interleaved RoPE.

use super::GgufArch;
use crate::config::{Activation, Arch, RopeStyle};
use crate::load::{Norm, Role, Source};
use crate::{Config, Layer, Result};

/// GGUF `llama` with ternary matrices.
pub const GGUF: GgufArch = GgufArch {
    arch: Arch::LlamaBitNet,
    activation: Activation::Silu,
    rope_style: RopeStyle::Interleaved,
    needs_ternary: true,
};

/// HF `LlamaForCausalLM` default `hidden_act`.
pub const HF_DEFAULT_ACT: Activation = Activation::Silu;

pub(crate) fn load_layer(src: &dyn Source, c: &Config, i: usize) -> Result<Layer> {
    let (dim, q, kv, ffn) = (c.dim, c.q_dim(), c.kv_dim(), c.ffn_dim);
    Ok(Layer {
        attn_norm: src.norm(i, Norm::Attn, dim)?,
        wq: src.linear(i, Role::Q, q, dim)?,
        wk: src.linear(i, Role::K, kv, dim)?,
        wv: src.linear(i, Role::V, kv, dim)?,
        attn_sub_norm: None,
        wo: src.linear(i, Role::O, dim, q)?,
        ffn_norm: src.norm(i, Norm::Ffn, dim)?,
        w_gate: src.linear(i, Role::Gate, ffn, dim)?,
        w_up: src.linear(i, Role::Up, ffn, dim)?,
        ffn_sub_norm: None,
        w_down: src.linear(i, Role::Down, dim, ffn)?,
    })
}
