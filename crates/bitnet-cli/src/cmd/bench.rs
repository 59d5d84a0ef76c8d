//! `bitnet bench MODEL`: end-to-end throughput in the manner of llama.cpp's `llama-bench`.
//!
//! * `ppN`: one batched prefill of N tokens from an empty KV cache (logits of the last token
//!   only), tokens/s = N / time.
//! * `tgN`: N single-token decode steps from an empty KV cache, tokens/s = N / time.
//!
//! Token ids are deterministic pseudo-random ids in the vocabulary. Each test runs once untimed
//! (warm-up), then `-r` times; the table shows mean ± sample standard deviation. Before the
//! tests and again right before each generation test, a 1 GiB streaming read with the same
//! thread count measures the read bandwidth (the best reading is kept), and the
//! decode figures are set against the bandwidth floor `bandwidth / weight_bytes_per_token`:
//! once for a plain buffer on 4 KiB pages (how issue 4 measured its 21.3 GB/s), once for a
//! buffer on 2 MiB pages (where the kernels keep their weights; a higher, stricter floor).
//!
//! `--head-accuracy N` instead measures what `--head q8` costs: KL(softmax(F16 head) ‖
//! softmax(Q8 head)) and top-1 agreement over N positions (pseudo-random ids, or the start of
//! `--text FILE` through the model's tokenizer).
//!
//! A 2B4T-shaped model to benchmark: `bitnet synth --shape 2b4t --format gguf-i2s --out
//! /tmp/2b4t.gguf`, or `bitnet bench synth:2b4t` (synthesized to a temporary file first).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use bitnet_kernels::{active_isa, logit_divergence, parallel_for, set_num_threads, DenseMatrix};
use bitnet_model::{Logits, Model, State};

#[derive(clap::Args)]
pub struct Args {
    /// GGUF file, Hugging Face model directory, or `synth:SHAPE` (tiny, gqa, 2b4t: an I2_S GGUF
    /// synthesized into a temporary file).
    pub model: String,
    /// Prompt-processing tests: comma-separated prompt lengths (one batched prefill each);
    /// 0 or empty for none.
    #[arg(short = 'p', long = "n-prompt", default_value = "512")]
    pub n_prompt: String,
    /// Generation tests: comma-separated numbers of decode steps; 0 or empty for none.
    #[arg(short = 'n', long = "n-gen", default_value = "128")]
    pub n_gen: String,
    /// Comma-separated thread counts (default: the machine's available parallelism).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<String>,
    /// Timed repetitions per test (after one untimed warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub reps: usize,
    /// Output head: f16 (as stored) or q8 (int8 with per-row scales, made at load).
    #[arg(long, default_value = "f16")]
    pub head: String,
    /// Print a JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Instead of timing, compare the Q8 head with the stored head over this many positions.
    #[arg(long, value_name = "POSITIONS")]
    pub head_accuracy: Option<usize>,
    /// With --head-accuracy: tokenize this text file with the model's tokenizer instead of
    /// using pseudo-random ids.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Skip the bandwidth probe (no floor figures).
    #[arg(long)]
    pub no_bandwidth: bool,
    /// Size of the bandwidth probe's streaming read, MiB (the floor is defined with 1024).
    #[arg(long, default_value_t = 1024, hide = true)]
    pub bandwidth_mib: usize,
}

/// One benchmark result (a row of the table, an object of the JSON array).
struct Row {
    test: String,
    threads: usize,
    /// Timed repetitions, tokens/s each.
    samples: Vec<f64>,
    /// Tokens/s from CPU time (all threads' CPU seconds / threads), each repetition long
    /// enough to measure: what the test would reach with the cores to itself, if the other
    /// load only time-slices it (memory-bandwidth contention still slows it).
    cpu_samples: Vec<f64>,
    is_gen: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let prompts = parse_list(&a.n_prompt, "-p")?;
    let gens = parse_list(&a.n_gen, "-n")?;
    let threads = match &a.threads {
        Some(t) => parse_list(t, "-t")?,
        None => vec![bitnet_kernels::num_threads()],
    };
    if threads.is_empty() || threads.contains(&0) {
        bail!("-t: give positive thread counts, e.g. -t 1,2");
    }
    let q8 = match a.head.as_str() {
        "f16" => false,
        "q8" => true,
        other => bail!("--head {other:?}: expected f16 or q8"),
    };
    if a.reps == 0 {
        bail!("-r must be at least 1");
    }

    let t0 = Instant::now();
    let (mut model, label) = load(&a.model)?;
    let load_s = t0.elapsed().as_secs_f64();

