//! `bitnet perplexity MODEL -f FILE`: perplexity as llama.cpp's `llama-perplexity` measures it
//! (see `bitnet_generate::perplexity`), with its running per-chunk output and final estimate;
//! `--save-logits BASE` keeps every scored position's log-probabilities, and `--kl-divergence
//! BASE` compares another model (or format, or head) with them: mean KL, top-1 agreement, Δppl.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use bitnet_generate::perplexity::{
    base, perplexity_rows, KlDivergence, ModelScorer, PerplexityConfig,
};

use super::common::{self, ModelArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text file to score (UTF-8; CRLF line endings are read as LF). Not needed with
    /// --kl-divergence (the base file holds the tokens).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Write every scored position's log-probabilities to BASE (float32: vocabulary × 4 bytes
    /// a position), for a later --kl-divergence run.
    #[arg(long, value_name = "BASE", conflicts_with = "kl_divergence")]
    pub save_logits: Option<PathBuf>,
    /// Compare with a --save-logits file: the same tokens and chunks are scored, and the mean
    /// KL divergence from the base, the top-1 agreement and both perplexities are reported.
    #[arg(long, value_name = "BASE")]
    pub kl_divergence: Option<PathBuf>,
    /// Score at most this many chunks (default: every full chunk of the text).
    #[arg(long, value_name = "N")]
    pub chunks: Option<usize>,
    /// Do not put BOS at the start of the text and of each chunk (default: as the tokenizer's
    /// metadata says, like llama-perplexity).
    #[arg(long)]
    pub no_bos: bool,
}

/// Chunk size when `-c` is not given: llama-perplexity's default.
const DEFAULT_CTX: usize = 512;

