//! `/v1/chat/completions` and `/v1/completions`: parse, submit to the engine, answer as one
//! JSON object or as OpenAI's server-sent-event chunks.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitnet_engine::{ChoiceEvent, Constraint, EngineError, Logprob, Request, Submission};
use bitnet_generate::FinishReason;
use bitnet_tokenizer::chat::Message;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::ApiError;
use crate::params::{self, Common};
use crate::tools;
use crate::AppState;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

/// How a request wants log-probabilities.
#[derive(Clone, Copy)]
struct WantLogprobs {
    top: usize,
}

async fn read_body(st: &AppState, body: Body) -> Result<Map<String, Value>, ApiError> {
    if st.draining() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    let bytes = to_bytes(body, st.options.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::invalid(
                None,
                format!(
                    "the request body exceeds {} bytes",
                    st.options.max_body_bytes
                ),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .with_code("request_too_large")
        })?;
    params::parse_object(&bytes)
}

fn check_model(st: &AppState, c: &Common) -> Result<(), ApiError> {
    match &c.model {
        Some(m) if m != &st.options.model_id => {
            Err(ApiError::model_not_found(m, &st.options.model_id))
        }
        _ => Ok(()),
    }
}

fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::PromptTooLong { .. } => {
            ApiError::invalid(None, e.to_string()).with_code("context_length_exceeded")
        }
        EngineError::BadN { .. } => ApiError::param("n", e),
        EngineError::TokenOutOfRange { .. } => ApiError::param("prompt", e),
        EngineError::EmptyPrompt => ApiError::invalid(None, e.to_string()),
        EngineError::EmptyStopString => ApiError::param("stop", e),
        EngineError::Sampling(m) => ApiError::invalid(None, m),
        EngineError::Stopped => ApiError::unavailable("the engine has stopped"),
        other => ApiError::server(other.to_string()),
    }
}

/// `response_format`: `text`, `json_object` or `json_schema`, compiled into a grammar
/// constraint (an invalid schema is a 400 here, before anything runs).
fn response_format(st: &AppState, o: &Map<String, Value>) -> Result<Option<Constraint>, ApiError> {
    let Some(rf) = o.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let p = "response_format";
    let schema = match rf.get("type").and_then(Value::as_str) {
        Some("text") => return Ok(None),
        Some("json_object") => json!({"type": "object"}),
        Some("json_schema") => {
            let js = rf.get("json_schema").ok_or_else(|| {
                ApiError::param(
                    p,
                    "type json_schema needs a 'json_schema' object with a 'schema'",
                )
            })?;
            match js.get("schema") {
                Some(s @ Value::Object(_)) => s.clone(),
                Some(Value::Bool(true)) | None => json!({}),
                Some(other) => {
                    return Err(ApiError::param(
                        p,
                        format!("'json_schema.schema' must be an object, got {other}"),
                    ))
                }
            }
        }
        other => {
            return Err(ApiError::param(
                p,
                format!("type {other:?}: expected \"text\", \"json_object\" or \"json_schema\""),
            ))
        }
    };
    let compiler =
        st.text.grammar.as_ref().ok_or_else(|| {
            ApiError::param(p, "structured output is not available for this model")
        })?;
    compiler
        .json_schema(schema)
        .map(Some)
        .map_err(|e| ApiError::param(p, format!("the schema cannot be used: {e}")))
}

pub async fn chat(State(st): State<Arc<AppState>>, body: Body) -> Response {
    st.metrics.requests.fetch_add(1, Ordering::Relaxed);
    match chat_inner(&st, body).await {
        Ok(r) => r,
        Err(e) => {
            st.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
            e.into_response()
        }
    }
}

pub async fn completions(State(st): State<Arc<AppState>>, body: Body) -> Response {
    st.metrics.requests.fetch_add(1, Ordering::Relaxed);
    match completions_inner(&st, body).await {
        Ok(r) => r,
        Err(e) => {
            st.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
            e.into_response()
        }
    }
}

