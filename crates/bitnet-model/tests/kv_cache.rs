//! The KV cache: token-by-token decoding and chunked prefill give the logits of one full
//! batched pass; misuse (overflow, gaps, bad ids) is an error, never a panic.

mod common;

use bitnet_model::{argmax, rel_l2, Logits, Model, ModelError, State};

/// The models every test here runs on; empty only when the shared data is absent outside CI
/// (`common::shared` prints SKIPPED then, and fails under `CI=true`).
fn models() -> Vec<(&'static str, Model)> {
    let Some(s) = common::shared() else {
        return Vec::new();
    };
    let v = vec![
        (
            "tinystories-3m",
            Model::load(s.join("data/real-models/bitllama2c-tinystories-3m")).unwrap(),
        ),
        (
            "bitnetcpp-tiny I2_S",
            Model::load(s.join("data/bitnetcpp/tiny/model-i2_s.gguf")).unwrap(),
        ),
    ];
    assert_eq!(v.len(), 2, "both models must load");
    v
}

const IDS: [u32; 12] = [1, 17, 300, 42, 5, 99, 250, 7, 400, 3, 3, 128];

/// Per-position comparison: the residual stream is bit-identical between paths (integer
/// ternary products), only the head's float summation order may differ.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    let err = rel_l2(got, want);
    assert!(err <= 1e-5, "{what}: rel L2 {err:e}");
    assert_eq!(argmax(got), argmax(want), "{what}: argmax");
}

#[test]
fn decode_token_by_token_equals_full_forward() {
    for (name, m) in models() {
        let v = m.config.vocab_size;
        let full = common::all_logits(&m, &IDS);
        let mut st = m.new_state(IDS.len()).unwrap();
        for (t, &id) in IDS.iter().enumerate() {
            assert_eq!(st.pos(), t);
            let l = m.forward(&mut st, &[id], t, Logits::Last).unwrap();
            assert_close(
                l,
                &full[t * v..(t + 1) * v],
                &format!("{name} decode position {t}"),
            );
        }
    }
}

#[test]
fn chunked_and_split_prefill_equal_one_pass() {
    for (name, m) in models() {
        let v = m.config.vocab_size;
        let full = common::all_logits(&m, &IDS);
        let last = &full[(IDS.len() - 1) * v..];
        // Prefill in chunks of 5 (max_batch 5), Logits::Last.
        let mut st = State::new(&m.config, 64, 5).unwrap();
        let l = m.forward(&mut st, &IDS, 0, Logits::Last).unwrap();
        assert_close(l, last, &format!("{name} chunked prefill"));
        assert_eq!(st.pos(), IDS.len());
        // Batched prefill of 7, then a batched pass of the other 5 with all logits.
        let mut st = State::new(&m.config, 64, 16).unwrap();
        m.forward(&mut st, &IDS[..7], 0, Logits::Last).unwrap();
        let rest = m.forward(&mut st, &IDS[7..], 7, Logits::All).unwrap();
        for t in 7..IDS.len() {
            assert_close(
                &rest[(t - 7) * v..(t - 6) * v],
                &full[t * v..(t + 1) * v],
                &format!("{name} split pass position {t}"),
            );
        }
        // Rewind: re-running from position 4 overwrites the cache and gives the same logits.
        let again = m.forward(&mut st, &IDS[4..], 4, Logits::All).unwrap();
        assert_close(again, &full[4 * v..], &format!("{name} rewind"));
    }
}

