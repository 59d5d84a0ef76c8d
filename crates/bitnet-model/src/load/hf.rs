//! Hugging Face directories: `config.json` (+ `quantization_config`) and safetensors weights
//! with transformers' module names.

use std::path::Path;

use bitnet_kernels::DenseMatrix;
use safetensors::Dtype;
use serde_json::Value;

use super::{ternary_matrix, Norm, Role, Source};
use crate::arch::{bitnet, hf_arch, llama_bitnet, HF_ARCHES};
use crate::config::{Activation, Arch, RopeStyle};
use crate::hf::{SafetensorsSet, TensorEntry};
use crate::weights::{Linear, Proj};
use crate::{Config, ModelError, Result};

/// How the checkpoint stores its BitLinear weights.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WeightMode {
    /// uint8 `[out/4, in]` plus `weight_scale`; `divides` for `linear_class: bitlinear`.
    Packed { divides: bool },
    /// Float master weights, ternarized at load as transformers' `WeightQuant`.
    Master,
}

/// The parts of `quantization_config` the loader needs besides [`Config`].
#[derive(Clone, Debug)]
pub(crate) struct QuantConfig {
    pub mode: WeightMode,
    /// Module-name patterns kept in float (substring match, as transformers).
    pub not_convert: Vec<String>,
}

struct Json<'a> {
    v: &'a Value,
    file: &'a str,
    prefix: &'a str,
}

impl<'a> Json<'a> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.v.get(k).filter(|v| !v.is_null())
    }
    fn bad(&self, k: &str, reason: impl Into<String>) -> ModelError {
        ModelError::BadKey {
            file: self.file.into(),
            key: self.key(k),
            reason: reason.into(),
        }
    }
    fn missing(&self, k: &str) -> ModelError {
        ModelError::MissingKey {
            file: self.file.into(),
            key: self.key(k),
        }
    }
    fn opt_usize(&self, k: &str) -> Result<Option<usize>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|x| Some(x as usize))
                .ok_or_else(|| self.bad(k, format!("expected a non-negative integer, found {v}"))),
        }
    }
    fn usize(&self, k: &str) -> Result<usize> {
        self.opt_usize(k)?.ok_or_else(|| self.missing(k))
    }
    fn opt_f32(&self, k: &str) -> Result<Option<f32>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|x| Some(x as f32))
                .ok_or_else(|| self.bad(k, format!("expected a number, found {v}"))),
        }
    }
    fn opt_bool(&self, k: &str) -> Result<Option<bool>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.bad(k, format!("expected true or false, found {v}"))),
        }
    }
    fn opt_str(&self, k: &str) -> Result<Option<&'a str>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.bad(k, format!("expected a string, found {v}"))),
        }
    }
    /// A token id given as a number or a list (first entry).
    fn opt_token(&self, k: &str) -> Result<Option<u32>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Array(a)) if a.is_empty() => Ok(None),
            Some(Value::Array(a)) => a[0]
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.bad(k, format!("expected token ids, found {}", a[0]))),
            Some(v) => v
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.bad(k, format!("expected a token id, found {v}"))),
        }
    }
}

/// Only the [`Config`] of an HF directory.
pub(crate) fn config_from_dir(dir: &Path) -> Result<Config> {
    read_config(dir).map(|(c, _)| c)
}

