//! `bitnet bench-serve MODEL`: the batched engine under concurrent streams, in process (no
//! HTTP): aggregate generated tokens/s and p50/p99 time to first token and inter-token
//! latency at each concurrency; how many engine steps a request that joins 15 decoding
//! streams waits for its first token; and time to first token of a long prompt, cold and
//! with its prefix in the prefix cache.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bitnet_engine::{CpuBackend, Engine, EngineConfig, Request};
use bitnet_generate::SamplerConfig;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF file, Hugging Face model directory, or `synth:SHAPE` (see `bitnet bench`).
    pub model: String,
    /// Comma-separated numbers of concurrent streams.
    #[arg(short = 's', long, default_value = "1,4,16,64")]
    pub streams: String,
    /// Prompt tokens per stream.
    #[arg(short = 'p', long = "n-prompt", default_value_t = 32)]
    pub n_prompt: usize,
    /// Generated tokens per stream.
    #[arg(short = 'n', long = "n-gen", default_value_t = 64)]
    pub n_gen: usize,
    /// Most tokens per engine step.
    #[arg(short = 'b', long = "batch-size", default_value_t = 256)]
    pub batch_size: usize,
    /// Prompt length of the prefix-cache test (0 = skip it).
    #[arg(long = "prefix-len", default_value_t = 1000)]
    pub prefix_len: usize,
    /// Kernel threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Output head: f16 (as stored) or q8 (int8 with per-row scales, made at load).
    #[arg(long, default_value = "f16", value_parser = ["f16", "q8"])]
    pub head: String,
}

fn ids(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % vocab as u64) as u32
        })
        .collect()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        bitnet_kernels::set_num_threads(t);
    }
    let (mut model, label) = super::bench::load(&args.model)?;
    if args.head == "q8" {
        model.quantize_head_q8();
    }
    let model = Arc::new(model);
    let vocab = model.config.vocab_size;
    let streams: Vec<usize> = args
        .streams
        .split(',')
        .map(|s| s.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .context("--streams: comma-separated positive numbers")?;
    let max_streams = streams.iter().copied().max().unwrap_or(1).max(16);
    let ctx = (args.n_prompt + args.n_gen).max(args.prefix_len + 16) + 16;
    let block = 16;
    let blocks = (max_streams * (args.n_prompt + args.n_gen + block)).div_ceil(block)
        + (2 * (args.prefix_len + 32)).div_ceil(block);
    let make = || -> anyhow::Result<Engine<CpuBackend>> {
        let backend = CpuBackend::new(
            model.clone(),
            blocks,
            block,
            args.batch_size,
            max_streams,
            ctx,
        )?;
        Ok(Engine::new(
            backend,
            EngineConfig {
                max_running: max_streams,
                prefill_chunk: args.batch_size,
                prefix_cache: true,
            },
        )?)
    };
    println!(
        "model {label}, {} head, {} threads, prompt {} + {} generated tokens per stream, batch {}",
        args.head,
        bitnet_kernels::num_threads(),
        args.n_prompt,
        args.n_gen,
        args.batch_size
    );
    println!("| streams | generated tok/s | vs 1 stream | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | steps |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut single = None;
    for &s in &streams {
        let mut e = make()?;
        // Warm-up: one short request.
        e.add(Request::new(
            ids(999, 4, vocab),
            SamplerConfig::greedy(),
            Some(2),
        ))?;
        while e.has_work() {
            e.step()?;
        }
        let steps0 = e.stats().steps;
        let t0 = Instant::now();
        let mut last = vec![None::<Instant>; s];
        let mut ttft = Vec::new();
        let mut itl = Vec::new();
        let mut reqs = Vec::new();
        for i in 0..s {
            reqs.push(e.add(Request::new(
                ids(i as u64 + 1, args.n_prompt, vocab),
                SamplerConfig::greedy(),
                Some(args.n_gen),
            ))?);
        }
        let mut generated = 0usize;
        while e.has_work() {
            for ev in e.step()? {
                if ev.token.is_none() {
                    continue;
                }
                generated += 1;
                let now = Instant::now();
                let i = reqs.iter().position(|&r| r == ev.request).unwrap_or(0);
                match last[i] {
                    None => ttft.push((now - t0).as_secs_f64() * 1e3),
                    Some(t) => itl.push((now - t).as_secs_f64() * 1e3),
                }
                last[i] = Some(now);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let rate = generated as f64 / secs;
        let base = *single.get_or_insert(if s == 1 { rate } else { f64::NAN });
        println!(
            "| {s} | {rate:.1} | {:.2}× | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            rate / base,
            pct(&mut ttft, 0.5),
            pct(&mut ttft, 0.99),
            pct(&mut itl, 0.5),
            pct(&mut itl, 0.99),
            e.stats().steps - steps0
        );
    }

    // A short request joining 15 decoding streams: engine steps until its first token.
    let mut e = make()?;
    for i in 0..15 {
        e.add(Request::new(
            ids(100 + i, args.n_prompt, vocab),
            SamplerConfig::greedy(),
            Some(args.n_gen),
        ))?;
    }
    for _ in 0..4 {
        e.step()?;
    }
    let joiner = e.add(Request::new(
        ids(7, 8, vocab),
        SamplerConfig::greedy(),
        Some(4),
    ))?;
    let s0 = e.stats().steps;
    let t0 = Instant::now();
    let mut waited = None;
    while waited.is_none() && e.has_work() {
        let evs = e.step()?;
        if evs
            .iter()
            .any(|ev| ev.request == joiner && ev.token.is_some())
        {
            waited = Some((e.stats().steps - s0, t0.elapsed().as_secs_f64() * 1e3));
        }
    }
    if let Some((steps, ms)) = waited {
        println!("join: a new 8-token request beside 15 decoding streams got its first token after {steps} engine step(s), {ms:.1} ms");
    }

    // Prefix cache: a long prompt, then the same prefix with another ending.
    if args.prefix_len > 0 {
        let mut e = make()?;
        let system = ids(4242, args.prefix_len, vocab);
        let ttft = |e: &mut Engine<CpuBackend>, tail: u64| -> anyhow::Result<f64> {
            let mut p = system.clone();
            p.extend(ids(tail, 8, vocab));
            let id = e.add(Request::new(p, SamplerConfig::greedy(), Some(1)))?;
            let t0 = Instant::now();
            let mut first = None;
            while e.has_work() {
                for ev in e.step()? {
                    if ev.request == id && ev.token.is_some() && first.is_none() {
                        first = Some(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            first.context("no token")
        };
        let cold = ttft(&mut e, 1)?;
        let warm = ttft(&mut e, 2)?;
        println!(
            "prefix cache: {}-token prompt, time to first token cold {cold:.1} ms, with the prefix cached {warm:.1} ms ({:.1}× faster)",
            args.prefix_len + 8,
            cold / warm
        );
    }
    Ok(())
}
