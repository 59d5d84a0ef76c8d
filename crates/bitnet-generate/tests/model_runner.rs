//! `ModelRunner` + `generate` on the real trained TinyStories model (bitllama2.c, 3M).
#![cfg(feature = "model")]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bitnet_generate::{
    generate, FinishReason, GenerateConfig, GenerateError, ModelRunner, Sampler, SamplerConfig,
    StopReason, TokenDecoder,
};
use bitnet_model::{Logits, Model};
use bitnet_testdata::shared_dir;
use common::{take_all, take_valid_utf8};

/// Streaming decoder over tokenizer.json's `model.vocab` (SentencePiece pieces: `▁` = space,
/// `<0xXX>` = one byte), read independently of the tokenizer crate. Drops the first leading
/// space (SentencePiece dummy prefix) and holds back incomplete UTF-8.
struct Vocab {
    pieces: HashMap<u32, Vec<u8>>,
    pending: Vec<u8>,
    started: bool,
}

impl Vocab {
    fn load(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut pieces = HashMap::new();
        for (piece, id) in json["model"]["vocab"].as_object().unwrap() {
            let bytes = match piece.strip_prefix("<0x").and_then(|p| p.strip_suffix('>')) {
                Some(hex) if hex.len() == 2 => vec![u8::from_str_radix(hex, 16).unwrap()],
                _ => piece.replace('▁', " ").into_bytes(),
            };
            pieces.insert(id.as_u64().unwrap() as u32, bytes);
        }
        Self {
            pieces,
            pending: Vec::new(),
            started: false,
        }
    }
}

impl TokenDecoder for Vocab {
    fn push(&mut self, token: u32) -> String {
        let mut piece: &[u8] = self.pieces.get(&token).map_or(&[], |p| p);
        if !self.started && !piece.is_empty() {
            self.started = true;
            piece = piece.strip_prefix(b" ").unwrap_or(piece);
        }
        self.pending.extend_from_slice(piece);
        take_valid_utf8(&mut self.pending)
    }
    fn finish(&mut self) -> String {
        take_all(&mut self.pending)
    }
}

const BOS: u32 = 1;
const EOS: u32 = 2;
/// Greedy text of the original bitllama2.c project for this model, from BOS.
const GOLDEN: &str =
    "Once upon a time, there was a little girl named Lily. She loved to play outside and explore";

fn load() -> Option<(Model, PathBuf)> {
    let dir = shared_dir()?.join("data/real-models/bitllama2c-tinystories-3m");
    Some((Model::load(&dir).unwrap(), dir))
}

fn greedy(model: &Model) -> Sampler {
    Sampler::new(SamplerConfig::greedy(), model.config.vocab_size).unwrap()
}

#[test]
fn greedy_story_matches_the_original_and_full_forward_passes() {
    let Some((model, dir)) = load() else { return };
    let mut runner = ModelRunner::new(&model, 64).unwrap();
    let mut chunks = Vec::new();
    let cfg = GenerateConfig {
        max_tokens: Some(24),
        stop_tokens: vec![EOS],
        ..Default::default()
    };
    let g = generate(
        &mut runner,
        &mut greedy(&model),
        &mut Vocab::load(&dir),
        &[BOS],
        &cfg,
        |c: &str| chunks.push(c.to_string()),
    )
    .unwrap();
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(g.tokens.len(), 24);
    assert!(
        GOLDEN.starts_with(&g.text) && g.text.len() > 60,
        "generated {:?}, expected a prefix of {GOLDEN:?}",
        g.text
    );
    assert_eq!(chunks.concat(), g.text);
    // The cache holds the prompt and all generated tokens but the last.
    assert_eq!(runner.state().pos(), 1 + 24 - 1);
    // Each token is the argmax of a fresh full forward pass over everything before it.
    let mut seq = vec![BOS];
    for &t in &g.tokens {
        let mut st = model.new_state(seq.len()).unwrap();
        let logits = model.forward(&mut st, &seq, 0, Logits::Last).unwrap();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert!(
            logits[t as usize] >= max - 1e-4,
            "token {t} at step {} has logit {} but the max is {max}",
            seq.len(),
            logits[t as usize]
        );
        seq.push(t);
    }
}

#[test]
fn stop_string_and_context_limit_on_the_real_model() {
    let Some((model, dir)) = load() else { return };
    let mut runner = ModelRunner::new(&model, 64).unwrap();
    let cfg = GenerateConfig {
        stop_strings: vec!["Lily".into()],
        ..Default::default()
    };
    let g = generate(
        &mut runner,
        &mut greedy(&model),
        &mut Vocab::load(&dir),
        &[BOS],
        &cfg,
        |_: &str| {},
    )
    .unwrap();
    assert_eq!(g.text, "Once upon a time, there was a little girl named ");
    assert_eq!(
        g.finish_reason,
        FinishReason::Stop(StopReason::String("Lily".into()))
    );

    // A 10-position cache: the prompt takes one, nine tokens fit, then ContextFull.
    let mut runner = ModelRunner::new(&model, 10).unwrap();
    let g = generate(
        &mut runner,
        &mut greedy(&model),
        &mut Vocab::load(&dir),
        &[BOS],
        &GenerateConfig::default(),
        |_: &str| {},
    )
    .unwrap();
    assert_eq!(g.finish_reason, FinishReason::ContextFull);
    assert_eq!(g.tokens.len(), 9);
    assert!(GOLDEN.starts_with(&g.text), "{:?}", g.text);
    // The full cache refuses another prompt with an error, not a panic.
    let err = generate(
        &mut runner,
        &mut greedy(&model),
        &mut Vocab::load(&dir),
        &[BOS, BOS],
        &GenerateConfig::default(),
        |_: &str| {},
    )
    .unwrap_err();
    assert!(matches!(
        err,
        GenerateError::PromptTooLong {
            prompt: 2,
            used: 9,
            context: 10
        }
    ));
}
