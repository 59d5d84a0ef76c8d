//! Hugging Face folders: config.json and a streamed model.safetensors.

use std::io::Write;

use bitnet_quants::{f32_to_bf16_bits, f32_to_bf16_bytes, pack_hf};

use super::model::SynthModel;
use super::shape::{Norm, Proj, Shape, HF_EMBED};
use super::{Format, Progress};
use crate::safetensors_stream::{safetensors_file_size, write_safetensors_streaming, StTensorPlan};
use crate::ConvertError;

/// config.json of a `BitNetForCausalLM`; with `packed`, the 2B4T quantization_config
/// (`bitlinear`: `weight_scale` divides; offline: weights stored packed).
pub fn config_json(s: &Shape, packed: bool) -> String {
    let mut c = serde_json::json!({
        "architectures": ["BitNetForCausalLM"],
        "model_type": "bitnet",
        "vocab_size": s.vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.ffn,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "hidden_act": "relu2",
        "max_position_embeddings": s.context,
        "rms_norm_eps": shortest(s.rms_eps),
        "rope_theta": shortest(s.rope_theta),
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "bos_token_id": s.bos,
        "eos_token_id": s.eos,
        "attention_bias": false,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": true,
    });
    if packed {
        c["quantization_config"] = serde_json::json!({
            "quant_method": "bitnet",
            "linear_class": "bitlinear",
            "quantization_mode": "offline",
        });
    }
    let mut text = serde_json::to_string_pretty(&c).unwrap_or_default();
    text.push('\n');
    text
}

/// The f64 whose shortest decimal is the f32's (1e-5f32 → 1e-5, not 9.999999747378752e-6).
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// One entry of the safetensors file.
#[derive(Clone, Copy)]
enum Item {
    Embed,
    Norm(usize, Norm),
    Matrix(usize, Proj),
    /// `weight_scale` of the matrix emitted just before.
    Scale(usize, Proj),
}

fn items(s: &Shape, packed: bool) -> Vec<Item> {
    let mut v = vec![Item::Embed];
    let mat = |v: &mut Vec<Item>, l, p| {
        v.push(Item::Matrix(l, p));
        if packed {
            v.push(Item::Scale(l, p));
        }
    };
    for l in 0..s.layers {
        v.push(Item::Norm(l, Norm::Input));
        for p in [Proj::Q, Proj::K, Proj::V] {
            mat(&mut v, l, p);
        }
        v.push(Item::Norm(l, Norm::AttnSub));
        mat(&mut v, l, Proj::O);
        v.push(Item::Norm(l, Norm::PostAttn));
        for p in [Proj::Gate, Proj::Up] {
            mat(&mut v, l, p);
        }
        v.push(Item::Norm(l, Norm::FfnSub));
        mat(&mut v, l, Proj::Down);
    }
    v.push(Item::Norm(0, Norm::Final));
    v
}

fn plan(s: &Shape, it: Item, packed: bool) -> StTensorPlan {
    let (name, dtype, shape) = match it {
        Item::Embed => (HF_EMBED.to_string(), "BF16", vec![s.vocab, s.hidden]),
        Item::Norm(l, n) => (n.hf_name(l), "BF16", vec![n.width(s)]),
        Item::Matrix(l, p) => {
            let (o, i) = p.dims(s);
            if packed {
                (p.hf_name(l), "U8", vec![o / 4, i])
            } else {
                (p.hf_name(l), "BF16", vec![o, i])
            }
        }
        Item::Scale(l, p) => (p.hf_name(l) + "_scale", "BF16", vec![1]),
    };
    let elem = if dtype == "U8" { 1 } else { 2 };
    let nbytes = shape.iter().product::<usize>() as u64 * elem;
    StTensorPlan {
        name,
        dtype,
        shape,
        nbytes,
    }
}

/// Write model.safetensors for `format` (HfPacked or HfBf16); returns its size.
pub fn write(
    m: &SynthModel,
    format: Format,
    w: &mut dyn Write,
    progress: Progress,
) -> Result<u64, ConvertError> {
    let packed = format == Format::HfPacked;
    let s = &m.shape;
    let items = items(s, packed);
    let plans: Vec<StTensorPlan> = items.iter().map(|&it| plan(s, it, packed)).collect();
    let meta = [("format", "pt")];
    let total = safetensors_file_size(&plans, &meta);
    let io = |e| ConvertError::io(std::path::Path::new("model.safetensors"), e);
    let mut done = total - plans.iter().map(|p| p.nbytes).sum::<u64>();
    let mut last_scale = 0f32;
    write_safetensors_streaming(w, &plans, &meta, |i, out| {
        match items[i] {
            Item::Embed => m.write_embedding(out, f32_to_bf16_bytes).map_err(io)?,
            Item::Norm(l, n) => out
                .write_all(&f32_to_bf16_bytes(&m.norm(l, n)))
                .map_err(io)?,
            Item::Matrix(l, p) => {
                let mat = m.matrix(l, p);
                if packed {
                    last_scale = mat.hf_weight_scale();
                    out.write_all(&pack_hf(&mat.ternary)?).map_err(io)?;
                } else {
                    // bf16(t · s_master) is exact: 0, +s, −s.
                    let sb = f32_to_bf16_bits(mat.s_master);
                    let lut = [sb | 0x8000, 0, sb];
                    let bytes: Vec<u8> = mat
                        .ternary
                        .trits
                        .iter()
                        .flat_map(|&t| lut[(t + 1) as usize].to_le_bytes())
                        .collect();
                    out.write_all(&bytes).map_err(io)?;
                }
            }
            Item::Scale(..) => out
                .write_all(&f32_to_bf16_bits(last_scale).to_le_bytes())
                .map_err(io)?,
        }
        done += plans[i].nbytes;
        progress(done, total);
        Ok(())
    })?;
    Ok(total)
}
