//! llama.cpp's ternary block formats TQ2_0 (type 35) and TQ1_0 (type 34).
//!
//! Both cut each row into blocks of 256 consecutive elements with one fp16 scale `d` per
//! block; weight = (code − 1) · d with code 0/1/2.
//! * TQ2_0, 66 bytes: `qs[64]`, `d`. Element j: c = j/128, g = (j%128)/32, p = j%32 → bits
//!   2g..2g+1 of `qs[32c + p]`.
//! * TQ1_0, 54 bytes: `qs[48]`, `qh[4]`, `d`. Base-3, five trits per byte (four in `qh`),
//!   byte = ceil(256 · Σ trit_k·3^(4−k) / 243); trit_k = ((u8)(byte·3^k) · 3) >> 8.
//!   Elements 0–159: `qs[p]` holds 32k + p; 160–239: `qs[32 + p]` holds 160 + 16k + p;
//!   240–255: `qh[p]` holds 240 + 4k + p.

use crate::error::check_size;
use crate::float::{f16_bits_to_f32, f32_to_f16_bits};
use crate::{QuantError, Ternary};

/// Elements per TQ block.
pub(crate) const QK: usize = 256;
/// Bytes per TQ2_0 block.
pub(crate) const TQ2_BYTES: usize = 66;
/// Bytes per TQ1_0 block.
pub(crate) const TQ1_BYTES: usize = 54;

/// Which of the two TQ formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tq {
    Tq1,
    Tq2,
}

impl Tq {
    fn name(self) -> &'static str {
        match self {
            Tq::Tq1 => "TQ1_0",
            Tq::Tq2 => "TQ2_0",
        }
    }
    fn block_bytes(self) -> usize {
        match self {
            Tq::Tq1 => TQ1_BYTES,
            Tq::Tq2 => TQ2_BYTES,
        }
    }
}

/// Codes (0..=3) of one TQ2_0 block → `out[256]`; returns d.
fn tq2_block(b: &[u8], out: &mut [u8]) -> f32 {
    for c in 0..2 {
        for g in 0..4 {
            for p in 0..32 {
                out[128 * c + 32 * g + p] = (b[32 * c + p] >> (2 * g)) & 3;
            }
        }
    }
    f16_bits_to_f32(u16::from_le_bytes([b[64], b[65]]))
}

/// One base-3 digit: llama.cpp's `((uint16_t)(uint8_t)(byte * 3^k) * 3) >> 8`.
#[inline]
fn trit_at(byte: u8, pow: u8) -> u8 {
    ((byte.wrapping_mul(pow) as u16 * 3) >> 8) as u8
}

/// Codes (0..=2) of one TQ1_0 block → `out[256]`; returns d.
fn tq1_block(b: &[u8], out: &mut [u8]) -> f32 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    for (k, &pw) in POW3.iter().enumerate() {
        for p in 0..32 {
            out[32 * k + p] = trit_at(b[p], pw);
        }
        for p in 0..16 {
            out[160 + 16 * k + p] = trit_at(b[32 + p], pw);
        }
    }
    for (k, &pw) in POW3[..4].iter().enumerate() {
        for p in 0..4 {
            out[240 + 4 * k + p] = trit_at(b[48 + p], pw);
        }
    }
    f16_bits_to_f32(u16::from_le_bytes([b[52], b[53]]))
}

fn check(kind: Tq, data: &[u8], n: usize, cols: usize) -> Result<(), QuantError> {
    if !cols.is_multiple_of(QK) || !n.is_multiple_of(QK) {
        return Err(QuantError::BadShape {
            format: kind.name().into(),
            reason: format!("rows of {cols} elements are not a whole number of {QK}-blocks"),
        });
    }
    check_size(
        kind.name(),
        n,
        (n / QK * kind.block_bytes()) as u64,
        data.len(),
    )
}

/// Visit every block: `f(block_index, codes[256], d)`.
fn for_blocks(
    kind: Tq,
    data: &[u8],
    mut f: impl FnMut(usize, &[u8], f32) -> Result<(), QuantError>,
) -> Result<(), QuantError> {
    let mut codes = [0u8; QK];
    for (i, b) in data.chunks_exact(kind.block_bytes()).enumerate() {
        let d = match kind {
            Tq::Tq1 => tq1_block(b, &mut codes),
            Tq::Tq2 => tq2_block(b, &mut codes),
        };
        f(i, &codes, d)?;
    }
    Ok(())
}

fn invalid_code(kind: Tq, block: usize, codes: &[u8]) -> Option<QuantError> {
    codes
        .iter()
        .position(|&c| c == 3)
        .map(|j| QuantError::InvalidCode {
            format: kind.name(),
            index: (block * QK + j) as u64,
        })
}

