//! OpenAI's `/v1/chat/completions`, `/v1/embeddings` and `/v1/models` (providers.md §1), also serving the
//! OpenAI-compatible routes of other providers (their embeddings and model lists).

use crate::*;

pub(crate) async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = auth_failure(&state, &headers) {
        return r;
    }
    let data: Vec<Value> = ["gpt-4o-mini", "gpt-6-luna", "text-embedding-3-small"]
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1686935002, "owned_by": "mock"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(crate) async fn chat(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let mut plan = plan(&model, &headers, &state, "openai").await;
    match plan.fault {
        Fault::Status(s) => return fault_response(s, &model),
        // The redirect's target answers normally: a gateway that follows it gets a 200.
        Fault::Redirect if query.as_deref() == Some("followed") => plan.fault = Fault::None,
        Fault::Redirect => {
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", "/v1/chat/completions?followed")
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Fault::EchoKey => {
            let sent = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return error_response(
                401,
                &format!("Incorrect API key provided. You sent: {sent}"),
                "invalid_request_error",
                Some("invalid_api_key"),
            );
        }
        _ => {}
    }
    let id = format!(
        "chatcmpl-mock{}",
        state.counter.fetch_add(1, Ordering::Relaxed)
    );
    let words = reply_words(&body);
    let forced = crate::faults::forced_usage(&state, "openai");
    let omit = forced.is_some_and(|c| c.omit);
    let usage = match forced {
        Some(c) => json!({"prompt_tokens": c.prompt, "completion_tokens": c.completion,
            "total_tokens": c.prompt + c.completion,
            "prompt_tokens_details": {"cached_tokens": c.cached}, "completion_tokens_details": {"reasoning_tokens": c.reasoning}}),
        None => json!({"prompt_tokens": prompt_tokens(&body), "completion_tokens": words.len(),
            "total_tokens": prompt_tokens(&body) + words.len() as u64,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}),
    };
    if body["stream"] == true {
        let include_usage = body["stream_options"]["include_usage"] == true && !omit;
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
    let mut answer = json!({
        "id": id, "object": "chat.completion", "created": now_secs(), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat(), "refusal": null, "annotations": []},
            "logprobs": null, "finish_reason": "stop"}],
        "usage": usage, "system_fingerprint": "fp_mock"
    });
    if omit {
        answer.as_object_mut().map(|a| a.remove("usage"));
    }
    Json(answer).into_response()
}

