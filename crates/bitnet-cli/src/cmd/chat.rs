//! `bitnet chat MODEL`: an interactive multi-turn conversation over one KV cache.
//!
//! Reads one user message per line from stdin (a terminal or a pipe), streams the reply to
//! stdout. `/reset` clears the history and the cache, `/exit` (or end of input) quits, Ctrl-C
//! during a reply stops that reply and keeps the conversation. Each turn only prefills what is
//! new: the chat template renders the whole conversation and the part after what the cache
//! already holds is encoded. A model without a chat format (a base model) gets plain
//! continuation: each line is appended to the text and the model continues it.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use bitnet_generate::{
    Detokenizer, FinishReason, GenerateConfig, GenerateError, ModelRunner, Sampler, Session,
    StopReason,
};
use bitnet_model::Model;
use bitnet_tokenizer::chat::{ChatTemplate, Message};
use bitnet_tokenizer::{StreamDecoder, Tokenizer};

use super::common::{self, LoadedExt, ModelArgs, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// System message that starts the conversation (kept across /reset).
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens per reply (-1 = until end of turn or a full context).
    #[arg(
        short = 'n',
        long = "max-tokens",
        visible_alias = "n-predict",
        default_value_t = 512,
        allow_negative_numbers = true
    )]
    pub max_tokens: i64,
    /// End a reply when this text is generated (repeatable).
    #[arg(long, value_name = "STRING")]
    pub stop: Vec<String>,
    /// Print per-reply speed on stderr.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// What the user typed.
enum Input {
    Exit,
    Reset,
    Message(String),
}

fn parse_line(line: &str) -> Option<Input> {
    let t = line.trim();
    match t {
        "" => None,
        "/exit" | "/quit" | "/bye" => Some(Input::Exit),
        "/reset" | "/clear" => Some(Input::Reset),
        _ => Some(Input::Message(t.to_string())),
    }
}

/// The conversation state on our side of the KV cache.
struct Conversation<'m> {
    session: Session<ModelRunner<&'m Model>>,
    /// `None`: plain continuation (no chat format).
    template: Option<ChatTemplate>,
    system: Option<String>,
    messages: Vec<Message>,
    /// Rendered text the KV cache holds (closed conversation so far); chat mode only.
    cached: String,
    /// The last reply did not end with an end-of-turn token: feed `close_token` first.
    needs_close: bool,
    close_token: Option<u32>,
}

