//! Arbitrary bytes as a GGUF file all the way through the model loader (hyperparameters,
//! tensor shapes and types, ternary repacking, the NaN scan). Nothing may panic, hang or
//! allocate what the file merely claims. Seed with a synthesized checkpoint (≥ 100 KB):
//! `bitnet synth --shape tiny --format gguf-i2s --out corpus/model_gguf/tiny.gguf` and run
//! with `-max_len=1000000`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = bitnet_gguf::GgufFile::from_bytes(data.to_vec()) {
        let _ = bitnet_model::Model::from_gguf(&f);
    }
});