async fn chat_inner(st: &Arc<AppState>, body: Body) -> Result<Response, ApiError> {
    let o = read_body(st, body).await?;
    let geo = st.handle.geometry();
    let c = params::common(&o, geo.vocab_size, st.handle.max_running(), None)?;
    check_model(st, &c)?;
    let logprobs = params::boolean(&o, "logprobs")?.unwrap_or(false);
    let top = params::int_in(&o, "top_logprobs", 0, 20)?;
    if top.is_some() && !logprobs {
        return Err(ApiError::param("top_logprobs", "requires 'logprobs': true"));
    }
    let want = logprobs.then(|| WantLogprobs {
        top: top.unwrap_or(0) as usize,
    });
    let Some(Value::Array(msgs)) = o.get("messages") else {
        return Err(ApiError::param(
            "messages",
            "expected a non-empty array of messages",
        ));
    };
    if msgs.is_empty() {
        return Err(ApiError::param(
            "messages",
            "expected a non-empty array of messages",
        ));
    }
    let mut messages = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid(
                Some(format!("messages[{i}].role")),
                format!("'messages[{i}].role': expected one of system, developer, user, assistant, tool"),
            )
        })?;
        let role = match role {
            "system" | "developer" => "system",
            "user" | "assistant" | "tool" => role,
            other => {
                return Err(ApiError::invalid(
                    Some(format!("messages[{i}].role")),
                    format!("'messages[{i}].role': unknown role '{other}'"),
                ))
            }
        };
        let content = params::content_text(m.get("content"), i)?;
        let mut msg = Message::new(role, content);
        if role == "assistant" {
            msg.tool_calls = m.get("tool_calls").and_then(tools::calls_for_template);
        }
        if role == "tool" {
            msg.tool_call_id = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        messages.push(msg);
    }
    let tool_spec = tools::parse(&o)?;
    // Native tool calling when the template renders tools in a known format.
    let format = match st.text.template.as_ref().and_then(|t| t.tool_format()) {
        Some(f) => tools::Format::Native(f),
        None => tools::Format::Generic,
    };
    let template_tools = match (&tool_spec, format) {
        (Some(spec), tools::Format::Native(_)) => Some(spec.template_tools()),
        _ => None,
    };
    if format == tools::Format::Generic {
        // Earlier calls are written back as the generic answer the model gave.
        for (m, src) in messages.iter_mut().zip(msgs) {
            if m.role == "assistant" && m.content.is_empty() {
                if let Some(text) = src.get("tool_calls").and_then(tools::calls_as_text) {
                    m.content = text;
                }
            }
            m.tool_calls = None;
        }
    }
    if let Some(spec) = &tool_spec {
        if o.get("response_format").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::param(
                "response_format",
                "cannot be combined with tools",
            ));
        }
        if format == tools::Format::Generic {
            let text = spec.system_prompt();
            match messages.first_mut() {
                Some(m) if m.role == "system" => m.content = format!("{}\n\n{text}", m.content),
                _ => messages.insert(0, Message::system(text)),
            }
        }
    }
    let tok = st.text.tokenizer.as_ref();
    let prompt = match &st.text.template {
        Some(t) => t
            .encode_with(tok, &messages, template_tools.as_ref(), true)
            .map_err(|e| {
                ApiError::invalid(Some("messages".into()), format!("chat template: {e}"))
            })?,
        None => {
            let text: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
            tok.encode(&text.join("\n"), tok.add_bos_default(), false)
                .map_err(|e| ApiError::param("messages", e))?
        }
    };
    let constraint = match tool_spec.as_ref().map(|s| s.grammar(format)) {
        Some(Some(g)) => {
            let compiler = st.text.grammar.as_ref().ok_or_else(|| {
                ApiError::param(
                    "tools",
                    "tool calling needs structured output, not available for this model",
                )
            })?;
            let compiled = match g {
                tools::Grammar::JsonSchema(schema) => compiler.json_schema(schema),
                tools::Grammar::Lark(lark) => compiler.lark(&lark),
            };
            Some(compiled.map_err(|e| {
                ApiError::param(
                    "tools",
                    format!("the tools' parameter schemas cannot be used: {e}"),
                )
            })?)
        }
        Some(None) => None,
        None => response_format(st, &o)?,
    };
    let tools = tool_spec.map(|spec| (spec, format));
    run(st, Kind::Chat, c, vec![prompt], want, constraint, tools).await
}

