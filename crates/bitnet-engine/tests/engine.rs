//! The engine against single-sequence generation: whatever the batch, the join order, the
//! pool size (preemption), the prefix cache or `n`, every choice's tokens equal
//! `bitnet_generate::generate` run alone with the same settings.

use std::path::Path;
use std::sync::Arc;

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
use bitnet_engine::{
    CpuBackend, Engine, EngineConfig, EngineHandle, Request, Submission, TokenEvent,
};
use bitnet_generate::{
    generate, FinishReason, GenerateConfig, ModelRunner, Sampler, SamplerConfig, StopReason,
    TokenDecoder,
};
use bitnet_model::Model;

struct NoText;
impl TokenDecoder for NoText {
    fn push(&mut self, _: u32) -> String {
        String::new()
    }
    fn finish(&mut self) -> String {
        String::new()
    }
}

fn synth_model(dir: &Path) -> Arc<Model> {
    let out = dir.join("gqa.gguf");
    let spec = SynthSpec {
        shape: Shape::named("gqa").unwrap(),
        format: Format::GgufI2s,
        seed: 3,
        embed: EmbedType::F16,
    };
    synth(&spec, &out, &mut |_, _| {}).unwrap();
    Arc::new(Model::load(&out).unwrap())
}

fn tokens(seed: u32, n: usize, vocab: usize) -> Vec<u32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(7);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) % vocab as u32
        })
        .collect()
}

/// What `generate` gives for the request alone (context = the engine's).
fn alone(
    model: &Arc<Model>,
    req: &Request,
    seed_offset: u64,
    ctx: usize,
) -> (Vec<u32>, FinishReason) {
    let mut runner = ModelRunner::new(model.clone(), ctx).unwrap();
    let mut cfg = req.sampling.clone();
    cfg.seed = cfg.seed.map(|s| s + seed_offset);
    let mut sampler = Sampler::new(cfg, model.config.vocab_size).unwrap();
    let g = generate(
        &mut runner,
        &mut sampler,
        &mut NoText,
        &req.prompt,
        &GenerateConfig {
            max_tokens: req.max_tokens,
            stop_tokens: req.stop_tokens.clone(),
            ..Default::default()
        },
        |_| {},
    )
    .unwrap();
    (g.tokens, g.finish_reason)
}

/// Collected output of one choice.
#[derive(Default, Debug, Clone)]
struct Choice {
    tokens: Vec<u32>,
    finish: Option<FinishReason>,
}

fn engine(
    model: &Arc<Model>,
    n_blocks: usize,
    block: usize,
    batch: usize,
    seqs: usize,
    ctx: usize,
    prefix: bool,
) -> Engine<CpuBackend> {
    let backend = CpuBackend::new(model.clone(), n_blocks, block, batch, seqs, ctx).unwrap();
    Engine::new(
        backend,
        EngineConfig {
            max_running: seqs,
            prefill_chunk: 16,
            prefix_cache: prefix,
        },
    )
    .unwrap()
}

/// Adds `reqs[i]` before step `joins[i]`, steps to the end, returns choices per request.
fn drive(e: &mut Engine<CpuBackend>, reqs: &[Request], joins: &[usize]) -> Vec<Vec<Choice>> {
    let mut ids = vec![None; reqs.len()];
    let mut out: Vec<Vec<Choice>> = reqs.iter().map(|r| vec![Choice::default(); r.n]).collect();
    let mut step = 0;
    loop {
        for (i, r) in reqs.iter().enumerate() {
            if joins[i] == step {
                ids[i] = Some(e.add(r.clone()).unwrap());
            }
        }
        let all_joined = joins.iter().all(|&j| j <= step);
        if all_joined && !e.has_work() {
            break;
        }
        let evs: Vec<TokenEvent> = e.step().unwrap();
        for ev in evs {
            let i = ids.iter().position(|&x| x == Some(ev.request)).unwrap();
            let c = &mut out[i][ev.index];
            assert!(c.finish.is_none(), "event after the end of a choice");
            c.tokens.extend(ev.token);
            c.finish = ev.finish;
        }
        step += 1;
        assert!(step < 10_000, "engine made no progress");
    }
    out
}

fn mixed_requests(vocab: usize) -> Vec<Request> {
    let lens = [3usize, 40, 1, 17, 64, 9, 33, 5];
    lens.iter()
        .enumerate()
        .map(|(i, &n)| {
            let sampling = if i % 2 == 0 {
                SamplerConfig::greedy()
            } else {
                SamplerConfig {
                    seed: Some(100 + i as u64),
                    temperature: 1.0,
                    ..SamplerConfig::default()
                }
            };
            let mut r = Request::new(tokens(i as u32, n, vocab), sampling, Some(6 + 3 * i));
            if i == 3 {
                r.max_tokens = None; // until the context is full
            }
            r
        })
        .collect()
}

