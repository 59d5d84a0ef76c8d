//! Loading: a weight [`Source`] per file format (GGUF, HF safetensors) and the format-free
//! assembly of [`Weights`].

mod gguf;
mod hf;

use std::path::Path;

use bitnet_kernels::{DenseMatrix, TernaryMatrix};

use crate::weights::{Linear, Proj};
use crate::{Config, Model, ModelError, Result, Weights};

/// A layer's linear modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

/// A layer's norms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Norm {
    Attn,
    AttnSub,
    Ffn,
    FfnSub,
}

/// Where weights come from; each method checks shapes and names the tensor in errors.
pub(crate) trait Source: Sync {
    /// Norm weight `[len]` of layer `i`.
    fn norm(&self, i: usize, which: Norm, len: usize) -> Result<Vec<f32>>;
    /// Linear module of layer `i`, `rows × cols` (out × in).
    fn linear(&self, i: usize, role: Role, rows: usize, cols: usize) -> Result<Linear>;
    /// Token embedding `[vocab × dim]`.
    fn token_embd(&self, vocab: usize, dim: usize) -> Result<DenseMatrix>;
    /// Untied output head `[vocab × dim]`, `None` when the model ties it to the embedding.
    fn output(&self, vocab: usize, dim: usize) -> Result<Option<DenseMatrix>>;
    /// Final norm `[dim]`.
    fn output_norm(&self, dim: usize) -> Result<Vec<f32>>;
}

static ALLOW_NONFINITE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Load float tensors that hold NaN or ±∞ instead of refusing them (a model that has them
/// generates garbage; this exists to inspect such files). Process-wide; off by default.
pub fn set_allow_nonfinite(allow: bool) {
    ALLOW_NONFINITE.store(allow, std::sync::atomic::Ordering::Relaxed);
}

/// Refuse a float tensor holding NaN or ±∞ (unless allowed), naming it and the first bad
/// element.
pub(crate) fn check_finite(file: &str, name: &str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) if !ALLOW_NONFINITE.load(std::sync::atomic::Ordering::Relaxed) => {
            Err(ModelError::BadTensor {
                file: file.to_string(),
                name: name.to_string(),
                reason: format!(
                    "element {i} is {} (the tensor holds NaN or infinite values; pass \
                 --allow-nonfinite to load it anyway)",
                    if v[i].is_nan() { "NaN" } else { "infinite" }
                ),
            })
        }
        _ => Ok(()),
    }
}

/// [`check_finite`] for f16 data.
pub(crate) fn check_finite_f16(file: &str, name: &str, v: &[half::f16]) -> Result<()> {
    match v.iter().position(|x| x.to_bits() & 0x7c00 == 0x7c00) {
        Some(i) => check_finite(file, name, &[v[i].to_f32()]).map_err(|e| match e {
            ModelError::BadTensor { file, name, reason } => ModelError::BadTensor {
                file,
                name,
                reason: reason.replacen("element 0", &format!("element {i}"), 1),
            },
            e => e,
        }),
        None => Ok(()),
    }
}

/// Refuse a layer count that the source's tensors cannot back, before anything is sized
/// from it (each layer has at least 9 tensors).
pub(crate) fn check_layer_count(
    file: &str,
    key: &str,
    n_layers: usize,
    n_tensors: usize,
) -> Result<()> {
    if n_layers.saturating_mul(9) > n_tensors {
        return Err(ModelError::BadKey {
            file: file.to_string(),
            key: key.to_string(),
            reason: format!(
                "{n_layers} layers, but the weights hold only {n_tensors} tensors (each layer \
                 needs at least 9)"
            ),
        });
    }
    Ok(())
}

/// Assemble all weights of `config` from `src`.
pub(crate) fn load_weights(src: &dyn Source, config: &Config) -> Result<Weights> {
    // Layers decode independently (unpacking and repacking dominate load time): spread them
    // over the machine's threads; the first error (lowest layer) is reported.
    let n = config.n_layers;
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    let mut slots: Vec<Option<Result<crate::Layer>>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| {
        for (t, chunk) in slots.chunks_mut(n.div_ceil(threads).max(1)).enumerate() {
            let first = t * n.div_ceil(threads).max(1);
            scope.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(crate::arch::load_layer(src, config, first + j));
                }
            });
        }
    });
    let layers = slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err(ModelError::Invalid("layer loader thread failed".into()))))
        .collect::<Result<Vec<_>>>()?;
    let weights = Weights {
        token_embd: src.token_embd(config.vocab_size, config.dim)?,
        layers,
        output_norm: src.output_norm(config.dim)?,
        output: src.output(config.vocab_size, config.dim)?,
    };
    // The F16/F32 head lives in a plain Vec and is read whole every token: ask for 2 MiB
    // pages, as the kernels' own buffers have (best effort; Q8 heads already are).
    weights.head().advise_huge_pages();
    Ok(weights)
}

