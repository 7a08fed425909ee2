//! Google Gemini's native API (providers.md §3).

use crate::*;

/// A google.rpc.Status error body.
pub(crate) fn google_error(status: u16, grpc: &str, message: &str, details: Value) -> Response {
    raw_json(
        status,
        &json!({"error": {"code": status, "message": message, "status": grpc, "details": details}}),
    )
}

/// Gemini's native API (providers.md §3): `models/{m}:generateContent`, `:streamGenerateContent?alt=sse`
/// (CRLF framing, no `[DONE]`), `:batchEmbedContents`; `x-goog-api-key` or `key=`; function calls with thought
/// signatures that must come back in later turns; `mock-blocked` for a blocked prompt; google.rpc errors.
pub(crate) async fn gemini(
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
    if body["generationConfig"]["responseModalities"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "IMAGE"))
    {
        return image(model, &body);
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
    let forced = crate::faults::forced_usage(&state, "gemini");
    let usage = |done: u64| match forced {
        // Gemini counts thoughts apart from the candidates; cached content is part of the prompt.
        Some(c) => json!({"promptTokenCount": c.prompt, "cachedContentTokenCount": c.cached,
            "candidatesTokenCount": c.completion - c.reasoning.min(c.completion), "thoughtsTokenCount": c.reasoning,
            "totalTokenCount": c.prompt + c.completion}),
        None => {
            json!({"promptTokenCount": prompt, "candidatesTokenCount": done, "totalTokenCount": prompt + done + 4, "thoughtsTokenCount": 4})
        }
    };
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
            None => {
                // The text parts, and the inline images as the shared reply counts them.
                let text = last_parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut content = vec![json!({"type": "text", "text": text})];
                content.extend(last_parts.iter().filter_map(|p| p.get("inlineData")).map(|d| {
                    json!({"type": "image_url", "image_url": {"url": format!("data:{};base64,{}",
                        d["mimeType"].as_str().unwrap_or(""), d["data"].as_str().unwrap_or(""))}})
                }));
                reply_words(&json!({"messages": [{"role": "user", "content": content}]})).concat()
            }
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
        if frame.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else if i > 0 {
            crate::faults::pace(delay).await;
        }
        frame
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An image model's `generateContent` with `responseModalities: ["IMAGE"]`: the picture as an `inlineData` part,
/// 1,290 output tokens for it. A text model has no image output; a prompt asking for something `forbidden` is
/// refused as Gemini does, with no picture and `IMAGE_SAFETY`.
fn image(model: &str, body: &Value) -> Response {
    if !model.contains("image") {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "Model does not support the requested response modalities: image",
            json!([]),
        );
    }
    let prompt = body["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or("");
    let tokens = (prompt.len() as u64).div_ceil(4);
    let usage = json!({"promptTokenCount": tokens, "candidatesTokenCount": 1290, "totalTokenCount": tokens + 1290});
    if prompt.contains("forbidden") {
        return Json(json!({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "IMAGE_SAFETY", "index": 0}],
            "usageMetadata": usage, "modelVersion": model})).into_response();
    }
    let part = json!({"inlineData": {"mimeType": "image/png", "data": base64(PNG)}});
    Json(json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage, "modelVersion": model})).into_response()
}