/// Parse `dir/config.json`.
pub(crate) fn read_config(dir: &Path) -> Result<(Config, QuantConfig)> {
    let path = dir.join("config.json");
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|error| ModelError::Io {
        path: file.clone(),
        error,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|error| ModelError::Json {
        path: file.clone(),
        error,
    })?;
    let j = Json {
        v: &v,
        file: &file,
        prefix: "",
    };
    let arch_name = match j.get("architectures") {
        Some(Value::Array(a)) if !a.is_empty() => a[0]
            .as_str()
            .ok_or_else(|| j.bad("architectures", "expected a list of strings"))?
            .to_string(),
        Some(_) => return Err(j.bad("architectures", "expected a non-empty list of strings")),
        None => return Err(j.missing("architectures")),
    };
    let arch = hf_arch(&arch_name).ok_or_else(|| ModelError::UnknownArchitecture {
        file: file.clone(),
        arch: arch_name.clone(),
        supported: HF_ARCHES,
    })?;

    // quantization_config
    let (mode, linear_norm_eps, not_convert) = match j.get("quantization_config") {
        None => {
            if arch == Arch::LlamaBitNet {
                return Err(ModelError::BadKey {
                    file,
                    key: "quantization_config".into(),
                    reason: "LlamaForCausalLM without a bitnet quantization_config is not a ternary model".into(),
                });
            }
            (WeightMode::Master, None, Vec::new())
        }
        Some(q) => {
            let qj = Json {
                v: q,
                file: &file,
                prefix: "quantization_config.",
            };
            match qj.opt_str("quant_method")? {
                Some("bitnet") => {}
                Some(other) => {
                    return Err(qj.bad(
                        "quant_method",
                        format!("{other:?} is not supported (expected \"bitnet\")"),
                    ))
                }
                None => return Err(qj.missing("quant_method")),
            }
            let divides = match qj.opt_str("linear_class")?.unwrap_or("bitlinear") {
                "bitlinear" => true,
                "autobitlinear" => false,
                other => {
                    return Err(qj.bad(
                        "linear_class",
                        format!(
                        "{other:?} is not supported (expected \"bitlinear\" or \"autobitlinear\")"
                    ),
                    ))
                }
            };
            let mode = match qj.opt_str("quantization_mode")?.unwrap_or("offline") {
                "offline" => WeightMode::Packed { divides },
                "online" if !divides => WeightMode::Master,
                "online" => {
                    return Err(qj.bad(
                        "quantization_mode",
                        "\"online\" needs linear_class \"autobitlinear\"",
                    ))
                }
                other => {
                    return Err(qj.bad(
                        "quantization_mode",
                        format!("{other:?} is not supported (expected \"offline\" or \"online\")"),
                    ))
                }
            };
            let eps = if qj.opt_bool("use_rms_norm")?.unwrap_or(false) {
                Some(qj.opt_f32("rms_norm_eps")?.unwrap_or(1e-6))
            } else {
                None
            };
            let not_convert = match qj.get("modules_to_not_convert") {
                None => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|m| {
                        m.as_str().map(str::to_string).ok_or_else(|| {
                            qj.bad("modules_to_not_convert", "expected a list of module names")
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
                Some(_) => {
                    return Err(qj.bad("modules_to_not_convert", "expected a list of module names"))
                }
            };
            (mode, eps, not_convert)
        }
    };

    // RoPE: only the default rotation is supported.
    for k in ["rope_scaling", "rope_parameters"] {
        if let Some(r) = j.get(k) {
            let t = r
                .get("rope_type")
                .or_else(|| r.get("type"))
                .and_then(|t| t.as_str());
            if !matches!(t, None | Some("default")) {
                return Err(j.bad(
                    k,
                    format!("RoPE type {t:?} is not supported (only \"default\")"),
                ));
            }
        }
    }
    let rope_theta = match j.opt_f32("rope_theta")? {
        Some(t) => t,
        None => match j.get("rope_parameters").and_then(|r| r.get("rope_theta")) {
            Some(t) => t
                .as_f64()
                .ok_or_else(|| j.bad("rope_parameters", "rope_theta is not a number"))?
                as f32,
            None => 10000.0,
        },
    };
    let default_act = match arch {
        Arch::BitNet => bitnet::HF_DEFAULT_ACT,
        Arch::LlamaBitNet => llama_bitnet::HF_DEFAULT_ACT,
    };
    let activation = match j.opt_str("hidden_act")? {
        None => default_act,
        Some(s) => Activation::parse(s).ok_or_else(|| {
            j.bad(
                "hidden_act",
                format!("unsupported activation {s:?} (supported: relu2, silu)"),
            )
        })?,
    };
    let dim = j.usize("hidden_size")?;
    let n_heads = j.usize("num_attention_heads")?;
    let config = Config {
        arch,
        arch_name,
        vocab_size: j.usize("vocab_size")?,
        dim,
        ffn_dim: j.usize("intermediate_size")?,
        n_layers: j.usize("num_hidden_layers")?,
        n_heads,
        n_kv_heads: j.opt_usize("num_key_value_heads")?.unwrap_or(n_heads),
        head_dim: match j.opt_usize("head_dim")? {
            Some(h) => h,
            None if n_heads > 0 => dim / n_heads,
            None => 0,
        },
        rope_theta,
        rope_style: RopeStyle::Neox,
        norm_eps: j
            .opt_f32("rms_norm_eps")?
            .ok_or_else(|| j.missing("rms_norm_eps"))?,
        max_context: j.opt_usize("max_position_embeddings")?.unwrap_or(2048),
        activation,
        sub_norms: arch == Arch::BitNet,
        linear_norm_eps,
        tied_embeddings: j.opt_bool("tie_word_embeddings")?.unwrap_or(false),
        bos_token_id: j.opt_token("bos_token_id")?,
        eos_token_id: j.opt_token("eos_token_id")?,
    };
    config.validate(&file)?;
    Ok((config, QuantConfig { mode, not_convert }))
}

/// Tensors of an HF directory.
pub(crate) struct HfSource {
    set: SafetensorsSet,
    quant: QuantConfig,
    tied: bool,
    use_rms_norm: bool,
    /// `model.safetensors` or the shard index, for errors about missing tensors.
    weights_file: String,
}

impl HfSource {
    pub(crate) fn open(dir: &Path, config: &Config, quant: QuantConfig) -> Result<HfSource> {
        let index = dir.join("model.safetensors.index.json");
        let weights_file = if index.is_file() {
            index
        } else {
            dir.join("model.safetensors")
        };
        Ok(HfSource {
            weights_file: weights_file.display().to_string(),
            set: SafetensorsSet::open(dir)?,
            quant,
            tied: config.tied_embeddings,
            use_rms_norm: config.linear_norm_eps.is_some(),
        })
    }

    fn entry(&self, name: &str) -> Result<&TensorEntry> {
        self.set.get(name).ok_or_else(|| ModelError::MissingTensor {
            file: self.weights_file.clone(),
            name: name.into(),
        })
    }

    fn file_of(&self, e: &TensorEntry) -> String {
        self.set.path_of(e).display().to_string()
    }

    fn check_shape(&self, e: &TensorEntry, expected: &[usize]) -> Result<()> {
        if e.shape != expected {
            return Err(ModelError::TensorShape {
                file: self.file_of(e),
                name: e.name.clone(),
                expected: expected.to_vec(),
                got: e.shape.clone(),
            });
        }
        Ok(())
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let e = self.entry(name)?;
        self.check_shape(e, &[len])?;
        let v = self.set.to_f32(e)?;
        super::check_finite(&self.file_of(e), &e.name, &v)?;
        Ok(v)
    }

    /// `[rows × cols]` float matrix: F16 stays F16; BF16 becomes F16 when every value is
    /// exactly representable there (half the memory of F32, same numbers), else F32; F32 stays.
    fn dense(&self, name: &str, rows: usize, cols: usize) -> Result<DenseMatrix> {
        let e = self.entry(name)?;
        self.check_shape(e, &[rows, cols])?;
        if e.dtype == Dtype::F16 {
            let data = self
                .set
                .data(e)
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]))
                .collect::<Vec<_>>();
            super::check_finite_f16(&self.file_of(e), &e.name, &data)?;
            return Ok(DenseMatrix::F16 { rows, cols, data });
        }
        let data = self.set.to_f32(e)?;
        super::check_finite(&self.file_of(e), &e.name, &data)?;
        if e.dtype == Dtype::BF16 {
            let h: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
            if h.iter().zip(&data).all(|(a, &b)| a.to_f32() == b) {
                return Ok(DenseMatrix::F16 {
                    rows,
                    cols,
                    data: h,
                });
            }
        }
        Ok(DenseMatrix::F32 { rows, cols, data })
    }

    fn quant_err(&self, e: &TensorEntry) -> impl Fn(bitnet_quants::QuantError) -> ModelError + '_ {
        let (file, name) = (self.file_of(e), e.name.clone());
        move |err| ModelError::Quant {
            file: file.clone(),
            error: err.with_tensor(&name),
        }
    }
}

