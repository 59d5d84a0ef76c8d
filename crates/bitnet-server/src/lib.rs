//! `bitnet serve`: an OpenAI-compatible HTTP server over the batched engine.
//!
//! * `POST /v1/chat/completions`, `POST /v1/completions` — streaming (SSE, exactly OpenAI's
//!   chunks, `data: [DONE]`) or not, with `usage`;
//! * `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus).
//!
//! The engine runs on its own thread ([`EngineHandle`]); handlers only parse, submit and
//! relay events, so the async runtime is never blocked by a forward pass. A client that goes
//! away drops its event channel, which cancels its sequences and frees their KV blocks.
//! Module map: `params` (request fields, each error naming its parameter), `openai` (the
//! completion handlers and response shapes), `error` (OpenAI's error shape), `metrics`.

mod error;
mod metrics;
mod openai;
mod params;
mod tools;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitnet_engine::EngineHandle;
use bitnet_tokenizer::chat::ChatTemplate;
use bitnet_tokenizer::Tokenizer;
use serde_json::json;

pub use error::ApiError;
pub use metrics::Metrics;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The id clients name in `model` (also listed by `/v1/models`).
    pub model_id: String,
    /// Required `Authorization: Bearer` key for `/v1/*`, if any.
    pub api_key: Option<String>,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Longest a request may run before it is cancelled.
    pub request_timeout: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            model_id: "bitnet".into(),
            api_key: None,
            max_body_bytes: 4 << 20,
            request_timeout: Some(Duration::from_secs(600)),
        }
    }
}

/// What the server knows about the model's text side.
pub struct ModelText {
    pub tokenizer: Arc<dyn Tokenizer>,
    /// The chat format; `None` for a base model (chat messages are then joined as plain text).
    pub template: Option<ChatTemplate>,
    /// Token ids that end a choice (EOS, EOT), unless a request sets `ignore_eos`.
    pub stop_tokens: Vec<u32>,
    /// Compiles `response_format` schemas; `None` refuses structured output.
    pub grammar: Option<Arc<bitnet_engine::GrammarCompiler>>,
}

/// Shared state of the handlers.
pub struct AppState {
    pub handle: EngineHandle,
    pub text: ModelText,
    pub options: ServerOptions,
    pub metrics: Metrics,
    pub created: u64,
    draining: AtomicBool,
}

impl AppState {
    pub fn new(handle: EngineHandle, text: ModelText, options: ServerOptions) -> Arc<Self> {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Arc::new(Self {
            handle,
            text,
            options,
            metrics: Metrics::default(),
            created,
            draining: AtomicBool::new(false),
        })
    }

    /// Whether a graceful shutdown has begun (new requests get 503).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/models", get(models))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .merge(v1)
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .fallback(|req: Request| async move { ApiError::not_found(req.uri().path()) })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::server("internal error while handling the request").into_response()
        }))
        .with_state(state)
}

/// Serve `router(state)` on `listener` until `shutdown` resolves, then stop taking requests,
/// let running ones finish, and stop the engine.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let st = state.clone();
    let signal = async move {
        shutdown.await;
        st.draining.store(true, Ordering::Relaxed);
    };
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(signal)
        .await?;
    let handle = state.handle.clone();
    tokio::task::spawn_blocking(move || handle.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    Ok(())
}

async fn auth(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &st.options.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

async fn models(State(st): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": st.options.model_id,
            "object": "model",
            "created": st.created,
            "owned_by": "bitnet-rust",
            "max_model_len": st.handle.geometry().max_context,
        }]
    }))
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    if st.draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ok"})).into_response()
    }
}

async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(&st.handle.stats()),
    )
        .into_response()
}
