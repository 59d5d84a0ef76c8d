//! Parsing a GGUF header and giving zero-copy access to tensor bytes.

use std::path::{Path, PathBuf};

use crate::{Array, GgmlType, GgufError, Result, Value, ValueType, DEFAULT_ALIGNMENT};

/// Where one tensor is and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in GGUF order: `dims[0]` is the contiguous one (a matrix `[in, out]`).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    /// Exact byte size implied by type and dims.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// The parsed header of a GGUF file: metadata, tensor infos and the data section's start.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    pub alignment: u64,
    /// Index of each key in `metadata` and of each tensor name in `tensors` (lookups and
    /// duplicate checks in constant time: a header of 10⁵ entries parses in milliseconds).
    key_index: std::collections::HashMap<String, usize>,
    tensor_index: std::collections::HashMap<String, usize>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                needed: n,
                len: self.buf.len() as u64,
            });
        }
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| GgufError::Invalid(format!("{}: string is not valid UTF-8", what())))
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value> {
        let what = || format!("value of metadata key {key:?}");
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(&what)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(&what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(&what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(&what)?)),
            ValueType::U32 => Value::U32(self.u32(&what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(&what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(&what)?)),
            ValueType::U64 => Value::U64(self.u64(&what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(&what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(&what)?)),
            ValueType::Bool => match self.array::<1>(&what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(GgufError::BadValue {
                        key: key.to_string(),
                        reason: format!("bool byte is {b}, expected 0 or 1"),
                    })
                }
            },
            ValueType::String => Value::String(self.string(&what)?),
            ValueType::Array => {
                if depth >= 4 {
                    return Err(GgufError::BadValue {
                        key: key.to_string(),
                        reason: "arrays nested deeper than 4 levels".into(),
                    });
                }
                let et_id = self.u32(&what)?;
                let et = ValueType::from_id(et_id).ok_or_else(|| GgufError::UnknownValueType {
                    key: key.to_string(),
                    type_id: et_id,
                })?;
                let n = self.u64(&what)?;
                // Bound the allocation by what the rest of the file could possibly hold; the
                // elements are stored by type (at most ~3× their bytes in the file).
                if n.saturating_mul(et.min_size()) > self.remaining() {
                    return Err(GgufError::Truncated {
                        what: format!("array of {n} {et:?} for metadata key {key:?}"),
                        offset: self.pos as u64,
                        needed: n.saturating_mul(et.min_size()),
                        len: self.buf.len() as u64,
                    });
                }
                let n = n as usize;
                macro_rules! nums {
                    ($t:ty, $variant:ident) => {{
                        let raw = self.take((n * std::mem::size_of::<$t>()) as u64, &what)?;
                        Array::$variant(
                            raw.chunks_exact(std::mem::size_of::<$t>())
                                .map(|c| <$t>::from_le_bytes(c.try_into().expect("exact chunk")))
                                .collect(),
                        )
                    }};
                }
                let arr = match et {
                    ValueType::U8 => Array::U8(self.take(n as u64, &what)?.to_vec()),
                    ValueType::I8 => Array::I8(
                        self.take(n as u64, &what)?
                            .iter()
                            .map(|&b| b as i8)
                            .collect(),
                    ),
                    ValueType::U16 => nums!(u16, U16),
                    ValueType::I16 => nums!(i16, I16),
                    ValueType::U32 => nums!(u32, U32),
                    ValueType::I32 => nums!(i32, I32),
                    ValueType::F32 => nums!(f32, F32),
                    ValueType::U64 => nums!(u64, U64),
                    ValueType::I64 => nums!(i64, I64),
                    ValueType::F64 => nums!(f64, F64),
                    ValueType::Bool => {
                        let raw = self.take(n as u64, &what)?;
                        if let Some(b) = raw.iter().find(|&&b| b > 1) {
                            return Err(GgufError::BadValue {
                                key: key.to_string(),
                                reason: format!("bool byte is {b}, expected 0 or 1"),
                            });
                        }
                        Array::Bool(raw.iter().map(|&b| b == 1).collect())
                    }
                    ValueType::String => {
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            v.push(self.string(&what)?);
                        }
                        Array::String(v)
                    }
                    ValueType::Array => {
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            match self.value(ValueType::Array, key, depth + 1)? {
                                Value::Array(a) => v.push(a),
                                _ => unreachable!("an Array value is read as an array"),
                            }
                        }
                        Array::Array(v)
                    }
                };
                Value::Array(arr)
            }
        })
    }
}

