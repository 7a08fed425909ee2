//! `mock-provider`: an OpenAI-compatible LLM server for tests and local development (providers.md §1, §8).
//!
//! Behaviour is chosen per request by the **model name**, so it works through the gateway unchanged:
//!
//! | model                | behaviour                                                                 |
//! |----------------------|---------------------------------------------------------------------------|
//! | anything else        | a normal answer (JSON or SSE)                                             |
//! | `mock-<status>`      | that HTTP status with an OpenAI error body (`mock-429` adds `Retry-After`) |
//! | `mock-slow-<ms>`     | `<ms>` between stream chunks                                              |
//! | `mock-latency-<ms>`  | `<ms>` before the response headers                                        |
//! | `mock-stall`         | headers, then nothing (stalls before the first byte of the body)          |
//! | `mock-stall-mid`     | a role and a content chunk, then nothing                                  |
//! | `mock-cut`           | a few chunks, then the connection is dropped (no `[DONE]`)                |
//! | `mock-eof`           | a few chunks, then a clean end of body without `[DONE]`                   |
//! | `mock-error-mid`     | a content chunk, then a `data: {"error": …}` event                        |
//!
//! `POST /__mock/faults` `{"deepseek": "mock-500"}` forces a fault on a provider's whole route (every model),
//! for tests of routing policies that name real models; `{"deepseek": null}` clears it.
//!
//! `POST /__mock/usage` `{"deepseek": {"prompt": 1000, "cached": 600, "completion": 200, "reasoning": 50}}` makes the
//! openai, deepseek, gemini and workers_ai routes report those token counts (in their own usage shapes; Workers AI
//! reports no cached or reasoning tokens); `{"openai": {"omit": true}}` makes the openai route report no usage at
//! all; `null` clears one.
//!
//! `GET /__mock/stats` says how many answers their caller abandoned (hung up on before they were complete), and
//! which `authorization` header each `/compat/<shape>` route (OpenAI-compatible services that differ from
//! OpenAI: `providers/compat.rs`) last received.
//!
//! `--latency-ms` and `--chunk-delay-ms` (or the `x-mock-latency-ms` / `x-mock-chunk-delay-ms` request
//! headers) set the same knobs for every request.

mod faults;
mod providers;
mod reply;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use faults::*;
use providers::*;
use reply::*;

#[derive(Parser, Debug, Clone)]
#[command(about = "Mock OpenAI-compatible provider for tests and local development")]
pub(crate) struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first line of stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Delay before every response's headers.
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Delay between stream chunks.
    #[arg(long, default_value_t = 0)]
    pub(crate) chunk_delay_ms: u64,
    /// When set, requests must carry `Authorization: Bearer <this key>`.
    #[arg(long)]
    pub(crate) api_key: Option<String>,
}

pub(crate) struct Mock {
    pub(crate) args: Args,
    pub(crate) counter: AtomicU64,
    /// Faults forced on a whole provider route (`POST /__mock/faults`), whatever model a request names.
    pub(crate) faults: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Answers whose caller hung up before they were complete, while waiting out their latency or mid-stream
    /// (`GET /__mock/stats`): how a test sees that the gateway cancelled its upstream call.
    pub(crate) abandoned: Arc<AtomicU64>,
    /// The `authorization` header each `/compat/<shape>` route last received (`None`: none was sent).
    pub(crate) last_auth: std::sync::Mutex<std::collections::HashMap<String, Option<String>>>,
    /// Token counts a provider route reports instead of its own (`POST /__mock/usage`): known usage for cost tests.
    pub(crate) usage: std::sync::Mutex<std::collections::HashMap<String, faults::Counts>>,
    /// Requests served per path (`GET /__mock/stats`'s `served`): how many calls reached the provider.
    pub(crate) served: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

pub(crate) type Shared = Arc<Mock>;

/// Counts each request to a provider route (not `/__mock/…` or `/healthz`).
async fn count_served(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/__mock") && path != "/healthz" {
        if let Ok(mut served) = state.served.lock() {
            *served.entry(path).or_default() += 1;
        }
    }
    next.run(req).await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "mock-provider listening on http://{}",
        listener.local_addr()?
    );
    let state = Arc::new(Mock {
        args,
        counter: AtomicU64::new(0),
        faults: Default::default(),
        abandoned: Arc::default(),
        last_auth: Default::default(),
        usage: Default::default(),
        served: Default::default(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/__mock/faults", post(set_faults).get(get_faults))
        .route("/__mock/stats", get(stats))
        .route("/__mock/usage", post(faults::set_usage))
        // Images an app links to, for the gateway to fetch and inline: one, a redirect to it, and not an image.
        .route(
            "/__mock/image.png",
            get(|| async { ([("content-type", "image/png")], PNG).into_response() }),
        )
        .route(
            "/__mock/image-redirect",
            get(|| async {
                (StatusCode::FOUND, [("location", "/__mock/image.png")]).into_response()
            }),
        )
        .route(
            "/__mock/not-an-image",
            get(|| async { ([("content-type", "text/html")], "<html></html>").into_response() }),
        )
        .route("/v1/models", get(openai::models))
        .route("/anthropic/v1/messages", post(anthropic::messages))
        .route(
            "/azure/openai/deployments/{deployment}/chat/completions",
            post(azure::dated),
        )
        .route("/azure/openai/v1/chat/completions", post(azure::v1))
        .route("/compat/{shape}/v1/chat/completions", post(compat::chat))
        .route("/compat/{shape}/v1/models", get(compat::models))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/images/generations", post(openai::images))
        .route("/v1/audio/transcriptions", post(openai::transcriptions))
        .route("/v1/audio/speech", post(openai::speech))
        .route(
            "/siliconflow/v1/audio/transcriptions",
            post(siliconflow::transcriptions),
        )
        .route(
            "/siliconflow/v1/images/generations",
            post(siliconflow::images),
        )
        .route("/deepseek/chat/completions", post(deepseek::chat))
        .route("/deepseek/models", get(openai::models))
        .route("/siliconflow/v1/chat/completions", post(siliconflow::chat))
        .route("/siliconflow/v1/embeddings", post(openai::embeddings))
        .route("/siliconflow/v1/models", get(openai::models))
        .route(
            "/openrouter/api/v1/chat/completions",
            post(openrouter::chat),
        )
        .route("/openrouter/api/v1/embeddings", post(openai::embeddings))
        .route("/openrouter/api/v1/models", get(openai::models))
        .route("/gemini/v1beta/models/{*action}", post(gemini::gemini))
        .route(
            "/workers-ai/client/v4/accounts/{account}/ai/run/{*model}",
            post(workers_ai::workers_ai),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_served,
        ))
        // Uploads as large as OpenAI takes (25 MB of audio), and base64 of them to Workers AI.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(state);
    // Without TCP_NODELAY each small SSE frame after the first waits for the client's delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