pub fn run(mut args: Args) -> anyhow::Result<()> {
    // The base of a KL run fixes the tokens, the chunk size and the number of chunks.
    let mut kl_base = None;
    if let Some(path) = &args.kl_divergence {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = f.metadata()?.len();
        let mut r = std::io::BufReader::new(f);
        let h = base::read_header(&mut r, len)
            .with_context(|| format!("reading {}", path.display()))?;
        if args.model.ctx_size.is_some_and(|c| c != h.ctx) {
            bail!(
                "-c {}: {} was written with chunks of {} tokens (leave -c out)",
                args.model.ctx_size.unwrap_or(0),
                path.display(),
                h.ctx
            );
        }
        args.model.ctx_size = Some(h.ctx);
        kl_base = Some((h, r));
    }
    // `-c` is the chunk size here (as in llama-perplexity), and so the KV cache size.
    let ctx = match args.model.ctx_size {
        None => DEFAULT_CTX,
        Some(0) => bail!("-c/--ctx-size 0: give the chunk size in tokens (default 512)"),
        Some(c) => c,
    };
    args.model.ctx_size = Some(ctx);
    if args.chunks == Some(0) {
        bail!("--chunks 0: give at least 1 (or leave it out for every chunk)");
    }
    let text = match (&args.file, &kl_base) {
        (Some(file), _) => {
            let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            Some(
                String::from_utf8(raw)
                    .map_err(|e| anyhow::anyhow!("{} is not UTF-8 ({e})", file.display()))?
                    .replace("\r\n", "\n"),
            )
        }
        (None, Some(_)) => None,
        (None, None) => bail!("give the text to score with -f FILE"),
    };
    let loaded = common::load(&args.model)?;
    let model = &loaded.model;
    if ctx > model.config.max_context {
        bail!(
            "-c {ctx}: longer than the model's context of {} positions",
            model.config.max_context
        );
    }
    let vocab = model.config.vocab_size;
    let (tokens, bos) = match (&kl_base, &text) {
        (Some((h, _)), _) => {
            if h.vocab != vocab {
                bail!(
                    "the base file scores a vocabulary of {}, this model has {vocab}",
                    h.vocab
                );
            }
            // Each chunk's first token already is what the base run put there.
            (h.tokens.clone(), None)
        }
        (None, Some(text)) => {
            let Some(tok) = loaded.tokenizer.as_ref().map(|t| &t.tokenizer) else {
                bail!(
                    "no tokenizer: {} (give one with --tokenizer)",
                    loaded
                        .tokenizer_error
                        .as_deref()
                        .unwrap_or("the model has none")
                );
            };
            let bos = (!args.no_bos && tok.add_bos_default())
                .then(|| tok.special_tokens().bos)
                .flatten();
            let clock = Instant::now();
            let tokens = tok.encode(text, bos.is_some(), false)?;
            eprintln!(
                "tokenized {} ({} bytes) into {} tokens in {:.2} s",
                args.file
                    .as_ref()
                    .map_or(String::new(), |f| f.display().to_string()),
                text.len(),
                tokens.len(),
                clock.elapsed().as_secs_f64()
            );
            (tokens, bos)
        }
        (None, None) => unreachable!("checked above"),
    };
    let mut n_chunks = (tokens.len() / ctx).min(args.chunks.unwrap_or(usize::MAX));
    if let Some((h, _)) = &kl_base {
        n_chunks = n_chunks.min(h.chunks);
    }
    let config = PerplexityConfig {
        ctx,
        bos,
        max_chunks: Some(n_chunks.max(1)),
    };
    // --save-logits: written under a temporary name, renamed when complete.
    let mut save = match &args.save_logits {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(f);
            let mut used = tokens[..(n_chunks * ctx).min(tokens.len())].to_vec();
            if let Some(b) = bos {
                for c in 0..n_chunks {
                    used[c * ctx] = b;
                }
            }
            base::write_header(
                &mut w,
                &base::Header {
                    vocab,
                    ctx,
                    chunks: n_chunks,
                    tokens: used,
                },
            )?;
            Some((w, tmp, path.clone()))
        }
        None => None,
    };
    eprintln!(
        "calculating perplexity over {n_chunks} chunks of {ctx} tokens (scoring the second half \
         of each)"
    );
    let mut scorer = ModelScorer::new(model, ctx)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(n_chunks as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} chunks, eta {eta}")
                .expect("a valid template"),
        );
        pb
    });
    let clock = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut kl = KlDivergence::default();
    let mut scratch = Vec::new();
    let mut base_row = vec![0f32; vocab];
    let result = perplexity_rows(
        &mut scorer,
        &tokens,
        &config,
        &mut |r| {
            // llama-perplexity's running output: `[chunk]ppl,`
            let _ = write!(out, "[{}]{:.4},", r.chunk, r.running_ppl);
            let _ = out.flush();
            if let Some(pb) = &bar {
                pb.set_position(r.chunk as u64);
            }
        },
        &mut |row, target| {
            if let Some((w, _, _)) = &mut save {
                base::write_row(w, row, &mut scratch)
                    .map_err(|e| format!("writing logits: {e}"))?;
            }
            if let Some((_, r)) = &mut kl_base {
                base::read_row(r, &mut base_row).map_err(|e| format!("reading the base: {e}"))?;
                kl.add(&base_row, row, target, &mut scratch);
            }
            Ok(())
        },
    )?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let secs = clock.elapsed().as_secs_f64();
    writeln!(out)?;
    writeln!(
        out,
        "Final estimate: PPL = {:.4} +/- {:.5}",
        result.ppl, result.ppl_stderr
    )?;
    if kl_base.is_some() {
        let (base_ppl, ppl) = kl.ppls();
        writeln!(
            out,
            "KL divergence from the base: mean {:.6} +/- {:.6} nats, top-1 agreement {:.3}%, \
             PPL(base) {:.4}, PPL {:.4}, delta {:+.4} ({} positions)",
            kl.mean_kl(),
            kl.kl_stderr(),
            100.0 * kl.top1_agreement(),
            base_ppl,
            ppl,
            ppl - base_ppl,
            kl.positions
        )?;
    }
    if let Some((mut w, tmp, path)) = save {
        w.flush()?;
        drop(w);
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        eprintln!(
            "wrote the scored positions' log-probabilities to {}",
            path.display()
        );
    }
    eprintln!(
        "{} tokens scored in {} chunks, {:.1} s ({:.1} tokens/s processed)",
        result.scored,
        result.chunks,
        secs,
        (result.chunks * ctx) as f64 / secs
    );
    Ok(())
}
