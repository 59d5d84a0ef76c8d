//! Arbitrary bytes as an HF folder through the model loader: the input is split into a
//! config.json and a model.safetensors (first 4 bytes: the config's length), written to a
//! scratch folder, loaded with `Model::from_hf_dir`. Seed with `bitnet synth --shape tiny
//! --format hf-packed`, packed as (u32 length of config.json, config.json, model.safetensors).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (config, weights) = rest.split_at(n.min(rest.len()));
    let dir = std::env::temp_dir().join(format!("bitnet-fuzz-hf-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    if std::fs::write(dir.join("config.json"), config).is_err()
        || std::fs::write(dir.join("model.safetensors"), weights).is_err()
    {
        return;
    }
    let _ = bitnet_model::Model::from_hf_dir(&dir);
});