async fn completions_inner(st: &Arc<AppState>, body: Body) -> Result<Response, ApiError> {
    let o = read_body(st, body).await?;
    let geo = st.handle.geometry();
    let c = params::common(&o, geo.vocab_size, st.handle.max_running(), Some(16))?;
    check_model(st, &c)?;
    let want = params::int_in(&o, "logprobs", 0, 20)?.map(|k| WantLogprobs { top: k as usize });
    let tok = st.text.tokenizer.as_ref();
    let encode = |s: &str| {
        tok.encode(s, tok.add_bos_default(), false)
            .map_err(|e| ApiError::param("prompt", e))
    };
    let ids = |a: &[Value]| -> Result<Vec<u32>, ApiError> {
        a.iter()
            .map(|v| {
                v.as_u64()
                    .filter(|&x| x < geo.vocab_size as u64)
                    .map(|x| x as u32)
                    .ok_or_else(|| {
                        ApiError::param(
                            "prompt",
                            format!("token {v} is not an id below {}", geo.vocab_size),
                        )
                    })
            })
            .collect()
    };
    // One prompt (a string or token ids) or a batch of them (strings or arrays of ids), as
    // OpenAI accepts; choices are numbered prompt by prompt, `n` per prompt.
    let prompts: Vec<Vec<u32>> = match o.get("prompt") {
        Some(Value::String(s)) => vec![encode(s)?],
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_number) => vec![ids(a)?],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Value::String(s) => encode(s),
                Value::Array(t) => ids(t),
                v => Err(ApiError::invalid(
                    Some("prompt".into()),
                    format!("'prompt[{i}]': expected a string or an array of token ids, got {v}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Array(_)) => return Err(ApiError::param("prompt", "the prompt is empty")),
        Some(v) => {
            return Err(ApiError::param(
                "prompt",
                format!("expected a string or token ids, got {v}"),
            ))
        }
        None => return Err(ApiError::param("prompt", "missing")),
    };
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(ApiError::param(
            "prompt",
            if prompts.len() == 1 {
                "the prompt is empty".to_string()
            } else {
                format!("prompt {i} is empty")
            },
        ));
    }
    let most = st.handle.max_running();
    if prompts.len() * c.n > most {
        return Err(ApiError::param(
            "prompt",
            format!(
                "{} prompts × n = {} choices; this server runs at most {most} sequences at once",
                prompts.len(),
                prompts.len() * c.n
            ),
        ));
    }
    if o.get("tools").is_some_and(|t| !t.is_null()) {
        return Err(ApiError::param(
            "tools",
            "tools are a chat completions feature",
        ));
    }
    let constraint = response_format(st, &o)?;
    run(st, Kind::Text, c, prompts, want, constraint, None).await
}

fn finish_str(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::Stop(_) | FinishReason::Cancelled => "stop",
        FinishReason::Length | FinishReason::ContextFull => "length",
    }
}

fn piece(st: &AppState, id: u32) -> String {
    String::from_utf8_lossy(&st.text.tokenizer.token_to_piece(id, true)).into_owned()
}

/// Text completions' `top_logprobs` entry: `{token text: logprob}`.
fn top_map(st: &AppState, lp: &Logprob) -> Value {
    Value::Object(
        lp.top
            .iter()
            .map(|&(i, l)| (piece(st, i), json!(l)))
            .collect(),
    )
}

fn chat_logprobs(st: &AppState, token: u32, lp: &Logprob) -> Value {
    let entry = |id: u32, l: f32| {
        let p = piece(st, id);
        json!({"token": p, "logprob": l, "bytes": p.as_bytes()})
    };
    let mut e = entry(token, lp.logprob);
    e["top_logprobs"] = Value::Array(lp.top.iter().map(|&(i, l)| entry(i, l)).collect());
    e
}

/// Per-choice accumulation for non-streaming answers.
#[derive(Default)]
struct Acc {
    text: String,
    tokens: usize,
    finish: Option<FinishReason>,
    chat_lp: Vec<Value>,
    lp_tokens: Vec<String>,
    lp_values: Vec<f32>,
    lp_top: Vec<Value>,
    lp_offset: Vec<usize>,
}