/// Dequantize to f32 with each block's own d. `n` elements; `cols` is the row length.
pub(crate) fn dequantize_tq(
    kind: Tq,
    data: &[u8],
    n: usize,
    cols: usize,
) -> Result<Vec<f32>, QuantError> {
    check(kind, data, n, cols)?;
    let mut out = Vec::with_capacity(n);
    for_blocks(kind, data, |i, codes, d| {
        if let Some(e) = invalid_code(kind, i, codes) {
            return Err(e);
        }
        out.extend(codes.iter().map(|&c| (c as i8 - 1) as f32 * d));
        Ok(())
    })?;
    Ok(out)
}

/// Decode to trits and one per-tensor scale; every block holding a nonzero trit must carry
/// the same d (all-zero blocks may have any d, gguf-py writes 0 there).
pub(crate) fn decode_tq(
    kind: Tq,
    data: &[u8],
    rows: usize,
    cols: usize,
) -> Result<Ternary, QuantError> {
    let n = rows * cols;
    check(kind, data, n, cols)?;
    let mut trits = Vec::with_capacity(n);
    let mut first: Option<(usize, f32)> = None;
    for_blocks(kind, data, |i, codes, d| {
        if let Some(e) = invalid_code(kind, i, codes) {
            return Err(e);
        }
        if codes.iter().any(|&c| c != 1) {
            match first {
                None => first = Some((i, d)),
                Some((fi, fd)) if fd.to_bits() != d.to_bits() => {
                    return Err(QuantError::InconsistentScale {
                        format: kind.name(),
                        block: i as u64,
                        d,
                        first_block: fi as u64,
                        first_d: fd,
                    })
                }
                Some(_) => {}
            }
        }
        trits.extend(codes.iter().map(|&c| c as i8 - 1));
        Ok(())
    })?;
    Ok(Ternary {
        rows,
        cols,
        trits,
        scale: first.map_or(0.0, |(_, d)| d),
    })
}

fn check_encodable(kind: Tq, t: &Ternary) -> Result<(), QuantError> {
    t.validate()?;
    if !t.cols.is_multiple_of(QK) {
        return Err(QuantError::BadShape {
            format: kind.name().into(),
            reason: format!(
                "rows of {} elements are not a whole number of {QK}-blocks",
                t.cols
            ),
        });
    }
    if !t.scale.is_finite() || t.scale < 0.0 {
        return Err(QuantError::BadShape {
            format: kind.name().into(),
            reason: format!("scale {} is not a finite non-negative number", t.scale),
        });
    }
    Ok(())
}

/// d bytes of a block as gguf-py writes it: fp16(max|w|) = fp16(scale), 0 for an all-zero block.
fn block_d(block: &[i8], scale: f32) -> [u8; 2] {
    let d = if block.iter().all(|&x| x == 0) {
        0.0
    } else {
        scale
    };
    f32_to_f16_bits(d).to_le_bytes()
}

/// Encode as TQ2_0 exactly as gguf-py's / llama.cpp's quantizer writes ternary data
/// (`cols` must be a multiple of 256).
pub fn encode_tq2_0(t: &Ternary) -> Result<Vec<u8>, QuantError> {
    check_encodable(Tq::Tq2, t)?;
    let mut out = vec![0u8; t.len() / QK * TQ2_BYTES];
    for (block, o) in t
        .trits
        .chunks_exact(QK)
        .zip(out.chunks_exact_mut(TQ2_BYTES))
    {
        for c in 0..2 {
            for g in 0..4 {
                for p in 0..32 {
                    o[32 * c + p] |= ((block[128 * c + 32 * g + p] + 1) as u8) << (2 * g);
                }
            }
        }
        o[64..66].copy_from_slice(&block_d(block, t.scale));
    }
    Ok(out)
}

/// Pack trits (as codes 0..2, most significant first) into one base-3 byte the way
/// llama.cpp does: ceil(256 · v / 243).
fn pack5(codes: impl Iterator<Item = u8>) -> u8 {
    let v = codes.fold(0u16, |acc, c| acc * 3 + c as u16);
    (v * 256).div_ceil(243) as u8
}

/// Encode as TQ1_0 exactly as gguf-py's / llama.cpp's quantizer writes ternary data
/// (`cols` must be a multiple of 256).
pub fn encode_tq1_0(t: &Ternary) -> Result<Vec<u8>, QuantError> {
    check_encodable(Tq::Tq1, t)?;
    let mut out = vec![0u8; t.len() / QK * TQ1_BYTES];
    for (block, o) in t
        .trits
        .chunks_exact(QK)
        .zip(out.chunks_exact_mut(TQ1_BYTES))
    {
        let code = |j: usize| (block[j] + 1) as u8;
        for (p, byte) in o[..32].iter_mut().enumerate() {
            *byte = pack5((0..5).map(|k| code(32 * k + p)));
        }
        for p in 0..16 {
            o[32 + p] = pack5((0..5).map(|k| code(160 + 16 * k + p)));
        }
        for p in 0..4 {
            // Four trits, shifted up one base-3 digit (the fifth digit is 0).
            o[48 + p] = pack5(
                (0..4)
                    .map(|k| code(240 + 4 * k + p))
                    .chain(std::iter::once(0)),
            );
        }
        o[52..54].copy_from_slice(&block_d(block, t.scale));
    }
    Ok(out)
}
