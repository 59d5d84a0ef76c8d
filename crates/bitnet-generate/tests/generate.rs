//! The generation loop against a mock model whose logits are a deterministic function of the
//! last token: greedy decoding from token `t` always yields `(t + 1) % vocab`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bitnet_generate::{
    generate, FinishReason, GenerateConfig, GenerateError, Generation, Sampler, SamplerConfig,
    StopReason,
};

mod common;

use common::{Mock, Pieces, TEXT};

fn greedy(vocab: usize) -> Sampler {
    Sampler::new(SamplerConfig::greedy(), vocab).unwrap()
}

/// Runs `generate`, also collecting the streamed chunks.
fn run(
    model: &mut Mock,
    prompt: &[u32],
    config: &GenerateConfig,
) -> (Result<Generation, GenerateError>, Vec<String>) {
    let mut chunks = Vec::new();
    let mut sampler = greedy(model.vocab);
    let mut dec = Pieces::new(&TEXT);
    let r = generate(model, &mut sampler, &mut dec, prompt, config, |c: &str| {
        chunks.push(c.to_string())
    });
    (r, chunks)
}

#[test]
fn greedy_until_max_tokens() {
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        max_tokens: Some(5),
        ..Default::default()
    };
    let (g, chunks) = run(&mut m, &[1, 2], &cfg);
    let g = g.unwrap();
    assert_eq!(g.tokens, [3, 4, 5, 6, 7]);
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(g.text, "lo world! more");
    assert_eq!(chunks, ["lo ", "wor", "ld", "!", " more"]);
    // One batched prefill; every generated token but the last decoded, at consecutive positions.
    assert_eq!(m.prefills, [(0, vec![1, 2])]);
    assert_eq!(m.decodes, [(2, 3), (3, 4), (4, 5), (5, 6)]);
    assert_eq!(m.pos, 6);
    let t = &g.timings;
    assert_eq!(
        (t.prompt_tokens, t.generated_tokens, t.decode_calls),
        (2, 5, 4)
    );
    assert!(t.generation_ms >= t.decode_ms && t.decode_ms >= 0.0 && t.prompt_ms >= 0.0);
}

#[test]
fn stop_token_ends_without_emitting_its_text() {
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        stop_tokens: vec![9, 0],
        ..Default::default()
    };
    let (g, _) = run(&mut m, &[5], &cfg);
    let g = g.unwrap();
    assert_eq!(g.tokens, [6, 7, 8, 9]);
    assert_eq!(g.finish_reason, FinishReason::Stop(StopReason::Token(9)));
    assert_eq!(g.text, "! morex");
}

#[test]
fn stop_string_spanning_tokens() {
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        stop_strings: vec!["o wo".into()],
        ..Default::default()
    };
    let (g, chunks) = run(&mut m, &[1], &cfg);
    let g = g.unwrap();
    // "Hel" + "lo " + "wor": the stop string starts inside token 3 and ends inside token 4.
    assert_eq!(g.tokens, [2, 3, 4]);
    assert_eq!(g.text, "Hell");
    assert_eq!(chunks.concat(), "Hell");
    assert_eq!(
        g.finish_reason,
        FinishReason::Stop(StopReason::String("o wo".into()))
    );
    assert_eq!(m.decodes, [(1, 2), (2, 3)]);

    // Of two stop strings the earliest in the text wins; a false start is released.
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        stop_strings: vec!["x<".into(), "lo!".into(), "d! m".into()],
        ..Default::default()
    };
    let (g, chunks) = run(&mut m, &[1], &cfg);
    let g = g.unwrap();
    assert_eq!(g.tokens, [2, 3, 4, 5, 6, 7]);
    assert_eq!(g.text, "Hello worl");
    assert_eq!(chunks.concat(), "Hello worl");
    assert_eq!(
        g.finish_reason,
        FinishReason::Stop(StopReason::String("d! m".into()))
    );
}

#[test]
fn stop_string_inside_a_character_split_across_tokens() {
    // "é" = C3 A9 arrives as two tokens; the stop string "é!" spans three tokens.
    let pieces: [&[u8]; 5] = [b"a", b"caf", b"\xC3", b"\xA9", b"!"];
    let mut m = Mock::new(5, 100);
    let mut sampler = greedy(5);
    let mut dec = Pieces::new(&pieces);
    let mut chunks = Vec::new();
    let cfg = GenerateConfig {
        stop_strings: vec!["é!".into()],
        ..Default::default()
    };
    let g = generate(&mut m, &mut sampler, &mut dec, &[0], &cfg, |c: &str| {
        chunks.push(c.to_string())
    })
    .unwrap();
    assert_eq!(g.tokens, [1, 2, 3, 4]);
    assert_eq!(g.text, "caf");
    assert_eq!(chunks, ["caf"]);
}

