//! Sampler tests against hand-computed distributions (exact via `probabilities`, empirical via
//! `sample` with binomial tolerances).

use std::collections::HashMap;

use bitnet_generate::{Sampler, SamplerConfig, SamplingError};

const EPS: f32 = 1e-6;

/// Every filter off, temperature 1: p = softmax(logits).
fn neutral() -> SamplerConfig {
    SamplerConfig {
        seed: Some(42),
        ..SamplerConfig::neutral()
    }
}

/// The final distribution as `(id, p)` pairs, in the sampler's order (descending p).
fn probs(config: SamplerConfig, logits: &[f32], history: &[u32]) -> Vec<(u32, f32)> {
    let mut s = Sampler::new(config, logits.len()).expect("valid config");
    let mut l = logits.to_vec();
    s.probabilities(&mut l, history)
        .expect("non-empty distribution")
        .iter()
        .map(|c| (c.id, c.p))
        .collect()
}

/// Asserts the distribution equals `expected` (`(id, p)`, any order) within `EPS`.
fn assert_dist(got: &[(u32, f32)], expected: &[(u32, f64)]) {
    assert_eq!(
        got.len(),
        expected.len(),
        "support differs: got {got:?}, expected {expected:?}"
    );
    for &(id, p) in expected {
        let g = got
            .iter()
            .find(|(gid, _)| *gid == id)
            .unwrap_or_else(|| panic!("token {id} missing from {got:?}"));
        assert!(
            (f64::from(g.1) - p).abs() < f64::from(EPS),
            "p({id}) = {}, expected {p} (got {got:?})",
            g.1
        );
    }
}

