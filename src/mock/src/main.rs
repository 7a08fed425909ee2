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
//! `--latency-ms` and `--chunk-delay-ms` (or the `x-mock-latency-ms` / `x-mock-chunk-delay-ms` request
//! headers) set the same knobs for every request.

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

#[derive(Parser, Debug, Clone)]
#[command(about = "Mock OpenAI-compatible provider for tests and local development")]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first line of stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Delay before every response's headers.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Delay between stream chunks.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// When set, requests must carry `Authorization: Bearer <this key>`.
    #[arg(long)]
    api_key: Option<String>,
}

struct Mock {
    args: Args,
    counter: AtomicU64,
    /// Faults forced on a whole provider route (`POST /__mock/faults`), whatever model a request names.
    faults: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

type Shared = Arc<Mock>;

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
    });
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/__mock/faults", post(set_faults).get(get_faults))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/deepseek/chat/completions", post(deepseek_chat))
        .route("/deepseek/models", get(models))
        .route("/siliconflow/v1/chat/completions", post(siliconflow_chat))
        .route("/siliconflow/v1/embeddings", post(embeddings))
        .route("/siliconflow/v1/models", get(models))
        .route("/openrouter/api/v1/chat/completions", post(openrouter_chat))
        .route("/openrouter/api/v1/embeddings", post(embeddings))
        .route("/openrouter/api/v1/models", get(models))
        .route("/gemini/v1beta/models/{*action}", post(gemini))
        .route(
            "/workers-ai/client/v4/accounts/{account}/ai/run/{*model}",
            post(workers_ai),
        )
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

/// What the model name (and knobs) ask this request to do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Status(u16),
    Stall,
    StallMid,
    Cut,
    Eof,
    ErrorMid,
}

struct Plan {
    fault: Fault,
    latency_ms: u64,
    chunk_delay_ms: u64,
}

/// `POST /__mock/faults` with `{"deepseek": "mock-500", "openai": null}`: from now on every request to that
/// provider's route behaves as if it named that fault model (`null` clears it); `{}` with `?reset` clears all.
async fn set_faults(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    Json(body): Json<Value>,
) -> Response {
    let Ok(mut faults) = state.faults.lock() else {
        return error_response(500, "fault table poisoned", "server_error", None);
    };
    if query.as_deref() == Some("reset") {
        faults.clear();
    }
    for (route, fault) in body.as_object().into_iter().flatten() {
        match fault.as_str() {
            Some(f) => faults.insert(route.clone(), f.to_owned()),
            None => faults.remove(route),
        };
    }
    Json(json!(*faults)).into_response()
}

async fn get_faults(State(state): State<Shared>) -> Response {
    match state.faults.lock() {
        Ok(f) => Json(json!(*f)).into_response(),
        Err(_) => error_response(500, "fault table poisoned", "server_error", None),
    }
}

/// The plan for a request to `route` (`openai`, `deepseek`, `siliconflow`, `openrouter`, `gemini`,
/// `workers_ai`): a fault forced on the route wins over the model name.
/// Waits the plan's latency before returning it, so every route delays its response headers alike.
async fn plan(model: &str, headers: &HeaderMap, state: &Mock, route: &str) -> Plan {
    let forced = state.faults.lock().ok().and_then(|f| f.get(route).cloned());
    let plan = plan_for(forced.as_deref().unwrap_or(model), headers, &state.args);
    if plan.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
    }
    plan
}

fn plan_for(model: &str, headers: &HeaderMap, args: &Args) -> Plan {
    let header_ms = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut p = Plan {
        fault: Fault::None,
        latency_ms: header_ms("x-mock-latency-ms").unwrap_or(args.latency_ms),
        chunk_delay_ms: header_ms("x-mock-chunk-delay-ms").unwrap_or(args.chunk_delay_ms),
    };
    let Some(rest) = model.strip_prefix("mock-") else {
        return p;
    };
    match rest {
        "stall" => p.fault = Fault::Stall,
        "stall-mid" => p.fault = Fault::StallMid,
        "cut" => p.fault = Fault::Cut,
        "eof" => p.fault = Fault::Eof,
        "error-mid" => p.fault = Fault::ErrorMid,
        _ => {
            if let Some(ms) = rest.strip_prefix("slow-").and_then(|v| v.parse().ok()) {
                p.chunk_delay_ms = ms;
            } else if let Some(ms) = rest.strip_prefix("latency-").and_then(|v| v.parse().ok()) {
                p.latency_ms = ms;
            } else if let Ok(status @ 400..=599) = rest.parse::<u16>() {
                p.fault = Fault::Status(status);
            }
        }
    }
    p
}

