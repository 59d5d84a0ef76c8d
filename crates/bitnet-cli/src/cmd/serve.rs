//! `bitnet serve MODEL`: the OpenAI-compatible server (bitnet-server) over the batched engine
//! (bitnet-engine) with the CPU backend.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bitnet_engine::{CpuBackend, Engine, EngineConfig, EngineHandle};
use bitnet_server::{AppState, ModelText, ServerOptions};

use super::common::{self, LoadedExt, ModelArgs};

#[derive(clap::Args)]
#[command(after_long_help = "Examples:\n  \
    bitnet serve model.gguf --port 8080\n  \
    curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n    \
    -d '{\"model\": \"model\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}'\n\n\
    Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, \
    GET /metrics (Prometheus). Any OpenAI client works with base_url http://HOST:PORT/v1.")]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on /v1/* (also read from BITNET_API_KEY).
    #[arg(long, env = "BITNET_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Most sequences decoding at once (continuous batching); more requests wait in a queue.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub parallel: u32,
    /// Most tokens in one engine step (prompt chunks and decode tokens of all sequences).
    #[arg(short = 'b', long = "batch-size", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: u32,
    /// Memory for the paged KV cache, in MiB (f32 keys and values; the pool never exceeds
    /// what --parallel sequences of --ctx-size positions need).
    #[arg(long = "kv-cache-mib", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    pub kv_cache_mib: u32,
    /// Name clients use in `model` (default: the model file or folder name).
    #[arg(long = "model-name")]
    pub model_name: Option<String>,
    /// Seconds a request may run before it is cancelled (0 = no limit).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Largest request body in bytes.
    #[arg(long = "max-body", default_value_t = 4 << 20)]
    pub max_body: usize,
    /// Do not reuse the KV blocks of prompt prefixes seen before.
    #[arg(long = "no-prefix-cache")]
    pub no_prefix_cache: bool,
}

/// Positions per KV block.
const BLOCK: usize = 16;

pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = common::load(&args.model)?;
    let lt = loaded.require_tokenizer("serve")?;
    let template = match loaded.chat_template() {
        Ok(t) => {
            if let Some(note) = t.override_note() {
                eprintln!("note: {note}");
            }
            Some(t)
        }
        Err(e) => {
            eprintln!("note: {e}; chat messages are joined as plain text and continued");
            None
        }
    };
    // Structured output (response_format, tools): a grammar compiler over the tokenizer.
    let grammar = match loaded.grammar() {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("note: structured output and tools are unavailable: {e}");
            None
        }
    };
    let text = ModelText {
        tokenizer: lt.tokenizer.clone(),
        template,
        stop_tokens: loaded.stop_tokens(),
        grammar,
    };
    let model_id = args.model_name.clone().unwrap_or_else(|| {
        loaded
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bitnet".into())
    });
    let model = Arc::new(loaded.model);
    let ctx = loaded.context;
    let parallel = args.parallel as usize;
    let block_bytes = CpuBackend::block_bytes(&model, BLOCK);
    let budget_blocks = (args.kv_cache_mib as usize * (1 << 20)) / block_bytes.max(1);
    let want_blocks = parallel.saturating_mul(ctx.div_ceil(BLOCK));
    let n_blocks = budget_blocks.min(want_blocks);
    if n_blocks < ctx.div_ceil(BLOCK) {
        bail!(
            "--kv-cache-mib {} holds {} positions, less than one sequence of --ctx-size {ctx} \
             ({} MiB needed); raise --kv-cache-mib or lower --ctx-size",
            args.kv_cache_mib,
            budget_blocks * BLOCK,
            (ctx.div_ceil(BLOCK) * block_bytes).div_ceil(1 << 20)
        );
    }
    let batch = args.batch_size as usize;
    let backend = CpuBackend::new(model.clone(), n_blocks, BLOCK, batch, parallel, ctx)
        .context("allocating the KV cache")?;
    let config = EngineConfig {
        max_running: parallel,
        prefill_chunk: batch,
        prefix_cache: !args.no_prefix_cache,
    };
    let engine = Engine::new(backend, config.clone())?;
    let handle = EngineHandle::spawn(engine, &config, Some(text.tokenizer.clone()));
    let options = ServerOptions {
        model_id: model_id.clone(),
        api_key: args.api_key.clone(),
        max_body_bytes: args.max_body,
        request_timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
    };
    let state = AppState::new(handle, text, options);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "serving {model_id} on http://{addr}/v1 ({parallel} parallel sequences, context \
             {ctx}, KV cache {n_blocks} blocks of {BLOCK} = {} positions, {:.0} MiB){}",
            n_blocks * BLOCK,
            (n_blocks * block_bytes) as f64 / (1 << 20) as f64,
            if args.api_key.is_some() {
                ", API key required"
            } else {
                ""
            }
        );
        bitnet_server::serve(listener, state, shutdown_signal())
            .await
            .context("serving")?;
        eprintln!("shut down");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("shutting down: finishing running requests");
}
