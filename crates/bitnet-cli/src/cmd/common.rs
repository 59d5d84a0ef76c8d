//! Shared pieces of `bitnet run` and `bitnet chat`: model/tokenizer loading (local path or
//! Hugging Face repo id, with a progress spinner), sampling flags with llama.cpp names and
//! defaults, and the Ctrl-C handler.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bitnet_generate::{parse_logit_bias, SamplerConfig, TokenDecoder};
use bitnet_tokenizer::LoadedTokenizer;

/// Where the model comes from and how it runs.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A GGUF file, a Hugging Face model directory, or a Hugging Face repo id
    /// (`microsoft/bitnet-b1.58-2B-4T-gguf`, `owner/name@rev:selector`), fetched into the HF
    /// cache (honours HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).
    pub model: String,
    /// Tokenizer to use instead of the model's own: a tokenizer.json, a tokenizer.model
    /// (SentencePiece or tiktoken), a GGUF or a model directory.
    #[arg(long, value_name = "PATH")]
    pub tokenizer: Option<PathBuf>,
    /// KV cache size in tokens (prompt + generated). Default: the model's context length,
    /// at most 4096. `0`: the model's full context length.
    #[arg(short = 'c', long = "ctx-size", value_name = "N")]
    pub ctx_size: Option<usize>,
    /// Threads for the matrix kernels (default: all available cores).
    #[arg(short = 't', long, value_name = "N")]
    pub threads: Option<usize>,
    /// Output head: `f16` (the stored weights) or `q8` (int8 with per-row scales, made at
    /// load): ~4e-4 nats KL and 98.7% top-1 agreement against the F16 head on a
    /// 2B4T-shaped model, for faster decode (the head is the largest matrix read per token).
    #[arg(long, value_name = "KIND", default_value = "f16", value_parser = ["f16", "q8"])]
    pub head: String,
    /// Load float tensors holding NaN or infinite values (refused by default: such a model
    /// generates garbage) with a warning.
    #[arg(long)]
    pub allow_nonfinite: bool,
}

/// Sampling flags, named and defaulted as in llama.cpp.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 (or less) = greedy.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub temp: f32,
    /// Keep the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 40, allow_negative_numbers = true)]
    pub top_k: i64,
    /// Nucleus sampling: keep the most likely tokens up to this cumulative probability
    /// (1.0 = off).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0.0 = off).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Penalize repeated tokens (1.0 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub repeat_penalty: f32,
    /// Last N tokens the penalties look at (0 = off, -1 = whole history).
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    pub repeat_last_n: i32,
    /// Subtract count × this from a repeated token's logit (0.0 = off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub frequency_penalty: f32,
    /// Subtract this from the logit of any token already present (0.0 = off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub presence_penalty: f32,
    /// Change a token's logit: `TOKEN_ID(+|-)BIAS`, e.g. `15043+1`, `15043-inf` (repeatable).
    #[arg(short = 'l', long = "logit-bias", value_name = "TOKEN(+|-)BIAS")]
    pub logit_bias: Vec<String>,
    /// RNG seed (default: random; the seed used is printed to stderr).
    #[arg(short = 's', long)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    /// The sampler configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<SamplerConfig> {
        let mut logit_bias = std::collections::HashMap::new();
        for s in &self.logit_bias {
            let (id, bias) = parse_logit_bias(s).with_context(|| format!("--logit-bias {s}"))?;
            *logit_bias.entry(id).or_insert(0.0) += bias;
        }
        let range = |flag: &str, v: f32, lo: f32, hi: f32| -> anyhow::Result<()> {
            if !(lo..=hi).contains(&v) {
                bail!("{flag} {v}: must be between {lo} and {hi}");
            }
            Ok(())
        };
        range("--top-p", self.top_p, 0.0, 1.0)?;
        range("--min-p", self.min_p, 0.0, 1.0)?;
        if !self.temp.is_finite() {
            bail!("--temp {}: must be a finite number (0 = greedy)", self.temp);
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            bail!(
                "--repeat-penalty {}: must be a positive number (1 = off)",
                self.repeat_penalty
            );
        }
        if self.repeat_last_n < -1 {
            bail!(
                "--repeat-last-n {}: must be -1 (whole history), 0 (off) or a positive count",
                self.repeat_last_n
            );
        }
        let top_k = usize::try_from(self.top_k).map_err(|_| {
            anyhow::anyhow!(
                "--top-k {}: must be 0 (off) or a positive count",
                self.top_k
            )
        })?;
        Ok(SamplerConfig {
            temperature: self.temp,
            top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            logit_bias,
            seed: self.seed,
        })
    }
}

