//! The one GGUF v3 serializer: [`GgufLayout`] builds the header (metadata, tensor infos,
//! padding) from declared tensor sizes; [`GgufStreamWriter`] writes that header and then each
//! tensor's bytes in order, padded to the alignment, so a multi-GB file never sits in memory.
//! [`crate::GgufWriter`] is built on the same layout.

use std::io::{self, Write};

use crate::{GgmlType, GgufError, Result, Value, DEFAULT_ALIGNMENT};

/// One tensor of a GGUF file to be written: name, GGUF dims (`dims[0]` contiguous) and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name as stored in the file.
    pub name: String,
    /// GGUF dims, `dims[0]` contiguous.
    pub dims: Vec<u64>,
    /// Storage type of the tensor's bytes.
    pub ggml_type: GgmlType,
}

impl TensorSpec {
    /// Exact byte size implied by type and dims; an error names the tensor.
    pub fn size(&self) -> Result<u64> {
        self.ggml_type
            .data_size(&self.dims)
            .map_err(|reason| GgufError::BadTensor {
                name: self.name.clone(),
                reason,
            })
    }
}

/// Where one tensor's bytes go in the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSlot {
    /// Tensor name (for error messages).
    pub name: String,
    /// Offset from the start of the data section (a multiple of the alignment).
    pub offset: u64,
    /// Byte size of the tensor.
    pub size: u64,
}

/// The serialized header of a GGUF v3 file and the place of each tensor's bytes.
#[derive(Clone, Debug)]
pub struct GgufLayout {
    /// Header bytes, already padded to the alignment: `header.len()` is the data section start.
    header: Vec<u8>,
    slots: Vec<TensorSlot>,
}

