//! Shared helpers for tests that read /work/shared.
#![allow(dead_code)]

/// The shared data folder, or `None` (after printing SKIPPED) when absent outside CI.
pub use bitnet_testdata::shared_dir as shared;

/// llama.cpp's test-tokenizer-0 vector files: inputs split on "\n__ggml_vocab_test__\n"
/// (a trailing separator ends the list), outputs one line of space-separated ids per input.
pub fn read_vectors(inp: &std::path::Path, out: &std::path::Path) -> Vec<(String, Vec<u32>)> {
    let raw = std::fs::read_to_string(inp).expect("read .inp");
    let outs = std::fs::read_to_string(out).expect("read .out");
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        match raw[pos..].find(sep) {
            Some(i) => {
                inputs.push(raw[pos..pos + i].to_string());
                pos += i + sep.len();
            }
            None => {
                inputs.push(raw[pos..].to_string());
                break;
            }
        }
    }
    let lines: Vec<&str> = outs.lines().collect();
    assert_eq!(
        inputs.len(),
        lines.len(),
        "input/output count mismatch in {}",
        inp.display()
    );
    inputs
        .into_iter()
        .zip(lines)
        .map(|(i, l)| {
            let ids = l
                .split_whitespace()
                .map(|t| t.parse::<u32>().expect("id"))
                .collect();
            (i, ids)
        })
        .collect()
}