/// A loaded model, its tokenizer (if one was found) and the KV cache size to use: the
/// shared policy of `bitnet-runtime`.
pub use bitnet_runtime::Loaded;

/// CLI helpers on a [`Loaded`] model.
pub trait LoadedExt {
    /// The tokenizer, or a clear error naming what was tried and the flags that help.
    fn require_tokenizer(&self, why: &str) -> anyhow::Result<&LoadedTokenizer>;
}

impl LoadedExt for Loaded {
    fn require_tokenizer(&self, why: &str) -> anyhow::Result<&LoadedTokenizer> {
        match &self.tokenizer {
            Some(t) => Ok(t),
            None => bail!(
                "{why} needs a tokenizer, but none was found for {} ({}); give one with \
                 --tokenizer PATH{}",
                self.path.display(),
                self.tokenizer_error
                    .as_deref()
                    .unwrap_or("no tokenizer files"),
                if why.starts_with("-p") {
                    ", or pass token ids with --prompt-ids 1,2,3"
                } else {
                    ""
                }
            ),
        }
    }
}

/// A stderr spinner with elapsed time while something slow runs (only when stderr is a
/// terminal).
fn spinner(msg: String) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        pb.set_style(style);
    }
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

/// Files at least this large get a byte progress bar while they are read.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// Reads the weight files once with a byte progress bar on stderr (when it is a terminal and
/// the model is large), so that the mmap-based load that follows finds them in the page
/// cache: the slow part of a cold load is the disk, and this makes it visible. Read errors
/// are ignored here; the loader reports them with context.
fn read_with_progress(files: &[PathBuf], total: u64) {
    use std::io::Read;
    if total < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return;
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "reading weights [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    // 8 MiB read buffer.
    let mut buf = vec![0u8; 8 << 20];
    for f in files {
        let Ok(mut file) = std::fs::File::open(f) else {
            continue;
        };
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            pb.inc(n as u64);
        }
    }
    pb.finish_and_clear();
}

/// A MODEL argument as a local path (see [`bitnet_runtime::resolve_model`]).
pub fn resolve_model(spec: &str) -> anyhow::Result<std::path::PathBuf> {
    Ok(bitnet_runtime::resolve_model(spec)?)
}

/// Resolves `args.model` (local path or hub repo id), loads the model and its tokenizer,
/// sets the thread count and picks the context size — `bitnet-runtime`'s policy — with a
/// byte progress bar and a spinner on a terminal, and its notes printed as warnings.
pub fn load(args: &ModelArgs) -> anyhow::Result<Loaded> {
    let opts = bitnet_runtime::LoadOptions {
        model: args.model.clone(),
        tokenizer: args.tokenizer.clone(),
        ctx_size: args.ctx_size,
        threads: args.threads,
        head_q8: args.head == "q8",
        allow_nonfinite: args.allow_nonfinite,
    };
    let mut pb = None;
    let loaded = bitnet_runtime::load(&opts, &mut |path, files| {
        let bytes: u64 = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        read_with_progress(files, bytes);
        pb = spinner(format!(
            "loading {} ({:.1} MiB)",
            path.display(),
            bytes as f64 / (1024.0 * 1024.0)
        ));
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let loaded = loaded?;
    for n in &loaded.notes {
        eprintln!("warning: {n}");
    }
    Ok(loaded)
}

/// Parses `--prompt-ids`: comma (or space) separated token ids, each below `vocab`.
pub fn parse_prompt_ids(s: &str, vocab: usize) -> anyhow::Result<Vec<u32>> {
    let ids = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, p)| {
            p.parse::<u32>().map_err(|_| {
                anyhow::anyhow!(
                    "--prompt-ids: entry {} ({p:?}) is not a token id (expected comma-separated \
                     non-negative integers, e.g. --prompt-ids 1,2,3)",
                    i + 1
                )
            })
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    if ids.is_empty() {
        bail!("--prompt-ids is empty: give comma-separated token ids, e.g. --prompt-ids 1,2,3");
    }
    if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        bail!("--prompt-ids: token id {bad} is outside the model's vocabulary of {vocab} tokens");
    }
    Ok(ids)
}

/// `-n/--max-tokens`: `-1` = no limit, otherwise a count ≥ 0.
pub fn max_tokens(n: i64) -> anyhow::Result<Option<usize>> {
    match n {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n as usize)),
        n => bail!(
            "--max-tokens {n}: must be -1 (until end of text or a full context) or a count >= 0"
        ),
    }
}