fn error_response(status: u16, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// OpenAI's bodies for each status (providers.md §1.5).
fn fault_response(status: u16, model: &str) -> Response {
    let mut resp = match status {
        401 => error_response(
            401,
            "Incorrect API key provided: sk-abc***xyz.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        404 => error_response(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => error_response(
            429,
            "Rate limit reached for requests. Please try again in 1s.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        503 => error_response(
            503,
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
        ),
        s if s >= 500 => error_response(
            s,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        s => error_response(
            s,
            "Invalid request (mock fault).",
            "invalid_request_error",
            None,
        ),
    };
    if status == 429 {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    resp
}

/// The 401 to send when `--api-key` is set and the request does not carry it.
fn auth_failure(state: &Mock, headers: &HeaderMap) -> Option<Response> {
    let expected = state.args.api_key.as_ref()?;
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (presented != Some(expected.as_str())).then(|| fault_response(401, ""))
}

async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = auth_failure(&state, &headers) {
        return r;
    }
    let data: Vec<Value> = ["gpt-4o-mini", "gpt-6-luna", "text-embedding-3-small"]
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1686935002, "owned_by": "mock"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The words of the reply: deterministic, so tests can assert on them.
fn reply_words(body: &Value) -> Vec<String> {
    let last = body["messages"].as_array().and_then(|m| m.last());
    if let Some(m) = last.filter(|m| m["role"] == "tool") {
        let said = m["content"].as_str().unwrap_or("");
        return format!("The tool said: {said}")
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect();
    }
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        })
        .unwrap_or_default();
    let echo: String = last_user.chars().take(60).collect();
    format!("This is the mock provider answering: {echo}")
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect()
}

fn prompt_tokens(body: &Value) -> u64 {
    let chars: usize = body["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| m["content"].to_string().len() + 12).sum())
        .unwrap_or(0);
    (chars as u64).div_ceil(4)
}

/// The request's JSON body, once its key is checked; otherwise the error to send.
fn accept(state: &Mock, headers: &HeaderMap, body: &[u8]) -> Result<Value, Box<Response>> {
    if let Some(r) = auth_failure(state, headers) {
        return Err(Box::new(r));
    }
    serde_json::from_slice::<Value>(body).map_err(|_| {
        Box::new(error_response(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        ))
    })
}

async fn chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if model.is_empty() || !body["messages"].is_array() {
        return error_response(
            400,
            "`model` and `messages` are required.",
            "invalid_request_error",
            None,
        );
    }
    let plan = plan(&model, &headers, &state, "openai").await;
    if let Fault::Status(s) = plan.fault {
        return fault_response(s, &model);
    }
    let id = format!(
        "chatcmpl-mock{}",
        state.counter.fetch_add(1, Ordering::Relaxed)
    );
    let words = reply_words(&body);
    let usage = json!({"prompt_tokens": prompt_tokens(&body), "completion_tokens": words.len(),
        "total_tokens": prompt_tokens(&body) + words.len() as u64,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}});
    if body["stream"] == true {
        let include_usage = body["stream_options"]["include_usage"] == true;
        return stream_response(id, model, words, usage, include_usage, plan);
    }
    if plan.fault == Fault::Stall {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Some(message) = tool_turn(&body, "call_mock_1") {
        return Json(json!({"id": id, "object": "chat.completion", "created": now_secs(), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": "tool_calls"}], "usage": usage}))
        .into_response();
    }
    Json(json!({
        "id": id, "object": "chat.completion", "created": now_secs(), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat(), "refusal": null, "annotations": []},
            "logprobs": null, "finish_reason": "stop"}],
        "usage": usage, "system_fingerprint": "fp_mock"
    }))
    .into_response()
}

/// The OpenAI chunk sequence (providers.md §1.4), shaped by the fault.
fn stream_response(
    id: String,
    model: String,
    words: Vec<String>,
    usage: Value,
    include_usage: bool,
    plan: Plan,
) -> Response {
    let created = now_secs();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut events: Vec<Value> = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        events.push(
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock", "choices": [], "usage": usage}),
        );
    }
    sse_response(Vec::new(), &events, plan)
}

