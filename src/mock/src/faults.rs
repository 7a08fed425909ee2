//! What a request asks the mock to do: faults chosen by the model name, forced on a route, or set by knobs;
//! OpenAI's error bodies for them; the mock's own key check.

use crate::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the model name (and knobs) ask this request to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fault {
    None,
    Status(u16),
    Stall,
    StallMid,
    Cut,
    Eof,
    ErrorMid,
    /// Hostile upstreams (OpenAI route): a 307 to the same URL with `?followed`, which would answer 200.
    Redirect,
    /// A 401 whose message echoes the request's `Authorization` header.
    EchoKey,
    /// A stream whose first event is an HTML page instead of JSON.
    HtmlFirst,
    /// A stream with a content chunk, then an event that is not JSON, then `[DONE]`.
    GarbageMid,
    /// A stream with a content chunk, then a 9 MiB line that never ends.
    HugeLine,
    /// A stream whose first content chunk is repeated 50,000 times (~11 MB), more than sockets buffer.
    HugeStream,
}

pub(crate) struct Plan {
    pub(crate) fault: Fault,
    /// Counts the answer if its caller hangs up before it is complete (`GET /__mock/stats`).
    pub(crate) abandoned: Arc<AtomicU64>,
    pub(crate) latency_ms: u64,
    pub(crate) chunk_delay_ms: u64,
}

/// `POST /__mock/faults` with `{"deepseek": "mock-500", "openai": null}`: from now on every request to that
/// provider's route behaves as if it named that fault model (`null` clears it); `{}` with `?reset` clears all.
pub(crate) async fn set_faults(
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

pub(crate) async fn get_faults(State(state): State<Shared>) -> Response {
    match state.faults.lock() {
        Ok(f) => Json(json!(*f)).into_response(),
        Err(_) => error_response(500, "fault table poisoned", "server_error", None),
    }
}

/// The plan for a request to `route` (`openai`, `deepseek`, `siliconflow`, `openrouter`, `gemini`,
/// `workers_ai`): a fault forced on the route wins over the model name.
/// Waits the plan's latency before returning it, so every route delays its response headers alike.
pub(crate) async fn plan(model: &str, headers: &HeaderMap, state: &Mock, route: &str) -> Plan {
    let forced = state.faults.lock().ok().and_then(|f| f.get(route).cloned());
    let mut plan = plan_for(forced.as_deref().unwrap_or(model), headers, &state.args);
    plan.abandoned = state.abandoned.clone();
    if plan.latency_ms > 0 {
        // Dropped before the sleep ends: the caller hung up (hyper drops the handler's future).
        let waiting = Unfinished::new(&plan);
        tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
        waiting.done();
    }
    plan
}

/// Counted as abandoned if dropped before [`Unfinished::done`].
pub(crate) struct Unfinished(Option<Arc<AtomicU64>>);

impl Unfinished {
    pub(crate) fn new(plan: &Plan) -> Self {
        Self(Some(plan.abandoned.clone()))
    }

    pub(crate) fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) async fn stats(State(state): State<Shared>) -> Response {
    let last_auth = state
        .last_auth
        .lock()
        .map(|m| json!(*m))
        .unwrap_or(Value::Null);
    let served = state
        .served
        .lock()
        .map(|m| json!(*m))
        .unwrap_or(Value::Null);
    Json(json!({"abandoned": state.abandoned.load(Ordering::Relaxed), "last_auth": last_auth, "served": served}))
        .into_response()
}

pub(crate) fn plan_for(model: &str, headers: &HeaderMap, args: &Args) -> Plan {
    let header_ms = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut p = Plan {
        abandoned: Arc::default(),
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
        "redirect" => p.fault = Fault::Redirect,
        "echo-key" => p.fault = Fault::EchoKey,
        "html-first" => p.fault = Fault::HtmlFirst,
        "garbage-mid" => p.fault = Fault::GarbageMid,
        "huge-line" => p.fault = Fault::HugeLine,
        "huge-stream" => p.fault = Fault::HugeStream,
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

pub(crate) fn error_response(
    status: u16,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// OpenAI's bodies for each status (providers.md §1.5).
pub(crate) fn fault_response(status: u16, model: &str) -> Response {
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
pub(crate) fn auth_failure(state: &Mock, headers: &HeaderMap) -> Option<Response> {
    let expected = state.args.api_key.as_ref()?;
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (presented != Some(expected.as_str())).then(|| fault_response(401, ""))
}

/// Waits `ms` between two stream chunks, to within tens of microseconds. Tokio's timer rounds every sleep up to
/// its next millisecond tick, so the first token would come 2 to 3 ms after a 2 ms pause depending on when the
/// request happened to arrive: noise of the same size as the gateway's added time to first token, which the
/// benchmarks measure. A blocking thread's sleep does not round.
pub(crate) async fn pace(ms: u64) {
    if ms == 0 {
        return;
    }
    let d = Duration::from_millis(ms);
    if tokio::task::spawn_blocking(move || std::thread::sleep(d))
        .await
        .is_err()
    {
        tokio::time::sleep(d).await;
    }
}

/// Token counts a route reports (`POST /__mock/usage`): cached tokens are part of `prompt`, reasoning part of
/// `completion`, as providers report them.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Counts {
    pub(crate) prompt: u64,
    pub(crate) cached: u64,
    pub(crate) completion: u64,
    pub(crate) reasoning: u64,
    /// Report no usage at all (a JSON answer without `usage`, a stream without its usage chunk): the openai route.
    pub(crate) omit: bool,
}

/// `POST /__mock/usage` with `{"openai": {"prompt": 1000, "cached": 600, "completion": 200, "reasoning": 50}}`:
/// from now on that route reports these counts; `null` clears one, `?reset` all.
pub(crate) async fn set_usage(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    Json(body): Json<Value>,
) -> Response {
    let Ok(mut usage) = state.usage.lock() else {
        return error_response(500, "usage table poisoned", "server_error", None);
    };
    if query.as_deref() == Some("reset") {
        usage.clear();
    }
    for (route, counts) in body.as_object().into_iter().flatten() {
        if counts.is_null() {
            usage.remove(route);
            continue;
        }
        match serde_json::from_value::<Counts>(counts.clone()) {
            Ok(c) => {
                usage.insert(route.clone(), c);
            }
            Err(e) => return error_response(400, &e.to_string(), "invalid_request_error", None),
        }
    }
    Json(json!(usage.keys().collect::<Vec<_>>())).into_response()
}

/// The counts forced on `route`, if any.
pub(crate) fn forced_usage(state: &Mock, route: &str) -> Option<Counts> {
    state.usage.lock().ok()?.get(route).copied()
}