fn module_name(i: usize, role: Role) -> String {
    let m = match role {
        Role::Q => "self_attn.q_proj",
        Role::K => "self_attn.k_proj",
        Role::V => "self_attn.v_proj",
        Role::O => "self_attn.o_proj",
        Role::Gate => "mlp.gate_proj",
        Role::Up => "mlp.up_proj",
        Role::Down => "mlp.down_proj",
    };
    format!("model.layers.{i}.{m}")
}

impl HfSource {
    /// Tensors in the weight files.
    pub(crate) fn n_tensors(&self) -> usize {
        self.set.tensors().count()
    }
}

impl Source for HfSource {
    fn norm(&self, i: usize, which: Norm, len: usize) -> Result<Vec<f32>> {
        // BitNetForCausalLM names; 1bitLLM's BitnetForCausalLM calls the sub-norms
        // `inner_attn_ln` / `ffn_layernorm` (gguf-py's tensor map lists both).
        let (n, alt) = match which {
            Norm::Attn => ("input_layernorm", None),
            Norm::AttnSub => ("self_attn.attn_sub_norm", Some("self_attn.inner_attn_ln")),
            Norm::Ffn => ("post_attention_layernorm", None),
            Norm::FfnSub => ("mlp.ffn_sub_norm", Some("mlp.ffn_layernorm")),
        };
        let name = format!("model.layers.{i}.{n}.weight");
        match alt.map(|a| format!("model.layers.{i}.{a}.weight")) {
            Some(a) if self.set.get(&name).is_none() && self.set.get(&a).is_some() => {
                self.vector(&a, len)
            }
            _ => self.vector(&name, len),
        }
    }

