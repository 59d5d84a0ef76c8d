//! BitNet b1.58: attn_sub_norm before `o_proj`, ffn_sub_norm before `down_proj`, relu² FFN
//! (2B4T; llama.cpp's older `bitnet` arch defaults to SiLU), rotate-half RoPE.
//!
//! RoPE: bitnet.cpp runs `bitnet-b1.58`/`bitnet-25` and llama.cpp runs `bitnet` with
//! `LLAMA_ROPE_TYPE_NEOX`, and their converters do not permute Q/K rows, so rotate-half applies.

use super::GgufArch;
use crate::config::{Activation, Arch, RopeStyle};
use crate::load::{Norm, Role, Source};
use crate::{Config, Layer, Result};

/// bitnet.cpp's `bitnet-b1.58` and `bitnet-25` (2B4T): relu².
pub const GGUF_B158: GgufArch = GgufArch {
    arch: Arch::BitNet,
    activation: Activation::Relu2,
    rope_style: RopeStyle::Neox,
    needs_ternary: false,
};

/// llama.cpp's `bitnet` (1bitLLM models): SiLU unless `bitnet.hidden_activation` says otherwise.
pub const GGUF_LLAMACPP: GgufArch = GgufArch {
    arch: Arch::BitNet,
    activation: Activation::Silu,
    rope_style: RopeStyle::Neox,
    needs_ternary: false,
};

/// HF `BitNetForCausalLM` default `hidden_act`.
pub const HF_DEFAULT_ACT: Activation = Activation::Relu2;

pub(crate) fn load_layer(src: &dyn Source, c: &Config, i: usize) -> Result<Layer> {
    let (dim, q, kv, ffn) = (c.dim, c.q_dim(), c.kv_dim(), c.ffn_dim);
    Ok(Layer {
        attn_norm: src.norm(i, Norm::Attn, dim)?,
        wq: src.linear(i, Role::Q, q, dim)?,
        wk: src.linear(i, Role::K, kv, dim)?,
        wv: src.linear(i, Role::V, kv, dim)?,
        attn_sub_norm: Some(src.norm(i, Norm::AttnSub, q)?),
        wo: src.linear(i, Role::O, dim, q)?,
        ffn_norm: src.norm(i, Norm::Ffn, dim)?,
        w_gate: src.linear(i, Role::Gate, ffn, dim)?,
        w_up: src.linear(i, Role::Up, ffn, dim)?,
        ffn_sub_norm: Some(src.norm(i, Norm::FfnSub, ffn)?),
        w_down: src.linear(i, Role::Down, dim, ffn)?,
    })
}
