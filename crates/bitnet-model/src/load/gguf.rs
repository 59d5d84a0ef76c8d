//! GGUF files: hyperparameters from `<arch>.*` metadata, tensors by llama.cpp names
//! (`token_embd`, `blk.N.attn_q`, …, `output_norm`, optional `output`).

use bitnet_gguf::{GgmlType, GgufFile, TensorInfo};
use bitnet_kernels::DenseMatrix;
use half::f16;

use super::{exact_ternary, ternary_matrix, Norm, Role, Source};
use crate::arch::{gguf_arch, GGUF_ARCHES};
use crate::config::Activation;
use crate::weights::Linear;
use crate::{Config, ModelError, Result};

fn file_name(f: &GgufFile) -> String {
    f.path().display().to_string()
}

fn get_u64(f: &GgufFile, key: &str) -> Result<Option<u64>> {
    match f.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| ModelError::BadKey {
            file: file_name(f),
            key: key.into(),
            reason: format!("expected an unsigned integer, found {:?}", v.value_type()),
        }),
    }
}

fn need_u64(f: &GgufFile, key: &str) -> Result<usize> {
    get_u64(f, key)?
        .map(|v| v as usize)
        .ok_or_else(|| ModelError::MissingKey {
            file: file_name(f),
            key: key.into(),
        })
}

fn get_f32(f: &GgufFile, key: &str) -> Result<Option<f32>> {
    match f.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|x| Some(x as f32))
            .ok_or_else(|| ModelError::BadKey {
                file: file_name(f),
                key: key.into(),
                reason: format!("expected a number, found {:?}", v.value_type()),
            }),
    }
}

/// Hyperparameters from GGUF metadata.
pub(crate) fn config_from_gguf(f: &GgufFile) -> Result<Config> {
    let file = file_name(f);
    let name = f
        .get("general.architecture")
        .ok_or_else(|| ModelError::MissingKey {
            file: file.clone(),
            key: "general.architecture".into(),
        })?
        .as_str()
        .ok_or_else(|| ModelError::BadKey {
            file: file.clone(),
            key: "general.architecture".into(),
            reason: "not a string".into(),
        })?
        .to_string();
    let spec = gguf_arch(&name).ok_or_else(|| ModelError::UnknownArchitecture {
        file: file.clone(),
        arch: name.clone(),
        supported: GGUF_ARCHES,
    })?;
    let k = |s: &str| format!("{name}.{s}");

    let dim = need_u64(f, &k("embedding_length"))?;
    let n_heads = need_u64(f, &k("attention.head_count"))?;
    if n_heads == 0 {
        return Err(ModelError::BadKey {
            file,
            key: k("attention.head_count"),
            reason: "must be positive".into(),
        });
    }
    let n_kv_heads = get_u64(f, &k("attention.head_count_kv"))?.map_or(n_heads, |v| v as usize);
    let head_dim = match get_u64(f, &k("attention.key_length"))? {
        Some(v) => v as usize,
        None if n_heads > 0 => dim / n_heads,
        None => 0,
    };
    if let Some(rot) = get_u64(f, &k("rope.dimension_count"))? {
        if rot as usize != head_dim {
            return Err(ModelError::BadKey {
                file,
                key: k("rope.dimension_count"),
                reason: format!("partial RoPE ({rot} of {head_dim} dims) is not supported"),
            });
        }
    }
    let vocab_size = match get_u64(f, &k("vocab_size"))? {
        Some(v) => v as usize,
        None => match f.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
            _ => {
                return Err(ModelError::MissingKey {
                    file,
                    key: k("vocab_size"),
                })
            }
        },
    };
    // llama.cpp's LLM_KV_HIDDEN_ACT is `<arch>.hidden_activation` (optional; converters of
    // BitNet models do not write it, so the architecture's default applies).
    let act_key = k("hidden_activation");
    let activation = match f.get(&act_key) {
        None => spec.activation,
        Some(v) => {
            let s = v.as_str().unwrap_or("(not a string)");
            Activation::parse(s).ok_or_else(|| ModelError::BadKey {
                file: file.clone(),
                key: act_key.clone(),
                reason: format!("unsupported activation {s:?} (supported: relu2, silu)"),
            })?
        }
    };
    let token_id = |key: &str| -> Result<Option<u32>> {
        match get_u64(f, key)? {
            None => Ok(None),
            Some(v) if v < vocab_size as u64 => Ok(Some(v as u32)),
            Some(v) => Err(ModelError::BadKey {
                file: file.clone(),
                key: key.to_string(),
                reason: format!("{v} is not a token id below the vocabulary size {vocab_size}"),
            }),
        }
    };

    let config = Config {
        arch: spec.arch,
        arch_name: name.clone(),
        vocab_size,
        dim,
        ffn_dim: need_u64(f, &k("feed_forward_length"))?,
        n_layers: need_u64(f, &k("block_count"))?,
        n_heads,
        n_kv_heads,
        head_dim,
        rope_theta: get_f32(f, &k("rope.freq_base"))?.unwrap_or(10000.0),
        rope_style: spec.rope_style,
        norm_eps: get_f32(f, &k("attention.layer_norm_rms_epsilon"))?.ok_or_else(|| {
            ModelError::MissingKey {
                file: file.clone(),
                key: k("attention.layer_norm_rms_epsilon"),
            }
        })?,
        max_context: need_u64(f, &k("context_length"))?,
        activation,
        sub_norms: spec.arch == crate::Arch::BitNet,
        linear_norm_eps: None,
        tied_embeddings: f.tensor("output.weight").is_none(),
        bos_token_id: token_id("tokenizer.ggml.bos_token_id")?,
        eos_token_id: token_id("tokenizer.ggml.eos_token_id")?,
    };
    config.validate(&file)?;
    if spec.needs_ternary {
        let t = "blk.0.attn_q.weight";
        match f.tensor(t) {
            Some(info) if is_ternary_type(info.ggml_type) => {}
            Some(info) => {
                return Err(ModelError::BadTensor {
                    file,
                    name: t.into(),
                    reason: format!(
                        "architecture {name:?} with {} matrices is not a ternary model \
                         (expected I2_S, TQ1_0 or TQ2_0)",
                        info.ggml_type
                    ),
                })
            }
            None => {
                return Err(ModelError::MissingTensor {
                    file,
                    name: t.into(),
                })
            }
        }
    }
    Ok(config)
}