impl GgufLayout {
    /// Layout of a file with this metadata and these tensors. The alignment is
    /// `general.alignment` when that key is set to a power of two, else 32.
    pub fn new(metadata: &[(String, Value)], tensors: &[TensorSpec]) -> Result<Self> {
        let sized = tensors
            .iter()
            .map(|t| Ok((t.name.as_str(), t.dims.as_slice(), t.ggml_type, t.size()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_sized(metadata, &sized))
    }

    /// Layout from `(name, dims, type, byte size)` per tensor; sizes are taken as given.
    pub(crate) fn from_sized(
        metadata: &[(String, Value)],
        tensors: &[(&str, &[u64], GgmlType, u64)],
    ) -> Self {
        let align = alignment(metadata);
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in metadata {
            write_str(&mut out, k);
            out.extend_from_slice(&v.value_type().id().to_le_bytes());
            write_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut slots = Vec::with_capacity(tensors.len());
        for &(name, dims, ty, size) in tensors {
            write_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            slots.push(TensorSlot {
                name: name.to_string(),
                offset,
                size,
            });
            offset = (offset + size).div_ceil(align) * align;
        }
        let data_start = (out.len() as u64).div_ceil(align) * align;
        out.resize(data_start as usize, 0);
        GgufLayout { header: out, slots }
    }

    /// Header bytes including the padding before the data section.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Start of the data section in the file.
    pub fn data_start(&self) -> u64 {
        self.header.len() as u64
    }

    /// Each tensor's place in the data section, in file order.
    pub fn slots(&self) -> &[TensorSlot] {
        &self.slots
    }

    /// Total file size (no padding after the last tensor).
    pub fn file_size(&self) -> u64 {
        self.data_start() + self.slots.last().map_or(0, |s| s.offset + s.size)
    }
}

/// The alignment the metadata asks for (`general.alignment` when a power of two) or 32.
fn alignment(metadata: &[(String, Value)]) -> u64 {
    metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| v.as_u64())
        .filter(|a| a.is_power_of_two())
        .unwrap_or(DEFAULT_ALIGNMENT)
}

/// Forwards to `inner` and counts the bytes written (streaming writers use it to check each
/// tensor against its declared size).
pub struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Wrap `inner` with a count of zero.
    pub fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a GGUF file from a [`GgufLayout`]: the header on creation, then each tensor in
/// order between [`begin_tensor`](Self::begin_tensor) and [`end_tensor`](Self::end_tensor).
pub struct GgufStreamWriter<W: Write> {
    out: CountingWriter<W>,
    layout: GgufLayout,
    /// Name used in I/O errors (the output path, or a placeholder).
    dest: String,
    /// Index of the next tensor to begin.
    next: usize,
    /// File position where the open tensor began, if one is open.
    open: Option<u64>,
}

impl<W: Write> GgufStreamWriter<W> {
    /// Write the header of `layout` to `out`; `dest` names the output in I/O errors.
    pub fn new(out: W, layout: GgufLayout, dest: impl Into<String>) -> Result<Self> {
        let mut s = GgufStreamWriter {
            out: CountingWriter::new(out),
            layout,
            dest: dest.into(),
            next: 0,
            open: None,
        };
        let header = std::mem::take(&mut s.layout.header);
        let r = s.out.write_all(&header);
        s.layout.header = header;
        r.map_err(|e| s.io(e))?;
        Ok(s)
    }

    fn io(&self, source: io::Error) -> GgufError {
        GgufError::Io {
            path: self.dest.clone(),
            source,
        }
    }

    /// Pad to the next tensor's offset and return the writer its bytes go to.
    pub fn begin_tensor(&mut self) -> Result<&mut dyn Write> {
        if self.open.is_some() {
            return Err(GgufError::Invalid(
                "begin_tensor called while a tensor is open".into(),
            ));
        }
        let Some(slot) = self.layout.slots.get(self.next) else {
            return Err(GgufError::Invalid(format!(
                "all {} declared tensors already written",
                self.layout.slots.len()
            )));
        };
        let start = self.layout.data_start() + slot.offset;
        // `count` never passes `start`: the previous tensor ended at or before this offset.
        let pad = start.saturating_sub(self.out.count);
        write_zeros(&mut self.out, pad).map_err(|e| self.io(e))?;
        self.open = Some(start);
        Ok(&mut self.out)
    }

    /// Close the open tensor; an error names it when it got a different byte count than declared.
    pub fn end_tensor(&mut self) -> Result<()> {
        let Some(start) = self.open.take() else {
            return Err(GgufError::Invalid(
                "end_tensor called with no open tensor".into(),
            ));
        };
        let slot = &self.layout.slots[self.next];
        let got = self.out.count - start;
        if got != slot.size {
            return Err(GgufError::BadTensor {
                name: slot.name.clone(),
                reason: format!("wrote {got} bytes, declared {}", slot.size),
            });
        }
        self.next += 1;
        Ok(())
    }

    /// Write one whole tensor.
    pub fn write_tensor(&mut self, data: &[u8]) -> Result<()> {
        let r = self.begin_tensor()?.write_all(data);
        r.map_err(|e| self.io(e))?;
        self.end_tensor()
    }

    /// Check that every declared tensor was written, flush, and return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if self.open.is_some() || self.next != self.layout.slots.len() {
            return Err(GgufError::Invalid(format!(
                "{}: {} of {} declared tensors written",
                self.dest,
                self.next,
                self.layout.slots.len()
            )));
        }
        self.out.flush().map_err(|e| self.io(e))?;
        Ok(self.out.into_inner())
    }
}

/// Write `n` zero bytes.
fn write_zeros(w: &mut impl Write, n: u64) -> io::Result<()> {
    const Z: [u8; 64] = [0; 64];
    let mut left = n;
    while left > 0 {
        let k = left.min(64);
        w.write_all(&Z[..k as usize])?;
        left -= k;
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => write_array(out, a),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// An array's element type, count and elements.
fn write_array(out: &mut Vec<u8>, a: &crate::Array) {
    use crate::Array as A;
    out.extend_from_slice(&a.elem_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    match a {
        A::U8(v) => out.extend_from_slice(v),
        A::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        A::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::Bool(v) => out.extend(v.iter().map(|&x| x as u8)),
        A::String(v) => v.iter().for_each(|x| write_str(out, x)),
        A::Array(v) => v.iter().for_each(|x| write_array(out, x)),
        A::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        A::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}
