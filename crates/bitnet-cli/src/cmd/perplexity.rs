//! `bitnet perplexity MODEL -f FILE`: perplexity as llama.cpp's `llama-perplexity` measures it
//! (see `bitnet_generate::perplexity`), with its running per-chunk output and final estimate.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use bitnet_generate::perplexity::{perplexity, ModelScorer, PerplexityConfig};

use super::common::{self, ModelArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text file to score (UTF-8; CRLF line endings are read as LF).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
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
    let raw =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8(raw)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8 ({e})", args.file.display()))?
        .replace("\r\n", "\n");
    let loaded = common::load(&args.model)?;
    let model = &loaded.model;
    if ctx > model.config.max_context {
        bail!(
            "-c {ctx}: longer than the model's context of {} positions",
            model.config.max_context
        );
    }
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
    let tokens = tok.encode(&text, bos.is_some(), false)?;
    eprintln!(
        "tokenized {} ({} bytes) into {} tokens in {:.2} s",
        args.file.display(),
        text.len(),
        tokens.len(),
        clock.elapsed().as_secs_f64()
    );
    let config = PerplexityConfig {
        ctx,
        bos,
        max_chunks: args.chunks,
    };
    let n_chunks = (tokens.len() / ctx).min(args.chunks.unwrap_or(usize::MAX));
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
    let result = perplexity(&mut scorer, &tokens, &config, &mut |r| {
        // llama-perplexity's running output: `[chunk]ppl,`
        let _ = write!(out, "[{}]{:.4},", r.chunk, r.running_ppl);
        let _ = out.flush();
        if let Some(pb) = &bar {
            pb.set_position(r.chunk as u64);
        }
    })?;
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
    eprintln!(
        "{} tokens scored in {} chunks, {:.1} s ({:.1} tokens/s processed)",
        result.scored,
        result.chunks,
        secs,
        (result.chunks * ctx) as f64 / secs
    );
    Ok(())
}
