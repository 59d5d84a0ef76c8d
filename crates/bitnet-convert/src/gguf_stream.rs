//! Streaming GGUF v3 output for conversion: the header is written from declared tensor sizes,
//! then each tensor's bytes are produced one at a time, so a multi-GB file never sits in memory.
//! The serialization itself is `bitnet_gguf`'s ([`GgufLayout`], [`GgufStreamWriter`]), the
//! same code `bitnet_gguf::GgufWriter` uses.

use std::io::Write;

pub use bitnet_gguf::TensorSpec as GgufTensorPlan;
use bitnet_gguf::{GgufLayout, GgufStreamWriter, Value};

use crate::ConvertError;

/// Total file size of a GGUF with this metadata and these tensors (32-byte alignment unless
/// `general.alignment` says otherwise).
pub fn gguf_file_size(
    metadata: &[(String, Value)],
    tensors: &[GgufTensorPlan],
) -> Result<u64, ConvertError> {
    Ok(GgufLayout::new(metadata, tensors)?.file_size())
}

/// Write a GGUF v3 file to `w`: header from `metadata` and `tensors`, then for each tensor
/// (in order) `emit(index, writer)` must write exactly that tensor's bytes.
pub fn write_gguf_streaming(
    w: &mut dyn Write,
    metadata: &[(String, Value)],
    tensors: &[GgufTensorPlan],
    mut emit: impl FnMut(usize, &mut dyn Write) -> Result<(), ConvertError>,
) -> Result<(), ConvertError> {
    let layout = GgufLayout::new(metadata, tensors)?;
    let mut s = GgufStreamWriter::new(w, layout, "<gguf output>")?;
    for i in 0..tensors.len() {
        emit(i, s.begin_tensor()?)?;
        s.end_tensor()?;
    }
    s.finish()?;
    Ok(())
}