/// The events as SSE frames (after `prefix`, e.g. comments), ending in `[DONE]`, shaped by the plan's fault
/// and paced by its chunk delay.
fn sse_response(prefix: Vec<Bytes>, events: &[Value], plan: Plan) -> Response {
    // Faults count events after the prefix: `mock-stall-mid` sends a role and a content chunk on every route.
    let pre = prefix.len();
    let mut frames: Vec<Result<Bytes, std::io::Error>> = prefix.into_iter().map(Ok).collect();
    frames.extend(
        events
            .iter()
            .map(|e| Ok(Bytes::from(format!("data: {e}\n\n")))),
    );
    frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    let stall = Err(std::io::Error::other("stall"));
    match plan.fault {
        Fault::Stall => frames = vec![stall],
        Fault::StallMid => {
            frames.truncate(pre + 2);
            frames.push(stall);
        }
        Fault::Cut => {
            frames.truncate(pre + 3);
            frames.push(Err(std::io::Error::other("connection cut by mock")));
        }
        Fault::Eof => frames.truncate(pre + 3),
        Fault::ErrorMid => {
            frames.truncate(pre + 2);
            let err = json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}});
            frames.push(Ok(Bytes::from(format!("data: {err}\n\n"))));
        }
        Fault::None | Fault::Status(_) => {}
    }
    let delay = plan.chunk_delay_ms;
    let body = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        if i > 0 && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        match frame {
            Err(e) if e.to_string() == "stall" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(e)
            }
            // Let what was sent reach the client before the connection drops.
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(e)
            }
            other => other,
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn embeddings(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if let Fault::Status(s) = plan(&model, &headers, &state, "openai").await.fault {
        return fault_response(s, &model);
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        _ => return error_response(400, "`input` is required.", "invalid_request_error", None),
    };
    let base64 = body["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let v = fake_embedding(text);
            let embedding = if base64 {
                json!(base64_f32(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|t| (t.len() as u64).div_ceil(4)).sum();
    Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
        .into_response()
}

/// Eight deterministic dimensions from the text (FNV-1a), so equal inputs embed equally.
fn fake_embedding(text: &str) -> Vec<f64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    (0..8)
        .map(|i| {
            for b in text.bytes().chain([i as u8]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            ((h % 2000) as f64 / 1000.0) - 1.0
        })
        .collect()
}

/// `encoding_format: "base64"`: little-endian float32s, base64-encoded (providers.md §1.6).
fn base64_f32(values: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// DeepSeek's `/chat/completions` (providers.md §2): UUID ids, thinking on by default (`reasoning_content`),
/// blank lines before queued JSON answers, `: keep-alive` before stream events, usage on the finish chunk,
/// its own error bodies, and `mock-insufficient` ending with `insufficient_system_resource`.
async fn deepseek_chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if !model.starts_with("deepseek-") && !model.starts_with("mock") {
        return error_response(
            400,
            "Model Not Exist",
            "invalid_request_error",
            Some("invalid_request_error"),
        );
    }
    let plan = plan(&model, &headers, &state, "deepseek").await;
    if let Fault::Status(status) = plan.fault {
        return match status {
            402 => error_response(
                402,
                "Insufficient Balance",
                "unknown_error",
                Some("invalid_request_error"),
            ),
            s => fault_response(s, &model),
        };
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let id = format!("b1e2c3d4-0000-4000-8000-{n:012}");
    let thinking = body["thinking"]["type"] != "disabled";
    let words = reply_words(&body);
    let thoughts: Vec<String> = if thinking {
        ["Let ", "me ", "think."].map(String::from).to_vec()
    } else {
        vec![]
    };
    let prompt = prompt_tokens(&body);
    let completion = (words.len() + thoughts.len()) as u64;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": thoughts.len()},
        "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": prompt});
    let created = now_secs();
    let finish = if model == "mock-insufficient" {
        "insufficient_system_resource"
    } else {
        "stop"
    };
    if body["stream"] != true {
        let mut message = json!({"role": "assistant", "content": words.concat()});
        let mut finish = finish;
        if let Some(call) = tool_turn(&body, "call_00_IhCAliIHtM9gKpgfqbBV9873") {
            // DeepSeek needs this turn's reasoning back in later requests (providers.md §2.2).
            if body["messages"].as_array().into_iter().flatten().any(|m| {
                m["role"] == "assistant"
                    && m.get("tool_calls").is_some()
                    && m.get("reasoning_content").is_none()
            }) {
                return error_response(
                    400,
                    "The `reasoning_content` in the thinking mode must be passed back to the API.",
                    "invalid_request_error",
                    Some("invalid_request_error"),
                );
            }
            message = call;
            finish = "tool_calls";
        }
        if thinking {
            message["reasoning_content"] = json!(thoughts.concat());
        }
        let answer = json!({"id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage, "system_fingerprint": "fp_mock_ds"});
        // Queued requests get blank lines before the JSON (providers.md §2.6).
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(format!("\n\n{answer}")))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock_ds", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": usage})
    };
    let first = if thinking {
        json!({"role": "assistant", "content": null, "reasoning_content": ""})
    } else {
        json!({"role": "assistant", "content": ""})
    };
    let mut events = vec![chunk(first, Value::Null, Value::Null)];
    events.extend(thoughts.iter().map(|t| {
        chunk(
            json!({"content": null, "reasoning_content": t}),
            Value::Null,
            Value::Null,
        )
    }));
    events.extend(words.iter().map(|w| {
        chunk(
            json!({"content": w, "reasoning_content": null}),
            Value::Null,
            Value::Null,
        )
    }));
    let include_usage = body["stream_options"]["include_usage"] == true;
    events.push(chunk(
        json!({"content": "", "reasoning_content": null}),
        json!(finish),
        if include_usage { usage } else { Value::Null },
    ));
    sse_response(vec![Bytes::from_static(b": keep-alive\n\n")], &events, plan)
}

/// A raw JSON response with a status (SiliconFlow's error bodies are not OpenAI-shaped, some are bare strings).
fn raw_json(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body.clone())).into_response()
}