    fn linear(&self, i: usize, role: Role, rows: usize, cols: usize) -> Result<Linear> {
        let module = module_name(i, role);
        let wname = format!("{module}.weight");
        if self
            .quant
            .not_convert
            .iter()
            .any(|k| module.contains(k.as_str()))
        {
            return Ok(Linear {
                proj: Proj::Dense(self.dense(&wname, rows, cols)?),
                input_norm: None,
            });
        }
        let input_norm = if self.use_rms_norm {
            Some(self.vector(&format!("{module}.rms_norm.weight"), cols)?)
        } else {
            None
        };
        let e = self.entry(&wname)?;
        let file = self.file_of(e);
        match (&self.quant.mode, e.dtype) {
            (WeightMode::Packed { divides }, Dtype::U8) => {
                if !rows.is_multiple_of(4) {
                    return Err(ModelError::BadTensor {
                        file,
                        name: wname,
                        reason: format!(
                            "{rows} output features are not a multiple of 4 (packed uint8)"
                        ),
                    });
                }
                self.check_shape(e, &[rows / 4, cols])?;
                let se = self.entry(&format!("{module}.weight_scale"))?;
                let ws = self.set.to_f32(se)?;
                if ws.len() != 1 {
                    return Err(ModelError::TensorShape {
                        file: self.file_of(se),
                        name: se.name.clone(),
                        expected: vec![1],
                        got: se.shape.clone(),
                    });
                }
                let scale = if *divides { 1.0 / ws[0] } else { ws[0] };
                let t = bitnet_quants::ternary_from_hf_packed(self.set.data(e), rows, cols, scale)
                    .map_err(self.quant_err(e))?;
                ternary_matrix(&file, &wname, rows, cols, &t.trits, t.scale, input_norm)
            }
            (WeightMode::Master, Dtype::F32 | Dtype::BF16 | Dtype::F16) => {
                self.check_shape(e, &[rows, cols])?;
                let w = self.set.to_f32(e)?;
                let t =
                    bitnet_quants::ternarize_absmean(&w, rows, cols).map_err(self.quant_err(e))?;
                ternary_matrix(&file, &wname, rows, cols, &t.trits, t.scale, input_norm)
            }
            (WeightMode::Packed { .. }, d) => Err(ModelError::BadTensor {
                file,
                name: wname,
                reason: format!(
                    "dtype {d:?} in an offline-quantized checkpoint (expected packed U8)"
                ),
            }),
            (WeightMode::Master, d) => Err(ModelError::BadTensor {
                file,
                name: wname,
                reason: format!(
                    "dtype {d:?} for float master weights (expected F32, BF16 or F16; packed U8 \
                     needs quantization_config.quantization_mode \"offline\")"
                ),
            }),
        }
    }

    fn token_embd(&self, vocab: usize, dim: usize) -> Result<DenseMatrix> {
        self.dense("model.embed_tokens.weight", vocab, dim)
    }

    fn output(&self, vocab: usize, dim: usize) -> Result<Option<DenseMatrix>> {
        if self.tied {
            return Ok(None);
        }
        self.dense("lm_head.weight", vocab, dim).map(Some)
    }

    fn output_norm(&self, dim: usize) -> Result<Vec<f32>> {
        self.vector("model.norm.weight", dim)
    }
}