fn is_ternary_type(t: GgmlType) -> bool {
    matches!(t, GgmlType::I2S | GgmlType::Tq1_0 | GgmlType::Tq2_0)
}

/// Tensors of an open GGUF file.
pub(crate) struct GgufSource<'f> {
    f: &'f GgufFile,
    file: String,
}

impl<'f> GgufSource<'f> {
    pub(crate) fn new(f: &'f GgufFile) -> Self {
        GgufSource {
            f,
            file: file_name(f),
        }
    }

    fn info(&self, name: &str) -> Result<&'f TensorInfo> {
        self.f
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor {
                file: self.file.clone(),
                name: name.into(),
            })
    }

    /// Check GGUF dims (`[ne0, ne1, …]`) against `expected` (same order).
    fn check_dims(&self, info: &TensorInfo, expected: &[usize]) -> Result<()> {
        let got: Vec<usize> = info.dims.iter().map(|&d| d as usize).collect();
        // A trailing 1 (a [n, 1] vector) is the same shape.
        let trimmed: &[usize] = match got.as_slice() {
            [a, 1] if expected.len() == 1 => std::slice::from_ref(a),
            g => g,
        };
        if trimmed != expected {
            return Err(ModelError::TensorShape {
                file: self.file.clone(),
                name: info.name.clone(),
                expected: expected.to_vec(),
                got,
            });
        }
        Ok(())
    }

    fn quant_err(&self, name: &str) -> impl Fn(bitnet_quants::QuantError) -> ModelError + '_ {
        let name = name.to_string();
        move |e| ModelError::Quant {
            file: self.file.clone(),
            error: e.with_tensor(&name),
        }
    }

    fn floats(&self, info: &TensorInfo) -> Result<Vec<f32>> {
        let v = bitnet_quants::dequantize(
            info.ggml_type,
            self.f.tensor_data(info),
            info.n_elements() as usize,
        )
        .map_err(self.quant_err(&info.name))?;
        super::check_finite(&self.file, &info.name, &v)?;
        Ok(v)
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let info = self.info(name)?;
        self.check_dims(info, &[len])?;
        self.floats(info)
    }

    /// `[rows × cols]` dense matrix (GGUF dims `[cols, rows]`): F16 stays F16, others → F32.
    fn dense(&self, name: &str, rows: usize, cols: usize) -> Result<DenseMatrix> {
        let info = self.info(name)?;
        self.check_dims(info, &[cols, rows])?;
        if info.ggml_type == GgmlType::F16 {
            let data = self
                .f
                .tensor_data(info)
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]))
                .collect::<Vec<_>>();
            super::check_finite_f16(&self.file, &info.name, &data)?;
            return Ok(DenseMatrix::F16 { rows, cols, data });
        }
        Ok(DenseMatrix::F32 {
            rows,
            cols,
            data: self.floats(info)?,
        })
    }
}