/// SiliconFlow's `/v1/chat/completions` (providers.md §5): 32-hex ids, no `logprobs`, `eos` finishes for
/// `mock-eos`, cumulative usage on every stream chunk, and its own error bodies.
async fn siliconflow_chat(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if auth_failure(&state, &headers).is_some() {
        return raw_json(401, &json!("Invalid token"));
    }
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if !model.contains('/') && !model.starts_with("mock") {
        return raw_json(
            400,
            &json!({"code": 20012, "message": "Model does not exist. Please check it carefully.", "data": null}),
        );
    }
    let plan = plan(&model, &headers, &state, "siliconflow").await;
    match plan.fault {
        Fault::Status(402) => {
            return raw_json(
                402,
                &json!({"code": 30001, "message": "Sorry, your account balance is insufficient", "data": null}),
            )
        }
        Fault::Status(503) => {
            return raw_json(
                503,
                &json!({"code": 50505, "message": "Model service overloaded. Please try again later.", "data": null}),
            )
        }
        Fault::Status(s) => return fault_response(s, &model),
        _ => {}
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let id = format!("019bdaa55225ef854b320e9b{n:08x}");
    let words = reply_words(&body);
    let prompt = prompt_tokens(&body);
    let finish = if model == "mock-eos" { "eos" } else { "stop" };
    let created = now_secs();
    let usage_at = |done: usize| json!({"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done as u64});
    if body["stream"] != true {
        let (message, finish) = match tool_turn(&body, "019bda90bb06ea1f88f140889ff0916b") {
            Some(call) => (call, "tool_calls"),
            None => (
                json!({"role": "assistant", "content": words.concat(), "reasoning_content": null}),
                finish,
            ),
        };
        return Json(
            json!({"id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage_at(words.len()), "system_fingerprint": ""}),
        )
        .into_response();
    }
    let chunk = |delta: Value, finish: Value, done: usize| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "system_fingerprint": "", "usage": usage_at(done)})
    };
    let mut events = vec![chunk(
        json!({"content": "", "reasoning_content": null, "role": "assistant"}),
        Value::Null,
        0,
    )];
    let last = words.len().saturating_sub(1);
    for (i, w) in words.iter().enumerate() {
        let f = if i == last {
            json!(finish)
        } else {
            Value::Null
        };
        events.push(chunk(
            json!({"content": w, "reasoning_content": null}),
            f,
            i + 1,
        ));
    }
    sse_response(Vec::new(), &events, plan)
}

/// OpenRouter's `/api/v1/chat/completions` (providers.md §4): `gen-` ids, a `provider` field,
/// `native_finish_reason`, `: OPENROUTER PROCESSING` comments, a usage chunk on every stream, the mid-stream
/// error chunk for `mock-error-mid`, and errors with numeric codes.
async fn openrouter_chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if auth_failure(&state, &headers).is_some() {
        return raw_json(
            401,
            &json!({"error": {"message": "No auth credentials found", "code": 401}}),
        );
    }
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let mut plan = plan(&model, &headers, &state, "openrouter").await;
    if let Fault::Status(status) = plan.fault {
        let message = match status {
            402 => "This request requires more credits, or fewer max_tokens.",
            429 => "Rate limit exceeded",
            _ => "Provider returned error",
        };
        let mut r = raw_json(
            status,
            &json!({"error": {"message": message, "code": status}}),
        );
        if status == 429 {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("2"));
        }
        return r;
    }
    // The referer and title headers come back in the answer, so tests can see them arrive.
    let attribution = json!({"referer": headers.get("http-referer").and_then(|v| v.to_str().ok()),
        "title": headers.get("x-openrouter-title").and_then(|v| v.to_str().ok())});
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let id = format!("gen-1779358422-mock{n}");
    let words = reply_words(&body);
    let prompt = prompt_tokens(&body);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": words.len(), "total_tokens": prompt + words.len() as u64,
        "cost": 0.000075, "is_byok": false, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}});
    let created = now_secs();
    if body["stream"] != true {
        let (message, finish) = match tool_turn(&body, "call_or_1") {
            Some(call) => (call, "tool_calls"),
            None => (
                json!({"role": "assistant", "content": words.concat(), "refusal": null, "reasoning": null}),
                "stop",
            ),
        };
        return Json(json!({"id": id, "object": "chat.completion", "created": created, "model": model, "provider": "MockProvider",
            "choices": [{"index": 0, "logprobs": null, "finish_reason": finish, "native_finish_reason": finish,
                "message": message}],
            "usage": usage, "attribution": attribution}))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "provider": "MockProvider",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if plan.fault == Fault::ErrorMid {
        plan.fault = Fault::None;
        events.push(chunk(
            json!({"role": "assistant", "content": words[0]}),
            Value::Null,
        ));
        events.push(json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "provider": "MockProvider",
            "error": {"code": 429, "message": "Rate limit exceeded", "metadata": {"error_type": "rate_limit_exceeded"}},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}));
        let frames = vec![Bytes::from_static(b": OPENROUTER PROCESSING\n\n")];
        return sse_response_without_done(frames, &events, plan);
    }
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"role": "assistant", "content": w}), Value::Null)),
    );
    events.push(chunk(
        json!({"role": "assistant", "content": ""}),
        json!("stop"),
    ));
    events.push(json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "provider": "MockProvider",
        "choices": [], "usage": usage}));
    let comments = vec![
        Bytes::from_static(b": OPENROUTER PROCESSING\n\n"),
        Bytes::from_static(b": OPENROUTER PROCESSING\n\n"),
    ];
    sse_response(comments, &events, plan)
}