    if let Some(n) = a.head_accuracy {
        set_num_threads(threads[0]);
        return head_accuracy(&model, &a.model, n, a.text.as_deref());
    }

    if q8 {
        let t = Instant::now();
        model.quantize_head_q8();
        eprintln!(
            "quantized the head to int8 in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }

    // Positions past the model's context: RoPE there is outside what it was trained for.
    let ctx = model.config.max_context;
    let longest = prompts.iter().chain(&gens).copied().max().unwrap_or(0);
    if ctx > 0 && longest > ctx {
        bail!(
            "-p/-n {longest}: more positions than the model's context of {ctx}; choose tests of \
             at most {ctx} tokens"
        );
    }

    let bpt = weight_bytes_per_token(&model);
    let isa = active_isa().name();
    let load_avg = load_average();
    eprintln!(
        "model {label}: loaded in {load_s:.1} s; {} weight bytes per token ({} head); ISA {isa}; \
         load average {load_avg}",
        bpt,
        if q8 { "q8" } else { "f16" }
    );

    // Bandwidth probes (4 KiB pages, 2 MiB pages), kept for the whole run: measured once per
    // thread count now and again right before each generation test; the floor uses the best
    // (the other load on a shared machine only lowers a reading).
    let probes = (!a.no_bandwidth).then(|| {
        let mib = a.bandwidth_mib.max(1);
        (
            BandwidthProbe::new(mib, false),
            BandwidthProbe::new(mib, true),
        )
    });
    // (threads, GB/s on 4 KiB pages, GB/s on 2 MiB pages)
    let mut bw: Vec<(usize, f64, f64)> = Vec::new();
    let probe_bw = |t: usize, bw: &mut Vec<(usize, f64, f64)>| {
        let Some((small, huge)) = &probes else { return };
        set_num_threads(t);
        let (g4, g2) = (small.measure(3), huge.measure(3));
        match bw.iter_mut().find(|b| b.0 == t) {
            Some(b) => {
                b.1 = b.1.max(g4);
                b.2 = b.2.max(g2);
            }
            None => bw.push((t, g4, g2)),
        }
    };
    for &t in &threads {
        probe_bw(t, &mut bw);
    }

    let max_p = prompts.iter().copied().max().unwrap_or(0);
    let max_g = gens.iter().copied().max().unwrap_or(0);
    let context = (max_p + max_g).max(1);
    let mut state = State::with_logit_rows(&model.config, context, max_p.max(1), 1)?;
    let vocab = model.config.vocab_size;
    let ids = pseudo_random_ids(max_p.max(max_g), vocab, 0x5eed);

    let mut rows = Vec::new();
    for &t in &threads {
        set_num_threads(t);
        for &p in &prompts {
            rows.push(time_test(format!("pp{p}"), t, a.reps, false, p, || {
                model.forward(&mut state, &ids[..p], 0, Logits::Last)?;
                Ok(())
            })?);
        }
        for &g in &gens {
            probe_bw(t, &mut bw);
            rows.push(time_test(format!("tg{g}"), t, a.reps, true, g, || {
                for (pos, &id) in ids[..g].iter().enumerate() {
                    model.forward(&mut state, &[id], pos, Logits::Last)?;
                }
                Ok(())
            })?);
        }
    }
    let load_end = load_average();

    let head = if q8 { "q8" } else { "f16" };
    if a.json {
        let arr: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let (mean, sd) = mean_sd(&r.samples);
                let cpu_mean = (!r.cpu_samples.is_empty()).then(|| mean_sd(&r.cpu_samples).0);
                let bw_t = bw.iter().find(|b| b.0 == r.threads);
                let mut o = serde_json::json!({
                    "test": r.test,
                    "threads": r.threads,
                    "tokens_per_s": mean,
                    "stddev": sd,
                    "isa": isa,
                    "weight_bytes_per_token": bpt,
                    "reps": r.samples.len(),
                    "head": head,
                    "samples": r.samples,
                    "cpu_tokens_per_s": cpu_mean,
                });
                if let Some(&(_, g4, g2)) = bw_t {
                    o["read_gb_per_s"] = g4.into();
                    o["read_gb_per_s_huge_pages"] = g2.into();
                    if r.is_gen {
                        let (f4, f2) = (g4 * 1e9 / bpt as f64, g2 * 1e9 / bpt as f64);
                        o["floor_tokens_per_s"] = f4.into();
                        o["pct_of_floor"] = (100.0 * mean / f4).into();
                        o["floor_tokens_per_s_huge_pages"] = f2.into();
                        o["pct_of_floor_huge_pages"] = (100.0 * mean / f2).into();
                    }
                }
                o
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&arr)?);
        return Ok(());
    }

