//! Sampling a token must not allocate: a counting global allocator checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use bitnet_generate::{Sampler, SamplerConfig};

/// Counts allocations made by the current thread (the test harness runs other tests on other
/// threads, so a process-wide counter would be racy).
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; only bumps a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

#[test]
fn sampling_does_not_allocate() {
    const VOCAB: usize = 32_000;
    // Every stage on, in several combinations, including full sorts (top_k 0 with top_p < 1).
    let configs = [
        SamplerConfig {
            seed: Some(1),
            repeat_penalty: 1.1,
            frequency_penalty: 0.2,
            presence_penalty: 0.1,
            logit_bias: HashMap::from([(5, -1.0), (7, f32::NEG_INFINITY)]),
            ..SamplerConfig::default()
        },
        SamplerConfig {
            seed: Some(2),
            top_k: 0,
            top_p: 0.9,
            min_p: 0.0,
            repeat_last_n: -1,
            repeat_penalty: 1.3,
            ..SamplerConfig::default()
        },
        SamplerConfig {
            seed: Some(3),
            ..SamplerConfig::neutral()
        },
        SamplerConfig {
            seed: Some(4),
            ..SamplerConfig::greedy()
        },
    ];
    // [VOCAB] logits with a deterministic, spread-out shape; history of 300 tokens.
    let logits: Vec<f32> = (0..VOCAB)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
        .collect();
    let history: Vec<u32> = (0..300u32).map(|i| (i * 31) % VOCAB as u32).collect();
    let mut work = logits.clone();
    for cfg in configs {
        let mut s = Sampler::new(cfg, VOCAB).expect("valid config");
        let before = allocs();
        for step in 0..20 {
            work.copy_from_slice(&logits);
            let t = s.sample(&mut work, &history[..280 + step]).expect("sample");
            assert!((t as usize) < VOCAB);
        }
        assert_eq!(allocs() - before, 0, "sample() allocated");
    }
}
