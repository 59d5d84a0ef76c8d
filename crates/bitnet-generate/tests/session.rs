//! Multi-turn sessions over the mock model (greedy: token `t` is followed by `t + 1`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bitnet_generate::{
    FinishReason, GenerateConfig, GenerateError, Sampler, SamplerConfig, Session, StopReason,
};
use common::{Mock, Pieces, TEXT};

fn greedy() -> Sampler {
    Sampler::new(SamplerConfig::greedy(), 10).unwrap()
}

fn until(stop: u32) -> GenerateConfig {
    GenerateConfig {
        stop_tokens: vec![stop],
        ..Default::default()
    }
}

#[test]
fn turns_prefill_only_new_tokens_after_the_previous_reply() {
    let mut s = Session::new(Mock::new(10, 100));
    let (mut sampler, mut dec) = (greedy(), Pieces::new(&TEXT));
    // Turn 1: prompt [1] → 2, 3, 4 (stop token 4).
    let g1 = s
        .turn(&mut sampler, &mut dec, &[1], &until(4), |_| {})
        .unwrap();
    assert_eq!(g1.tokens, [2, 3, 4]);
    assert_eq!(g1.finish_reason, FinishReason::Stop(StopReason::Token(4)));
    assert_eq!(s.model().pos, 3); // 1, 2, 3 in the cache; 4 pending
    assert_eq!(s.remaining(), 96);
    // Turn 2: the pending 4 and the new [6] are prefilled together, at position 3.
    let g2 = s
        .turn(&mut sampler, &mut dec, &[6], &until(9), |_| {})
        .unwrap();
    assert_eq!(g2.tokens, [7, 8, 9]);
    assert_eq!(s.model().prefills, [(0, vec![1]), (3, vec![4, 6])]);
    assert_eq!(s.tokens(), [1, 2, 3, 4, 6, 7, 8, 9]);
    // Reset empties the cache and the history.
    s.reset();
    assert_eq!(
        (s.model().pos, s.tokens().len(), s.remaining()),
        (0, 0, 100)
    );
    let g3 = s
        .turn(&mut sampler, &mut dec, &[5], &until(7), |_| {})
        .unwrap();
    assert_eq!(g3.tokens, [6, 7]);
    assert_eq!(s.model().prefills.last(), Some(&(0, vec![5])));
}

#[test]
fn a_turn_that_does_not_fit_leaves_the_session_unchanged() {
    let mut s = Session::new(Mock::new(10, 8));
    let (mut sampler, mut dec) = (greedy(), Pieces::new(&TEXT));
    s.turn(&mut sampler, &mut dec, &[1], &until(4), |_| {})
        .unwrap();
    // 3 cached + 1 pending: 4 free, so the pending token and 5 new ones do not fit.
    assert_eq!(s.remaining(), 4);
    let err = s
        .turn(&mut sampler, &mut dec, &[5, 5, 5, 5, 5], &until(9), |_| {})
        .unwrap_err();
    assert!(matches!(
        err,
        GenerateError::PromptTooLong {
            prompt: 6,
            used: 3,
            context: 8
        }
    ));
    assert_eq!(s.tokens(), [1, 2, 3, 4]);
    // A shorter turn still fits and fills the context: [4, 5, 5] then 6, 7 → ContextFull.
    let g = s
        .turn(&mut sampler, &mut dec, &[5, 5], &until(9), |_| {})
        .unwrap();
    assert_eq!(g.tokens, [6, 7]);
    assert_eq!(g.finish_reason, FinishReason::ContextFull);
    assert_eq!(s.remaining(), 0);
}

#[test]
fn cancelled_before_the_prefill_consumes_nothing() {
    let flag = Arc::new(AtomicBool::new(false));
    let cfg = GenerateConfig {
        cancel: Some(flag.clone()),
        stop_tokens: vec![4],
        ..Default::default()
    };
    let mut s = Session::new(Mock::new(10, 100));
    let (mut sampler, mut dec) = (greedy(), Pieces::new(&TEXT));
    s.turn(&mut sampler, &mut dec, &[1], &cfg, |_| {}).unwrap();
    flag.store(true, Ordering::Relaxed);
    let g = s.turn(&mut sampler, &mut dec, &[6], &cfg, |_| {}).unwrap();
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert_eq!(s.tokens(), [1, 2, 3, 4]);
    // Next turn after clearing the flag: pending 4 is still fed first.
    flag.store(false, Ordering::Relaxed);
    let g = s
        .turn(&mut sampler, &mut dec, &[0], &until(2), |_| {})
        .unwrap();
    assert_eq!(g.tokens, [1, 2]);
    assert_eq!(s.model().prefills.last(), Some(&(3, vec![4, 0])));
}