/// Draws `n` tokens and checks each token's count against `n·p` within 5 binomial standard
/// deviations (false-failure odds ~1e-6 per token); tokens outside `expected` must never appear.
fn assert_empirical(config: SamplerConfig, logits: &[f32], expected: &[(u32, f64)], n: usize) {
    let mut s = Sampler::new(config, logits.len()).expect("valid config");
    let mut counts: HashMap<u32, usize> = HashMap::new();
    let mut l = logits.to_vec();
    for _ in 0..n {
        l.copy_from_slice(logits);
        *counts
            .entry(s.sample(&mut l, &[]).expect("sample"))
            .or_default() += 1;
    }
    for (id, &c) in &counts {
        assert!(
            expected.iter().any(|(e, _)| e == id),
            "token {id} drawn {c} times but has probability 0"
        );
    }
    for &(id, p) in expected {
        let c = counts.get(&id).copied().unwrap_or(0) as f64;
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (c - mean).abs() <= 5.0 * sd + 1.0,
            "token {id}: {c} draws, expected {mean:.1} ± {:.1} (5σ)",
            5.0 * sd
        );
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn top_k_2_is_softmax_of_the_two_largest() {
    let cfg = SamplerConfig {
        top_k: 2,
        ..neutral()
    };
    // softmax([3, 4]): p(4) = 1 / (1 + e^-1).
    let expected = [(3, sigmoid(1.0)), (2, 1.0 - sigmoid(1.0))];
    assert_dist(&probs(cfg.clone(), &[1.0, 2.0, 3.0, 4.0], &[]), &expected);
    assert_empirical(cfg, &[1.0, 2.0, 3.0, 4.0], &expected, 200_000);
}

#[test]
fn neutral_config_is_plain_softmax() {
    // exp(logits) ∝ [1, 2, 5] → [1/8, 2/8, 5/8].
    let logits = [0.0, 2f32.ln(), 5f32.ln()];
    let expected = [(0, 0.125), (1, 0.25), (2, 0.625)];
    assert_dist(&probs(neutral(), &logits, &[]), &expected);
    assert_empirical(neutral(), &logits, &expected, 100_000);
}

#[test]
fn temperature_scales_logits() {
    // logits / 2 = [0, ln 3] → [1/4, 3/4].
    let cfg = SamplerConfig {
        temperature: 2.0,
        ..neutral()
    };
    assert_dist(
        &probs(cfg, &[0.0, 2.0 * 3f32.ln()], &[]),
        &[(0, 0.25), (1, 0.75)],
    );
    // Temperature is applied after top-k: top-2 of [1,2,3,4] at T = 0.5 is softmax([6, 8]).
    let cfg = SamplerConfig {
        temperature: 0.5,
        top_k: 2,
        ..neutral()
    };
    assert_dist(
        &probs(cfg, &[1.0, 2.0, 3.0, 4.0], &[]),
        &[(3, sigmoid(2.0)), (2, 1.0 - sigmoid(2.0))],
    );
}

#[test]
fn top_p_keeps_the_token_that_crosses_the_threshold() {
    // p = [0.5, 0.3, 0.2].
    let logits = [5f32.ln(), 3f32.ln(), 2f32.ln()];
    let with = |top_p| probs(SamplerConfig { top_p, ..neutral() }, &logits, &[]);
    // Below 0.5 the first token alone reaches it.
    assert_dist(&with(0.0), &[(0, 1.0)]);
    assert_dist(&with(0.49), &[(0, 1.0)]);
    // Just above 0.5: the second token is needed (renormalised 5:3).
    assert_dist(&with(0.51), &[(0, 0.625), (1, 0.375)]);
    assert_dist(&with(0.79), &[(0, 0.625), (1, 0.375)]);
    // Just above 0.8: all three.
    assert_dist(&with(0.81), &[(0, 0.5), (1, 0.3), (2, 0.2)]);
    assert_dist(&with(1.0), &[(0, 0.5), (1, 0.3), (2, 0.2)]);
}

#[test]
fn top_p_ties_are_cut_towards_lower_ids() {
    // Uniform over 4: cumulative 0.25, 0.5 → top_p 0.3 keeps two, the two lowest ids.
    let cfg = SamplerConfig {
        top_p: 0.3,
        ..neutral()
    };
    assert_dist(&probs(cfg, &[0.0; 4], &[]), &[(0, 0.5), (1, 0.5)]);
}

#[test]
fn min_p_keeps_tokens_above_a_fraction_of_the_top() {
    // p ∝ [8, 4, 2, 1].
    let logits = [8f32.ln(), 4f32.ln(), 2f32.ln(), 0.0];
    let with = |min_p| probs(SamplerConfig { min_p, ..neutral() }, &logits, &[]);
    assert_dist(
        &with(0.1),
        &[
            (0, 8.0 / 15.0),
            (1, 4.0 / 15.0),
            (2, 2.0 / 15.0),
            (3, 1.0 / 15.0),
        ],
    );
    assert_dist(
        &with(0.2),
        &[(0, 8.0 / 14.0), (1, 4.0 / 14.0), (2, 2.0 / 14.0)],
    );
    assert_dist(&with(0.3), &[(0, 2.0 / 3.0), (1, 1.0 / 3.0)]);
    assert_dist(&with(0.6), &[(0, 1.0)]);
}

#[test]
fn top_p_is_normalised_before_min_p() {
    // p ∝ [8, 4, 2, 1]. Chain order: top-p over all four (cumulative 8/15 = 0.533 < 0.6, then
    // 12/15 ≥ 0.6 → keeps two), then min-p 0.3 (keeps two). Normalising top-p after min-p
    // (8/12 = 0.667 ≥ 0.6) would wrongly keep one.
    let cfg = SamplerConfig {
        top_p: 0.6,
        min_p: 0.3,
        ..neutral()
    };
    let logits = [8f32.ln(), 4f32.ln(), 2f32.ln(), 0.0];
    assert_dist(&probs(cfg, &logits, &[]), &[(0, 2.0 / 3.0), (1, 1.0 / 3.0)]);
}

#[test]
fn top_p_normalises_over_the_top_k_survivors() {
    // p ∝ [4, 2, 1, 1]; top-k 3 keeps [4, 2, 1] (the tie at 1 goes to id 2); over those,
    // cumulative 4/7 = 0.571 < 0.6, then 6/7 ≥ 0.6 → two tokens. Without top-k, 4/8 and 6/8
    // would give the same two, so also check top_p 0.55: with top-k 4/7 ≥ 0.55 → one token.
    let logits = [4f32.ln(), 2f32.ln(), 0.0, 0.0];
    let cfg = |top_p| SamplerConfig {
        top_k: 3,
        top_p,
        ..neutral()
    };
    assert_dist(
        &probs(cfg(0.6), &logits, &[]),
        &[(0, 2.0 / 3.0), (1, 1.0 / 3.0)],
    );
    assert_dist(&probs(cfg(0.55), &logits, &[]), &[(0, 1.0)]);
    // top-k ties go to the lower id.
    let cfg = SamplerConfig {
        top_k: 3,
        ..neutral()
    };
    assert_dist(
        &probs(cfg, &logits, &[]),
        &[(0, 4.0 / 7.0), (1, 2.0 / 7.0), (2, 1.0 / 7.0)],
    );
}

#[test]
fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
    let cfg = SamplerConfig {
        repeat_penalty: 2.0,
        ..neutral()
    };
    let mut s = Sampler::new(cfg, 4).unwrap();
    let mut logits = [2.0f32, -1.0, 0.5, 3.0];
    let dist: Vec<(u32, f32)> = s
        .probabilities(&mut logits, &[0, 1, 0])
        .unwrap()
        .iter()
        .map(|c| (c.id, c.p))
        .collect();
    // Token 0 (positive, seen twice — penalised once): 2 / 2 = 1; token 1: -1 · 2 = -2.
    assert_eq!(logits, [1.0, -2.0, 0.5, 3.0]);
    let z: f64 = [1.0f64, -2.0, 0.5, 3.0].iter().map(|l| l.exp()).sum();
    assert_dist(
        &dist,
        &[
            (0, 1f64.exp() / z),
            (1, (-2f64).exp() / z),
            (2, 0.5f64.exp() / z),
            (3, 3f64.exp() / z),
        ],
    );
}