fn linear_name(i: usize, role: Role) -> String {
    let n = match role {
        Role::Q => "attn_q",
        Role::K => "attn_k",
        Role::V => "attn_v",
        Role::O => "attn_output",
        Role::Gate => "ffn_gate",
        Role::Up => "ffn_up",
        Role::Down => "ffn_down",
    };
    format!("blk.{i}.{n}")
}

impl Source for GgufSource<'_> {
    fn norm(&self, i: usize, which: Norm, len: usize) -> Result<Vec<f32>> {
        let n = match which {
            Norm::Attn => "attn_norm",
            Norm::AttnSub => "attn_sub_norm",
            Norm::Ffn => "ffn_norm",
            Norm::FfnSub => "ffn_sub_norm",
        };
        self.vector(&format!("blk.{i}.{n}.weight"), len)
    }

    fn linear(&self, i: usize, role: Role, rows: usize, cols: usize) -> Result<Linear> {
        let base = linear_name(i, role);
        let name = format!("{base}.weight");
        let info = self.info(&name)?;
        self.check_dims(info, &[cols, rows])?;
        // llama.cpp's `bitnet` arch may carry a separate per-tensor scale that multiplies.
        let extra = match self.f.tensor(&format!("{base}.scale")) {
            Some(s) => {
                let v = self.floats(s)?;
                if v.len() != 1 {
                    return Err(ModelError::TensorShape {
                        file: self.file.clone(),
                        name: s.name.clone(),
                        expected: vec![1],
                        got: s.dims.iter().map(|&d| d as usize).collect(),
                    });
                }
                v[0]
            }
            None => 1.0,
        };
        let (trits, scale) = if is_ternary_type(info.ggml_type) {
            let t = bitnet_quants::ternary_from_ggml(
                info.ggml_type,
                self.f.tensor_data(info),
                rows,
                cols,
            )
            .map_err(self.quant_err(&name))?;
            (t.trits, t.scale)
        } else {
            // A float matrix (e.g. bitnet.cpp's F32 intermediate): already ternary values
            // keep their scale; master weights are ternarized as transformers' WeightQuant.
            let w = self.floats(info)?;
            match exact_ternary(&w) {
                Some(t) => t,
                None => {
                    let t = bitnet_quants::ternarize_absmean(&w, rows, cols)
                        .map_err(self.quant_err(&name))?;
                    (t.trits, t.scale)
                }
            }
        };
        ternary_matrix(&self.file, &name, rows, cols, &trits, scale * extra, None)
    }

    fn token_embd(&self, vocab: usize, dim: usize) -> Result<DenseMatrix> {
        self.dense("token_embd.weight", vocab, dim)
    }

    fn output(&self, vocab: usize, dim: usize) -> Result<Option<DenseMatrix>> {
        if self.f.tensor("output.weight").is_none() {
            return Ok(None);
        }
        self.dense("output.weight", vocab, dim).map(Some)
    }

    fn output_norm(&self, dim: usize) -> Result<Vec<f32>> {
        self.vector("output_norm.weight", dim)
    }
}
