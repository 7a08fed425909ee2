//! OpenAI-compatible services that differ from OpenAI, at `/compat/<shape>/v1/chat/completions` and
//! `/compat/<shape>/v1/models`, for catalog declarations of the `openai` dialect (shared/providers-more.md §4).
//!
//! | shape    | like                       | what differs                                                        |
//! |----------|----------------------------|---------------------------------------------------------------------|
//! | `vllm`   | vLLM with `--api-key`      | serves `qwen3-8b` only (404 ``The model `x` does not exist.``); a   |
//! |          |                            | wrong or missing Bearer key is a flat 401 `{"error":"Unauthorized"}`; |
//! |          |                            | reasoning as `delta.reasoning`; usage only with `include_usage`     |
//! | `vllm-open` | vLLM without `--api-key` | as `vllm`, but any key or none is accepted                     |
//! | `ollama` | Ollama's `/v1`             | no key (any is ignored); serves `qwen3:8b` (404 `not_found_error`); |
//! |          |                            | `id` is `chatcmpl-<0..998>`, `fp_ollama`; usage chunk only when     |
//! |          |                            | asked                                                               |
//! | `strict` | a hosted service with every| the key in `x-api-key: sk-strict`; model ids under                  |
//! |          | quirk the catalog declares | `accounts/acme/models/`; 400 for `max_completion_tokens`,           |
//! |          |                            | `stream_options` and `user`; usage always on the finish chunk       |
//!
//! Sources: vLLM `docs/serving/openai_compatible_server.md` and its API-key middleware; Ollama
//! `docs/api/openai-compatibility.mdx` and `openai/openai.go` (as quoted in shared/providers-more.md §4).
//! `GET /__mock/stats` shows the `authorization` header each shape last received (`null`: none).

use crate::*;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `keyed`: started with `--api-key`.
    Vllm {
        keyed: bool,
    },
    Ollama,
    Strict,
}

const VLLM_KEY: &str = "sk-vllm";
const STRICT_KEY: &str = "sk-strict";
const STRICT_PREFIX: &str = "accounts/acme/models/";

fn shape(name: &str) -> Option<Shape> {
    match name {
        "vllm" => Some(Shape::Vllm { keyed: true }),
        "vllm-open" => Some(Shape::Vllm { keyed: false }),
        "ollama" => Some(Shape::Ollama),
        "strict" => Some(Shape::Strict),
        _ => None,
    }
}

fn served(shape: Shape, model: &str) -> bool {
    match shape {
        Shape::Vllm { .. } => model == "qwen3-8b" || model.starts_with("mock-"),
        Shape::Ollama => model == "qwen3:8b" || model.starts_with("mock-"),
        Shape::Strict => model.starts_with(STRICT_PREFIX),
    }
}

/// The shape's own refusal of the request, if it refuses it.
fn refusal(shape: Shape, headers: &HeaderMap, body: &Value) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match shape {
        Shape::Vllm { keyed: true }
            if header("authorization") != Some(&format!("Bearer {VLLM_KEY}")) =>
        {
            Some(raw_json(401, &json!({"error": "Unauthorized"})))
        }
        Shape::Strict if header("x-api-key") != Some(STRICT_KEY) => Some(error_response(
            401,
            "Missing or invalid x-api-key header.",
            "authentication_error",
            None,
        )),
        Shape::Strict => ["max_completion_tokens", "stream_options", "user"]
            .into_iter()
            .find(|f| body.get(*f).is_some())
            .map(|f| {
                error_response(
                    400,
                    &format!("Unknown field `{f}`."),
                    "invalid_request_error",
                    None,
                )
            }),
        _ => None,
    }
}

fn not_found(shape: Shape, model: &str) -> Response {
    match shape {
        Shape::Vllm { .. } => raw_json(
            404,
            &json!({"error": {"message": format!("The model `{model}` does not exist."),
                "type": "NotFoundError", "param": "model", "code": 404}}),
        ),
        Shape::Ollama => error_response(
            404,
            &format!("model \"{model}\" not found, try pulling it first"),
            "not_found_error",
            None,
        ),
        Shape::Strict => error_response(
            404,
            &format!("Model `{model}` not found; ids start with `{STRICT_PREFIX}`."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
    }
}

fn remember_auth(state: &Mock, name: &str, headers: &HeaderMap) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut seen) = state.last_auth.lock() {
        seen.insert(name.to_owned(), auth);
    }
}

pub(crate) async fn models(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(shape) = shape(&name) else {
        return error_response(404, "no such compat shape", "invalid_request_error", None);
    };
    remember_auth(&state, &name, &headers);
    if let Some(r) = refusal(shape, &headers, &json!({})) {
        return r;
    }
    let id = match shape {
        Shape::Vllm { .. } => "qwen3-8b".to_owned(),
        Shape::Ollama => "qwen3:8b".to_owned(),
        Shape::Strict => format!("{STRICT_PREFIX}llama-4"),
    };
    let owner = if shape == Shape::Ollama {
        "library"
    } else {
        "mock"
    };
    Json(json!({"object": "list", "data": [{"id": id, "object": "model", "created": 0, "owned_by": owner}]}))
        .into_response()
}

pub(crate) async fn chat(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(shape) = shape(&name) else {
        return error_response(404, "no such compat shape", "invalid_request_error", None);
    };
    remember_auth(&state, &name, &headers);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error_response(400, "invalid JSON body", "invalid_request_error", None);
    };
    if let Some(r) = refusal(shape, &headers, &body) {
        return r;
    }
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if !served(shape, &model) {
        return not_found(shape, &model);
    }
    let plan = plan(&model, &headers, &state, &format!("compat_{name}")).await;
    if let Fault::Status(s) = plan.fault {
        return fault_response(s, &model);
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let (id, fingerprint) = match shape {
        Shape::Ollama => (format!("chatcmpl-{}", n % 999), "fp_ollama"),
        _ => (format!("chatcmpl-compat{n}"), "fp_compat"),
    };
    let words = reply_words(&body);
    let prompt = prompt_tokens(&body);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": words.len(),
        "total_tokens": prompt + words.len() as u64});
    let tool = tool_turn(&body, "call_compat_1");
    if body["stream"] != true {
        let (message, finish) = match tool {
            Some(m) => (m, "tool_calls"),
            None => (
                json!({"role": "assistant", "content": words.concat()}),
                "stop",
            ),
        };
        return Json(json!({"id": id, "object": "chat.completion", "created": now_secs(), "model": model,
            "system_fingerprint": fingerprint,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}))
        .into_response();
    }
    let created = now_secs();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": fingerprint, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if matches!(shape, Shape::Vllm { .. }) {
        events.push(chunk(
            json!({"reasoning": "Thinking briefly. "}),
            Value::Null,
        ));
    }
    let finish = match &tool {
        Some(m) => {
            let call = &m["tool_calls"][0];
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}}]}),
                Value::Null,
            ));
            "tool_calls"
        }
        None => {
            events.extend(
                words
                    .iter()
                    .map(|w| chunk(json!({"content": w}), Value::Null)),
            );
            "stop"
        }
    };
    let mut last = chunk(json!({}), json!(finish));
    if shape == Shape::Strict {
        last["usage"] = usage.clone(); // usage on the finish chunk, unasked
    }
    events.push(last);
    if shape != Shape::Strict && body["stream_options"]["include_usage"] == true {
        events.push(
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": fingerprint, "choices": [], "usage": usage}),
        );
    }
    sse_response(Vec::new(), &events, plan)
}