/// Like [`sse_response`], for streams that end without `[DONE]` (OpenRouter's mid-stream error).
fn sse_response_without_done(prefix: Vec<Bytes>, events: &[Value], plan: Plan) -> Response {
    let mut frames: Vec<Bytes> = prefix;
    frames.extend(events.iter().map(|e| Bytes::from(format!("data: {e}\n\n"))));
    let delay = plan.chunk_delay_ms;
    let body = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        if i > 0 && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Ok::<_, std::io::Error>(frame)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A google.rpc.Status error body.
fn google_error(status: u16, grpc: &str, message: &str, details: Value) -> Response {
    raw_json(
        status,
        &json!({"error": {"code": status, "message": message, "status": grpc, "details": details}}),
    )
}

/// Gemini's native API (providers.md §3): `models/{m}:generateContent`, `:streamGenerateContent?alt=sse`
/// (CRLF framing, no `[DONE]`), `:batchEmbedContents`; `x-goog-api-key` or `key=`; function calls with thought
/// signatures that must come back in later turns; `mock-blocked` for a blocked prompt; google.rpc errors.
async fn gemini(
    State(state): State<Shared>,
    Path(action): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(expected) = &state.args.api_key {
        let header = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok());
        let query_key = query
            .as_deref()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")));
        if header.or(query_key) != Some(expected.as_str()) {
            let details = json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]);
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                details,
            );
        }
    }
    let Some((model, verb)) = action.split_once(':') else {
        return google_error(404, "NOT_FOUND", "Method not found.", json!([]));
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
            json!([]),
        );
    };
    let plan = plan(model, &headers, &state, "gemini").await;
    match plan.fault {
        Fault::Status(429) => {
            let details = json!([{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}]);
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan.",
                details,
            );
        }
        Fault::Status(404) => {
            return google_error(
                404,
                "NOT_FOUND",
                &format!("models/{model} is not found for API version v1beta."),
                json!([]),
            )
        }
        Fault::Status(503) => {
            return google_error(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                json!([]),
            )
        }
        Fault::Status(s) => {
            return google_error(s, "INTERNAL", "An internal error has occurred.", json!([]))
        }
        _ => {}
    }
    if verb == "batchEmbedContents" {
        let embeddings: Vec<Value> = body["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| json!({"values": fake_embedding(r["content"]["parts"][0]["text"].as_str().unwrap_or(""))}))
            .collect();
        return Json(json!({"embeddings": embeddings})).into_response();
    }
    let contents = body["contents"].as_array().cloned().unwrap_or_default();
    // Gemini 3 rejects a replayed function call without its thought signature.
    let unsigned = contents
        .iter()
        .filter(|c| c["role"] == "model")
        .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
        .any(|p| p.get("functionCall").is_some() && p.get("thoughtSignature").is_none());
    if unsigned {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Function call is missing a thought_signature in functionCall parts.",
            json!([]),
        );
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let response_id = format!("MockResp{n}");
    let last = contents.last().cloned().unwrap_or(Value::Null);
    let last_parts = last["parts"].as_array().cloned().unwrap_or_default();
    let tool_result = last_parts
        .iter()
        .find_map(|p| p.get("functionResponse"))
        .cloned();
    let tool = body["tools"][0]["functionDeclarations"][0]["name"]
        .as_str()
        .map(str::to_owned);
    let prompt = (body.to_string().len() as u64).div_ceil(4);
    let usage = |done: u64| json!({"promptTokenCount": prompt, "candidatesTokenCount": done, "totalTokenCount": prompt + done + 4, "thoughtsTokenCount": 4});
    let response = |parts: Value, finish: Option<&str>, done: u64| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate], "usageMetadata": usage(done), "modelVersion": model, "responseId": response_id})
    };
    let stream = verb == "streamGenerateContent";
    let events: Vec<Value> = if model == "mock-blocked" {
        vec![
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt}, "modelVersion": model, "responseId": response_id}),
        ]
    } else if let (Some(name), None) = (&tool, &tool_result) {
        let call = json!([{"functionCall": {"name": name, "args": {"city": "Boston"}}, "thoughtSignature": format!("sig{n}")}]);
        if stream {
            vec![
                response(call, None, 5),
                response(json!([{"text": ""}]), Some("STOP"), 5),
            ]
        } else {
            vec![response(call, Some("STOP"), 5)]
        }
    } else {
        let text = match &tool_result {
            Some(r) => format!("The tool said: {}", r["response"]),
            None => reply_words(&json!({"messages": [{"role": "user", "content": last_parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(" ")}]})).concat(),
        };
        if stream {
            let words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
            let mut evs: Vec<Value> = words
                .iter()
                .enumerate()
                .map(|(i, w)| response(json!([{"text": w}]), None, i as u64 + 1))
                .collect();
            evs.push(response(
                json!([{"text": "", "thoughtSignature": format!("sig{n}")}]),
                Some("STOP"),
                words.len() as u64,
            ));
            evs
        } else {
            vec![response(
                json!([{"text": text, "thoughtSignature": format!("sig{n}")}]),
                Some("STOP"),
                8,
            )]
        }
    };
    if !stream {
        return Json(events.into_iter().next().unwrap_or(Value::Null)).into_response();
    }
    let mut frames: Vec<Result<Bytes, std::io::Error>> = events
        .iter()
        .map(|e| Ok(Bytes::from(format!("data: {e}\r\n\r\n"))))
        .collect();
    if plan.fault == Fault::Cut {
        frames.truncate(2);
        frames.push(Err(std::io::Error::other("connection cut by mock")));
    }
    let delay = plan.chunk_delay_ms;
    let body = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        let wait = if frame.is_err() {
            100
        } else if i > 0 {
            delay
        } else {
            0
        };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        frame
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A Cloudflare API envelope carrying errors.
fn cf_error(status: u16, code: u32, message: &str) -> Response {
    raw_json(
        status,
        &json!({"result": null, "success": false, "errors": [{"code": code, "message": message}], "messages": []}),
    )
}

