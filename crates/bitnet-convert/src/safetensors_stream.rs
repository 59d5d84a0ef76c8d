//! Streaming safetensors writer: JSON header from declared shapes, then tensor bytes one at a
//! time in the declared order. Layout: u64 LE header length, JSON header (space-padded to a
//! multiple of 8), data.

use std::io::Write;

use crate::ConvertError;
use bitnet_gguf::CountingWriter;

/// One tensor: name, safetensors dtype string ("BF16", "F32", "U8", …), shape, byte size.
#[derive(Clone, Debug)]
pub struct StTensorPlan {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub nbytes: u64,
}

fn header_json(tensors: &[StTensorPlan], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut map = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        map.insert("__metadata__".into(), m.into());
    }
    let mut off = 0u64;
    for t in tensors {
        map.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype,
                "shape": t.shape,
                "data_offsets": [off, off + t.nbytes],
            }),
        );
        off += t.nbytes;
    }
    let mut s = serde_json::Value::Object(map).to_string().into_bytes();
    while !s.len().is_multiple_of(8) {
        s.push(b' ');
    }
    s
}

/// Total file size of such a safetensors file.
pub fn safetensors_file_size(tensors: &[StTensorPlan], metadata: &[(&str, &str)]) -> u64 {
    8 + header_json(tensors, metadata).len() as u64 + tensors.iter().map(|t| t.nbytes).sum::<u64>()
}

/// Write a safetensors file to `w`; `emit(index, writer)` must write exactly tensor
/// `index`'s bytes (little-endian, row-major).
pub fn write_safetensors_streaming(
    w: &mut dyn Write,
    tensors: &[StTensorPlan],
    metadata: &[(&str, &str)],
    mut emit: impl FnMut(usize, &mut dyn Write) -> Result<(), ConvertError>,
) -> Result<(), ConvertError> {
    let io = |e| ConvertError::io(std::path::Path::new("<safetensors output>"), e);
    let h = header_json(tensors, metadata);
    w.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
    w.write_all(&h).map_err(io)?;
    for (i, t) in tensors.iter().enumerate() {
        let mut c = CountingWriter::new(&mut *w);
        emit(i, &mut c)?;
        if c.count() != t.nbytes {
            return Err(ConvertError::SizeMismatch {
                name: t.name.clone(),
                expected: t.nbytes,
                got: c.count(),
            });
        }
    }
    Ok(())
}
