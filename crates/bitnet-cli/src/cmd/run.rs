//! `bitnet run MODEL -p TEXT`: one completion, streamed to stdout as it is generated, with
//! timings on stderr; `--json` prints one JSON object instead.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use bitnet_generate::{
    generate, Detokenizer, FinishReason, GenerateConfig, GenerateError, ModelRunner, Sampler,
    TokenDecoder,
};
use bitnet_tokenizer::chat::{ChatTemplate, Message};
use bitnet_tokenizer::StreamDecoder;

use super::common::{self, Loaded, LoadedExt, ModelArgs, NoText, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt text.
    #[arg(short = 'p', long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Prompt as comma-separated token ids (used as given: no BOS is added).
    #[arg(long, value_name = "IDS", allow_negative_numbers = true)]
    pub prompt_ids: Option<String>,
    /// Wrap the prompt in the model's chat format (as a user message).
    #[arg(long, conflicts_with = "prompt_ids")]
    pub chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    /// Most tokens to generate (-1 = until end of text or a full context).
    #[arg(
        short = 'n',
        long = "max-tokens",
        visible_alias = "n-predict",
        default_value_t = 256,
        allow_negative_numbers = true
    )]
    pub max_tokens: i64,
    /// Stop when this text is generated (repeatable); the stop text is not printed.
    #[arg(long, value_name = "STRING")]
    pub stop: Vec<String>,
    /// Do not prepend BOS to a text prompt (default: as the tokenizer's metadata says).
    #[arg(long)]
    pub no_bos: bool,
    /// Keep generating past end-of-text tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print one JSON object {"ids", "text", "finish_reason", "timings", ...} instead of
    /// streaming.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// The prompt ids and whether the continuation starts right after BOS only (SentencePiece
/// then drops the first token's leading space, as llama.cpp does).
fn prompt_ids(args: &Args, loaded: &Loaded) -> anyhow::Result<(Vec<u32>, bool)> {
    if let Some(ids) = &args.prompt_ids {
        let ids = common::parse_prompt_ids(ids, loaded.model.config.vocab_size)?;
        let after_bos_only = loaded
            .tokenizer
            .as_ref()
            .is_some_and(|t| ids.iter().all(|&id| t.tokenizer.is_special(id)));
        return Ok((ids, after_bos_only));
    }
    let Some(text) = &args.prompt else {
        bail!("no prompt: give -p TEXT or --prompt-ids 1,2,3");
    };
    let what = if args.chat { "--chat" } else { "-p TEXT" };
    let lt = loaded.require_tokenizer(what)?;
    let tok = lt.tokenizer.as_ref();
    let ids = if args.chat {
        let template = ChatTemplate::from_loaded(lt).context("--chat: no usable chat format")?;
        if let Some(note) = template.override_note() {
            eprintln!("note: {note}");
        }
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(Message::system(s.as_str()));
        }
        messages.push(Message::user(text.as_str()));
        let rendered = template.render(&messages, true)?;
        tok.encode(&rendered, false, true)?
    } else {
        let bos = !args.no_bos && tok.add_bos_default();
        tok.encode(text, bos, false)?
    };
    let after_bos_only = ids.iter().all(|&id| tok.is_special(id));
    Ok((ids, after_bos_only))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sampler_config = args.sampling.config()?;
    let loaded = common::load(&args.model)?;
    let (prompt, after_bos_only) = prompt_ids(&args, &loaded)?;
    if prompt.is_empty() {
        bail!("the prompt is empty (no tokens): give some text, or drop --no-bos");
    }
    if prompt.len() >= loaded.context {
        return Err(common::prompt_too_long(prompt.len(), &loaded));
    }
    if !args.stop.is_empty() && loaded.tokenizer.is_none() {
        loaded.require_tokenizer("--stop")?;
    }
    let vocab = loaded.model.config.vocab_size;
    let mut sampler = Sampler::new(sampler_config, vocab).context("sampling flags")?;
    if args.sampling.seed.is_none() && !sampler.config().is_greedy() {
        eprintln!("seed = {}", sampler.seed());
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicBool::new(false));
    common::install_ctrlc(cancel.clone(), active.clone());
    let config = GenerateConfig {
        max_tokens: common::max_tokens(args.max_tokens)?,
        stop_tokens: if args.ignore_eos {
            Vec::new()
        } else {
            loaded.stop_tokens()
        },
        stop_strings: args.stop.clone(),
        cancel: Some(cancel),
    };
    let mut runner = ModelRunner::new(&loaded.model, loaded.context)
        .with_context(|| format!("allocating a KV cache of {} positions", loaded.context))?;
    let mut decoder: Box<dyn TokenDecoder> = match &loaded.tokenizer {
        Some(t) => {
            let tok = t.tokenizer.as_ref();
            let strip = after_bos_only && tok.strips_leading_space();
            Box::new(Detokenizer::with_stream(
                tok,
                StreamDecoder::new(strip, false),
            ))
        }
        None => Box::new(NoText),
    };
    let stream = !args.json;
    let mut stdout = std::io::stdout().lock();
    let mut write_err: Option<std::io::Error> = None;
    active.store(true, Ordering::SeqCst);
    let result = generate(
        &mut runner,
        &mut sampler,
        decoder.as_mut(),
        &prompt,
        &config,
        |chunk| {
            if stream && write_err.is_none() {
                if let Err(e) = stdout
                    .write_all(chunk.as_bytes())
                    .and_then(|_| stdout.flush())
                {
                    write_err = Some(e);
                }
            }
        },
    );
    active.store(false, Ordering::SeqCst);
    let mut gen = match result {
        Ok(g) => g,
        Err(GenerateError::PromptTooLong { prompt, .. }) => {
            return Err(common::prompt_too_long(prompt, &loaded))
        }
        Err(e) => return Err(e).context("generation failed"),
    };
    if let Some(e) = write_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing to stdout");
        }
    }
    gen.timings.load_ms = loaded.load_ms;
    if args.json {
        let json = serde_json::json!({
            "ids": gen.tokens,
            "text": loaded.tokenizer.as_ref().map(|_| gen.text.as_str()),
            "finish_reason": gen.finish_reason.as_str(),
            "prompt_ids": prompt,
            "seed": sampler.seed(),
            "timings": gen.timings,
        });
        writeln!(stdout, "{json}")?;
    } else {
        if loaded.tokenizer.is_none() {
            // No text to stream: print the generated ids instead.
            let ids: Vec<String> = gen.tokens.iter().map(u32::to_string).collect();
            write!(stdout, "{}", ids.join(","))?;
        }
        writeln!(stdout)?;
    }
    stdout.flush()?;
    match gen.finish_reason {
        FinishReason::ContextFull => eprintln!(
            "note: the context of {} tokens is full (raise -c/--ctx-size)",
            loaded.context
        ),
        FinishReason::Cancelled => eprintln!("note: interrupted"),
        _ => {}
    }
    eprintln!("{}", gen.timings.summary());
    Ok(())
}