/// A decoder for when there is no tokenizer: emits no text.
pub struct NoText;

impl TokenDecoder for NoText {
    fn push(&mut self, _token: u32) -> String {
        String::new()
    }
    fn finish(&mut self) -> String {
        String::new()
    }
}

/// Installs the Ctrl-C handler: while `active` is set (a reply is streaming) it raises
/// `cancel` so that the reply stops after the current token; a second Ctrl-C, or one while
/// nothing is generating, exits with status 130.
pub fn install_ctrlc(cancel: Arc<AtomicBool>, active: Arc<AtomicBool>) {
    let result = ctrlc::set_handler(move || {
        if active.load(Ordering::SeqCst) && !cancel.swap(true, Ordering::SeqCst) {
            return;
        }
        eprintln!();
        std::process::exit(130);
    });
    if let Err(e) = result {
        eprintln!("warning: cannot install the Ctrl-C handler: {e}");
    }
}

/// The error to report when a prompt does not fit in the context.
pub fn prompt_too_long(prompt: usize, loaded: &Loaded) -> anyhow::Error {
    anyhow::anyhow!(
        "the prompt is {prompt} tokens long but the context holds {} tokens (-c/--ctx-size; the \
         model was trained for {}): shorten the prompt{}",
        loaded.context,
        loaded.model.config.max_context,
        if loaded.context < loaded.model.config.max_context {
            " or raise --ctx-size"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sampling: SamplingArgs,
    }

    #[test]
    fn sampling_flag_defaults_are_llama_cpp_defaults() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.sampling.config().unwrap(), SamplerConfig::default());
    }

    #[test]
    fn sampling_flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--temp",
            "0",
            "--top-k",
            "5",
            "--top-p",
            "0.5",
            "--min-p",
            "0.1",
            "--repeat-penalty",
            "1.3",
            "--repeat-last-n",
            "-1",
            "--frequency-penalty",
            "0.2",
            "--presence-penalty",
            "-0.5",
            "-l",
            "7+1.5",
            "--logit-bias",
            "7-0.5",
            "-l",
            "9-inf",
            "-s",
            "11",
        ])
        .unwrap();
        let c = cli.sampling.config().unwrap();
        assert!(c.is_greedy());
        assert_eq!((c.top_k, c.top_p, c.min_p), (5, 0.5, 0.1));
        assert_eq!((c.repeat_penalty, c.repeat_last_n), (1.3, -1));
        assert_eq!((c.frequency_penalty, c.presence_penalty), (0.2, -0.5));
        assert_eq!(c.logit_bias.get(&7), Some(&1.0));
        assert_eq!(c.logit_bias.get(&9), Some(&f32::NEG_INFINITY));
        assert_eq!(c.seed, Some(11));
        let bad = Cli::try_parse_from(["x", "-l", "abc"]).unwrap();
        let e = format!("{:#}", bad.sampling.config().unwrap_err());
        assert!(e.contains("--logit-bias abc"), "{e}");
    }

    #[test]
    fn prompt_ids_parse_and_errors_are_clear() {
        assert_eq!(parse_prompt_ids("1, 2,3", 10).unwrap(), [1, 2, 3]);
        assert_eq!(parse_prompt_ids("4 5", 10).unwrap(), [4, 5]);
        let e = parse_prompt_ids("1,x", 10).unwrap_err().to_string();
        assert!(e.contains("entry 2") && e.contains("\"x\""), "{e}");
        assert!(parse_prompt_ids(" , ", 10)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let e = parse_prompt_ids("3,10", 10).unwrap_err().to_string();
        assert!(e.contains("10") && e.contains("vocabulary of 10"), "{e}");
    }
}