#[test]
fn repetition_penalty_only_looks_at_the_last_n_tokens() {
    let history = [0u32, 1, 2];
    let run = |repeat_last_n| {
        let cfg = SamplerConfig {
            repeat_penalty: 2.0,
            repeat_last_n,
            ..neutral()
        };
        let mut s = Sampler::new(cfg, 4).unwrap();
        let mut logits = [2.0f32, 2.0, 2.0, 2.0];
        s.probabilities(&mut logits, &history).unwrap();
        logits
    };
    assert_eq!(run(1), [2.0, 2.0, 1.0, 2.0]);
    assert_eq!(run(2), [2.0, 1.0, 1.0, 2.0]);
    assert_eq!(run(-1), [1.0, 1.0, 1.0, 2.0]);
    assert_eq!(run(0), [2.0, 2.0, 2.0, 2.0]);
}

#[test]
fn frequency_and_presence_penalties_follow_openai() {
    // OpenAI: logit -= count · frequency_penalty + (count > 0) · presence_penalty.
    let cfg = SamplerConfig {
        frequency_penalty: 0.5,
        presence_penalty: 0.25,
        ..neutral()
    };
    let mut s = Sampler::new(cfg, 3).unwrap();
    let mut logits = [0.0f32; 3];
    s.probabilities(&mut logits, &[1, 1, 2]).unwrap();
    assert_eq!(logits, [0.0, -1.25, -0.75]);
}

#[test]
fn logit_bias_bans_and_boosts() {
    let ban = SamplerConfig {
        logit_bias: HashMap::from([(0, f32::NEG_INFINITY)]),
        ..neutral()
    };
    assert_dist(
        &probs(ban.clone(), &[5.0, 1.0, 1.0], &[]),
        &[(1, 0.5), (2, 0.5)],
    );
    assert_empirical(ban.clone(), &[5.0, 1.0, 1.0], &[(1, 0.5), (2, 0.5)], 10_000);
    let greedy_ban = SamplerConfig {
        temperature: 0.0,
        ..ban
    };
    assert_dist(&probs(greedy_ban, &[5.0, 1.0, 2.0], &[]), &[(2, 1.0)]);
    // +1 on token 2 of [0, 0, 0]: p ∝ [1, 1, e].
    let boost = SamplerConfig {
        logit_bias: HashMap::from([(2, 1.0)]),
        ..neutral()
    };
    let e = 1f64.exp();
    assert_dist(
        &probs(boost, &[0.0; 3], &[]),
        &[
            (0, 1.0 / (2.0 + e)),
            (1, 1.0 / (2.0 + e)),
            (2, e / (2.0 + e)),
        ],
    );
}

#[test]
fn greedy_picks_argmax_with_ties_to_lowest_id() {
    let greedy = || SamplerConfig {
        seed: Some(1),
        ..SamplerConfig::greedy()
    };
    let mut s = Sampler::new(greedy(), 4).unwrap();
    assert_eq!(s.sample(&mut [1.0, 3.0, 3.0, 2.0], &[]), Ok(1));
    assert_eq!(s.sample(&mut [f32::NAN, 1.0, 0.0, 1.0], &[]), Ok(1));
    assert_eq!(s.sample(&mut [0.0, 0.0, 0.0, 0.0], &[]), Ok(0));
    assert_eq!(
        s.sample(&mut [f32::NEG_INFINITY; 4], &[]),
        Err(SamplingError::NoCandidates)
    );
    // Greedy sees the penalties: token 3 (3.0 → 1.5 at penalty 2) loses to token 2 (2.0).
    let cfg = SamplerConfig {
        repeat_penalty: 2.0,
        ..greedy()
    };
    let mut s = Sampler::new(cfg, 4).unwrap();
    assert_eq!(s.sample(&mut [0.0, 1.0, 2.0, 3.0], &[3]), Ok(2));
    // Negative temperature is greedy too.
    let cfg = SamplerConfig {
        temperature: -1.0,
        ..neutral()
    };
    let mut s = Sampler::new(cfg, 3).unwrap();
    for _ in 0..100 {
        assert_eq!(s.sample(&mut [0.0, 0.1, 0.0], &[]), Ok(1));
    }
}