#[test]
fn held_back_text_is_flushed_at_the_end() {
    // Stop string "lo wx" never completes, but "lo " is held when max_tokens hits.
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        max_tokens: Some(2),
        stop_strings: vec!["lo wx".into()],
        ..Default::default()
    };
    let (g, chunks) = run(&mut m, &[1], &cfg);
    let g = g.unwrap();
    assert_eq!(g.text, "Hello ");
    // "l" of "Hel" could start "lo wx": held, then released when "lo " shows it is not.
    assert_eq!(chunks, ["He", "l", "lo "]);
    assert_eq!(g.finish_reason, FinishReason::Length);
    // An incomplete character at the end comes out as U+FFFD from the decoder's finish.
    let pieces: [&[u8]; 3] = [b"a", b"b", b"\xC3"];
    let mut m = Mock::new(3, 100);
    let mut sampler = greedy(3);
    let mut dec = Pieces::new(&pieces);
    let cfg = GenerateConfig {
        max_tokens: Some(2),
        ..Default::default()
    };
    let g = generate(&mut m, &mut sampler, &mut dec, &[0], &cfg, |_: &str| {}).unwrap();
    assert_eq!(g.tokens, [1, 2]);
    assert_eq!(g.text, "b\u{FFFD}");
}

#[test]
fn context_full_is_a_finish_reason() {
    let mut m = Mock::new(10, 6);
    let (g, _) = run(&mut m, &[1, 2, 3], &GenerateConfig::default());
    let g = g.unwrap();
    // Positions 3, 4, 5 hold the three generated tokens; a fourth would need position 6.
    assert_eq!(g.tokens, [4, 5, 6]);
    assert_eq!(g.finish_reason, FinishReason::ContextFull);
    assert_eq!(m.pos, 5);
    // max_tokens reached at the same time: Length is reported.
    let mut m = Mock::new(10, 6);
    let cfg = GenerateConfig {
        max_tokens: Some(3),
        ..Default::default()
    };
    assert_eq!(
        run(&mut m, &[1, 2, 3], &cfg).0.unwrap().finish_reason,
        FinishReason::Length
    );
    // A prompt that fills the context exactly: nothing can be generated.
    let mut m = Mock::new(10, 6);
    let g = run(&mut m, &[1; 6], &GenerateConfig::default()).0.unwrap();
    assert_eq!(
        (g.tokens.len(), g.finish_reason),
        (0, FinishReason::ContextFull)
    );
}

#[test]
fn prompt_too_long_is_an_error() {
    let mut m = Mock::new(10, 6);
    match run(&mut m, &[1; 7], &GenerateConfig::default()).0 {
        Err(GenerateError::PromptTooLong {
            prompt: 7,
            used: 0,
            context: 6,
        }) => {}
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    assert!(m.prefills.is_empty());
    // With 5 positions in use, a 2-token prompt no longer fits.
    let cfg = GenerateConfig {
        max_tokens: Some(3),
        ..Default::default()
    };
    run(&mut m, &[1, 2, 3], &cfg).0.unwrap();
    assert_eq!(m.pos, 5);
    let err = run(&mut m, &[6, 1], &cfg).0.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the prompt of 2 tokens does not fit in the context: 5 of 6 positions are already in use"
    );
}

#[test]
fn continuing_a_session_prefills_after_the_cache() {
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        max_tokens: Some(2),
        ..Default::default()
    };
    let g1 = run(&mut m, &[1], &cfg).0.unwrap();
    assert_eq!(g1.tokens, [2, 3]);
    assert_eq!(m.pos, 2);
    // Next turn: the un-fed last token, then the new input.
    let g2 = run(&mut m, &[3, 7], &cfg).0.unwrap();
    assert_eq!(g2.tokens, [8, 9]);
    assert_eq!(m.prefills, [(0, vec![1]), (2, vec![3, 7])]);
    assert_eq!(m.pos, 5);
}