#[test]
fn misuse_is_an_error() {
    for (name, m) in models() {
        let mut st = m.new_state(8).unwrap();
        // Context overflow.
        let e = m.forward(&mut st, &IDS, 0, Logits::Last).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::ContextOverflow {
                    start: 0,
                    end: 12,
                    context: 8
                }
            ),
            "{name}: {e}"
        );
        assert!(e.to_string().contains("context overflow"), "{e}");
        m.forward(&mut st, &IDS[..8], 0, Logits::Last).unwrap();
        let e = m.forward(&mut st, &[5], 8, Logits::Last).unwrap_err();
        assert!(
            matches!(e, ModelError::ContextOverflow { .. }),
            "{name}: {e}"
        );
        // A gap in positions.
        st.reset();
        let e = m.forward(&mut st, &[1], 3, Logits::Last).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::PositionGap {
                    start: 3,
                    filled: 0
                }
            ),
            "{name}: {e}"
        );
        // Token out of range, empty input: nothing is written.
        let bad = m.config.vocab_size as u32;
        let e = m.forward(&mut st, &[1, bad], 0, Logits::Last).unwrap_err();
        assert!(
            matches!(e, ModelError::TokenOutOfRange { index: 1, .. }),
            "{name}: {e}"
        );
        assert_eq!(st.pos(), 0);
        assert!(matches!(
            m.forward(&mut st, &[], 0, Logits::Last),
            Err(ModelError::EmptyInput)
        ));
        // All logits of more tokens than a pass holds.
        let mut small = State::new(&m.config, 32, 4).unwrap();
        let e = m.forward(&mut small, &IDS, 0, Logits::All).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::BatchTooLarge {
                    n: 12,
                    logit_rows: 4
                }
            ),
            "{name}: {e}"
        );
        let e = m.forward(&mut st, &IDS[..2], 0, Logits::All).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::BatchTooLarge {
                    n: 2,
                    logit_rows: 1
                }
            ),
            "{name}: {e}"
        );
    }
    // A state made for another model shape is refused.
    let ms = models();
    if ms.len() == 2 {
        let mut st = ms[0].1.new_state(8).unwrap();
        let e = ms[1].1.forward(&mut st, &[1], 0, Logits::Last).unwrap_err();
        assert!(matches!(e, ModelError::StateMismatch(_)), "{e}");
    }
}

#[test]
fn f16_kv_cache() {
    use bitnet_model::KvType;
    for (name, m) in models() {
        let v = m.config.vocab_size;
        let f32_full = common::all_logits(&m, &IDS);
        let mut full =
            State::with_kv(&m.config, IDS.len(), IDS.len(), IDS.len(), KvType::F16).unwrap();
        assert_eq!(full.kv_type(), KvType::F16);
        let f16_full = m.forward(&mut full, &IDS, 0, Logits::All).unwrap().to_vec();
        // Decoding with an f16 cache equals a full pass with an f16 cache.
        let mut st = State::with_kv(&m.config, IDS.len(), 4, 1, KvType::F16).unwrap();
        for (t, &id) in IDS.iter().enumerate() {
            let l = m.forward(&mut st, &[id], t, Logits::Last).unwrap();
            assert_close(
                l,
                &f16_full[t * v..(t + 1) * v],
                &format!("{name} f16 decode {t}"),
            );
        }
        // Rounding K/V to f16 moves logits a little; position 0 attends only to itself, whose
        // value row is rounded, so even it differs.
        let err = rel_l2(&f16_full, &f32_full);
        eprintln!("{name}: f16 vs f32 KV cache rel L2 {err:.3e}");
        assert!(err > 0.0 && err < 5e-2, "{name}: f16 KV rel L2 {err:e}");
        // Half the cache memory.
        let a = State::with_kv(&m.config, 64, 4, 1, KvType::F32)
            .unwrap()
            .bytes();
        let b = State::with_kv(&m.config, 64, 4, 1, KvType::F16)
            .unwrap()
            .bytes();
        let cache = m.config.n_layers * 64 * m.config.kv_dim() * 2;
        assert_eq!(a - b, cache * 2, "{name}");
    }
    // The real model still tells its story with an f16 cache.
    let Some(s) = common::shared() else { return };
    let m = Model::load(s.join("data/real-models/bitllama2c-tinystories-3m")).unwrap();
    let want = common::greedy(&m, &[1], 24);
    let mut st = State::with_kv(&m.config, 32, 8, 1, KvType::F16).unwrap();
    let mut next = argmax(m.forward(&mut st, &[1], 0, Logits::Last).unwrap()) as u32;
    let mut got = vec![next];
    while got.len() < want.len() {
        let pos = st.pos();
        next = argmax(m.forward(&mut st, &[next], pos, Logits::Last).unwrap()) as u32;
        got.push(next);
    }
    assert_eq!(got, want);
}