async fn run(
    st: &Arc<AppState>,
    kind: Kind,
    c: Common,
    prompts: Vec<Vec<u32>>,
    want: Option<WantLogprobs>,
    constraint: Option<Constraint>,
    tools: Option<(tools::ToolSpec, tools::Format)>,
) -> Result<Response, ApiError> {
    let prompt_tokens: usize = prompts.iter().map(Vec::len).sum();
    let mut subs = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let sub = Submission {
            request: Request {
                prompt,
                sampling: c.sampling.clone(),
                max_tokens: c.max_tokens,
                stop_tokens: if c.ignore_eos {
                    Vec::new()
                } else {
                    st.text.stop_tokens.clone()
                },
                n: c.n,
                logprobs: want.map(|w| w.top),
                constraint: constraint.clone(),
            },
            stop_strings: c.stop.clone(),
        };
        match st.handle.submit(sub) {
            Ok(s) => subs.push(s),
            Err(e) => {
                for (id, _) in &subs {
                    st.handle.cancel(*id);
                }
                return Err(engine_error(e));
            }
        }
    }
    st.metrics
        .prompt_tokens
        .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
    let ids: Vec<u64> = subs.iter().map(|(id, _)| *id).collect();
    let rid = format!(
        "{}-{:x}{:x}",
        if kind == Kind::Chat {
            "chatcmpl"
        } else {
            "cmpl"
        },
        ids[0],
        st.created
    );
    let choices = subs.len() * c.n;
    let rx = merge(subs, c.n);
    let job = Job {
        st: st.clone(),
        kind,
        c,
        rid,
        ids,
        rx,
        choices,
        prompt_tokens,
        want,
        tools,
    };
    if job.c.stream {
        Ok(stream(job))
    } else {
        collect(job).await
    }
}

/// One event channel for several submissions: submission `k`'s choice `j` becomes choice
/// `k·n + j`. A forwarder stops, dropping its submission's channel (which cancels it), as soon
/// as the merged channel's receiver is gone.
fn merge(
    mut subs: Vec<(u64, UnboundedReceiver<bitnet_engine::EventResult>)>,
    n: usize,
) -> UnboundedReceiver<bitnet_engine::EventResult> {
    if subs.len() == 1 {
        return subs.pop().map(|(_, rx)| rx).expect("one submission");
    }
    let (tx, merged) = tokio::sync::mpsc::unbounded_channel();
    for (k, (_, mut rx)) in subs.into_iter().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = tx.closed() => return,
                };
                let Some(ev) = ev else { return };
                let ev = ev.map(|mut e| {
                    e.index += k * n;
                    e
                });
                if tx.send(ev).is_err() {
                    return;
                }
            }
        });
    }
    merged
}

/// One submitted request, as the answering code needs it.
struct Job {
    st: Arc<AppState>,
    kind: Kind,
    c: Common,
    /// Response id (`chatcmpl-…` / `cmpl-…`).
    rid: String,
    /// The engine handle's ids (one per prompt), for cancelling.
    ids: Vec<u64>,
    rx: UnboundedReceiver<bitnet_engine::EventResult>,
    /// Choices in all (prompts × n).
    choices: usize,
    prompt_tokens: usize,
    want: Option<WantLogprobs>,
    /// The request's tools and how answers are read (None: plain answers).
    tools: Option<(tools::ToolSpec, tools::Format)>,
}

/// Receives the next event, observing latency metrics and the request deadline.
struct Receiver {
    rx: UnboundedReceiver<bitnet_engine::EventResult>,
    start: Instant,
    last: Option<Instant>,
    deadline: Option<Instant>,
}

enum Next {
    Event(ChoiceEvent),
    Error(ApiError),
    TimedOut,
    Closed,
}

impl Receiver {
    async fn next(&mut self, st: &AppState) -> Next {
        let got = match self.deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), self.rx.recv()).await {
                Ok(x) => x,
                Err(_) => return Next::TimedOut,
            },
            None => self.rx.recv().await,
        };
        match got {
            None => Next::Closed,
            Some(Err(m)) => Next::Error(if st.draining() {
                ApiError::unavailable(m)
            } else {
                ApiError::server(m)
            }),
            Some(Ok(ev)) => {
                if ev.token.is_some() {
                    let now = Instant::now();
                    match self.last {
                        None => st.metrics.ttft.observe((now - self.start).as_secs_f64()),
                        Some(t) => st.metrics.itl.observe((now - t).as_secs_f64()),
                    }
                    self.last = Some(now);
                    st.metrics.generation_tokens.fetch_add(1, Ordering::Relaxed);
                }
                Next::Event(ev)
            }
        }
    }
}

