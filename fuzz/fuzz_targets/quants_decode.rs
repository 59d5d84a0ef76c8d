//! Arbitrary bytes, types and shapes through every decoder: errors are fine, panics are not.
//! Whatever decodes as ternary must re-encode to the same codes.
#![no_main]

use bitnet_quants::GgmlType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let ty = GgmlType::from_id(data[0] as u32 % 40).unwrap_or(GgmlType::I2S);
    let rows = data[1] as usize % 9;
    let cols = (data[2] as usize % 5) * 128;
    let body = &data[4..];
    let _ = bitnet_quants::dequantize(ty, body, rows * cols);
    let _ = bitnet_quants::dequantize(ty, body, data[3] as usize * 32);
    match bitnet_quants::ternary_from_ggml(ty, body, rows, cols) {
        Ok(t) => {
            // Scales an encoder refuses (negative, NaN) are fine; what it accepts must round-trip.
            if let Ok(b) = bitnet_quants::encode_ternary(ty, &t) {
                let again = bitnet_quants::ternary_from_ggml(ty, &b, rows, cols);
                assert_eq!(again.map(|a| a.trits).ok(), Some(t.trits));
            }
        }
        Err(e) => {
            let _ = e.with_tensor("t").to_string();
        }
    }
    if rows.is_multiple_of(4) && cols > 0 {
        let _ = bitnet_quants::ternary_from_hf_packed(body, rows, cols, 1.0);
    }
});
