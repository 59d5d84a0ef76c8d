//! Q8_0 and Q6_K decoding, as llama.cpp's `dequantize_row_q8_0` / `dequantize_row_q6_K`.

use crate::float::f16_bits_to_f32;

/// Q8_0 block: `d: f16` then `qs: [i8; 32]`; x = qs·d.
pub(crate) const Q8_0_BLOCK: usize = 34;
/// Q6_K super-block of 256: `ql: [u8; 128]`, `qh: [u8; 64]`, `scales: [i8; 16]`, `d: f16`.
pub(crate) const Q6_K_BLOCK: usize = 210;

/// Decode whole Q8_0 blocks (`data.len()` a multiple of 34) → 32 floats per block.
pub(crate) fn decode_q8_0(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / Q8_0_BLOCK * 32);
    for b in data.chunks_exact(Q8_0_BLOCK) {
        let d = f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
        out.extend(b[2..].iter().map(|&q| (q as i8) as f32 * d));
    }
    out
}

/// Decode whole Q6_K blocks (`data.len()` a multiple of 210) → 256 floats per block.
pub(crate) fn decode_q6_k(data: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; data.len() / Q6_K_BLOCK * 256];
    for (b, y) in data.chunks_exact(Q6_K_BLOCK).zip(out.chunks_exact_mut(256)) {
        let d = f16_bits_to_f32(u16::from_le_bytes([b[208], b[209]]));
        // Two halves of 128 elements; each uses 64 ql bytes, 32 qh bytes, 8 scales.
        for half in 0..2 {
            let ql = &b[64 * half..64 * half + 64];
            let qh = &b[128 + 32 * half..128 + 32 * half + 32];
            let sc = &b[192 + 8 * half..192 + 8 * half + 8];
            let y = &mut y[128 * half..128 * half + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                // llama.cpp evaluates d * sc * q left to right in float.
                y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
            }
        }
    }
    out
}