    let size = model.weights.bytes();
    println!(
        "| model | size | params | isa | head | threads | test | t/s | cpu-time t/s | \
         % of floor 4K / 2M pages |"
    );
    println!("| --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | ---: |");
    for r in &rows {
        let (mean, sd) = mean_sd(&r.samples);
        let cpu = if r.cpu_samples.is_empty() {
            "n/a".to_string()
        } else {
            format!("{:.2}", mean_sd(&r.cpu_samples).0)
        };
        let floor = bw
            .iter()
            .find(|b| b.0 == r.threads)
            .filter(|_| r.is_gen)
            .map(|&(_, g4, g2)| {
                let pct = |g: f64| 100.0 * mean / (g * 1e9 / bpt as f64);
                format!("{:.0}% / {:.0}%", pct(g4), pct(g2))
            })
            .unwrap_or_default();
        println!(
            "| {label} | {} | {} | {isa} | {head} | {} | {} | {mean:.2} ± {sd:.2} | {cpu} | \
             {floor} |",
            human(size as f64, true),
            human(params(&model) as f64, false),
            r.threads,
            r.test
        );
    }
    println!();
    println!(
        "weight bytes per token: {bpt} ({:.3} GB, {head} head)",
        bpt as f64 / 1e9
    );
    for &(t, g4, g2) in &bw {
        println!(
            "bandwidth floor, {t} thread(s): {} MiB streaming read {g4:.2} GB/s (4 KiB pages) \
             → {:.2} tok/s; {g2:.2} GB/s (2 MiB pages) → {:.2} tok/s",
            a.bandwidth_mib,
            g4 * 1e9 / bpt as f64,
            g2 * 1e9 / bpt as f64
        );
    }
    println!("load average: start {load_avg}; end {load_end}");
    Ok(())
}

/// Load `spec` (a path, or `synth:SHAPE` written to a temporary I2_S GGUF first); returns the
/// model and a short label for the table.
pub(crate) fn load(spec: &str) -> anyhow::Result<(Model, String)> {
    if let Some(shape) = spec.strip_prefix("synth:") {
        use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
        let shape_v = Shape::named(shape).with_context(|| {
            format!(
                "unknown shape {shape:?} (expected one of {})",
                Shape::NAMES.join(", ")
            )
        })?;
        let path =
            std::env::temp_dir().join(format!("bitnet-bench-{shape}-{}.gguf", std::process::id()));
        let spec_v = SynthSpec {
            shape: shape_v,
            format: "gguf-i2s".parse::<Format>()?,
            seed: 1,
            embed: "f16".parse::<EmbedType>()?,
        };
        let res = synth(&spec_v, &path, &mut |_, _| {})
            .with_context(|| format!("synthesizing {}", path.display()))
            .and_then(|_| {
                Model::load(&path).with_context(|| format!("loading {}", path.display()))
            });
        let _ = std::fs::remove_file(&path);
        return Ok((res?, format!("synth {shape} I2_S")));
    }
    let path = super::common::resolve_model(spec)?;
    let model = Model::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string());
    Ok((model, name))
}

/// Run `f` once untimed, then `reps` times; tokens/s per repetition (wall clock and CPU time).
fn time_test(
    test: String,
    threads: usize,
    reps: usize,
    is_gen: bool,
    tokens: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Row> {
    f()?;
    let mut samples = Vec::with_capacity(reps);
    let mut cpu_samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let c0 = process_cpu_ns();
        let t = Instant::now();
        f()?;
        let s = t.elapsed().as_secs_f64();
        let cpu = process_cpu_ns().saturating_sub(c0) as f64 * 1e-9 / threads as f64;
        samples.push(tokens as f64 / s);
        // /proc schedstat advances in scheduler ticks: below ~50 ms it says little.
        if cpu >= 0.05 {
            cpu_samples.push(tokens as f64 / cpu);
        }
    }
    eprintln!(
        "{test} threads={threads}: {:.2} ± {:.2} t/s",
        mean_sd(&samples).0,
        mean_sd(&samples).1
    );
    Ok(Row {
        test,
        threads,
        samples,
        cpu_samples,
        is_gen,
    })
}

