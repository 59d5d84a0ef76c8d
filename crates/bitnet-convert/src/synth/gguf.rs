//! GGUF files as bitnet.cpp writes microsoft/bitnet-b1.58-2B-4T: architecture
//! `bitnet-b1.58`, hyperparameters under `bitnet-b1.58.*`, token_embd F16 (or as asked),
//! F32 norms, ternary matrices I2_S / TQ2_0 / TQ1_0. Q/K rows are not permuted (NEOX RoPE).
//! No tokenizer keys: synthetic models have no vocabulary.

use std::io::Write;

use bitnet_gguf::{GgmlType, Value};
use bitnet_quants::{encode_ternary, f32_to_bf16_bytes, f32_to_f16_bytes, f32_to_f32_bytes};

use super::model::SynthModel;
use super::shape::{Norm, Proj, Shape, GGUF_EMBED};
use super::{EmbedType, Format, Progress};
use crate::gguf_stream::{gguf_file_size, write_gguf_streaming, GgufTensorPlan};
use crate::ConvertError;

/// `general.architecture` of the files written here.
pub const ARCH: &str = "bitnet-b1.58";

/// llama.cpp / bitnet.cpp `llama_ftype` of a file whose matrices are `ty`.
fn file_type(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::Tq1_0 => 36, // LLAMA_FTYPE_MOSTLY_TQ1_0
        GgmlType::Tq2_0 => 37, // LLAMA_FTYPE_MOSTLY_TQ2_0
        _ => 40,               // bitnet.cpp LLAMA_FTYPE_MOSTLY_I2_S
    }
}

/// The metadata written for shape `s` with ternary type `ty`.
pub fn metadata(s: &Shape, ty: GgmlType) -> Vec<(String, Value)> {
    let k = |key: &str| format!("{ARCH}.{key}");
    let u = |x: usize| Value::U32(x as u32);
    vec![
        ("general.architecture".into(), Value::String(ARCH.into())),
        (
            "general.name".into(),
            Value::String(format!("bitnet-synth-{}", s.name)),
        ),
        (k("vocab_size"), u(s.vocab)),
        (k("context_length"), u(s.context)),
        (k("embedding_length"), u(s.hidden)),
        (k("block_count"), u(s.layers)),
        (k("feed_forward_length"), u(s.ffn)),
        (k("rope.dimension_count"), u(s.head_dim())),
        (k("attention.head_count"), u(s.heads)),
        (k("attention.head_count_kv"), u(s.kv_heads)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(s.rms_eps)),
        (k("rope.freq_base"), Value::F32(s.rope_theta)),
        ("general.file_type".into(), Value::U32(file_type(ty))),
        ("general.quantization_version".into(), Value::U32(2)),
    ]
}

#[derive(Clone, Copy)]
enum Item {
    Embed,
    Norm(usize, Norm),
    Matrix(usize, Proj),
}

fn items(s: &Shape) -> Vec<Item> {
    let mut v = vec![Item::Embed];
    for l in 0..s.layers {
        v.push(Item::Norm(l, Norm::Input));
        v.extend([Proj::Q, Proj::K, Proj::V].map(|p| Item::Matrix(l, p)));
        v.push(Item::Norm(l, Norm::AttnSub));
        v.push(Item::Matrix(l, Proj::O));
        v.push(Item::Norm(l, Norm::PostAttn));
        v.extend([Proj::Gate, Proj::Up].map(|p| Item::Matrix(l, p)));
        v.push(Item::Norm(l, Norm::FfnSub));
        v.push(Item::Matrix(l, Proj::Down));
    }
    v.push(Item::Norm(0, Norm::Final));
    v
}

fn embed_type(e: EmbedType) -> GgmlType {
    match e {
        EmbedType::F16 => GgmlType::F16,
        EmbedType::F32 => GgmlType::F32,
        EmbedType::Bf16 => GgmlType::Bf16,
    }
}

fn plan(s: &Shape, it: Item, tern: GgmlType, embed: GgmlType) -> GgufTensorPlan {
    let (name, dims, ty) = match it {
        Item::Embed => (GGUF_EMBED.to_string(), vec![s.hidden, s.vocab], embed),
        Item::Norm(l, n) => (n.gguf_name(l), vec![n.width(s)], GgmlType::F32),
        Item::Matrix(l, p) => {
            let (o, i) = p.dims(s);
            (p.gguf_name(l), vec![i, o], tern)
        }
    };
    GgufTensorPlan {
        name,
        dims: dims.into_iter().map(|d| d as u64).collect(),
        ggml_type: ty,
    }
}

/// Write the GGUF for `format` (one of the GGUF formats); returns its size.
pub fn write(
    m: &SynthModel,
    format: Format,
    embed: EmbedType,
    w: &mut dyn Write,
    progress: Progress,
) -> Result<u64, ConvertError> {
    let tern = match format {
        Format::GgufI2s => GgmlType::I2S,
        Format::GgufTq2 => GgmlType::Tq2_0,
        Format::GgufTq1 => GgmlType::Tq1_0,
        f => {
            return Err(ConvertError::Invalid(format!(
                "{} is not a GGUF format",
                f.name()
            )))
        }
    };
    let s = &m.shape;
    let et = embed_type(embed);
    let items = items(s);
    let plans: Vec<GgufTensorPlan> = items.iter().map(|&it| plan(s, it, tern, et)).collect();
    let meta = metadata(s, tern);
    let total = gguf_file_size(&meta, &plans)?;
    let io = |e| ConvertError::io(std::path::Path::new("<gguf>"), e);
    let to_bytes = |xs: &[f32]| match et {
        GgmlType::F16 => f32_to_f16_bytes(xs),
        GgmlType::Bf16 => f32_to_bf16_bytes(xs),
        _ => f32_to_f32_bytes(xs),
    };
    let mut done = total - plans.iter().map(|p| p.size().unwrap_or(0)).sum::<u64>();
    write_gguf_streaming(w, &meta, &plans, |i, out| {
        match items[i] {
            Item::Embed => m.write_embedding(out, to_bytes).map_err(io)?,
            Item::Norm(l, n) => out
                .write_all(&f32_to_f32_bytes(&m.norm(l, n)))
                .map_err(io)?,
            Item::Matrix(l, p) => {
                let mat = m.matrix(l, p);
                let bytes = encode_ternary(tern, &mat.ternary)
                    .map_err(|e| e.with_tensor(&plans[i].name))?;
                out.write_all(&bytes).map_err(io)?;
            }
        }
        done += plans[i].size()?;
        progress(done, total);
        Ok(())
    })?;
    Ok(total)
}
