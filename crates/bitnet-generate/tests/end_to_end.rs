//! Text in, text out on the real TinyStories 3M model with the real tokenizer loaders:
//! `load_tokenizer` → encode → `ModelRunner` + `generate` → `Detokenizer`.
#![cfg(all(feature = "model", feature = "tokenizer"))]

use bitnet_generate::{
    generate, Detokenizer, FinishReason, GenerateConfig, ModelRunner, Sampler, SamplerConfig,
};
use bitnet_model::Model;
use bitnet_testdata::shared_dir;
use bitnet_tokenizer::load_tokenizer;

#[test]
fn prompt_continuation_streams_the_same_text_as_batch_decoding() {
    let Some(s) = shared_dir() else { return };
    let dir = s.join("data/real-models/bitllama2c-tinystories-3m");
    let model = Model::load(&dir).unwrap();
    let loaded = load_tokenizer(&dir).unwrap();
    let tok = &*loaded.tokenizer;
    let prompt = tok.encode("Once upon a time", true, false).unwrap();
    let mut runner = ModelRunner::new(&model, 128).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::greedy(), model.config.vocab_size).unwrap();
    let mut chunks = String::new();
    let cfg = GenerateConfig {
        max_tokens: Some(30),
        stop_tokens: tok.special_tokens().eog.clone(),
        ..Default::default()
    };
    let g = generate(
        &mut runner,
        &mut sampler,
        &mut Detokenizer::new(tok, false),
        &prompt,
        &cfg,
        |c: &str| chunks.push_str(c),
    )
    .unwrap();
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(chunks, g.text);
    // Streaming equals decoding the whole continuation at once (the continuation starts
    // with ",", so SentencePiece's leading-space rule does not apply).
    assert_eq!(g.text, tok.decode(&g.tokens, false));
    // The original project's greedy story from BOS reads "Once upon a time, there was a
    // little girl named Lily. ..."; given its first words, the model continues it.
    assert!(
        g.text.starts_with(", there was a little girl named Lily."),
        "continuation {:?}",
        g.text
    );
}