/// Whether `path` is a GGUF file (by its magic), as opposed to an HF directory.
pub fn is_gguf(path: &Path) -> bool {
    if path.is_dir() {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map(|_| &magic == b"GGUF")
        .unwrap_or(false)
}

/// Read only the configuration of a GGUF file or an HF directory.
pub fn config_from_path(path: impl AsRef<Path>) -> Result<Config> {
    let path = path.as_ref();
    if path.is_dir() {
        hf::config_from_dir(path)
    } else {
        let f = bitnet_gguf::GgufFile::open(path)?;
        gguf::config_from_gguf(&f)
    }
}

impl Model {
    /// Load a model from a GGUF file or an HF directory (config.json + safetensors).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        if path.is_dir() && !path.join("config.json").exists() {
            // A folder of GGUF files (as the hub's GGUF repos are): its one .gguf.
            let ggufs = gguf_files_in(path);
            match ggufs.as_slice() {
                [one] => return Self::load(one),
                [] => {}
                many => {
                    return Err(ModelError::Invalid(format!(
                        "{}: no config.json and {} GGUF files ({}); name the one to load",
                        path.display(),
                        many.len(),
                        many.iter()
                            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
        if path.is_dir() {
            Self::from_hf_dir(path)
        } else if path.exists() {
            let f = bitnet_gguf::GgufFile::open(path)?;
            Self::from_gguf(&f)
        } else {
            Err(ModelError::Io {
                path: path.display().to_string(),
                error: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            })
        }
    }

    /// Load from an open GGUF file.
    pub fn from_gguf(file: &bitnet_gguf::GgufFile) -> Result<Model> {
        let config = gguf::config_from_gguf(file)?;
        check_layer_count(
            &file.path().display().to_string(),
            &format!("{}.block_count", config.arch_name),
            config.n_layers,
            file.tensors().len(),
        )?;
        let src = gguf::GgufSource::new(file);
        let weights = load_weights(&src, &config)?;
        Ok(Model { config, weights })
    }

    /// Load from an HF directory.
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Model> {
        let dir = dir.as_ref();
        let (config, quant) = hf::read_config(dir)?;
        let src = hf::HfSource::open(dir, &config, quant)?;
        check_layer_count(
            &dir.join("config.json").display().to_string(),
            "num_hidden_layers",
            config.n_layers,
            src.n_tensors(),
        )?;
        let weights = load_weights(&src, &config)?;
        Ok(Model { config, weights })
    }
}

/// Wrap a decoded ternary tensor into the kernels' matrix, naming `tensor` on error.
pub(crate) fn ternary_matrix(
    file: &str,
    tensor: &str,
    rows: usize,
    cols: usize,
    trits: &[i8],
    scale: f32,
    input_norm: Option<Vec<f32>>,
) -> Result<Linear> {
    if !scale.is_finite() {
        return Err(ModelError::BadTensor {
            file: file.into(),
            name: tensor.into(),
            reason: format!("scale {scale} is not finite"),
        });
    }
    let m =
        TernaryMatrix::from_trits(rows, cols, trits, scale).map_err(|e| ModelError::BadTensor {
            file: file.into(),
            name: tensor.into(),
            reason: e.to_string(),
        })?;
    Ok(Linear {
        proj: Proj::Ternary(m),
        input_norm,
    })
}

/// The scale `a` when every value of `w` is −a, 0 or +a (a float tensor that is already
/// ternary, as in bitnet.cpp's F32 intermediate GGUF); `None` otherwise.
pub(crate) fn exact_ternary(w: &[f32]) -> Option<(Vec<i8>, f32)> {
    let a = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    if a == 0.0 || !a.is_finite() {
        return None;
    }
    let mut trits = Vec::with_capacity(w.len());
    for &v in w {
        trits.push(if v == a {
            1
        } else if v == -a {
            -1
        } else if v == 0.0 {
            0
        } else {
            return None;
        });
    }
    Some((trits, a))
}

/// The `.gguf` files directly inside `dir`, sorted.
pub(crate) fn gguf_files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().and_then(|x| x.to_str()) == Some("gguf"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
