//! Architecture specifics: which file architectures map to which model family, and how a
//! family's layer is assembled from a weight source. One short file per family.

pub mod bitnet;
pub mod llama_bitnet;

use crate::config::{Activation, Arch, RopeStyle};
use crate::load::Source;
use crate::{Config, Layer, Result};

/// What a GGUF `general.architecture` implies.
#[derive(Clone, Copy, Debug)]
pub struct GgufArch {
    pub arch: Arch,
    /// FFN activation unless the file's `<arch>.hidden_act` says otherwise.
    pub activation: Activation,
    pub rope_style: RopeStyle,
    /// Whether `blk.N.attn_q.weight` must hold a ternary type for the file to be accepted.
    pub needs_ternary: bool,
}

/// GGUF architectures this crate runs, as listed in errors.
pub const GGUF_ARCHES: &str = "bitnet-b1.58, bitnet-25, bitnet, llama (with ternary tensors)";
/// HF `architectures` this crate runs.
pub const HF_ARCHES: &str =
    "BitNetForCausalLM, LlamaForCausalLM with quantization_config.quant_method = \"bitnet\"";

/// Map a GGUF architecture string.
pub fn gguf_arch(name: &str) -> Option<GgufArch> {
    match name {
        "bitnet-b1.58" | "bitnet-25" => Some(bitnet::GGUF_B158),
        "bitnet" => Some(bitnet::GGUF_LLAMACPP),
        "llama" => Some(llama_bitnet::GGUF),
        _ => None,
    }
}

/// Map an HF `architectures[0]` string.
pub fn hf_arch(name: &str) -> Option<Arch> {
    match name {
        "BitNetForCausalLM" | "BitnetForCausalLM" => Some(Arch::BitNet),
        "LlamaForCausalLM" => Some(Arch::LlamaBitNet),
        _ => None,
    }
}

/// Load layer `i` of a model of `config.arch` from `src`.
pub(crate) fn load_layer(src: &dyn Source, config: &Config, i: usize) -> Result<Layer> {
    match config.arch {
        Arch::BitNet => bitnet::load_layer(src, config, i),
        Arch::LlamaBitNet => llama_bitnet::load_layer(src, config, i),
    }
}
