//! Helpers shared by this crate's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use bitnet_model::{argmax, Logits, Model};

/// `$BITNET_SHARED` or `<workspace>/../shared`; `None` (after printing SKIPPED) when absent
/// outside CI; panics in CI.
#[allow(unused_imports)] // not every test file reads the shared data
pub use bitnet_testdata::shared_dir as shared;

/// Fixture directory of this crate (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Greedy continuation of `prompt` for `n` tokens: batched prefill, then token-by-token decode.
pub fn greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut state = model.new_state(prompt.len() + n).unwrap();
    let logits = model.forward(&mut state, prompt, 0, Logits::Last).unwrap();
    let mut next = argmax(logits) as u32;
    let mut out = vec![next];
    while out.len() < n {
        let pos = state.pos();
        let logits = model
            .forward(&mut state, &[next], pos, Logits::Last)
            .unwrap();
        next = argmax(logits) as u32;
        out.push(next);
    }
    out
}

/// Logits `[n × vocab]` of one full forward pass over `ids`.
pub fn all_logits(model: &Model, ids: &[u32]) -> Vec<f32> {
    let mut state = bitnet_model::State::new(&model.config, ids.len(), ids.len()).unwrap();
    model
        .forward(&mut state, ids, 0, Logits::All)
        .unwrap()
        .to_vec()
}