/// Bytes one decode step reads: every ternary matrix in the kernel layout, the head (F16 or
/// Q8 with its scales), all norm vectors and one embedding row.
pub fn weight_bytes_per_token(model: &Model) -> usize {
    let w = &model.weights;
    let vec = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, |v| v.len() * 4);
    let layers: usize = w
        .layers
        .iter()
        .map(|l| {
            (l.attn_norm.len() + l.ffn_norm.len()) * 4
                + vec(&l.attn_sub_norm)
                + vec(&l.ffn_sub_norm)
                + [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .iter()
                    .map(|m| m.bytes())
                    .sum::<usize>()
        })
        .sum();
    let embd_row = w.token_embd.bytes() / w.token_embd.rows().max(1);
    layers + w.output_norm.len() * 4 + w.head().bytes() + embd_row
}

/// Number of parameters (untied head counted separately).
fn params(model: &Model) -> usize {
    let w = &model.weights;
    let d = |m: &DenseMatrix| m.rows() * m.cols();
    let lin = |l: &bitnet_model::Linear| {
        l.in_features() * l.out_features() + l.input_norm.as_ref().map_or(0, |n| n.len())
    };
    let layers: usize = w
        .layers
        .iter()
        .map(|l| {
            l.attn_norm.len()
                + l.ffn_norm.len()
                + l.attn_sub_norm.as_ref().map_or(0, |v| v.len())
                + l.ffn_sub_norm.as_ref().map_or(0, |v| v.len())
                + [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .iter()
                    .map(|m| lin(m))
                    .sum::<usize>()
        })
        .sum();
    // A Q8 copy of a tied head is not a new parameter.
    let out = match (&w.output, model.config.tied_embeddings) {
        (Some(o), false) => d(o),
        _ => 0,
    };
    d(&w.token_embd) + layers + w.output_norm.len() + out
}

/// `--head-accuracy`: KL divergence and top-1 agreement of the Q8 head against the stored one.
fn head_accuracy(model: &Model, spec: &str, n: usize, text: Option<&Path>) -> anyhow::Result<()> {
    if n == 0 {
        bail!("--head-accuracy needs at least 1 position");
    }
    let vocab = model.config.vocab_size;
    let (ids, source) = match text {
        Some(file) => {
            let txt = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let loaded = bitnet_tokenizer::load_tokenizer(spec)
                .with_context(|| format!("loading the tokenizer of {spec}"))?;
            let tok = loaded.tokenizer.as_ref();
            // Encode a prefix long enough for n tokens (about 4 bytes per token, with margin).
            let mut end = (n * 16).min(txt.len());
            while !txt.is_char_boundary(end) {
                end -= 1;
            }
            let mut ids = tok
                .encode(&txt[..end], tok.add_bos_default(), false)
                .with_context(|| format!("tokenizing {}", file.display()))?;
            if ids.len() < n {
                bail!(
                    "{} gives only {} tokens, {n} needed",
                    file.display(),
                    ids.len()
                );
            }
            ids.truncate(n);
            (ids, format!("{} tokens of {}", n, file.display()))
        }
        None => (
            pseudo_random_ids(n, vocab, 0xacc),
            format!("{n} pseudo-random ids"),
        ),
    };
    let mut state = State::new(&model.config, n, n)?;
    let t = Instant::now();
    let reference = model.forward(&mut state, &ids, 0, Logits::All)?.to_vec();
    let ref_s = t.elapsed().as_secs_f64();
    let reference_kind = match model.weights.head() {
        DenseMatrix::F32 { .. } => "f32",
        DenseMatrix::F16 { .. } => "f16",
        DenseMatrix::Q8(_) => bail!("the model's head is already int8"),
    };
    let mut q8 = model.clone();
    q8.weights.output = Some(model.weights.head().to_q8());
    let test = q8.forward(&mut state, &ids, 0, Logits::All)?;
    let (mut kl_sum, mut kl_max, mut agree) = (0f64, 0f64, 0usize);
    for (r, q) in reference.chunks_exact(vocab).zip(test.chunks_exact(vocab)) {
        let (kl, same) = logit_divergence(r, q);
        kl_sum += kl;
        kl_max = kl_max.max(kl);
        agree += same as usize;
    }
    println!(
        "head accuracy, {source}: q8 vs {reference_kind} head over {n} positions: \
         mean KL {:.3e} nats, max KL {:.3e}, top-1 agreement {}/{n} ({:.2}%) \
         [reference pass {ref_s:.1} s]",
        kl_sum / n as f64,
        kl_max,
        agree,
        100.0 * agree as f64 / n as f64
    );
    Ok(())
}

/// A buffer (1 GiB by default) for the read-bandwidth probe: a plain `Vec` (4 KiB pages unless
/// the system's THP mode is `always`) or one advised onto 2 MiB pages (best effort).
struct BandwidthProbe {
    buf: Vec<u64>,
}

impl BandwidthProbe {
    fn new(mib: usize, huge: bool) -> Self {
        let n = mib << 17; // u64 words in `mib` MiB
        let buf: Vec<u64> = (0..n as u64).collect();
        if huge {
            bitnet_kernels::advise_huge_pages(&buf);
        }
        BandwidthProbe { buf }
    }

    /// Best of `reps` streaming reads of the whole buffer on the pool's current threads, GB/s.
    fn measure(&self, reps: usize) -> f64 {
        let chunks = bitnet_kernels::num_threads() * 8;
        let per = self.buf.len() / chunks;
        let mut best = 0f64;
        for _ in 0..reps {
            let sums: Vec<std::sync::atomic::AtomicU64> = (0..chunks).map(|_| 0.into()).collect();
            let t = Instant::now();
            parallel_for(chunks, |i| {
                let part = &self.buf[i * per..(i + 1) * per];
                // Eight independent lanes: load-bound, not add-latency-bound.
                let mut acc = [0u64; 8];
                for c in part.chunks_exact(8) {
                    for k in 0..8 {
                        acc[k] = acc[k].wrapping_add(c[k]);
                    }
                }
                sums[i].store(
                    acc.iter().fold(0, |a, &b| a ^ b),
                    std::sync::atomic::Ordering::Relaxed,
                );
            });
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(&sums);
            best = best.max((per * chunks * 8) as f64 / s / 1e9);
        }
        best
    }
}

/// Parse a comma-separated list of non-negative integers; zeros are dropped (`-p 0` = none).
fn parse_list(s: &str, flag: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let v: usize = part.parse().map_err(|_| {
            anyhow::anyhow!("{flag}: {part:?} is not a non-negative integer (e.g. {flag} 128,512)")
        })?;
        if v > 0 && !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// `n` deterministic pseudo-random ids in `0..vocab` (xorshift64*).
fn pseudo_random_ids(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) % vocab.max(1) as u64) as u32
        })
        .collect()
}