impl Conversation<'_> {
    fn reset(&mut self) {
        self.session.reset();
        self.messages.clear();
        if let Some(s) = &self.system {
            self.messages.push(Message::system(s.as_str()));
        }
        self.cached.clear();
        self.needs_close = false;
    }

    /// The tokens to prefill for a new user message (the message is appended to the history).
    fn turn_tokens(&mut self, tok: &dyn Tokenizer, text: &str) -> anyhow::Result<Vec<u32>> {
        let Some(template) = &self.template else {
            let first = self.session.tokens().is_empty();
            let text = if first {
                text.to_string()
            } else {
                format!("\n{text}")
            };
            return Ok(tok.encode(&text, first && tok.add_bos_default(), false)?);
        };
        self.messages.push(Message::user(text));
        let full = template.render(&self.messages, true)?;
        let mut ids = Vec::new();
        let delta = match full.strip_prefix(self.cached.as_str()) {
            Some(rest) if !self.cached.is_empty() => {
                if self.needs_close {
                    ids.extend(self.close_token);
                }
                rest
            }
            _ => {
                // Nothing cached, or the template re-renders history differently: start over.
                self.session.reset();
                full.as_str()
            }
        };
        ids.extend(tok.encode(delta, false, true)?);
        Ok(ids)
    }

    /// Records the reply of the turn that just ran.
    fn finish_turn(&mut self, reply: &str, ended_by_eot: bool) -> anyhow::Result<()> {
        if let Some(template) = &self.template {
            self.messages.push(Message::assistant(reply));
            self.cached = template.render(&self.messages, false)?;
            self.needs_close = !ended_by_eot;
        }
        Ok(())
    }

    /// Drops the user message of a turn that could not run.
    fn undo_user(&mut self) {
        if self.template.is_some() {
            self.messages.pop();
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sampler_config = args.sampling.config()?;
    let loaded = common::load(&args.model)?;
    let lt = loaded.require_tokenizer("chat")?;
    let tok = lt.tokenizer.as_ref();
    let template = match loaded.chat_template() {
        Ok(t) => {
            if let Some(note) = t.override_note() {
                eprintln!("note: {note}");
            }
            Some(t)
        }
        Err(e) => {
            eprintln!(
                "note: {e}; plain continuation mode: each line is appended to the text and the \
                 model continues it"
            );
            None
        }
    };
    if template.is_none() && args.system.is_some() {
        eprintln!("note: --system is ignored: the model has no chat format");
    }
    let special = tok.special_tokens();
    let close_token = special.eot.or(special.eos);
    let mut sampler =
        Sampler::new(sampler_config, loaded.model.config.vocab_size).context("sampling flags")?;
    let runner = ModelRunner::new(&loaded.model, loaded.context)
        .with_context(|| format!("allocating a KV cache of {} positions", loaded.context))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicBool::new(false));
    common::install_ctrlc(cancel.clone(), active.clone());
    let config = GenerateConfig {
        max_tokens: common::max_tokens(args.max_tokens)?,
        stop_tokens: loaded.stop_tokens(),
        stop_strings: args.stop.clone(),
        cancel: Some(cancel.clone()),
    };
    let mut conv = Conversation {
        session: Session::new(runner),
        template,
        system: args.system.clone(),
        messages: Vec::new(),
        cached: String::new(),
        needs_close: false,
        close_token,
    };
    conv.reset();

    let interactive = std::io::stdin().is_terminal();
    let seed_note = if args.sampling.seed.is_none() && !sampler.config().is_greedy() {
        format!(", seed {}", sampler.seed())
    } else {
        String::new()
    };
    eprintln!(
        "loaded {} in {:.0} ms; context {} tokens{seed_note}. /reset clears the conversation, \
         /exit quits{}.",
        loaded.path.display(),
        loaded.load_ms,
        loaded.context,
        if interactive {
            ", Ctrl-C stops a reply"
        } else {
            ""
        }
    );
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let mut stdout = std::io::stdout();
    let vocab = loaded.model.config.vocab_size;
    // Turns that failed with an error: the session goes on, the exit status reports them.
    let mut failures = 0usize;
    loop {
        write!(stdout, "> ")?;
        stdout.flush()?;
        let mut raw = Vec::new();
        if lines.read_until(b'\n', &mut raw).context("reading stdin")? == 0 {
            writeln!(stdout)?;
            break;
        }
        let line = match String::from_utf8(raw) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "warning: the line is not valid UTF-8; invalid bytes were replaced by U+FFFD"
                );
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        let text = match parse_line(&line) {
            None => continue,
            Some(Input::Exit) => break,
            Some(Input::Reset) => {
                conv.reset();
                writeln!(stdout, "[conversation cleared]")?;
                continue;
            }
            Some(Input::Message(t)) => t,
        };
        let ids = conv.turn_tokens(tok, &text)?;
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            conv.undo_user();
            failures += 1;
            eprintln!(
                "error: the tokenizer produced token id {bad}, outside the model's vocabulary of \
                 {vocab} tokens (is --tokenizer the model's own?); the message was skipped"
            );
            continue;
        }
        // The new tokens plus at least one reply token must fit.
        if ids.len() + 1 > conv.session.remaining() {
            conv.undo_user();
            writeln!(
                stdout,
                "[the context is full ({} of {} tokens used): type /reset to start a new \
                 conversation]",
                loaded.context - conv.session.remaining(),
                loaded.context
            )?;
            continue;
        }
        let mut decoder = Detokenizer::with_stream(tok, StreamDecoder::new(false, false));
        cancel.store(false, Ordering::SeqCst);
        active.store(true, Ordering::SeqCst);
        let result = conv
            .session
            .turn(&mut sampler, &mut decoder, &ids, &config, |chunk| {
                // A closed stdout ends the chat at the next prompt.
                let _ = stdout
                    .write_all(chunk.as_bytes())
                    .and_then(|_| stdout.flush());
            });
        active.store(false, Ordering::SeqCst);
        let gen = match result {
            Ok(g) => g,
            Err(GenerateError::PromptTooLong { .. }) => {
                conv.undo_user();
                writeln!(
                    stdout,
                    "[the context is full: type /reset to start a new conversation]"
                )?;
                continue;
            }
            Err(e) => {
                // The cache content is unknown after a failed pass: start over.
                conv.reset();
                failures += 1;
                writeln!(stdout)?;
                eprintln!("error: {e}; the conversation was reset");
                continue;
            }
        };
        writeln!(stdout)?;
        let ended_by_eot = matches!(gen.finish_reason, FinishReason::Stop(StopReason::Token(_)));
        conv.finish_turn(&gen.text, ended_by_eot)?;
        match gen.finish_reason {
            FinishReason::ContextFull => writeln!(
                stdout,
                "[the context of {} tokens is full: type /reset to start a new conversation]",
                loaded.context
            )?,
            FinishReason::Cancelled => writeln!(stdout, "[reply stopped]")?,
            _ => {}
        }
        if args.stats {
            eprintln!(
                "[{} prompt tokens at {:.1} tokens/s, {} tokens at {:.1} tokens/s]",
                gen.timings.prompt_tokens,
                gen.timings.prompt_tokens_per_second(),
                gen.timings.generated_tokens,
                gen.timings.generation_tokens_per_second()
            );
        }
    }
    if failures > 0 {
        bail!("{failures} message(s) of this conversation failed (see the errors above)");
    }
    Ok(())
}
