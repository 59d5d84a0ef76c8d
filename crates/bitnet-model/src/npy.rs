//! NumPy `.npy` files (format v1.0 written, v1–v3 read), little-endian, C order: logits dumps
//! and reference fixtures.

use std::path::Path;

use crate::{ModelError, Result};

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// Element data, converted to the widest type of its kind.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// From `<f4` (exact) or `<f8` (rounded to f32).
    F32(Vec<f32>),
    /// From `<i4`, `<i8`, `<u4`, `<u8` (u8 values above i64::MAX are refused).
    I64(Vec<i64>),
}

/// The bytes of a v1.0 `.npy` file holding `data` (f32, C order) with `shape`.
pub fn npy_f32_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy shape does not match data"
    );
    let dims = match shape {
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Write f32 `data` with `shape` to a `.npy` file.
pub fn write_npy_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<()> {
    let path = path.as_ref();
    std::fs::write(path, npy_f32_bytes(shape, data)).map_err(|error| ModelError::Io {
        path: path.display().to_string(),
        error,
    })
}

/// Read a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|error| ModelError::Io {
        path: path.display().to_string(),
        error,
    })?;
    parse_npy(&bytes).map_err(|reason| ModelError::Invalid(format!("{}: {reason}", path.display())))
}

/// Parse the bytes of a `.npy` file.
pub fn parse_npy(b: &[u8]) -> std::result::Result<NpyArray, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b.get(start..start + hlen).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    let field = |key: &str| -> std::result::Result<&str, String> {
        let k = format!("'{key}':");
        let at = header.find(&k).ok_or(format!("header has no {key:?}"))? + k.len();
        Ok(header[at..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("bad descr")?;
    if field("fortran_order")?.starts_with("True") {
        return Err("Fortran-order arrays are not supported".into());
    }
    let shape_s = field("shape")?;
    let shape_s = shape_s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("bad shape")?;
    let shape = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry {s:?}"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    let body = &b[start + hlen..];
    let size = match descr {
        "<f4" | "<i4" | "<u4" => 4,
        "<f8" | "<i8" | "<u8" => 8,
        d => {
            return Err(format!(
                "unsupported dtype {d:?} (supported: <f4, <f8, <i4, <i8, <u4, <u8)"
            ))
        }
    };
    let need = n
        .checked_mul(size)
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    if body.len() != need {
        return Err(format!(
            "data has {} bytes, shape {shape:?} of {descr} needs {need}",
            body.len()
        ));
    }
    let w4 = |c: &[u8]| [c[0], c[1], c[2], c[3]];
    let w8 = |c: &[u8]| [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
    let data = match descr {
        "<f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes(w4(c)))
                .collect(),
        ),
        "<f8" => NpyData::F32(
            body.chunks_exact(8)
                .map(|c| f64::from_le_bytes(w8(c)) as f32)
                .collect(),
        ),
        "<i4" => NpyData::I64(
            body.chunks_exact(4)
                .map(|c| i32::from_le_bytes(w4(c)) as i64)
                .collect(),
        ),
        "<u4" => NpyData::I64(
            body.chunks_exact(4)
                .map(|c| u32::from_le_bytes(w4(c)) as i64)
                .collect(),
        ),
        "<i8" => NpyData::I64(
            body.chunks_exact(8)
                .map(|c| i64::from_le_bytes(w8(c)))
                .collect(),
        ),
        _ => NpyData::I64(
            body.chunks_exact(8)
                .map(|c| {
                    i64::try_from(u64::from_le_bytes(w8(c)))
                        .map_err(|_| "u8 value above i64::MAX".to_string())
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
        ),
    };
    Ok(NpyArray { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_numpy_layout() {
        // What numpy 1.x/2.x writes for np.zeros((2, 3), np.float32): 128-byte v1.0 file header
        // "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded to 64 bytes.
        let b = npy_f32_bytes(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, -1.5]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(hlen, 118);
        let h = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(h.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(h.ends_with('\n'));
        assert_eq!(&b[10 + hlen + 20..], &(-1.5f32).to_le_bytes());
        let a = parse_npy(&b).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, -1.5]));
        let one = parse_npy(&npy_f32_bytes(&[1], &[7.0])).unwrap();
        assert_eq!(one.shape, vec![1]);
    }

    #[test]
    fn reads_int64_and_refuses_garbage() {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }".to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&5i64.to_le_bytes());
        b.extend_from_slice(&(-3i64).to_le_bytes());
        assert_eq!(parse_npy(&b).unwrap().data, NpyData::I64(vec![5, -3]));
        assert!(parse_npy(&b[..b.len() - 1])
            .unwrap_err()
            .contains("needs 16"));
        assert!(parse_npy(b"nope").is_err());
        let mut huge = b"\x93NUMPY\x01\x00".to_vec();
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 2), }\n";
        huge.extend_from_slice(&(h.len() as u16).to_le_bytes());
        huge.extend_from_slice(h.as_bytes());
        assert!(parse_npy(&huge).unwrap_err().contains("too large"));
    }
}
