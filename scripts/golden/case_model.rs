//! The Rust side of `scripts/golden/cases.json`: where a golden case's checkpoint is.
//! Included by path (`#[path = ...] mod case_model;`) from the golden tests of bitnet-model and
//! bitnet-generate, which both have `bitnet-convert` and `serde_json` as dev-dependencies.

use std::path::{Path, PathBuf};

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};

/// Where the case's checkpoint is: a shared file/folder, or one synthesized into `tmp` with
/// `bitnet synth`'s (shape, format, seed) from the case (bit-identical to what the device run
/// synthesized).
pub fn model_path(case: &serde_json::Value, shared: &Path, tmp: &Path) -> PathBuf {
    if let Some(p) = case["shared"].as_str() {
        return shared.join(p);
    }
    let spec = &case["synth"];
    let format: Format = spec["format"].as_str().unwrap().parse().unwrap();
    let name = case["name"].as_str().unwrap();
    let out = tmp.join(format!(
        "{name}{}",
        if format.is_gguf() { ".gguf" } else { "" }
    ));
    let s = SynthSpec {
        shape: Shape::named(spec["shape"].as_str().unwrap()).unwrap(),
        format,
        seed: spec["seed"].as_u64().unwrap(),
        embed: EmbedType::F16,
    };
    synth(&s, &out, &mut |_, _| {}).unwrap();
    out
}