/// Workers AI's REST `/ai/run/{model}` (providers.md §6.2–6.4): the envelope, native `{response, usage}`
/// answers, legacy tool calls, raw SSE streams with `p` padding and a final usage event, envelope errors
/// (`mock-200-fail` answers HTTP 200 with `success: false`), and `{text}` embeddings.
async fn workers_ai(
    State(state): State<Shared>,
    Path((_account, model)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if auth_failure(&state, &headers).is_some() {
        return cf_error(401, 10000, "Authentication error");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return cf_error(400, 5004, "Invalid data");
    };
    if !(model.starts_with("@cf/") || model.starts_with("@hf/") || model.starts_with("mock")) {
        return cf_error(400, 5007, "No such model");
    }
    if model == "mock-200-fail" {
        return cf_error(200, 3050, "AiError: Max retries exhausted");
    }
    let plan = plan(&model, &headers, &state, "workers_ai").await;
    match plan.fault {
        Fault::Status(429) => return cf_error(429, 3040, "Capacity temporarily exceeded, please try again."),
        Fault::Status(402) => return cf_error(429, 4006, "AiError: AiError: you have used up your daily free allocation of 10,000 neurons, please upgrade to Cloudflare's Workers Paid plan if you would like to continue usage. (f24e675b)"),
        Fault::Status(s) => return cf_error(s, 3050, "AiError: Max retries exhausted"),
        _ => {}
    }
    if let Some(text) = body.get("text") {
        let inputs: Vec<String> = match text {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => return cf_error(400, 5004, "Invalid data"),
        };
        let data: Vec<Vec<f64>> = inputs.iter().map(|t| fake_embedding(t)).collect();
        return Json(json!({"result": {"shape": [data.len(), 8], "data": data, "pooling": "mean"}, "success": true, "errors": [], "messages": []})).into_response();
    }
    let words = reply_words(&body);
    let prompt = prompt_tokens(&body);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": words.len(), "total_tokens": prompt + words.len() as u64});
    if body["stream"] != true {
        let result = if tool_turn(&body, "x").is_some() {
            json!({"response": null, "tool_calls": [{"name": body["tools"][0]["function"]["name"], "arguments": {"city": "Boston"}}], "usage": usage})
        } else {
            json!({"response": words.concat(), "usage": usage})
        };
        return Json(json!({"result": result, "success": true, "errors": [], "messages": []}))
            .into_response();
    }
    let mut events: Vec<Value> = words
        .iter()
        .map(|w| json!({"response": w, "p": "abcdefghijklmnop"}))
        .collect();
    events.push(json!({"response": ""}));
    events.push(json!({"response": "", "usage": usage}));
    sse_response(Vec::new(), &events, plan)
}

/// The assistant message that calls the request's first tool (OpenAI shape), when the request offers tools and
/// is not already answering a tool call.
fn tool_turn(body: &Value, id: &str) -> Option<Value> {
    let name = body["tools"][0]["function"]["name"].as_str()?;
    let answering = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    (!answering).then(|| {
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": "{\"city\":\"Boston\"}"}}]})
    })
}
