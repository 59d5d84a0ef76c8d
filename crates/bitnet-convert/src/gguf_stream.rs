//! Streaming GGUF v3 writer: the header is written from declared tensor sizes, then each
//! tensor's bytes are produced one at a time, so a multi-GB file never sits in memory.
//! (`bitnet_gguf::GgufWriter` holds all tensors in memory; this writes the same layout.)

use std::io::Write;

use bitnet_gguf::{GgmlType, Value, DEFAULT_ALIGNMENT};

use crate::counting::{write_zeros, Counting};
use crate::ConvertError;

/// One tensor to be written: name, GGUF dims (`dims[0]` contiguous) and type.
#[derive(Clone, Debug)]
pub struct GgufTensorPlan {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl GgufTensorPlan {
    /// Exact byte size implied by type and dims.
    pub fn size(&self) -> Result<u64, ConvertError> {
        self.ty
            .data_size(&self.dims)
            .map_err(|r| ConvertError::Invalid(format!("tensor {:?}: {r}", self.name)))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::Array(t, items) => {
            out.extend_from_slice(&t.id().to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(out, it);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// Total file size of a GGUF with this metadata and these tensors (32-byte alignment).
pub fn gguf_file_size(
    metadata: &[(String, Value)],
    tensors: &[GgufTensorPlan],
) -> Result<u64, ConvertError> {
    let (header, offsets) = header_bytes(metadata, tensors)?;
    let last = match (tensors.last(), offsets.last()) {
        (Some(t), Some(&o)) => o + t.size()?,
        _ => 0,
    };
    Ok(header.len() as u64 + last)
}

/// Header bytes (padded to the alignment) and each tensor's offset in the data section.
fn header_bytes(
    metadata: &[(String, Value)],
    tensors: &[GgufTensorPlan],
) -> Result<(Vec<u8>, Vec<u64>), ConvertError> {
    let align = DEFAULT_ALIGNMENT;
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut out, k);
        out.extend_from_slice(&v.value_type().id().to_le_bytes());
        put_value(&mut out, v);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::with_capacity(tensors.len());
    for t in tensors {
        put_str(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.ty.id().to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + t.size()?).div_ceil(align) * align;
    }
    let data_start = (out.len() as u64).div_ceil(align) * align;
    out.resize(data_start as usize, 0);
    Ok((out, offsets))
}

/// Write a GGUF v3 file to `w`: header from `metadata` and `tensors`, then for each tensor
/// (in order) `emit(index, writer)` must write exactly that tensor's bytes.
pub fn write_gguf_streaming(
    w: &mut dyn Write,
    metadata: &[(String, Value)],
    tensors: &[GgufTensorPlan],
    mut emit: impl FnMut(usize, &mut dyn Write) -> Result<(), ConvertError>,
) -> Result<(), ConvertError> {
    let io = |e| ConvertError::io(std::path::Path::new("<gguf output>"), e);
    let (header, offsets) = header_bytes(metadata, tensors)?;
    w.write_all(&header).map_err(io)?;
    let mut pos = 0u64;
    for (i, (t, &off)) in tensors.iter().zip(&offsets).enumerate() {
        write_zeros(w, off - pos).map_err(io)?;
        let mut c = Counting {
            inner: &mut *w,
            count: 0,
        };
        emit(i, &mut c)?;
        let expected = t.size()?;
        if c.count != expected {
            return Err(ConvertError::SizeMismatch {
                name: t.name.clone(),
                expected,
                got: c.count,
            });
        }
        pos = off + expected;
    }
    Ok(())
}