fn usage(prompt: usize, completion: usize, cached: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

async fn collect(job: Job) -> Result<Response, ApiError> {
    let Job {
        st,
        kind,
        c,
        rid,
        ids,
        rx,
        choices,
        prompt_tokens,
        want,
        tools,
    } = job;
    let st = &st;
    let mut r = Receiver {
        rx,
        start: Instant::now(),
        last: None,
        deadline: st.options.request_timeout.map(|t| Instant::now() + t),
    };
    let mut acc: Vec<Acc> = (0..choices).map(|_| Acc::default()).collect();
    // Cached prompt tokens per prompt (every choice of a prompt reports the same figure).
    let mut cached = vec![0usize; choices.div_ceil(c.n)];
    let mut open = choices;
    while open > 0 {
        let ev = match r.next(st).await {
            Next::Event(ev) => ev,
            Next::Error(e) => return Err(e),
            Next::TimedOut => {
                for &id in &ids {
                    st.handle.cancel(id);
                }
                return Err(timeout_error(st));
            }
            Next::Closed => return Err(ApiError::server("the engine ended the request early")),
        };
        let i = ev.index.min(choices - 1);
        cached[i / c.n] = cached[i / c.n].max(ev.cached_tokens);
        let a = &mut acc[i];
        if let Some(t) = ev.token {
            a.tokens += 1;
            if let (Some(lp), Some(_)) = (&ev.logprob, want) {
                match kind {
                    Kind::Chat => a.chat_lp.push(chat_logprobs(st, t, lp)),
                    Kind::Text => {
                        a.lp_offset.push(a.text.len());
                        a.lp_tokens.push(piece(st, t));
                        a.lp_values.push(lp.logprob);
                        a.lp_top.push(top_map(st, lp));
                    }
                }
            }
        }
        a.text.push_str(&ev.text);
        if ev.finish.is_some() {
            a.finish = ev.finish;
            open -= 1;
        }
    }
    let completion: usize = acc.iter().map(|a| a.tokens).sum();
    let choices: Vec<Value> = acc
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let mut finish = a.finish.as_ref().map(finish_str);
            match kind {
                Kind::Chat => {
                    let message = if let Some(t) = &tools {
                        let (m, called) = tool_message(t, &rid, i, &a.text);
                        if called {
                            finish = Some("tool_calls");
                        }
                        m
                    } else {
                        json!({"role": "assistant", "content": a.text})
                    };
                    json!({
                        "index": i,
                        "message": message,
                        "logprobs": want.map(|_| json!({"content": a.chat_lp})),
                        "finish_reason": finish,
                    })
                }
                Kind::Text => json!({
                    "index": i,
                    "text": a.text,
                    "logprobs": want.map(|_| json!({
                        "tokens": a.lp_tokens,
                        "token_logprobs": a.lp_values,
                        "top_logprobs": a.lp_top,
                        "text_offset": a.lp_offset,
                    })),
                    "finish_reason": finish,
                }),
            }
        })
        .collect();
    Ok(Json(json!({
        "id": rid,
        "object": if kind == Kind::Chat { "chat.completion" } else { "text_completion" },
        "created": st.created,
        "model": st.options.model_id,
        "system_fingerprint": null,
        "choices": choices,
        "usage": usage(prompt_tokens, completion, cached.iter().sum()),
    }))
    .into_response())
}

/// The assistant message of an answer to a request with tools, and whether it calls one.
fn tool_message(
    (spec, format): &(tools::ToolSpec, tools::Format),
    rid: &str,
    index: usize,
    text: &str,
) -> (Value, bool) {
    let (calls, content) = spec.parse_answer(*format, text);
    if calls.is_empty() {
        return (
            json!({"role": "assistant", "content": content.unwrap_or_default()}),
            false,
        );
    }
    let tag = rid.rsplit('-').next().unwrap_or("0");
    let calls: Vec<Value> = calls
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            json!({
                "id": if k == 0 { format!("call_{tag}_{index}") } else { format!("call_{tag}_{index}_{k}") },
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            })
        })
        .collect();
    (
        json!({"role": "assistant", "content": content, "tool_calls": calls}),
        true,
    )
}

fn timeout_error(st: &AppState) -> ApiError {
    ApiError::invalid(
        None,
        format!(
            "the request ran longer than the server's limit of {} s",
            st.options.request_timeout.map_or(0, |t| t.as_secs())
        ),
    )
    .with_status(StatusCode::REQUEST_TIMEOUT)
    .with_code("timeout")
}

