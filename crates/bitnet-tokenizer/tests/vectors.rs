//! llama.cpp's tokenizer conformance vectors (tests/test-tokenizer-0.cpp: no BOS, special
//! tokens not parsed) must reproduce exactly, and the reference ids must decode back to the
//! input (whole and streamed).

mod common;

use bitnet_tokenizer::{StreamDecoder, Tokenizer};

fn check(name: &str, tok: &dyn Tokenizer, vectors: &[(String, Vec<u32>)]) -> usize {
    let mut failed = 0;
    for (text, want) in vectors {
        let got = tok.encode(text, false, false).expect("encode");
        if &got != want {
            failed += 1;
            eprintln!("[{name}] MISMATCH for {text:?}\n  want {want:?}\n  got  {got:?}");
        }
        // Decoding the reference ids gives the input back, in one go and streamed.
        let back = tok.decode(want, false);
        if &back != text {
            failed += 1;
            eprintln!("[{name}] DECODE MISMATCH for {text:?}: got {back:?}");
        }
        let mut sd = StreamDecoder::new(tok.strips_leading_space(), false);
        let mut streamed: String = want.iter().map(|&id| sd.push(tok, id)).collect();
        streamed.push_str(&sd.finish());
        if &streamed != text {
            failed += 1;
            eprintln!("[{name}] STREAM MISMATCH for {text:?}: got {streamed:?}");
        }
    }
    eprintln!(
        "[{name}] {}/{} vectors pass",
        vectors.len() - failed,
        vectors.len()
    );
    failed
}

#[test]
fn llama3_tiktoken_vectors() {
    let Some(s) = common::shared() else { return };
    let d = s.join("data/llama3");
    let tok = bitnet_tokenizer::tiktoken::load(&d.join("tokenizer.model")).expect("load");
    assert_eq!(tok.vocab_size(), 128256);
    let v = common::read_vectors(&d.join("llama3-vectors.inp"), &d.join("llama3-vectors.out"));
    assert_eq!(v.len(), 46);
    assert_eq!(check("llama3 tiktoken", &tok, &v), 0);
}

fn gguf_case(name: &str) {
    let Some(s) = common::shared() else { return };
    let d = s.join("data/gguf-vocab");
    let path = d.join(format!("ggml-vocab-{name}.gguf"));
    let tok = bitnet_tokenizer::gguf_vocab::load(&path).expect("load gguf vocab");
    let v = common::read_vectors(
        &d.join(format!("ggml-vocab-{name}.gguf.inp")),
        &d.join(format!("ggml-vocab-{name}.gguf.out")),
    );
    assert!(!v.is_empty());
    assert_eq!(
        check(name, &tok, &v),
        0,
        "{name}: vectors failed (see stderr)"
    );
}

#[test]
fn gguf_llama_spm() {
    gguf_case("llama-spm");
}
#[test]
fn gguf_phi_3() {
    gguf_case("phi-3");
}
#[test]
fn gguf_gpt_2() {
    gguf_case("gpt-2");
}
#[test]
fn gguf_deepseek_llm() {
    gguf_case("deepseek-llm");
}
#[test]
fn gguf_deepseek_coder() {
    gguf_case("deepseek-coder");
}
#[test]
fn gguf_falcon() {
    gguf_case("falcon");
}
#[test]
fn gguf_mpt() {
    gguf_case("mpt");
}
#[test]
fn gguf_starcoder() {
    gguf_case("starcoder");
}
