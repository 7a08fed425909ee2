//! OpenRouter (providers.md §4).

use crate::*;

/// OpenRouter's `/api/v1/chat/completions` (providers.md §4): `gen-` ids, a `provider` field,
/// `native_finish_reason`, `: OPENROUTER PROCESSING` comments, a usage chunk on every stream, the mid-stream
/// error chunk for `mock-error-mid`, and errors with numeric codes.
pub(crate) async fn chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
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
pub(crate) fn sse_response_without_done(
    prefix: Vec<Bytes>,
    events: &[Value],
    plan: Plan,
) -> Response {
    let mut frames: Vec<Bytes> = prefix;
    frames.extend(events.iter().map(|e| Bytes::from(format!("data: {e}\n\n"))));
    let delay = plan.chunk_delay_ms;
    let body = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        if i > 0 {
            crate::faults::pace(delay).await;
        }
        Ok::<_, std::io::Error>(frame)
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
