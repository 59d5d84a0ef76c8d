//! `bitnet tokenize` end to end through the built binary.

mod common;

use bitnet_testdata::shared_dir;

/// Run `bitnet tokenize ARGS` with `stdin`; returns (exit ok, stdout, stderr).
fn tokenize(args: &[&str], stdin: &str) -> (bool, String, String) {
    let out = common::bitnet(&[&["tokenize"], args].concat(), stdin);
    (out.code == 0, out.stdout, out.stderr)
}

#[test]
fn encode_and_decode_llama3() {
    let Some(s) = shared_dir() else { return };
    let m = s.join("data/llama3/tokenizer.model");
    let m = m.to_str().expect("utf-8 path");
    // llama.cpp's Llama 3 vector: "Hello world" = 9906 1917.
    assert_eq!(
        tokenize(&[m], "Hello world"),
        (true, "[9906,1917]\n".into(), String::new())
    );
    assert_eq!(
        tokenize(&[m, "--bos"], "Hello world").1,
        "[128000,9906,1917]\n"
    );
    assert_eq!(
        tokenize(&[m, "--decode"], "[9906, 1917]").1,
        "Hello world\n"
    );
    assert_eq!(tokenize(&[m, "--decode"], "9906,1917").1, "Hello world\n");
    // Special tokens: parsed only with --special.
    assert_eq!(tokenize(&[m, "--special"], "<|eot_id|>").1, "[128009]\n");
    assert_ne!(tokenize(&[m], "<|eot_id|>").1, "[128009]\n");
    let (ok, _, err) = tokenize(&[m, "--decode"], "[1, 999999]");
    assert!(!ok && err.contains("out of range"), "{err}");
    let (ok, _, err) = tokenize(&[m, "--decode"], "1 two");
    assert!(!ok && err.contains("`two`"), "{err}");
}

#[test]
fn model_folder_and_errors() {
    let Some(s) = shared_dir() else { return };
    let d = s.join("data/real-models/bitllama2c-tinystories-3m");
    let (ok, out, _) = tokenize(&[d.to_str().unwrap(), "--bos"], "Once upon a time");
    assert!(ok);
    assert!(out.starts_with("[1,"), "{out}");
    let (ok, _, err) = tokenize(&["/nonexistent/tokenizer.model"], "x");
    assert!(!ok);
    assert!(
        err.starts_with("error:") && err.contains("/nonexistent"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
