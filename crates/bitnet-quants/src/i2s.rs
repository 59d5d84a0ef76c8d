//! bitnet.cpp's I2_S (GGUF type 36), x86 `ACT_PARALLEL` layout.
//!
//! Data of an n-element tensor (n = rows·cols, a multiple of 128): n/4 bytes of 2-bit codes,
//! one little-endian f32 scale, 28 padding bytes (bitnet.cpp leaves them uninitialized; we
//! write zeros and ignore them when reading). Codes in 128-element blocks of 32 bytes: byte p
//! of block b holds elements 128b + 32g + p (g = 0..3) in bits 7:6, 5:4, 3:2, 1:0. Code 0/1/2 →
//! −1/0/+1 (3 is invalid); weight = (code − 1) · scale.

use crate::error::check_size;
use crate::{QuantError, Ternary};

/// Elements per I2_S block.
const BLOCK: usize = 128;
/// Bytes after the codes: f32 scale + 28 zero bytes.
const TAIL: usize = 32;

/// Bytes of an n-element I2_S tensor.
pub fn i2s_size(n: usize) -> usize {
    n / 4 + TAIL
}

fn check(data: &[u8], n: usize) -> Result<(), QuantError> {
    if !n.is_multiple_of(BLOCK) {
        return Err(QuantError::BadShape {
            format: "I2_S".into(),
            reason: format!("{n} elements is not a multiple of {BLOCK}"),
        });
    }
    check_size("I2_S", n, i2s_size(n) as u64, data.len())
}

/// Decode to trits (−1/0/+1, row-major flattened order) and the f32 scale.
pub(crate) fn decode_i2s(data: &[u8], n: usize) -> Result<(Vec<i8>, f32), QuantError> {
    check(data, n)?;
    let mut trits = vec![0i8; n];
    for (b, (codes, out)) in data[..n / 4]
        .chunks_exact(32)
        .zip(trits.chunks_exact_mut(BLOCK))
        .enumerate()
    {
        for (p, &byte) in codes.iter().enumerate() {
            for g in 0..4 {
                let code = (byte >> (6 - 2 * g)) & 3;
                if code == 3 {
                    return Err(QuantError::InvalidCode {
                        format: "I2_S",
                        index: (b * BLOCK + 32 * g + p) as u64,
                    });
                }
                out[32 * g + p] = code as i8 - 1;
            }
        }
    }
    let s = &data[n / 4..n / 4 + 4];
    Ok((trits, f32::from_le_bytes([s[0], s[1], s[2], s[3]])))
}

/// Encode a ternary tensor as I2_S bytes: n/4 codes, f32 scale, 28 zero bytes (the layout
/// bitnet.cpp's quantizer writes, whose padding is uninitialized). Needs `rows · cols` to be a multiple of 128.
pub fn encode_i2s(t: &Ternary) -> Result<Vec<u8>, QuantError> {
    t.validate()?;
    let n = t.len();
    if !n.is_multiple_of(BLOCK) {
        return Err(QuantError::BadShape {
            format: "I2_S".into(),
            reason: format!("{n} elements is not a multiple of {BLOCK}"),
        });
    }
    let mut out = vec![0u8; i2s_size(n)];
    for (block, codes) in t.trits.chunks_exact(BLOCK).zip(out.chunks_exact_mut(32)) {
        for (p, byte) in codes.iter_mut().enumerate() {
            let mut v = 0u8;
            for g in 0..4 {
                v |= ((block[32 * g + p] + 1) as u8) << (6 - 2 * g);
            }
            *byte = v;
        }
    }
    out[n / 4..n / 4 + 4].copy_from_slice(&t.scale.to_le_bytes());
    Ok(out)
}