impl GgufHeader {
    /// Parse the header from the first bytes of a file (`buf` may be the whole file).
    /// Tensor extents are checked against `file_len` (pass `buf.len()` for a whole file).
    pub fn parse(buf: &[u8], file_len: u64) -> Result<GgufHeader> {
        let mut c = Cursor { buf, pos: 0 };
        let magic: [u8; 4] = c.array(&|| "magic".into())?;
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic(magic));
        }
        let version = c.u32(&|| "version".into())?;
        if version == 0 || version > 0xFFFF {
            // A big-endian file stores small versions byte-swapped.
            if version.swap_bytes() <= 3 && version.swap_bytes() > 0 {
                return Err(GgufError::BigEndian);
            }
            return Err(GgufError::UnsupportedVersion(version));
        }
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version));
        }
        let n_tensors = c.u64(&|| "tensor count".into())?;
        let n_kv = c.u64(&|| "metadata count".into())?;
        // Each KV needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info 8+4+4+8.
        if n_kv.saturating_mul(13) > c.remaining() || n_tensors.saturating_mul(24) > c.remaining() {
            return Err(GgufError::Invalid(format!(
                "header claims {n_kv} metadata keys and {n_tensors} tensors, more than the file's {} bytes can hold",
                buf.len()
            )));
        }

        let mut metadata: Vec<(String, Value)> = Vec::with_capacity(n_kv as usize);
        let mut key_index = std::collections::HashMap::with_capacity(n_kv as usize);
        for index in 0..n_kv {
            let key = c.string(&|| format!("key of metadata entry #{index}"))?;
            if key.is_empty() {
                return Err(GgufError::BadKey {
                    index,
                    reason: "empty key".into(),
                });
            }
            if key_index.contains_key(&key) {
                return Err(GgufError::BadKey {
                    index,
                    reason: format!("duplicate key {key:?}"),
                });
            }
            let tid = c.u32(&|| format!("value type of metadata key {key:?}"))?;
            let ty = ValueType::from_id(tid).ok_or_else(|| GgufError::UnknownValueType {
                key: key.clone(),
                type_id: tid,
            })?;
            let value = c.value(ty, &key, 0)?;
            key_index.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let alignment = match key_index.get("general.alignment").map(|&i| &metadata[i]) {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => {
                    return Err(GgufError::BadValue {
                        key: "general.alignment".into(),
                        reason: format!("{v} is not a power of two up to 1 MiB"),
                    })
                }
            },
        };

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = std::collections::HashMap::with_capacity(n_tensors as usize);
        for index in 0..n_tensors {
            let name = c.string(&|| format!("name of tensor #{index}"))?;
            let what = || format!("info of tensor {name:?}");
            let n_dims = c.u32(&what)?;
            if n_dims == 0 || n_dims > 4 {
                return Err(GgufError::BadTensor {
                    name,
                    reason: format!("{n_dims} dimensions (expected 1 to 4)"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&what)?);
            }
            let type_id = c.u32(&what)?;
            let offset = c.u64(&what)?;
            let ggml_type =
                GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
                    name: name.clone(),
                    type_id,
                })?;
            if dims.contains(&0) {
                return Err(GgufError::BadTensor {
                    name,
                    reason: format!("zero dimension in {dims:?}"),
                });
            }
            let size = ggml_type
                .data_size(&dims)
                .map_err(|reason| GgufError::BadTensor {
                    name: name.clone(),
                    reason,
                })?;
            if offset % alignment != 0 {
                return Err(GgufError::BadTensor {
                    name,
                    reason: format!(
                        "offset {offset} is not a multiple of the alignment {alignment}"
                    ),
                });
            }
            if tensor_index.contains_key(&name) {
                return Err(GgufError::BadTensor {
                    name,
                    reason: "duplicate tensor name".into(),
                });
            }
            tensor_index.insert(name.clone(), tensors.len());
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                size,
            });
        }

        let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
        for t in &tensors {
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.size));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(GgufError::Truncated {
                        what: format!(
                            "data of tensor {:?} ({} {:?}, {} bytes at data offset {})",
                            t.name, t.ggml_type, t.dims, t.size, t.offset
                        ),
                        offset: data_offset.saturating_add(t.offset),
                        needed: t.size,
                        len: file_len,
                    })
                }
            }
        }
        // Overlapping tensors mean a corrupted table.
        let mut spans: Vec<(u64, u64, &str)> = tensors
            .iter()
            .map(|t| (t.offset, t.offset + t.size, t.name.as_str()))
            .collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(GgufError::BadTensor {
                    name: w[1].2.to_string(),
                    reason: format!("its data overlaps tensor {:?}", w[0].2),
                });
            }
        }

        Ok(GgufHeader {
            version,
            metadata,
            tensors,
            data_offset,
            alignment,
            key_index,
            tensor_index,
        })
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A tensor info by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// `general.architecture`, if present.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(|v| v.as_str())
    }
}

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An open GGUF file: its header plus zero-copy access to tensor data through a memory map.
pub struct GgufFile {
    path: PathBuf,
    header: GgufHeader,
    data: Backing,
}

impl GgufFile {
    /// Open and parse a GGUF file; tensor data stays in the memory map.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only; we rely on the file not being truncated or modified by
        // another process while it is open, as every mmap-based model loader does. All
        // offsets into it are bounds-checked against its length when the header is parsed.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let header = GgufHeader::parse(&mmap, mmap.len() as u64).map_err(|e| match e {
            GgufError::Io { .. } => e,
            other => GgufError::Invalid(format!("{}: {other}", path.display())),
        })?;
        Ok(GgufFile {
            path,
            header,
            data: Backing::Mmap(mmap),
        })
    }

    /// Parse a GGUF image held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        let header = GgufHeader::parse(&bytes, bytes.len() as u64)?;
        Ok(GgufFile {
            path: PathBuf::from("<memory>"),
            header,
            data: Backing::Owned(bytes),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    pub fn metadata(&self) -> &[(String, Value)] {
        &self.header.metadata
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header.get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.header.tensor(name)
    }

    pub fn architecture(&self) -> Option<&str> {
        self.header.architecture()
    }

    fn bytes(&self) -> &[u8] {
        match &self.data {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }

    /// The raw bytes of a tensor (exactly `info.size` bytes). Bounds were checked at parse time.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let start = (self.header.data_offset + info.offset) as usize;
        &self.bytes()[start..start + info.size as usize]
    }

    /// The raw bytes of a tensor by name.
    pub fn tensor_bytes(&self, name: &str) -> Option<(&TensorInfo, &[u8])> {
        let info = self.tensor(name)?;
        Some((info, self.tensor_data(info)))
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("n_metadata", &self.header.metadata.len())
            .field("n_tensors", &self.header.tensors.len())
            .finish()
    }
}
