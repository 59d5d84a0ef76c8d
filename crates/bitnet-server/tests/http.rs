//! The server end to end over loopback HTTP, on the real TinyStories 3M model: every endpoint
//! and error, streaming exactly as OpenAI sends it, greedy text equal to single-sequence
//! generation, a bounded load test with clients that disconnect, and fuzzed request bodies.

use std::sync::Arc;
use std::time::Duration;

use bitnet_engine::{CpuBackend, Engine, EngineConfig, EngineHandle};
use bitnet_generate::{generate, Detokenizer, GenerateConfig, ModelRunner, Sampler, SamplerConfig};
use bitnet_model::Model;
use bitnet_server::{AppState, ModelText, ServerOptions};
use serde_json::{json, Value};

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    model: Arc<Model>,
    tokenizer: Arc<dyn bitnet_tokenizer::Tokenizer>,
}

impl Server {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("server did not shut down")
            .unwrap()
            .unwrap();
    }
}

async fn start(options: ServerOptions, parallel: usize) -> Option<Server> {
    start_with(options, parallel, None).await
}

async fn start_with(
    options: ServerOptions,
    parallel: usize,
    template: Option<bitnet_tokenizer::chat::ChatTemplate>,
) -> Option<Server> {
    let dir = bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")?;
    let model = Arc::new(Model::load(&dir).unwrap());
    let tokenizer = bitnet_tokenizer::load_tokenizer(&dir).unwrap().tokenizer;
    let config = EngineConfig {
        max_running: parallel,
        prefill_chunk: 64,
        prefix_cache: true,
    };
    let backend = CpuBackend::new(model.clone(), 2048, 16, 256, parallel, 512).unwrap();
    let handle = EngineHandle::spawn(
        Engine::new(backend, config.clone()).unwrap(),
        &config,
        Some(tokenizer.clone()),
    );
    let text = ModelText {
        tokenizer: tokenizer.clone(),
        template,
        stop_tokens: tokenizer.special_tokens().eog.clone(),
        grammar: Some(Arc::new(
            bitnet_engine::GrammarCompiler::new(
                tokenizer.clone(),
                model.config.vocab_size,
                tokenizer.special_tokens().eos.unwrap(),
            )
            .unwrap(),
        )),
    };
    let state = AppState::new(handle, text, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bitnet_server::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Some(Server {
        base,
        stop: Some(tx),
        task,
        model,
        tokenizer,
    })
}

fn opts() -> ServerOptions {
    ServerOptions {
        model_id: "tinystories".into(),
        ..ServerOptions::default()
    }
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// Greedy text of `generate` alone for `prompt`.
fn greedy_alone(s: &Server, prompt: &str, n: usize) -> String {
    let tok = s.tokenizer.as_ref();
    let ids = tok.encode(prompt, tok.add_bos_default(), false).unwrap();
    let mut runner = ModelRunner::new(s.model.clone(), 512).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::greedy(), s.model.config.vocab_size).unwrap();
    generate(
        &mut runner,
        &mut sampler,
        &mut Detokenizer::new(tok, false),
        &ids,
        &GenerateConfig {
            max_tokens: Some(n),
            stop_tokens: tok.special_tokens().eog.clone(),
            ..Default::default()
        },
        |_| {},
    )
    .unwrap()
    .text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_greedy_text() {
    let Some(s) = start(opts(), 8).await else {
        return;
    };
    let c = reqwest::Client::new();
    let h: Value = c
        .get(format!("{}/health", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    let m: Value = c
        .get(format!("{}/v1/models", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["data"][0]["id"], "tinystories");
    assert_eq!(m["data"][0]["object"], "model");

    // Completions, greedy: the text of generate() alone, usage counted.
    let want = greedy_alone(&s, "Once upon a time", 40);
    assert!(
        want.starts_with(", there was a little girl named Lily."),
        "{want}"
    );
    let (st, r) = post(&s.base, "/v1/completions", json!({"model": "tinystories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["object"], "text_completion");
    assert_eq!(r["choices"][0]["text"], want.as_str());
    assert_eq!(r["choices"][0]["finish_reason"], "length");
    assert_eq!(r["usage"]["prompt_tokens"], 5);
    assert_eq!(r["usage"]["completion_tokens"], 40);
    assert_eq!(r["usage"]["total_tokens"], 45);
    // A prompt seen before: its full blocks of 16 come from the prefix cache. (Generated
    // tokens are cached too, so this prompt must not continue one generated above.)
    let long = "Tom and Sam went to the park with a red ball. They played all day and then they ate cake with mom.";
    let (_, r1) = post(
        &s.base,
        "/v1/completions",
        json!({"prompt": long, "max_tokens": 4, "temperature": 0}),
    )
    .await;
    let (_, r2) = post(
        &s.base,
        "/v1/completions",
        json!({"prompt": long, "max_tokens": 4, "temperature": 0}),
    )
    .await;
    assert_eq!(r1["choices"][0]["text"], r2["choices"][0]["text"]);
    assert_eq!(r1["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let pt = r2["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        r2["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
        (pt - 1) / 16 * 16
    );

    // Chat (a base model: messages are joined as text), non-streaming and streaming agree.
    let body = json!({"messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 24, "temperature": 0});
    let (st, r) = post(&s.base, "/v1/chat/completions", body.clone()).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["choices"][0]["message"]["role"], "assistant");
    let text = r["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(text, greedy_alone(&s, "Once upon a time", 24));
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    sb["stream_options"] = json!({"include_usage": true});
    let resp = c
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&sb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let fin = &chunks[chunks.len() - 2];
    assert_eq!(fin["choices"][0]["finish_reason"], "length");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 24);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));

    // Stop strings, n = 2 with a seed, logprobs.
    let (_, r) = post(
        &s.base,
        "/v1/completions",
        json!({"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": ["Lily"]}),
    )
    .await;
    assert_eq!(r["choices"][0]["text"], ", there was a little girl named ");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    let (_, r) = post(&s.base, "/v1/completions", json!({"prompt": "Once upon a time", "max_tokens": 12, "temperature": 1.0, "seed": 5, "n": 2})).await;
    assert_eq!(r["choices"].as_array().unwrap().len(), 2);
    let (_, again) = post(&s.base, "/v1/completions", json!({"prompt": "Once upon a time", "max_tokens": 12, "temperature": 1.0, "seed": 5, "n": 2})).await;
    assert_eq!(r["choices"], again["choices"], "seeded runs must repeat");
    let (_, r) = post(&s.base, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 3, "temperature": 0, "logprobs": true, "top_logprobs": 3})).await;
    let lp = &r["choices"][0]["logprobs"]["content"];
    assert_eq!(lp.as_array().unwrap().len(), 3);
    let top = lp[0]["top_logprobs"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    // Greedy: the chosen token is the most likely one, log-probabilities are ≤ 0 and sorted.
    assert_eq!(lp[0]["token"], top[0]["token"]);
    assert_eq!(lp[0]["logprob"], top[0]["logprob"]);
    let l: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
    assert!(l[0] <= 0.0 && l[0] >= l[1] && l[1] >= l[2], "{l:?}");
    let (_, r) = post(&s.base, "/v1/completions", json!({"prompt": [1, 403, 407, 261, 378], "max_tokens": 6, "temperature": 0, "logprobs": 2})).await;
    assert_eq!(
        r["choices"][0]["logprobs"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert!(r["choices"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with(", there was"));

    // Several prompts in one completions request: choices prompt by prompt, n per prompt,
    // each prompt's greedy text what it gets alone; streaming carries the same.
    let prompts = ["Once upon a time", "Tom had a big red ball."];
    let alone: Vec<String> = prompts.iter().map(|p| greedy_alone(&s, p, 10)).collect();
    let batch = json!({"prompt": prompts, "max_tokens": 10, "temperature": 0, "n": 2});
    let (st, r) = post(&s.base, "/v1/completions", batch.clone()).await;
    assert_eq!(st, 200, "{r}");
    let ch = r["choices"].as_array().unwrap();
    assert_eq!(ch.len(), 4, "{r}");
    for (i, c) in ch.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["text"], alone[i / 2].as_str(), "choice {i}");
    }
    let pt: usize = prompts
        .iter()
        .map(|p| {
            s.tokenizer
                .encode(p, s.tokenizer.add_bos_default(), false)
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(r["usage"]["prompt_tokens"], pt);
    assert_eq!(r["usage"]["completion_tokens"], 40);
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            s.tokenizer
                .encode(p, s.tokenizer.add_bos_default(), false)
                .unwrap()
        })
        .collect();
    let (_, r) = post(
        &s.base,
        "/v1/completions",
        json!({"prompt": ids, "max_tokens": 10, "temperature": 0}),
    )
    .await;
    assert_eq!(r["choices"][1]["text"], alone[1].as_str(), "{r}");
    let mut sb = batch.clone();
    sb["stream"] = json!(true);
    let body = c
        .post(format!("{}/v1/completions", s.base))
        .json(&sb)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let mut texts = vec![String::new(); 4];
    let mut finished = [false; 4];
    for d in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(d).unwrap();
        let c0 = &v["choices"][0];
        let i = c0["index"].as_u64().unwrap() as usize;
        texts[i].push_str(c0["text"].as_str().unwrap_or(""));
        if !c0["finish_reason"].is_null() {
            finished[i] = true;
        }
    }
    assert_eq!(finished, [true; 4]);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(t, &alone[i / 2], "streamed choice {i}");
    }

    // A forced tool call, streamed: the call arrives as `delta.tool_calls` before a
    // `tool_calls` finish, and its arguments parse.
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"], "additionalProperties": false}}}]);
    let tb = json!({"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools,
        "tool_choice": "required", "max_tokens": 60, "temperature": 0, "stream": true});
    let body = c
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&tb)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .unwrap_or_else(|| panic!("no tool call in {body}"));
    assert_eq!(call[0]["index"], 0);
    assert_eq!(call[0]["type"], "function");
    assert_eq!(call[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(
        chunks[chunks.len() - 1]["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let metrics = c
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "bitnet_requests_total",
        "bitnet_kv_blocks_used 0",
        "bitnet_time_to_first_token_seconds_bucket",
        "bitnet_inter_token_latency_seconds_count",
        "bitnet_queue_depth",
        "bitnet_running_sequences",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_openai_shape_and_status() {
    let Some(s) = start(
        ServerOptions {
            api_key: Some("sekret".into()),
            max_body_bytes: 64 << 10,
            ..opts()
        },
        4,
    )
    .await
    else {
        return;
    };
    let c = reqwest::Client::new();
    let call = |body: String, key: Option<&str>| {
        let mut r = c
            .post(format!("{}/v1/completions", s.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move {
            let r = r.send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let ok = Some("sekret");
    // (body, API key, status, part of the message, param)
    type Case<'a> = (String, Option<&'a str>, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            json!({"prompt": "x"}).to_string(),
            None,
            401,
            "Incorrect API key",
            None,
        ),
        (
            json!({"prompt": "x"}).to_string(),
            Some("wrong"),
            401,
            "Incorrect API key",
            None,
        ),
        ("{not json".into(), ok, 400, "parse the JSON", None),
        ("[1, 2]".into(), ok, 400, "JSON object", None),
        (
            json!({"prompt": "x", "temperature": "hot"}).to_string(),
            ok,
            400,
            "expected a number",
            Some("temperature"),
        ),
        (
            json!({"prompt": "x", "top_p": 2}).to_string(),
            ok,
            400,
            "not between",
            Some("top_p"),
        ),
        (
            json!({"prompt": "x", "max_tokens": -1}).to_string(),
            ok,
            400,
            "not between",
            Some("max_tokens"),
        ),
        (
            json!({"prompt": "x", "n": 9}).to_string(),
            ok,
            400,
            "not between",
            Some("n"),
        ),
        (
            json!({"prompt": "x", "stop": [""]}).to_string(),
            ok,
            400,
            "empty",
            Some("stop"),
        ),
        (
            json!({"prompt": "x", "logit_bias": {"abc": 1}}).to_string(),
            ok,
            400,
            "token id",
            Some("logit_bias"),
        ),
        (
            json!({"prompt": [99999]}).to_string(),
            ok,
            400,
            "below 512",
            Some("prompt"),
        ),
        (
            json!({"prompt": {"a": 1}}).to_string(),
            ok,
            400,
            "expected a string",
            Some("prompt"),
        ),
        (json!({}).to_string(), ok, 400, "missing", Some("prompt")),
        (
            json!({"prompt": ["a", []]}).to_string(),
            ok,
            400,
            "prompt 1 is empty",
            Some("prompt"),
        ),
        (
            json!({"prompt": ["a", 7]}).to_string(),
            ok,
            400,
            "'prompt[1]': expected a string or an array of token ids",
            Some("prompt"),
        ),
        (
            json!({"prompt": ["a", [1, 99999]]}).to_string(),
            ok,
            400,
            "below 512",
            Some("prompt"),
        ),
        (
            json!({"prompt": ["a", "b", "c", "d", "e"], "n": 2}).to_string(),
            ok,
            400,
            "5 prompts × n = 10 choices; this server runs at most 4 sequences at once",
            Some("prompt"),
        ),
        (
            json!({"prompt": "x", "model": "gpt-4o"}).to_string(),
            ok,
            404,
            "does not exist",
            Some("model"),
        ),
        (
            json!({"prompt": "x", "tools": [{"type": "function"}]}).to_string(),
            ok,
            400,
            "chat completions feature",
            Some("tools"),
        ),
        (
            json!({"prompt": "x", "response_format": {"type": "json_schema"}}).to_string(),
            ok,
            400,
            "needs a 'json_schema'",
            Some("response_format"),
        ),
        (
            json!({"prompt": "x", "response_format": {"type": "yaml"}}).to_string(),
            ok,
            400,
            "expected",
            Some("response_format"),
        ),
        (
            json!({"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "frob"}}}}).to_string(),
            ok,
            400,
            "cannot be used",
            Some("response_format"),
        ),
        (
            json!({"prompt": "once ".repeat(600)}).to_string(),
            ok,
            400,
            "context",
            None,
        ),
        (
            json!({"prompt": "x".repeat(70_000)}).to_string(),
            ok,
            413,
            "exceeds",
            None,
        ),
    ];
    for (body, key, status, msg, param) in &cases {
        let (st, v) = call(body.clone(), *key).await;
        let short: String = body.chars().take(60).collect();
        assert_eq!(st, *status, "{short}: {v}");
        let e = &v["error"];
        assert!(e["message"].as_str().unwrap().contains(msg), "{short}: {v}");
        assert!(e["type"].is_string(), "{v}");
        assert_eq!(e["param"].as_str(), *param, "{short}: {v}");
        assert!(e.as_object().unwrap().contains_key("code"));
    }
    let (st, v) = call(json!({"prompt": "once ".repeat(600)}).to_string(), ok).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("context_length_exceeded"))
    );
    // Chat-specific errors.
    for (body, param) in [
        (json!({"messages": []}), "messages"),
        (json!({"messages": "hi"}), "messages"),
        (
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}),
            "top_logprobs",
        ),
    ] {
        let r = c
            .post(format!("{}/v1/chat/completions", s.base))
            .bearer_auth("sekret")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    // A right key works; health needs none.
    let (st, _) = call(json!({"prompt": "x", "max_tokens": 1}).to_string(), ok).await;
    assert_eq!(st, 200);
    assert_eq!(
        c.get(format!("{}/health", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

/// Tiny deterministic generator for the load and fuzz tests.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_test_64_streams_with_disconnects() {
    let Some(s) = start(opts(), 64).await else {
        return;
    };
    let base = Arc::new(s.base.clone());
    let total = 256;
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    let mut rng = Lcg(11);
    for i in 0..total {
        let words = 1 + rng.next() % 60;
        let max_tokens = 1 + rng.next() % 48;
        let disconnect = i % 8 == 3;
        let prompt = "Once upon a time there was a dog. ".repeat(words as usize / 8 + 1);
        let base = base.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let body = json!({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": i, "stream": true});
            let mut resp = reqwest::Client::new()
                .post(format!("{base}/v1/completions"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let mut body = String::new();
            while let Some(chunk) = resp.chunk().await.unwrap() {
                body.push_str(&String::from_utf8_lossy(&chunk));
                if disconnect && body.matches("data: ").count() >= 2 {
                    return (status, None); // drop the response mid-stream
                }
            }
            (status, Some(body))
        }));
    }
    let t0 = std::time::Instant::now();
    let mut finished = 0;
    for t in tasks {
        let (status, body) = tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("request hung")
            .unwrap();
        assert_eq!(status, 200);
        if let Some(body) = body {
            let data = sse_data(&body);
            assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
            let fin: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
            assert!(fin["choices"][0]["finish_reason"].is_string(), "{fin}");
            finished += 1;
        }
    }
    assert_eq!(finished, total - total / 8);
    eprintln!("{total} requests in {:.1} s", t0.elapsed().as_secs_f64());
    // Every block is free once the cancelled sequences are reaped.
    let c = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = c
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("bitnet_kv_blocks_used 0\n") && m.contains("bitnet_running_sequences 0\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "blocks still used:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_bodies_never_get_a_5xx() {
    let Some(s) = start(opts(), 8).await else {
        return;
    };
    let seeds = [
        json!({"prompt": "Once upon", "max_tokens": 2, "temperature": 0.5, "top_p": 0.9, "stop": ["x"], "logprobs": 2, "n": 2, "seed": 1}).to_string(),
        json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": 2, "logit_bias": {"5": -100}, "stream": true}).to_string(),
    ];
    let c = reqwest::Client::new();
    let mut rng = Lcg(5);
    let mut counts = [0usize; 6];
    for i in 0..400 {
        let seed = &seeds[i % 2];
        let mut b = seed.clone().into_bytes();
        for _ in 0..1 + rng.next() % 4 {
            if b.is_empty() {
                break;
            }
            let at = (rng.next() as usize) % b.len();
            match rng.next() % 4 {
                0 => b[at] = (rng.next() % 256) as u8,
                1 => {
                    b.remove(at);
                }
                2 => b.insert(at, b"{}[]\",:-0123456789.e"[(rng.next() % 20) as usize]),
                _ => b.truncate(at),
            }
        }
        let path = if i % 2 == 0 {
            "/v1/completions"
        } else {
            "/v1/chat/completions"
        };
        let r = c
            .post(format!("{}{path}", s.base))
            .body(b)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert!(st < 500, "status {st}");
        counts[(st / 100) as usize] += 1;
        let _ = r.bytes().await;
    }
    // Both answers happen: some mutations stay valid, most do not.
    assert!(counts[2] > 0 && counts[4] > 0, "{counts:?}");
    assert_eq!(
        c.get(format!("{}/health", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

/// A model whose chat template renders tools itself in the Hermes format: the tools go
/// through the template, a required call is constrained to `<tool_call>{...}</tool_call>`
/// and comes back as OpenAI `tool_calls` (whole and streamed); earlier calls and tool
/// results render back through the template; `auto` leaves the answer free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_hermes_tool_calls() {
    let t = bitnet_tokenizer::chat::ChatTemplate::from_jinja(
        bitnet_testdata::HERMES_STYLE_TEMPLATE,
        "",
        "",
    )
    .unwrap();
    let Some(s) = start_with(opts(), 4, Some(t)).await else {
        return;
    };
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"], "additionalProperties": false}}}]);
    // (One tool: this tokenizer has 512 pieces, the template's text alone is ~300 tokens of
    // the model's 512-token context.)
    let ask = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let body = json!({"messages": ask, "tools": tools, "max_tokens": 120, "temperature": 0,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
    let (st, r) = post(&s.base, "/v1/chat/completions", body.clone()).await;
    assert_eq!(st, 200, "{r}");
    let ch = &r["choices"][0];
    assert_eq!(ch["finish_reason"], "tool_calls", "{r}");
    let call = &ch["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(
        args["city"].as_str().is_some_and(|c| c.len() <= 12),
        "{args}"
    );
    assert!(ch["message"]["content"].is_null(), "{r}");
    // The prompt carried the tools: it is longer than the same conversation without them.
    let (_, plain) = post(
        &s.base,
        "/v1/chat/completions",
        json!({"messages": ask, "max_tokens": 1, "temperature": 0}),
    )
    .await;
    assert!(r["usage"]["prompt_tokens"].as_u64() > plain["usage"]["prompt_tokens"].as_u64());

    // Streamed: one tool_calls delta with the same call, finish tool_calls.
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&sb)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 1, "{text}");
    assert_eq!(calls[0][0]["function"], call["function"]);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // The call and its result sent back render through the template.
    let mut back = ask.as_array().unwrap().clone();
    back.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
    back.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "sunny"}));
    let (st, r) = post(
        &s.base,
        "/v1/chat/completions",
        json!({"messages": back, "tools": tools, "max_tokens": 8, "temperature": 0}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    // `auto`: unconstrained; the story model writes text, returned as content.
    let (st, r) = post(
        &s.base,
        "/v1/chat/completions",
        json!({"messages": ask, "tools": tools, "max_tokens": 8, "temperature": 0}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert!(r["choices"][0]["message"]["content"].is_string(), "{r}");
    assert_ne!(r["choices"][0]["finish_reason"], "tool_calls");
    s.stop().await;
}
