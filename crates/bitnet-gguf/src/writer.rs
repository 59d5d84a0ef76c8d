//! Writing GGUF v3 files (used by `bitnet synth` and conversion tools).

use std::path::Path;

use crate::stream::{GgufLayout, GgufStreamWriter};
use crate::{GgmlType, GgufError, Result, Value};

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes a GGUF v3 file with 32-byte alignment
/// (or `general.alignment` when that key is set).
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    /// Position of each key in `metadata`.
    key_index: std::collections::HashMap<String, usize>,
    tensors: Vec<PendingTensor>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a metadata key.
    pub fn add_kv(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        let key = key.into();
        if let Some(&i) = self.key_index.get(&key) {
            self.metadata[i].1 = value;
        } else {
            self.key_index.insert(key.clone(), self.metadata.len());
            self.metadata.push((key, value));
        }
        self
    }

    /// Add a tensor; `dims` in GGUF order (`dims[0]` contiguous). The byte size must match the type.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let expected = ggml_type
            .data_size(dims)
            .map_err(|reason| GgufError::BadTensor {
                name: name.clone(),
                reason,
            })?;
        if data.len() as u64 != expected {
            return Err(GgufError::BadTensor {
                name,
                reason: format!(
                    "{} bytes given, {ggml_type} {dims:?} needs {expected}",
                    data.len()
                ),
            });
        }
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            ggml_type,
            data,
        });
        Ok(self)
    }

    /// The header layout of this file.
    fn layout(&self) -> GgufLayout {
        let sized: Vec<(&str, &[u64], GgmlType, u64)> = self
            .tensors
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.dims.as_slice(),
                    t.ggml_type,
                    t.data.len() as u64,
                )
            })
            .collect();
        GgufLayout::from_sized(&self.metadata, &sized)
    }

    /// Serialize to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let layout = self.layout();
        let mut out = Vec::with_capacity(layout.file_size() as usize);
        out.extend_from_slice(layout.header());
        for (t, slot) in self.tensors.iter().zip(layout.slots()) {
            out.resize((layout.data_start() + slot.offset) as usize, 0);
            out.extend_from_slice(&t.data);
        }
        out
    }

    /// Write to a file, streaming each tensor after the header.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = std::fs::File::create(path).map_err(|source| GgufError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut s = GgufStreamWriter::new(
            std::io::BufWriter::new(file),
            self.layout(),
            path.display().to_string(),
        )?;
        for t in &self.tensors {
            s.write_tensor(&t.data)?;
        }
        s.finish().map(drop)
    }
}