/// Compares every choice with `generate` alone; returns the number of tokens compared.
fn assert_same_as_alone(
    model: &Arc<Model>,
    reqs: &[Request],
    got: &[Vec<Choice>],
    ctx: usize,
) -> usize {
    let mut compared = 0;
    for (i, (r, choices)) in reqs.iter().zip(got).enumerate() {
        for (j, c) in choices.iter().enumerate() {
            let (want, reason) = alone(model, r, j as u64, ctx);
            assert_eq!(c.tokens, want, "request {i} choice {j}");
            assert_eq!(c.finish.as_ref(), Some(&reason), "request {i} choice {j}");
            compared += want.len();
        }
    }
    compared
}

#[test]
fn batched_generation_equals_alone_with_mid_stream_joins() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let reqs = mixed_requests(model.config.vocab_size);
    let ctx = 96;
    let mut e = engine(&model, 64, 16, 48, 8, ctx, true);
    let got = drive(&mut e, &reqs, &[0, 0, 1, 2, 2, 5, 9, 9]);
    assert!(assert_same_as_alone(&model, &reqs, &got, ctx) > 100);
    // Request 3 ran until the context was full.
    assert_eq!(got[3][0].finish, Some(FinishReason::ContextFull));
    let s = e.stats();
    assert_eq!(s.blocks_used, 0, "{s:?}");
    assert_eq!((s.running, s.waiting), (0, 0));
}

#[test]
fn a_small_pool_preempts_and_recomputes_without_changing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let reqs = mixed_requests(model.config.vocab_size);
    let ctx = 96;
    // 12 blocks of 8 = 96 positions in all: the sequences cannot all fit at once.
    for prefix in [false, true] {
        let mut e = engine(&model, 12, 8, 48, 8, ctx, prefix);
        let got = drive(&mut e, &reqs, &[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(e.stats().preemptions > 0, "no preemption: {:?}", e.stats());
        assert!(assert_same_as_alone(&model, &reqs, &got, ctx) > 100);
        assert_eq!(e.stats().blocks_used, 0);
    }
}

#[test]
fn n_choices_share_the_prompt_and_equal_seeded_runs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let v = model.config.vocab_size;
    let mut r = Request::new(
        tokens(42, 21, v),
        SamplerConfig {
            seed: Some(9),
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..SamplerConfig::default()
        },
        Some(12),
    );
    r.n = 3;
    let mut e = engine(&model, 32, 8, 32, 4, 64, true);
    let got = drive(&mut e, std::slice::from_ref(&r), &[0]);
    assert_eq!(got[0].len(), 3);
    assert_eq!(
        assert_same_as_alone(&model, std::slice::from_ref(&r), &got, 64),
        36
    );
    // The prompt ran once: 21 prompt tokens computed, not 63.
    assert_eq!(e.stats().prompt_tokens_computed, 21);
    assert_ne!(
        got[0][0].tokens, got[0][1].tokens,
        "choices should differ at temperature 1.5"
    );
    assert_eq!(e.stats().blocks_used, 0);
}

#[test]
fn prefix_cache_reuses_a_seen_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let v = model.config.vocab_size;
    let system = tokens(5, 40, v);
    let mut p2 = system.clone();
    p2.extend(tokens(6, 5, v));
    let r1 = Request::new(system.clone(), SamplerConfig::greedy(), Some(4));
    let r2 = Request::new(p2, SamplerConfig::greedy(), Some(4));
    let mut e = engine(&model, 32, 8, 64, 4, 64, true);
    let got1 = drive(&mut e, std::slice::from_ref(&r1), &[0]);
    let before = e.stats().prompt_tokens_computed;
    let mut first = None;
    let id = e.add(r2.clone()).unwrap();
    let mut toks = Vec::new();
    while e.has_work() {
        for ev in e.step().unwrap() {
            assert_eq!(ev.request, id);
            first.get_or_insert(ev.cached_tokens);
            toks.extend(ev.token);
        }
    }
    // 40 shared tokens = 5 full blocks of 8; all 5 reused.
    assert_eq!(first, Some(40));
    assert_eq!(e.stats().prompt_tokens_computed - before, 5);
    assert_eq!(toks, alone(&model, &r2, 0, 64).0);
    assert_eq!(got1[0][0].tokens, alone(&model, &r1, 0, 64).0);
}