fn stream(job: Job) -> Response {
    let Job {
        st,
        kind,
        c,
        rid,
        ids,
        rx,
        choices,
        prompt_tokens,
        want,
        tools,
    } = job;
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    let object = if kind == Kind::Chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    tokio::spawn(async move {
        let chunk = |choice: Value, usage_null: bool| {
            let mut v = json!({
                "id": rid,
                "object": object,
                "created": st.created,
                "model": st.options.model_id,
                "system_fingerprint": null,
                "choices": [choice],
            });
            if usage_null {
                v["usage"] = Value::Null;
            }
            Event::default().data(v.to_string())
        };
        let mut r = Receiver {
            rx,
            start: Instant::now(),
            last: None,
            deadline: st.options.request_timeout.map(|t| Instant::now() + t),
        };
        let mut open = choices;
        let mut started = vec![false; choices];
        let mut completion = 0usize;
        let mut cached = vec![0usize; choices.div_ceil(c.n)];
        let mut offsets = vec![0usize; choices];
        // Under the tool grammar the answer is sent whole at its end (as content or as a
        // tool call), so text is held per choice until then.
        let mut held = vec![String::new(); choices];
        while open > 0 {
            let ev = tokio::select! {
                n = r.next(&st) => n,
                _ = tx.closed() => return, // client went away: dropping `r` cancels
            };
            let ev = match ev {
                Next::Event(ev) => ev,
                Next::Error(e) => {
                    let _ = tx
                        .send(Ok(Event::default().data(e.body().to_string())))
                        .await;
                    break;
                }
                Next::TimedOut => {
                    for &id in &ids {
                        st.handle.cancel(id);
                    }
                    let _ = tx
                        .send(Ok(
                            Event::default().data(timeout_error(&st).body().to_string())
                        ))
                        .await;
                    break;
                }
                Next::Closed => break,
            };
            let i = ev.index.min(choices - 1);
            cached[i / c.n] = cached[i / c.n].max(ev.cached_tokens);
            if ev.token.is_some() {
                completion += 1;
            }
            let mut sends = Vec::new();
            if kind == Kind::Chat && !started[i] {
                started[i] = true;
                sends.push(chunk(
                    json!({"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}),
                    c.include_usage,
                ));
            }
            let lp = match (ev.token, &ev.logprob, want) {
                (Some(t), Some(lp), Some(_)) => Some(match kind {
                    Kind::Chat => json!({"content": [chat_logprobs(&st, t, lp)]}),
                    Kind::Text => {
                        json!({"tokens": [piece(&st, t)], "token_logprobs": [lp.logprob], "top_logprobs": [top_map(&st, lp)], "text_offset": [offsets[i]]})
                    }
                }),
                _ => None,
            };
            offsets[i] += ev.text.len();
            if tools.is_some() {
                held[i].push_str(&ev.text);
            }
            if tools.is_none() && (!ev.text.is_empty() || lp.is_some()) {
                let choice = match kind {
                    Kind::Chat => {
                        json!({"index": i, "delta": {"content": ev.text}, "logprobs": lp, "finish_reason": null})
                    }
                    Kind::Text => {
                        json!({"index": i, "text": ev.text, "logprobs": lp, "finish_reason": null})
                    }
                };
                sends.push(chunk(choice, c.include_usage));
            }
            if let Some(f) = &ev.finish {
                open -= 1;
                let mut finish = finish_str(f);
                if let Some(t) = &tools {
                    // The whole answer, now that it is complete: content and/or tool calls.
                    let (m, called) = tool_message(t, &rid, i, &held[i]);
                    let delta = if called {
                        finish = "tool_calls";
                        let mut calls = m["tool_calls"].clone();
                        if let Some(arr) = calls.as_array_mut() {
                            for (k, call) in arr.iter_mut().enumerate() {
                                call["index"] = json!(k);
                            }
                        }
                        json!({"content": m["content"], "tool_calls": calls})
                    } else {
                        json!({"content": m["content"]})
                    };
                    sends.push(chunk(
                        json!({"index": i, "delta": delta, "logprobs": null, "finish_reason": null}),
                        c.include_usage,
                    ));
                }
                let choice = match kind {
                    Kind::Chat => {
                        json!({"index": i, "delta": {}, "logprobs": null, "finish_reason": finish})
                    }
                    Kind::Text => {
                        json!({"index": i, "text": "", "logprobs": null, "finish_reason": finish})
                    }
                };
                sends.push(chunk(choice, c.include_usage));
            }
            for s in sends {
                if tx.send(Ok(s)).await.is_err() {
                    return;
                }
            }
        }
        if c.include_usage {
            let v = json!({
                "id": rid,
                "object": object,
                "created": st.created,
                "model": st.options.model_id,
                "system_fingerprint": null,
                "choices": [],
                "usage": usage(prompt_tokens, completion, cached.iter().sum()),
            });
            let _ = tx.send(Ok(Event::default().data(v.to_string()))).await;
        }
        let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(out))
        .keep_alive(axum::response::sse::KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
