//! [`generate`]: the prefill + decode loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::stop::StopMatcher;
use super::{GenerateError, LanguageModel, Timings, TokenDecoder};
use crate::sampling::Sampler;

/// Limits and stop conditions of one generation.
#[derive(Debug, Clone, Default)]
pub struct GenerateConfig {
    /// Most tokens to generate (including a final stop token); `None`: until a stop or the
    /// context is full (llama.cpp's `-n -1`).
    pub max_tokens: Option<usize>,
    /// Token ids that end generation (EOS, EOT, ...). The stop token is returned in
    /// [`Generation::tokens`] but its text is not emitted.
    pub stop_tokens: Vec<u32>,
    /// Strings that end generation when they appear in the decoded text. The text before the
    /// stop string is emitted, the stop string and anything after it are not. Must be
    /// non-empty.
    pub stop_strings: Vec<String>,
    /// Set to `true` (e.g. from a Ctrl-C handler) to stop after the current token.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What ended a stop-triggered generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A token of [`GenerateConfig::stop_tokens`] was sampled.
    Token(u32),
    /// A string of [`GenerateConfig::stop_strings`] appeared in the text.
    String(String),
    /// A grammar constraint (structured output) was complete, or could not continue.
    Grammar,
    /// No token could be drawn: the logit bias (or a grammar) excluded every one.
    NoToken,
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop(StopReason),
    /// [`GenerateConfig::max_tokens`] tokens were generated.
    Length,
    /// The context is full: the next token would not fit in the KV cache.
    ContextFull,
    /// The cancel flag was raised.
    Cancelled,
}

impl FinishReason {
    /// A short name: `stop`, `length`, `context_full` or `cancelled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FinishReason::Stop(_) => "stop",
            FinishReason::Length => "length",
            FinishReason::ContextFull => "context_full",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// Generated token ids, in order (including a final stop token). The last one has *not*
    /// been fed to the model: afterwards `model.position()` is
    /// `start + prompt.len() + tokens.len() - 1` (or `start + prompt.len()` when empty), so a
    /// chat session continues by prefilling that token before the next turn.
    pub tokens: Vec<u32>,
    /// The emitted text (the concatenation of every chunk given to the callback).
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Wall-clock figures.
    pub timings: Timings,
}

/// Emits `chunk` (when non-empty) to the callback and the accumulated text.
fn emit(chunk: &str, text: &mut String, on_text: &mut impl FnMut(&str)) {
    if !chunk.is_empty() {
        text.push_str(chunk);
        on_text(chunk);
    }
}

fn model_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> GenerateError {
    GenerateError::Model(Box::new(e))
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Generates a continuation of `prompt`, streaming text to `on_text` as it becomes final.
///
/// `prompt` is appended to whatever the model's KV cache already holds (a chat session keeps
/// its cache between turns) and run in one batched prefill. Then, per token: check the
/// cancel flag, `max_tokens` and the context limit; feed the previous token to the model
/// (`decode`); sample with `sampler` (its penalties see `prompt` + the generated tokens);
/// stop on a stop token; detokenize; stop on a stop string.
///
/// Limits end generation with a [`FinishReason`], never a panic or an error: the loop never
/// asks the model for more than `context_length()` positions. Errors: an empty or
/// too-long prompt, an empty stop string, a sampler/model vocabulary mismatch, a sampling or
/// model failure.
pub fn generate<M, D, F>(
    model: &mut M,
    sampler: &mut Sampler,
    decoder: &mut D,
    prompt: &[u32],
    config: &GenerateConfig,
    mut on_text: F,
) -> Result<Generation, GenerateError>
where
    M: LanguageModel + ?Sized,
    D: TokenDecoder + ?Sized,
    F: FnMut(&str),
{
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    if let Some(index) = config.stop_strings.iter().position(|s| s.is_empty()) {
        return Err(GenerateError::EmptyStopString { index });
    }
    if sampler.vocab_size() != model.vocab_size() {
        return Err(GenerateError::VocabMismatch {
            sampler: sampler.vocab_size(),
            model: model.vocab_size(),
        });
    }
    let context = model.context_length();
    let start = model.position();
    if start.saturating_add(prompt.len()) > context {
        return Err(GenerateError::PromptTooLong {
            prompt: prompt.len(),
            used: start,
            context,
        });
    }
    let cancelled = || {
        config
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    let max_tokens = config.max_tokens.unwrap_or(usize::MAX);
    // Position the first generated token would take.
    let base = start + prompt.len();

    let mut timings = Timings {
        prompt_tokens: prompt.len(),
        ..Timings::default()
    };
    let mut tokens: Vec<u32> = Vec::new();
    let mut text = String::new();
    let mut stops = StopMatcher::new(&config.stop_strings);

    if cancelled() {
        return Ok(Generation {
            tokens,
            text,
            finish_reason: FinishReason::Cancelled,
            timings,
        });
    }

    // Penalty history: prompt then generated tokens.
    let mut history: Vec<u32> = Vec::with_capacity(prompt.len() + max_tokens.min(context));
    history.extend_from_slice(prompt);
    // `[vocab]` logits of the position the next token is sampled from (the sampler edits
    // them in place, so they are copied out of the model).
    let mut logits: Vec<f32> = Vec::with_capacity(model.vocab_size());

    let t_prompt = Instant::now();
    logits.extend_from_slice(model.prefill(prompt).map_err(model_err)?);
    timings.prompt_ms = ms_since(t_prompt);

    let t_gen = Instant::now();
    let mut finish_reason = loop {
        if cancelled() {
            break FinishReason::Cancelled;
        }
        if tokens.len() >= max_tokens {
            break FinishReason::Length;
        }
        if base + tokens.len() >= context {
            break FinishReason::ContextFull;
        }
        if let Some(&last) = tokens.last() {
            // `last` goes at position base + len - 1 < context (checked above).
            let t = Instant::now();
            let out = model.decode(last).map_err(model_err)?;
            logits.clear();
            logits.extend_from_slice(out);
            timings.decode_ms += ms_since(t);
            timings.decode_calls += 1;
        }
        let t = Instant::now();
        let token = sampler.sample(&mut logits, &history)?;
        timings.sample_ms += ms_since(t);
        tokens.push(token);
        history.push(token);

        if config.stop_tokens.contains(&token) {
            break FinishReason::Stop(StopReason::Token(token));
        }
        let scan = stops.push(&decoder.push(token));
        emit(&scan.emit, &mut text, &mut on_text);
        if let Some(i) = scan.stopped {
            break FinishReason::Stop(StopReason::String(config.stop_strings[i].clone()));
        }
    };

    // Flush the detokenizer and the stop matcher unless a stop string already cut the text.
    if !matches!(finish_reason, FinishReason::Stop(StopReason::String(_))) {
        let scan = stops.push(&decoder.finish());
        emit(&scan.emit, &mut text, &mut on_text);
        match scan.stopped {
            Some(i) => {
                finish_reason =
                    FinishReason::Stop(StopReason::String(config.stop_strings[i].clone()));
            }
            None => emit(&stops.flush(), &mut text, &mut on_text),
        }
    }
    timings.generation_ms = ms_since(t_gen);
    timings.generated_tokens = tokens.len();
    Ok(Generation {
        tokens,
        text,
        finish_reason,
        timings,
    })
}