#[test]
fn cancel_frees_blocks_and_ends_every_choice() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let mut r = Request::new(
        tokens(1, 30, model.config.vocab_size),
        SamplerConfig::greedy(),
        None,
    );
    r.n = 2;
    let mut e = engine(&model, 32, 8, 64, 4, 64, false);
    let id = e.add(r).unwrap();
    e.step().unwrap();
    e.step().unwrap();
    assert!(e.stats().blocks_used > 0);
    let evs = e.cancel(id);
    assert_eq!(evs.len(), 2);
    assert!(evs
        .iter()
        .all(|ev| ev.finish == Some(FinishReason::Cancelled)));
    assert_eq!(e.stats().blocks_used, 0);
    assert!(!e.has_work());
    assert!(e.cancel(id).is_empty());
}

#[test]
fn invalid_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let mut e = engine(&model, 8, 8, 16, 2, 32, true);
    let bad = |p: Vec<u32>| Request::new(p, SamplerConfig::greedy(), Some(1));
    assert!(e
        .add(bad(vec![]))
        .unwrap_err()
        .to_string()
        .contains("empty"));
    assert!(e
        .add(bad(vec![1; 33]))
        .unwrap_err()
        .to_string()
        .contains("33 tokens"));
    assert!(e
        .add(bad(vec![100_000]))
        .unwrap_err()
        .to_string()
        .contains("out of range"));
    let mut r = bad(vec![1]);
    r.n = 3;
    assert!(e.add(r).unwrap_err().to_string().contains("n = 3"));
    let mut r = bad(vec![1]);
    r.sampling.top_p = 2.0;
    assert!(e.add(r).is_err());
}

#[test]
fn handle_streams_text_applies_stop_strings_and_cancels_dropped_clients() {
    let Some(dir) = bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
    else {
        return;
    };
    let model = Arc::new(Model::load(&dir).unwrap());
    let tok = bitnet_tokenizer::load_tokenizer(&dir).unwrap().tokenizer;
    let prompt = tok.encode("Once upon a time", true, false).unwrap();
    let cfg = EngineConfig::default();
    let backend = CpuBackend::new(model.clone(), 128, 16, 256, 8, 512).unwrap();
    let h = EngineHandle::spawn(Engine::new(backend, cfg.clone()).unwrap(), &cfg, Some(tok));
    let collect = |sub: Submission| {
        let (_, mut rx) = h.submit(sub).unwrap();
        let mut text = String::new();
        let mut finish = None;
        while let Some(ev) = rx.blocking_recv() {
            let ev = ev.unwrap();
            text.push_str(&ev.text);
            if ev.finish.is_some() {
                finish = ev.finish;
                break;
            }
        }
        (text, finish)
    };
    let req = Request::new(prompt.clone(), SamplerConfig::greedy(), Some(48));
    let (text, finish) = collect(Submission {
        request: req.clone(),
        stop_strings: vec![],
    });
    // What transformers' generate() writes for this model (see the CLI's run_chat test).
    assert!(
        text.starts_with(", there was a little girl named Lily. She loved to play outside"),
        "{text}"
    );
    assert_eq!(finish, Some(FinishReason::Length));
    let (text, finish) = collect(Submission {
        request: req.clone(),
        stop_strings: vec!["Lily".into()],
    });
    assert_eq!(text, ", there was a little girl named ");
    assert_eq!(
        finish,
        Some(FinishReason::Stop(StopReason::String("Lily".into())))
    );
    // A client that drops its receiver mid-stream: its request is cancelled, blocks freed.
    let (_, mut rx) = h
        .submit(Submission {
            request: Request::new(prompt.clone(), SamplerConfig::greedy(), None),
            stop_strings: vec![],
        })
        .unwrap();
    rx.blocking_recv().unwrap().unwrap();
    drop(rx);
    let t0 = std::time::Instant::now();
    while h.stats().blocks_used != 0 || h.stats().running != 0 {
        assert!(
            t0.elapsed().as_secs() < 20,
            "blocks not freed: {:?}",
            h.stats()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    h.shutdown();
}

#[test]
fn a_request_joining_15_decoding_streams_gets_its_first_token_within_two_steps() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let v = model.config.vocab_size;
    let mut e = engine(&model, 256, 16, 64, 16, 128, true);
    for i in 0..15 {
        e.add(Request::new(
            tokens(i, 20, v),
            SamplerConfig::greedy(),
            Some(60),
        ))
        .unwrap();
    }
    // Let the 15 prompts run and decoding start.
    for _ in 0..8 {
        e.step().unwrap();
    }
    assert_eq!(e.stats().running, 15);
    let id = e
        .add(Request::new(
            tokens(99, 8, v),
            SamplerConfig::greedy(),
            Some(3),
        ))
        .unwrap();
    let mut steps = 0;
    loop {
        let evs = e.step().unwrap();
        steps += 1;
        // The 15 streams keep decoding in the same steps.
        assert!(
            evs.iter()
                .filter(|ev| ev.request != id && ev.token.is_some())
                .count()
                == 15
        );
        if evs.iter().any(|ev| ev.request == id && ev.token.is_some()) {
            break;
        }
        assert!(steps < 2, "no first token after {steps} steps");
    }
    assert!(steps <= 2);
}

/// Structured output on the real TinyStories model: whatever it would have written, the
/// text is JSON that validates against the schema (checked by hand here: the fields, their
/// types and bounds, nothing else).
#[test]
fn json_schema_constrained_output_parses_and_validates() {
    let Some(dir) = bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
    else {
        return;
    };
    let model = Arc::new(Model::load(&dir).unwrap());
    let tok = bitnet_tokenizer::load_tokenizer(&dir).unwrap().tokenizer;
    let eos = tok.special_tokens().eos.unwrap();
    let compiler =
        bitnet_engine::GrammarCompiler::new(tok.clone(), model.config.vocab_size, eos).unwrap();
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 99},
            "happy": {"type": "boolean"}
        },
        "required": ["name", "age", "happy"],
        "additionalProperties": false
    });
    let cfg = EngineConfig::default();
    let backend = CpuBackend::new(model.clone(), 64, 16, 128, 4, 512).unwrap();
    let h = EngineHandle::spawn(
        Engine::new(backend, cfg.clone()).unwrap(),
        &cfg,
        Some(tok.clone()),
    );
    let prompt = tok.encode("Once upon a time", true, false).unwrap();
    for (temperature, seed) in [(0.0, 0), (1.0, 1), (1.0, 2)] {
        let mut req = Request::new(
            prompt.clone(),
            SamplerConfig {
                temperature,
                seed: Some(seed),
                ..SamplerConfig::default()
            },
            Some(120),
        );
        req.stop_tokens = vec![eos];
        req.constraint = Some(compiler.json_schema(schema.clone()).unwrap());
        let (_, mut rx) = h
            .submit(Submission {
                request: req,
                stop_strings: vec![],
            })
            .unwrap();
        let mut text = String::new();
        let mut finish = None;
        while let Some(ev) = rx.blocking_recv() {
            let ev = ev.unwrap();
            text.push_str(&ev.text);
            if ev.finish.is_some() {
                finish = ev.finish;
                break;
            }
        }
        assert!(
            matches!(finish, Some(FinishReason::Stop(_))),
            "{finish:?}: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 3, "{text}");
        assert!(o["name"].as_str().unwrap().chars().count() <= 12, "{text}");
        assert!((0..=99).contains(&o["age"].as_i64().unwrap()), "{text}");
        assert!(o["happy"].is_boolean(), "{text}");
    }
    // A schema llguidance rejects is an error at compile time, not at generation.
    assert!(compiler
        .json_schema(serde_json::json!({"type": "frobnicate"}))
        .is_err());
    h.shutdown();
}

