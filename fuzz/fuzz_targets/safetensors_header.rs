//! Arbitrary bytes through the safetensors parser the model loader uses, then every tensor
//! through the decoders the HF loader applies (BF16/F16/F32 → f32, U8 → HF packed ternary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use safetensors::{Dtype, SafeTensors};

fuzz_target!(|data: &[u8]| {
    let Ok(st) = SafeTensors::deserialize(data) else {
        return;
    };
    for (_, v) in st.tensors() {
        let n: usize = v.shape().iter().product();
        let ty = match v.dtype() {
            Dtype::BF16 => bitnet_quants::GgmlType::Bf16,
            Dtype::F16 => bitnet_quants::GgmlType::F16,
            Dtype::F32 => bitnet_quants::GgmlType::F32,
            Dtype::U8 if v.shape().len() == 2 => {
                let (r, c) = (v.shape()[0], v.shape()[1]);
                let _ =
                    bitnet_quants::ternary_from_hf_packed(v.data(), r.saturating_mul(4), c, 1.0);
                continue;
            }
            _ => continue,
        };
        let _ = bitnet_quants::dequantize(ty, v.data(), n);
    }
});