#[test]
fn default_config_chain() {
    // llama.cpp defaults: T 0.8, top-k 40, top-p 0.95, min-p 0.05. With p ∝ [60, 30, 9, 1]
    // (sum 100): top-p keeps the first three (0.6, 0.9, 0.99 ≥ 0.95); min-p 0.05 keeps
    // p ≥ 3 (of 100), i.e. the same three; then T = 0.8 → p ∝ [60, 30, 9]^(1/0.8).
    let d = SamplerConfig::default();
    assert_eq!(
        (d.temperature, d.top_k, d.top_p, d.min_p),
        (0.8, 40, 0.95, 0.05)
    );
    assert_eq!(
        (
            d.repeat_penalty,
            d.repeat_last_n,
            d.frequency_penalty,
            d.presence_penalty
        ),
        (1.0, 64, 0.0, 0.0)
    );
    let logits = [60f32.ln(), 30f32.ln(), 9f32.ln(), 0.0];
    let w: Vec<f64> = [60f64, 30.0, 9.0].iter().map(|x| x.powf(1.25)).collect();
    let z: f64 = w.iter().sum();
    let cfg = SamplerConfig {
        seed: Some(3),
        ..SamplerConfig::default()
    };
    assert_dist(
        &probs(cfg, &logits, &[]),
        &[(0, w[0] / z), (1, w[1] / z), (2, w[2] / z)],
    );
}

#[test]
fn same_seed_same_sequence_different_seed_different() {
    let logits: Vec<f32> = (0..1000).map(|i| (i % 7) as f32 * 0.1).collect();
    let run = |seed| {
        let cfg = SamplerConfig {
            seed: Some(seed),
            ..SamplerConfig::neutral()
        };
        let mut s = Sampler::new(cfg, logits.len()).unwrap();
        let mut l = logits.clone();
        (0..100)
            .map(|_| {
                l.copy_from_slice(&logits);
                s.sample(&mut l, &[]).unwrap()
            })
            .collect::<Vec<u32>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    // reseed restarts the sequence.
    let cfg = SamplerConfig {
        seed: Some(7),
        ..SamplerConfig::neutral()
    };
    let mut s = Sampler::new(cfg, logits.len()).unwrap();
    let mut l = logits.clone();
    let first = s.sample(&mut l, &[]).unwrap();
    s.reseed(7);
    l.copy_from_slice(&logits);
    assert_eq!(s.sample(&mut l, &[]).unwrap(), first);
    // Unseeded samplers draw different seeds.
    let a = Sampler::new(SamplerConfig::default(), 10).unwrap().seed();
    let b = Sampler::new(SamplerConfig::default(), 10).unwrap().seed();
    assert_ne!(a, b);
}

#[test]
fn bad_inputs_are_errors() {
    let mut s = Sampler::new(neutral(), 4).unwrap();
    assert_eq!(
        s.sample(&mut [0.0; 3], &[]),
        Err(SamplingError::VocabMismatch {
            expected: 4,
            got: 3
        })
    );
    assert_eq!(
        s.sample(&mut [f32::NAN; 4], &[]),
        Err(SamplingError::NoCandidates)
    );
    // History ids outside the vocabulary are ignored, not a panic.
    assert!(s.sample(&mut [0.0; 4], &[99, u32::MAX]).is_ok());
    assert_eq!(
        Sampler::new(neutral(), 0).unwrap_err(),
        SamplingError::EmptyVocab
    );
    let field = |cfg: SamplerConfig| match Sampler::new(cfg, 4) {
        Err(SamplingError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(
        field(SamplerConfig {
            top_p: 1.5,
            ..neutral()
        }),
        "top_p"
    );
    assert_eq!(
        field(SamplerConfig {
            min_p: -0.1,
            ..neutral()
        }),
        "min_p"
    );
    assert_eq!(
        field(SamplerConfig {
            repeat_penalty: 0.0,
            ..neutral()
        }),
        "repeat_penalty"
    );
    assert_eq!(
        field(SamplerConfig {
            repeat_last_n: -2,
            ..neutral()
        }),
        "repeat_last_n"
    );
    assert_eq!(
        field(SamplerConfig {
            temperature: f32::NAN,
            ..neutral()
        }),
        "temperature"
    );
    assert_eq!(
        field(SamplerConfig {
            logit_bias: HashMap::from([(4, 1.0)]),
            ..neutral()
        }),
        "logit_bias"
    );
}

#[test]
fn positive_infinity_logit_takes_all_mass() {
    for (id, p) in probs(neutral(), &[0.0, f32::INFINITY, 5.0], &[]) {
        assert_eq!(p, if id == 1 { 1.0 } else { 0.0 }, "token {id}");
    }
}
