//! The real trained bitllama2.c TinyStories models (LlamaForCausalLM, autobitlinear offline,
//! use_rms_norm, packed weights): greedy text from BOS is the original project's output.

mod common;

use std::collections::HashMap;
use std::path::Path;

use bitnet_model::{Activation, Arch, Model, RopeStyle};

/// id → text piece from tokenizer.json's `model.vocab` (SentencePiece pieces, ▁ = space,
/// `<0xXX>` = one byte), read independently of the code under test.
fn vocab(dir: &Path) -> HashMap<u32, Vec<u8>> {
    let text = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = HashMap::new();
    for (piece, id) in json["model"]["vocab"].as_object().unwrap() {
        let bytes = match piece.strip_prefix("<0x").and_then(|p| p.strip_suffix('>')) {
            Some(hex) if hex.len() == 2 => vec![u8::from_str_radix(hex, 16).unwrap()],
            _ => piece.replace('▁', " ").into_bytes(),
        };
        out.insert(id.as_u64().unwrap() as u32, bytes);
    }
    out
}

fn decode(v: &HashMap<u32, Vec<u8>>, ids: &[u32]) -> String {
    let bytes: Vec<u8> = ids.iter().flat_map(|i| v[i].clone()).collect();
    let s = String::from_utf8_lossy(&bytes).into_owned();
    s.strip_prefix(' ').map(str::to_string).unwrap_or(s)
}

#[test]
fn tinystories_3m_greedy_story() {
    let Some(s) = common::shared() else { return };
    let dir = s.join("data/real-models/bitllama2c-tinystories-3m");
    let model = Model::load(&dir).unwrap();
    let c = &model.config;
    assert_eq!(
        (c.arch, c.activation, c.rope_style),
        (Arch::LlamaBitNet, Activation::Silu, RopeStyle::Neox)
    );
    assert_eq!(
        (c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim),
        (256, 8, 8, 4, 32)
    );
    assert_eq!(c.linear_norm_eps, Some(1e-30));
    assert!(c.tied_embeddings && !c.sub_norms);

    let expected = "Once upon a time, there was a little girl named Lily. She loved to play outside and explore";
    let ids = common::greedy(&model, &[1], 32);
    let text = decode(&vocab(&dir), &ids);
    assert!(
        text.starts_with(expected),
        "greedy text {text:?} (ids {ids:?}) does not start with {expected:?}"
    );
}

#[test]
fn tinystories_1m_greedy_is_english() {
    let Some(s) = common::shared() else { return };
    let dir = s.join("data/real-models/bitllama2c-tinystories-1m");
    let model = Model::load(&dir).unwrap();
    let ids = common::greedy(&model, &[1], 20);
    let text = decode(&vocab(&dir), &ids);
    eprintln!("1M greedy: {text:?}");
    // Every TinyStories model opens its stories this way.
    assert!(
        text.starts_with("Once upon a time"),
        "1M greedy text {text:?}"
    );
}