/// Two long prompts prefilled chunk by chunk in a pool too small for both: when neither can
/// take another chunk, the newer one is preempted instead of the engine stalling.
#[test]
fn prefills_that_exhaust_the_pool_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let v = model.config.vocab_size;
    let reqs: Vec<Request> = (0..2)
        .map(|i| Request::new(tokens(70 + i, 48, v), SamplerConfig::greedy(), Some(4)))
        .collect();
    // 8 blocks of 8 = 64 positions; chunks of 8 tokens, 16 tokens a step.
    let backend = CpuBackend::new(model.clone(), 8, 8, 16, 2, 64).unwrap();
    let mut e = Engine::new(
        backend,
        EngineConfig {
            max_running: 2,
            prefill_chunk: 8,
            prefix_cache: false,
        },
    )
    .unwrap();
    let got = drive(&mut e, &reqs, &[0, 0]);
    assert_eq!(assert_same_as_alone(&model, &reqs, &got, 64), 8);
    assert!(e.stats().preemptions > 0);
    assert_eq!(e.stats().blocks_used, 0);
}

/// A request that bans every token ends on its own; the request beside it is unaffected.
#[test]
fn a_request_with_nothing_to_draw_ends_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model(dir.path());
    let v = model.config.vocab_size;
    let mut banned = Request::new(tokens(1, 5, v), SamplerConfig::greedy(), Some(4));
    banned.sampling.logit_bias = (0..v as u32).map(|t| (t, f32::NEG_INFINITY)).collect();
    let normal = Request::new(tokens(2, 7, v), SamplerConfig::greedy(), Some(6));
    let mut e = engine(&model, 32, 8, 32, 4, 64, true);
    let got = drive(&mut e, &[banned, normal.clone()], &[0, 0]);
    assert!(got[0][0].tokens.is_empty());
    assert_eq!(
        got[0][0].finish,
        Some(FinishReason::Stop(StopReason::NoToken))
    );
    assert_eq!(got[1][0].tokens, alone(&model, &normal, 0, 64).0);
    assert_eq!(e.stats().blocks_used, 0);
}
