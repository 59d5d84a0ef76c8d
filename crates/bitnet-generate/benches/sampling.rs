//! Time per sampled token for a Llama-3-sized vocabulary (128,256), per configuration.
//! Run: `cargo bench -p bitnet-generate --bench sampling`.

use std::hint::black_box;
use std::time::Instant;

use bitnet_generate::{Sampler, SamplerConfig};

const VOCAB: usize = 128_256;

fn main() {
    // Deterministic pseudo-random logits in [-10, 10) (a splitmix-style hash per index).
    let logits: Vec<f32> = (0..VOCAB as u64)
        .map(|i| {
            let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0
        })
        .collect();
    let history: Vec<u32> = (0..512u32).map(|i| i * 211 % VOCAB as u32).collect();
    let configs: [(&str, SamplerConfig); 5] = [
        ("greedy", SamplerConfig::greedy()),
        (
            "default (T0.8 k40 p0.95 minp0.05)",
            SamplerConfig::default(),
        ),
        (
            "default + penalties (rep 1.1, freq 0.1, pres 0.1)",
            SamplerConfig {
                repeat_penalty: 1.1,
                frequency_penalty: 0.1,
                presence_penalty: 0.1,
                ..SamplerConfig::default()
            },
        ),
        (
            "top-p 0.95 only (full sort)",
            SamplerConfig {
                top_k: 0,
                min_p: 0.0,
                ..SamplerConfig::default()
            },
        ),
        ("neutral (softmax over all)", SamplerConfig::neutral()),
    ];
    let mut work = logits.clone();
    for (name, cfg) in configs {
        let mut s = Sampler::new(
            SamplerConfig {
                seed: Some(1),
                ..cfg
            },
            VOCAB,
        )
        .unwrap();
        let iters = 200;
        let t = Instant::now();
        for _ in 0..iters {
            work.copy_from_slice(&logits);
            black_box(s.sample(&mut work, &history).unwrap());
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
        println!("{name:<52} {us:9.1} µs/token (incl. 0.5 MB logits copy)");
    }
}