/// `1.10 GiB` / `2.41 B` style sizes (binary units for bytes, decimal for counts).
fn human(v: f64, bytes: bool) -> String {
    let (k, units) = if bytes {
        (1024f64, ["B", "KiB", "MiB", "GiB"])
    } else {
        (1000f64, ["", "K", "M", "B"])
    };
    let mut i = 0;
    let mut v = v;
    while v >= k && i + 1 < units.len() {
        v /= k;
        i += 1;
    }
    format!("{v:.2} {}", units[i]).trim_end().to_string()
}

/// Mean and sample standard deviation.
fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let m = x.iter().sum::<f64>() / n;
    let var = if x.len() > 1 {
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// CPU time of all threads of this process in ns (Linux `/proc/self/task/*/schedstat`; 0
/// elsewhere, which makes the CPU-time column meaningless off Linux).
fn process_cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The 1/5/15-minute load averages (`/proc/loadavg`), or "n/a".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "n/a".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_reject() {
        assert_eq!(parse_list("128, 512,128", "-p").unwrap(), vec![128, 512]);
        assert_eq!(parse_list("0", "-p").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_list("", "-n").unwrap(), Vec::<usize>::new());
        let e = parse_list("1,x", "-t").unwrap_err().to_string();
        assert!(e.contains("-t") && e.contains("\"x\""), "{e}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(1.5 * 1024.0 * 1024.0 * 1024.0, true), "1.50 GiB");
        assert_eq!(human(2_410_000_000.0, false), "2.41 B");
        assert_eq!(human(590_000.0, false), "590.00 K");
        assert_eq!(human(12.0, false), "12.00");
    }

    #[test]
    fn mean_sd_hand_computed() {
        // mean 2, deviations −1, 0, 1 → sample variance 2/2 = 1.
        assert_eq!(mean_sd(&[1.0, 2.0, 3.0]), (2.0, 1.0));
        assert_eq!(mean_sd(&[5.0]), (5.0, 0.0));
    }

    #[test]
    fn ids_in_vocab_and_deterministic() {
        let a = pseudo_random_ids(1000, 37, 3);
        assert!(a.iter().all(|&i| i < 37));
        assert_eq!(a, pseudo_random_ids(1000, 37, 3));
        // Not constant: every id value appears for a small vocabulary.
        let mut seen = [false; 37];
        a.iter().for_each(|&i| seen[i as usize] = true);
        assert!(seen.iter().all(|&s| s));
    }
}