/// The OpenAI chunk sequence (providers.md §1.4), shaped by the fault.
pub(crate) fn stream_response(
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

pub(crate) async fn embeddings(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

/// `encoding_format: "base64"`: little-endian float32s, base64-encoded (providers.md §1.6).
pub(crate) fn base64_f32(values: &[f64]) -> String {
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    base64(&bytes)
}

/// `/v1/images/generations` (shared/providers-more.md §5.1): GPT image models answer base64 with token usage;
/// dall-e models a URL unless `response_format` is `b64_json`, and no usage.
pub(crate) async fn images(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let Some(prompt) = image_prompt(&body) else {
        return error_response(
            400,
            "Missing required parameter: 'prompt'.",
            "invalid_request_error",
            Some("missing_required_parameter"),
        );
    };
    if let Fault::Status(s) = plan(&model, &headers, &state, "openai").await.fault {
        return fault_response(s, &model);
    }
    if prompt.contains("forbidden") {
        return error_response(
            400,
            "Your request was rejected by the safety system.",
            "image_generation_user_error",
            Some("moderation_blocked"),
        );
    }
    let n = body["n"].as_u64().unwrap_or(1).clamp(1, 10) as usize;
    let created = now_secs();
    if model.starts_with("dall-e") {
        let item = if body["response_format"] == "b64_json" {
            json!({"b64_json": base64(PNG), "revised_prompt": prompt})
        } else {
            json!({"url": format!("https://images.mock.test/{created}.png"), "revised_prompt": prompt})
        };
        return Json(json!({"created": created, "data": vec![item; n]})).into_response();
    }
    let input = (prompt.len() as u64).div_ceil(4);
    let output = 1056 * n as u64;
    Json(json!({"created": created, "background": "opaque", "output_format": "png", "quality": "medium", "size": "1024x1024",
        "data": vec![json!({"b64_json": base64(PNG)}); n],
        "usage": {"input_tokens": input, "input_tokens_details": {"text_tokens": input, "image_tokens": 0},
            "output_tokens": output, "output_tokens_details": {"image_tokens": output, "text_tokens": 0}, "total_tokens": input + output}}))
    .into_response()
}

/// `/v1/audio/transcriptions` (shared/providers-more.md §5.2): a multipart upload; whisper-1 answers `json`,
/// `text` or `verbose_json` (with segments, and its usage in seconds); the GPT transcribe models `json` or `text`
/// only, with token usage.
pub(crate) async fn transcriptions(
    State(state): State<Shared>,
    headers: HeaderMap,
    form: axum::extract::Multipart,
) -> Response {
    if let Some(r) = auth_failure(&state, &headers) {
        return r;
    }
    let form = match read_form(form).await {
        Ok(f) => f,
        Err(e) => {
            return error_response(
                400,
                &format!("Could not parse multipart form: {e}"),
                "invalid_request_error",
                None,
            )
        }
    };
    let model = form.fields.get("model").cloned().unwrap_or_default();
    let Some((_, bytes)) = form.file.filter(|(_, b)| !b.is_empty()) else {
        return error_response(
            400,
            "Missing required parameter: 'file'.",
            "invalid_request_error",
            None,
        );
    };
    if let Fault::Status(s) = plan(&model, &headers, &state, "openai").await.fault {
        return fault_response(s, &model);
    }
    let format = form
        .fields
        .get("response_format")
        .map_or("json", String::as_str)
        .to_owned();
    let whisper = model.starts_with("whisper");
    if !whisper && !["json", "text"].contains(&format.as_str()) {
        return error_response(400, &format!("response_format '{format}' is not compatible with model '{model}'. Use 'json' or 'text'."),
            "invalid_request_error", Some("unsupported_value"));
    }
    let (text, seconds) = heard(&bytes);
    let usage = if whisper {
        json!({"type": "duration", "seconds": seconds.ceil()})
    } else {
        let audio = (seconds * 10.0).ceil() as u64;
        json!({"type": "tokens", "input_tokens": audio, "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
            "output_tokens": 9, "total_tokens": audio + 9})
    };
    match format.as_str() {
        "text" => (StatusCode::OK, [("content-type", "text/plain; charset=utf-8")], format!("{text}\n")).into_response(),
        "verbose_json" => Json(json!({"task": "transcribe", "language": form.fields.get("language").map_or("english", String::as_str),
            "duration": seconds, "text": text, "segments": heard_segments(&text, seconds), "usage": usage})).into_response(),
        _ => Json(json!({"text": text, "usage": usage})).into_response(),
    }
}

/// `/v1/audio/speech` (§5.3): the audio's bytes, with the content type of the format asked for.
pub(crate) async fn speech(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let Some(input) = body["input"].as_str() else {
        return error_response(
            400,
            "Missing required parameter: 'input'.",
            "invalid_request_error",
            None,
        );
    };
    if body["voice"].is_null() {
        return error_response(
            400,
            "Missing required parameter: 'voice'.",
            "invalid_request_error",
            None,
        );
    }
    if let Fault::Status(s) = plan(&model, &headers, &state, "openai").await.fault {
        return fault_response(s, &model);
    }
    let content_type = match body["response_format"].as_str().unwrap_or("mp3") {
        "wav" => "audio/wav",
        "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "pcm" => "audio/pcm",
        _ => "audio/mpeg",
    };
    (
        StatusCode::OK,
        [("content-type", content_type)],
        spoken(input),
    )
        .into_response()
}
