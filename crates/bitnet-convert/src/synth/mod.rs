//! `bitnet synth`: deterministic random BitNet b1.58 checkpoints in every supported layout.
//!
//! The same (shape, seed) gives the same model in every [`Format`]: identical trits, norms and
//! embeddings; scales as each format stores them (see [`model`]). Tensors are generated and
//! written one at a time, so the 2B4T shape streams without holding the model in memory.

mod gguf;
mod hf;
pub mod model;
pub mod rng;
pub mod shape;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use model::{SynthMatrix, SynthModel};
pub use shape::{Norm, Proj, Shape, GGUF_EMBED, HF_EMBED};

use crate::ConvertError;

/// Output layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// HF folder as microsoft/bitnet-b1.58-2B-4T publishes: uint8 `[out/4, in]` packed
    /// weights, bf16 `weight_scale` `[1]` (= 1/mean|W|, divides), bf16 embeddings and norms.
    HfPacked,
    /// HF folder with bf16 master weights `t · s_master` and no quantization_config.
    HfBf16,
    /// GGUF as bitnet.cpp writes 2B4T: I2_S matrices, F16 embedding, F32 norms.
    GgufI2s,
    /// GGUF with TQ2_0 matrices.
    GgufTq2,
    /// GGUF with TQ1_0 matrices.
    GgufTq1,
}

impl Format {
    /// CLI names, in the order of [`Format::ALL`].
    pub const NAMES: [&'static str; 5] =
        ["hf-packed", "hf-bf16", "gguf-i2s", "gguf-tq2", "gguf-tq1"];
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::HfPacked,
        Format::HfBf16,
        Format::GgufI2s,
        Format::GgufTq2,
        Format::GgufTq1,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|&f| f == self).unwrap_or(0)]
    }

    /// True for the GGUF formats (a single file); HF formats write a directory.
    pub fn is_gguf(self) -> bool {
        matches!(self, Format::GgufI2s | Format::GgufTq2 | Format::GgufTq1)
    }
}

impl FromStr for Format {
    type Err = ConvertError;
    fn from_str(s: &str) -> Result<Format, ConvertError> {
        Self::NAMES
            .iter()
            .position(|&n| n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| {
                ConvertError::Invalid(format!(
                    "unknown format {s:?} (expected one of {})",
                    Self::NAMES.join(", ")
                ))
            })
    }
}

/// Storage type of the GGUF token embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EmbedType {
    #[default]
    F16,
    F32,
    Bf16,
}

impl FromStr for EmbedType {
    type Err = ConvertError;
    fn from_str(s: &str) -> Result<EmbedType, ConvertError> {
        match s {
            "f16" => Ok(EmbedType::F16),
            "f32" => Ok(EmbedType::F32),
            "bf16" => Ok(EmbedType::Bf16),
            _ => Err(ConvertError::Invalid(format!(
                "unknown embedding type {s:?} (expected f16, f32 or bf16)"
            ))),
        }
    }
}

/// What to write.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub shape: Shape,
    pub format: Format,
    pub seed: u64,
    /// GGUF token embedding type (HF formats always store bf16).
    pub embed: EmbedType,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct SynthSummary {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
}

/// Progress callback: `(bytes_written_so_far, total_bytes)`, called after each tensor.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Write the checkpoint. GGUF formats: `out` is the .gguf file. HF formats: `out` is a
/// directory (created if missing) that receives `config.json` and `model.safetensors`.
pub fn synth(
    spec: &SynthSpec,
    out: &Path,
    progress: Progress,
) -> Result<SynthSummary, ConvertError> {
    let model = SynthModel::new(spec.shape.clone(), spec.seed);
    if spec.format.is_gguf() {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| ConvertError::io(parent, e))?;
        }
        let bytes = with_file(out, |w| {
            gguf::write(&model, spec.format, spec.embed, w, progress)
        })?;
        Ok(SynthSummary {
            files: vec![out.to_path_buf()],
            bytes,
        })
    } else {
        std::fs::create_dir_all(out).map_err(|e| ConvertError::io(out, e))?;
        let config = out.join("config.json");
        let text = hf::config_json(&spec.shape, spec.format == Format::HfPacked);
        std::fs::write(&config, &text).map_err(|e| ConvertError::io(&config, e))?;
        let st = out.join("model.safetensors");
        let bytes = with_file(&st, |w| hf::write(&model, spec.format, w, progress))?;
        Ok(SynthSummary {
            files: vec![config, st],
            bytes: bytes + text.len() as u64,
        })
    }
}

/// Create `path`, run `f` on a buffered writer, flush; I/O errors name the path.
fn with_file(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> Result<u64, ConvertError>,
) -> Result<u64, ConvertError> {
    let file = File::create(path).map_err(|e| ConvertError::io(path, e))?;
    let mut w = BufWriter::with_capacity(8 << 20, file);
    let n = f(&mut w).map_err(|e| match e {
        ConvertError::Io { error, .. } => ConvertError::io(path, error),
        e => e,
    })?;
    std::io::Write::flush(&mut w).map_err(|e| ConvertError::io(path, e))?;
    Ok(n)
}
