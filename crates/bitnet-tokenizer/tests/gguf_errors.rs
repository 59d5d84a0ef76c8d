//! Bad GGUF vocabularies give clear errors naming the key, never a panic.

use bitnet_gguf::{Array, GgufFile, GgufWriter, Value};
use bitnet_tokenizer::gguf_vocab::from_gguf;
use bitnet_tokenizer::Tokenizer;

fn strs(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| s.to_string()).collect()))
}

/// A tiny valid byte-level BPE vocabulary: the letters a, b and the merge "a b".
fn base() -> Vec<(&'static str, Value)> {
    vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strs(&["a", "b", "ab", "<s>"])),
        ("tokenizer.ggml.merges", strs(&["a b"])),
        ("tokenizer.ggml.bos_token_id", Value::U32(3)),
    ]
}

fn build(kvs: &[(&str, Value)]) -> GgufFile {
    let mut w = GgufWriter::new();
    for (k, v) in kvs {
        w.add_kv(*k, v.clone());
    }
    GgufFile::from_bytes(w.to_bytes()).expect("valid gguf")
}

fn with(key: &str, value: Option<Value>) -> GgufFile {
    let mut kvs: Vec<(&str, Value)> = base().into_iter().filter(|(k, _)| *k != key).collect();
    if let Some(v) = value {
        kvs.push((key, v));
    }
    build(&kvs)
}

#[test]
fn valid_minimal_vocab() {
    let t = from_gguf(&build(&base())).unwrap();
    // a b b a: only the pair (a, b) merges, once, at the start.
    assert_eq!(t.encode("abba", true, false).unwrap(), [3, 2, 1, 0]);
    assert_eq!(t.decode(&[3, 2, 1], false), "abb");
}

#[test]
fn errors_name_the_key() {
    let cases: Vec<(GgufFile, &str)> = vec![
        (with("tokenizer.ggml.tokens", None), "tokenizer.ggml.tokens"),
        (with("tokenizer.ggml.merges", None), "tokenizer.ggml.merges"),
        (
            with("tokenizer.ggml.merges", Some(strs(&["ab"]))),
            "tokenizer.ggml.merges",
        ),
        (
            with("tokenizer.ggml.bos_token_id", Some(Value::U32(99))),
            "tokenizer.ggml.bos_token_id",
        ),
        (
            with(
                "tokenizer.ggml.bos_token_id",
                Some(Value::String("x".into())),
            ),
            "tokenizer.ggml.bos_token_id",
        ),
        (
            with("tokenizer.ggml.model", Some(Value::String("t5".into()))),
            "t5",
        ),
        (
            with(
                "tokenizer.ggml.pre",
                Some(Value::String("no-such-pre".into())),
            ),
            "no-such-pre",
        ),
        (
            with(
                "tokenizer.ggml.token_type",
                Some(Value::Array(Array::I32(vec![1]))),
            ),
            "tokenizer.ggml.token_type",
        ),
        (
            with(
                "tokenizer.ggml.scores",
                Some(Value::Array(Array::F32(vec![0.0]))),
            ),
            "tokenizer.ggml.scores",
        ),
        (
            with("tokenizer.ggml.tokens", Some(Value::U32(3))),
            "tokenizer.ggml.tokens",
        ),
    ];
    for (f, needle) in cases {
        let e = match from_gguf(&f) {
            Ok(_) => panic!("expected an error mentioning {needle}"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains(needle),
            "error `{e}` does not mention `{needle}`"
        );
    }
}