#[test]
fn cancellation_stops_after_the_current_token() {
    let mut m = Mock::new(10, 100);
    let flag = Arc::new(AtomicBool::new(false));
    let cfg = GenerateConfig {
        cancel: Some(flag.clone()),
        ..Default::default()
    };
    let mut sampler = greedy(10);
    let mut dec = Pieces::new(&TEXT);
    let mut n = 0;
    let g = generate(&mut m, &mut sampler, &mut dec, &[1], &cfg, |_: &str| {
        n += 1;
        if n == 3 {
            flag.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    assert_eq!(g.tokens, [2, 3, 4]);
    assert_eq!(g.text, "Hello wor");
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    // Already cancelled: nothing runs, not even the prefill.
    let mut m = Mock::new(10, 100);
    let (g, _) = run(&mut m, &[1], &cfg);
    let g = g.unwrap();
    assert_eq!(
        (g.tokens.len(), g.finish_reason),
        (0, FinishReason::Cancelled)
    );
    assert!(m.prefills.is_empty());
}

#[test]
fn penalties_see_the_prompt() {
    // From last token 1 the mock favours 2 (logit 10); presence penalty 20 on the prompt's
    // tokens {2, 1} gives 2 → -10 and 1 → -20, so greedy picks 0 (lowest id among the zeros).
    let mut m = Mock::new(10, 100);
    let mut sampler = Sampler::new(
        SamplerConfig {
            presence_penalty: 20.0,
            ..SamplerConfig::greedy()
        },
        10,
    )
    .unwrap();
    let mut dec = Pieces::new(&TEXT);
    let cfg = GenerateConfig {
        max_tokens: Some(1),
        ..Default::default()
    };
    let g = generate(&mut m, &mut sampler, &mut dec, &[2, 1], &cfg, |_: &str| {}).unwrap();
    assert_eq!(g.tokens, [0]);
}

#[test]
fn seeded_sampling_through_the_loop_is_reproducible() {
    let run_seed = |seed| {
        let mut m = Mock::new(10, 100);
        m.flat = true;
        let mut sampler = Sampler::new(
            SamplerConfig {
                seed: Some(seed),
                ..SamplerConfig::neutral()
            },
            10,
        )
        .unwrap();
        let mut dec = Pieces::new(&TEXT);
        let cfg = GenerateConfig {
            max_tokens: Some(30),
            ..Default::default()
        };
        generate(&mut m, &mut sampler, &mut dec, &[1], &cfg, |_: &str| {})
            .unwrap()
            .tokens
    };
    assert_eq!(run_seed(11), run_seed(11));
    assert_ne!(run_seed(11), run_seed(12));
}

#[test]
fn bad_requests_and_model_failures_are_errors() {
    let mut m = Mock::new(10, 100);
    assert!(matches!(
        run(&mut m, &[], &GenerateConfig::default()).0,
        Err(GenerateError::EmptyPrompt)
    ));
    let cfg = GenerateConfig {
        stop_strings: vec!["ok".into(), String::new()],
        ..Default::default()
    };
    assert!(matches!(
        run(&mut m, &[1], &cfg).0,
        Err(GenerateError::EmptyStopString { index: 1 })
    ));
    let mut sampler = greedy(11);
    let mut dec = Pieces::new(&TEXT);
    assert!(matches!(
        generate(
            &mut m,
            &mut sampler,
            &mut dec,
            &[1],
            &GenerateConfig::default(),
            |_: &str| {}
        ),
        Err(GenerateError::VocabMismatch {
            sampler: 11,
            model: 10
        })
    ));
    // A failing forward pass surfaces as GenerateError::Model with its message.
    let mut m = Mock::new(10, 100);
    m.fail_decode_at = Some(2);
    let err = run(&mut m, &[1], &GenerateConfig::default()).0.unwrap_err();
    assert!(matches!(err, GenerateError::Model(_)));
    assert_eq!(
        err.to_string(),
        "model forward pass failed: decode exploded"
    );
    // Every token banned: the sampling error comes through.
    let mut m = Mock::new(10, 100);
    let bias: HashMap<u32, f32> = (0..10).map(|t| (t, f32::NEG_INFINITY)).collect();
    let mut sampler = Sampler::new(
        SamplerConfig {
            logit_bias: bias,
            ..SamplerConfig::greedy()
        },
        10,
    )
    .unwrap();
    let mut dec = Pieces::new(&TEXT);
    assert!(matches!(
        generate(
            &mut m,
            &mut sampler,
            &mut dec,
            &[1],
            &GenerateConfig::default(),
            |_: &str| {}
        ),
        Err(GenerateError::Sampling(_))
    ));
}

#[test]
fn results_serialize_for_json_output() {
    let mut m = Mock::new(10, 100);
    let cfg = GenerateConfig {
        stop_tokens: vec![4],
        ..Default::default()
    };
    let g = run(&mut m, &[1], &cfg).0.unwrap();
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["tokens"], serde_json::json!([2, 3, 4]));
    assert_eq!(v["text"], "Hello ");
    assert_eq!(
        v["finish_reason"],
        serde_json::json!({"stop": {"token": 4}})
    );
    assert_eq!(v["timings"]["generated_tokens"], 3);
    assert_eq!(g.finish_reason.as_str(), "stop");
}
