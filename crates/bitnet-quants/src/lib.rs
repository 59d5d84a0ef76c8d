//! Tensor encodings: what the bytes of each stored tensor type mean.
//!
//! * [`Ternary`]: the canonical in-memory ternary tensor every source format decodes to:
//!   row-major trits (`rows × cols`, values −1/0/+1) and ONE multiplicative f32 scale
//!   (dequantized weight = trit · scale).
//! * [`dequantize`]: any supported GGML type (F32, F16, BF16, Q8_0, Q6_K, TQ1_0, TQ2_0, I2_S) → f32.
//! * [`ternary_from_ggml`]: I2_S / TQ1_0 / TQ2_0 bytes → [`Ternary`] (TQ block scales must agree
//!   within the tensor, all-zero blocks excepted; otherwise an error).
//! * [`ternary_from_hf_packed`]: transformers' uint8 `[out/4, in]` packing → [`Ternary`].
//! * [`ternarize_absmean`]: float master weights → [`Ternary`] exactly as transformers'
//!   `WeightQuant` (scale = 1/max(mean|W|, 1e-5), round half-even, clamp; value = t/scale).
//! * Encoders for writers: [`encode_i2s`], [`encode_tq2_0`], [`encode_tq1_0`], [`pack_hf`],
//!   and the f32 → f16/bf16 helpers in this crate's root.
//!
//! Errors never name the tensor (decoders see bytes only); callers attach it with
//! [`QuantError::with_tensor`]. No function panics on malformed bytes.
//!
//! Exact layouts: `shared/data/bitnetcpp/tiny/MANIFEST.md`, "Scale conventions and bit layouts".

mod error;
mod float;
mod hf;
mod i2s;
mod kquants;
mod ternary;
mod tq;

pub use bitnet_gguf::GgmlType;
pub use error::QuantError;
pub use float::{
    bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_bf16_bytes, f32_to_f16_bits,
    f32_to_f16_bytes, f32_to_f32_bytes,
};
pub use hf::{pack_hf, ternary_from_hf_packed};
pub use i2s::{encode_i2s, i2s_size};
pub use ternary::{ternarize_absmean, Ternary};
pub use tq::{encode_tq1_0, encode_tq2_0};

use error::check_size;
use tq::Tq;

const DEQUANT_SUPPORTED: &str =
    "for dequantization (supported: F32, F16, BF16, Q8_0, Q6_K, TQ1_0, TQ2_0, I2_S)";
const TERNARY_SUPPORTED: &str = "as a ternary matrix (supported: I2_S, TQ1_0, TQ2_0)";

/// Decode `n_elements` values of type `ty` from `data` to f32 (flattened in storage order).
///
/// `data` must be exactly the tensor's bytes. Block types need `n_elements` to be a whole
/// number of blocks (each row must be, too; this function cannot check rows, use
/// [`ternary_from_ggml`] or check dims with [`GgmlType::data_size`] first). Ternary codes 3
/// are refused. Values follow llama.cpp's / bitnet.cpp's dequantization, with TQ blocks each
/// using their own fp16 `d`.
pub fn dequantize(ty: GgmlType, data: &[u8], n_elements: usize) -> Result<Vec<f32>, QuantError> {
    let n = n_elements;
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 | GgmlType::Q8_0 | GgmlType::Q6K => {
            let (bs, ts) = ty.block();
            let (bs, ts) = (bs as usize, ts as usize);
            if !n.is_multiple_of(bs) {
                return Err(QuantError::BadShape {
                    format: ty.name().into(),
                    reason: format!("{n} elements is not a whole number of {bs}-blocks"),
                });
            }
            let expected =
                ((n / bs) as u64)
                    .checked_mul(ts as u64)
                    .ok_or_else(|| QuantError::BadShape {
                        format: ty.name().into(),
                        reason: format!("{n} elements overflow the byte size"),
                    })?;
            check_size(ty, n, expected, data.len())?;
            Ok(match ty {
                GgmlType::F32 => float::decode_f32(data),
                GgmlType::F16 => float::decode_f16(data),
                GgmlType::Bf16 => float::decode_bf16(data),
                GgmlType::Q8_0 => kquants::decode_q8_0(data),
                _ => kquants::decode_q6_k(data),
            })
        }
        GgmlType::Tq1_0 => tq::dequantize_tq(Tq::Tq1, data, n, tq::QK),
        GgmlType::Tq2_0 => tq::dequantize_tq(Tq::Tq2, data, n, tq::QK),
        GgmlType::I2S => {
            let (trits, scale) = i2s::decode_i2s(data, n)?;
            Ok(trits.into_iter().map(|t| t as f32 * scale).collect())
        }
        _ => Err(QuantError::Unsupported {
            ty,
            context: DEQUANT_SUPPORTED,
        }),
    }
}

/// Decode a ternary matrix stored as I2_S, TQ1_0 or TQ2_0 (GGUF dims `[ne0 = cols, ne1 = rows]`).
///
/// * I2_S: the x86 `ACT_PARALLEL` layout, scale = the tensor's f32 scale; code 3 is an error.
/// * TQ1_0 / TQ2_0: scale = the blocks' common fp16 `d` as f32; blocks holding a nonzero trit
///   with different `d` are an error (only all-zero blocks may differ, e.g. d = 0).
pub fn ternary_from_ggml(
    ty: GgmlType,
    data: &[u8],
    rows: usize,
    cols: usize,
) -> Result<Ternary, QuantError> {
    let n = rows.checked_mul(cols).ok_or_else(|| QuantError::BadShape {
        format: ty.name().into(),
        reason: format!("{rows} × {cols} overflows"),
    })?;
    match ty {
        GgmlType::I2S => {
            let (trits, scale) = i2s::decode_i2s(data, n)?;
            Ok(Ternary {
                rows,
                cols,
                trits,
                scale,
            })
        }
        GgmlType::Tq1_0 => tq::decode_tq(Tq::Tq1, data, rows, cols),
        GgmlType::Tq2_0 => tq::decode_tq(Tq::Tq2, data, rows, cols),
        _ => Err(QuantError::Unsupported {
            ty,
            context: TERNARY_SUPPORTED,
        }),
    }
}

/// Encode a ternary matrix in the given GGML ternary type (I2_S, TQ1_0, TQ2_0).
pub fn encode_ternary(ty: GgmlType, t: &Ternary) -> Result<Vec<u8>, QuantError> {
    match ty {
        GgmlType::I2S => encode_i2s(t),
        GgmlType::Tq1_0 => encode_tq1_0(t),
        GgmlType::Tq2_0 => encode_tq2_0(t),
        _ => Err(QuantError::Unsupported {
            ty,
            context: TERNARY_SUPPORTED,
        }),
    }
}
