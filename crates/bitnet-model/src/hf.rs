//! Hugging Face safetensors checkpoints: `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`, memory-mapped, with one index of every tensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::{ModelError, Result};

/// Where one tensor lies.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    /// Shape in PyTorch order (`[out, in]` for a Linear).
    pub shape: Vec<usize>,
    file: usize,
    start: usize,
    end: usize,
}

impl TensorEntry {
    /// Bytes of data.
    pub fn bytes(&self) -> usize {
        self.end - self.start
    }

    /// Number of elements.
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// All safetensors files of a checkpoint directory.
pub struct SafetensorsSet {
    files: Vec<(PathBuf, memmap2::Mmap)>,
    index: BTreeMap<String, TensorEntry>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
    move |error| ModelError::Io {
        path: path.display().to_string(),
        error,
    }
}

impl SafetensorsSet {
    /// Open `dir/model.safetensors`, or the shards named by `dir/model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<SafetensorsSet> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut set = SafetensorsSet {
            files: Vec::new(),
            index: BTreeMap::new(),
        };
        if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(io_err(&index_path))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|error| ModelError::Json {
                    path: index_path.display().to_string(),
                    error,
                })?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::MissingKey {
                    file: index_path.display().to_string(),
                    key: "weight_map".into(),
                })?;
            let mut shards: Vec<&str> = Vec::new();
            for (name, file) in map {
                let file = file.as_str().ok_or_else(|| ModelError::BadKey {
                    file: index_path.display().to_string(),
                    key: format!("weight_map.{name}"),
                    reason: "not a file name".into(),
                })?;
                if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                    return Err(ModelError::BadKey {
                        file: index_path.display().to_string(),
                        key: format!("weight_map.{name}"),
                        reason: format!("shard name {file:?} is not a plain file name"),
                    });
                }
                if !shards.contains(&file) {
                    shards.push(file);
                }
            }
            shards.sort_unstable();
            for s in shards {
                set.add_file(&dir.join(s))?;
            }
            for (name, file) in map {
                if !set.index.contains_key(name) {
                    return Err(ModelError::MissingTensor {
                        file: dir
                            .join(file.as_str().unwrap_or_default())
                            .display()
                            .to_string(),
                        name: name.clone(),
                    });
                }
            }
        } else if single.is_file() {
            set.add_file(&single)?;
        } else {
            return Err(ModelError::Io {
                path: single.display().to_string(),
                error: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "neither model.safetensors nor model.safetensors.index.json found",
                ),
            });
        }
        Ok(set)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        // SAFETY: read-only map; we rely on the file not being modified while it is open, as
        // every mmap-based loader does. All offsets are validated by `read_metadata` against
        // the buffer length before use.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
        let (header_len, meta) =
            SafeTensors::read_metadata(&mmap).map_err(|e| ModelError::Safetensors {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let base = 8 + header_len;
        let file_idx = self.files.len();
        for (name, info) in meta.tensors() {
            let (a, b) = info.data_offsets;
            if self.index.contains_key(&name) {
                return Err(ModelError::Safetensors {
                    path: path.display().to_string(),
                    reason: format!("tensor {name:?} appears in more than one shard"),
                });
            }
            self.index.insert(
                name.clone(),
                TensorEntry {
                    name,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    file: file_idx,
                    start: base + a,
                    end: base + b,
                },
            );
        }
        self.files.push((path.to_path_buf(), mmap));
        Ok(())
    }

    /// Every tensor, sorted by name.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorEntry> {
        self.index.values()
    }

    /// One tensor by name.
    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.index.get(name)
    }

    /// The file holding a tensor.
    pub fn path_of(&self, e: &TensorEntry) -> &Path {
        &self.files[e.file].0
    }

    /// A tensor's raw little-endian bytes.
    pub fn data(&self, e: &TensorEntry) -> &[u8] {
        &self.files[e.file].1[e.start..e.end]
    }

    /// A float tensor (F32, F16 or BF16) as f32, named in errors.
    pub fn to_f32(&self, e: &TensorEntry) -> Result<Vec<f32>> {
        let d = self.data(e);
        Ok(match e.dtype {
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::BadTensor {
                    file: self.path_of(e).display().to_string(),
                    name: e.name.clone(),
                    reason: format!(
                        "dtype {other:?} where a float tensor (F32, F16, BF16) is expected"
                    ),
                })
            }
        })
    }
}
