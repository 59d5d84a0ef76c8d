//! F32 / F16 / BF16 storage: decoding to f32 and encoding from f32.

use half::{bf16, f16};

/// Little-endian f32 bytes → f32. `data.len()` must be a multiple of 4 (checked by the caller).
pub(crate) fn decode_f32(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Little-endian IEEE binary16 bytes → f32 (exact).
pub(crate) fn decode_f16(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(2)
        .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
        .collect()
}

/// Little-endian bfloat16 bytes → f32 (exact: the upper 16 bits of an f32).
pub(crate) fn decode_bf16(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(2)
        .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
        .collect()
}

/// f32 → IEEE binary16 bits, round to nearest even (as numpy's `astype(float16)` and ggml).
pub fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// IEEE binary16 bits → f32 (exact).
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// f32 → bfloat16 bits, round to nearest even (as torch's `.to(torch.bfloat16)`).
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    bf16::from_f32(x).to_bits()
}

/// bfloat16 bits → f32 (exact).
pub fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// f32 values → little-endian binary16 bytes (`2 · xs.len()` bytes).
pub fn f32_to_f16_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter()
        .flat_map(|&x| f32_to_f16_bits(x).to_le_bytes())
        .collect()
}

/// f32 values → little-endian bfloat16 bytes (`2 · xs.len()` bytes).
pub fn f32_to_bf16_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter()
        .flat_map(|&x| f32_to_bf16_bits(x).to_le_bytes())
        .collect()
}

/// f32 values → little-endian f32 bytes (`4 · xs.len()` bytes).
pub fn f32_to_f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|&x| x.to_le_bytes()).collect()
}
