//! SiliconFlow (providers.md §5).

use crate::*;

/// SiliconFlow's `/v1/chat/completions` (providers.md §5): 32-hex ids, no `logprobs`, `eos` finishes for
/// `mock-eos`, cumulative usage on every stream chunk, and its own error bodies.
pub(crate) async fn chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
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

/// SiliconFlow's `/v1/images/generations`: `image_size` and `batch_size` in, URLs out (valid for an hour), with
/// the inference time and the seed.
pub(crate) async fn images(
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
    if image_prompt(&body).is_none() || body.get("n").is_some() || body.get("size").is_some() {
        // OpenAI's field names are not SiliconFlow's: the connector must translate them.
        return raw_json(
            400,
            &json!({"code": 20015, "message": "The parameter is invalid. Please check again.", "data": null}),
        );
    }
    if let Fault::Status(s) = plan(&model, &headers, &state, "siliconflow").await.fault {
        return raw_json(
            s,
            &json!({"code": 50603, "message": "System is too busy now. Please try again later.", "data": null}),
        );
    }
    let n = body["batch_size"].as_u64().unwrap_or(1).clamp(1, 4);
    let images: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://sc-maas.mock.test/outputs/{i}.png?size={}", body["image_size"].as_str().unwrap_or("1024x1024"))}))
        .collect();
    Json(json!({"images": images, "timings": {"inference": 1.2}, "seed": 42})).into_response()
}

/// SiliconFlow's `/v1/audio/transcriptions` (SenseVoice): OpenAI's multipart upload, `{"text": …}` back.
pub(crate) async fn transcriptions(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: axum::extract::Multipart,
) -> Response {
    if auth_failure(&state, &headers).is_some() {
        return raw_json(401, &json!("Invalid token"));
    }
    let Ok(form) = read_form(form).await else {
        return raw_json(
            400,
            &json!({"code": 20015, "message": "The parameter is invalid. Please check again.", "data": null}),
        );
    };
    let model = form.fields.get("model").cloned().unwrap_or_default();
    let Some((_, bytes)) = form.file else {
        return raw_json(
            400,
            &json!({"code": 20015, "message": "The parameter is invalid. Please check again.", "data": null}),
        );
    };
    if let Fault::Status(s) = plan(&model, &headers, &state, "siliconflow").await.fault {
        return raw_json(
            s,
            &json!({"code": 50603, "message": "System is too busy now. Please try again later.", "data": null}),
        );
    }
    Json(json!({"text": heard(&bytes).0})).into_response()
}
