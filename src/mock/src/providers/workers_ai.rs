//! Cloudflare Workers AI over REST (providers.md §6.2–6.4).

use crate::*;

/// A Cloudflare API envelope carrying errors.
pub(crate) fn cf_error(status: u16, code: u32, message: &str) -> Response {
    raw_json(
        status,
        &json!({"result": null, "success": false, "errors": [{"code": code, "message": message}], "messages": []}),
    )
}

/// Workers AI's REST `/ai/run/{model}` (providers.md §6.2–6.4): the envelope, native `{response, usage}`
/// answers, legacy tool calls, raw SSE streams with `p` padding and a final usage event, envelope errors
/// (`mock-200-fail` answers HTTP 200 with `success: false`), and `{text}` embeddings.
pub(crate) async fn workers_ai(
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
    if model.contains("whisper") {
        return transcription(&model, &body);
    }
    if model.contains("melotts") || model.contains("aura") {
        return speech(&model, &body);
    }
    if let Some(prompt) = body
        .get("prompt")
        .filter(|_| body.get("messages").is_none())
    {
        return image(&model, &body, prompt);
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
    // The vision models read images from data URIs only (shared/providers-more.md §6.5).
    let linked = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .any(|p| {
            p["image_url"]["url"]
                .as_str()
                .is_some_and(|u| !u.starts_with("data:"))
        });
    if linked {
        return cf_error(
            400,
            5006,
            "Error: image_url must be a data URI; HTTP URLs are not accepted",
        );
    }
    let words = reply_words(&body);
    let (prompt, completion) = match crate::faults::forced_usage(&state, "workers_ai") {
        Some(c) => (c.prompt, c.completion),
        None => (prompt_tokens(&body), words.len() as u64),
    };
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
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

/// Text-to-image models (shared/providers-more.md §6.2): flux answers `{"image": base64}` in the envelope and
/// takes only `prompt` and `steps`; Stable Diffusion models answer the PNG's bytes, with no envelope.
fn image(model: &str, body: &Value, prompt: &Value) -> Response {
    if prompt.as_str().is_none_or(|p| p.trim().is_empty()) {
        return cf_error(400, 5006, "Error: required properties at '/' are 'prompt'");
    }
    if model.contains("flux") {
        if let Some(extra) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "prompt" && *k != "steps"))
        {
            return cf_error(
                400,
                5006,
                &format!("Error: additional properties are not allowed: '{extra}'"),
            );
        }
        return Json(json!({"result": {"image": base64(PNG)}, "success": true, "errors": [], "messages": []})).into_response();
    }
    Response::builder()
        .header("content-type", "image/png")
        .body(Body::from(PNG.to_vec()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whisper (shared/providers-more.md §6.3): the turbo model takes base64 `audio` and answers segments, `vtt` and
/// `transcription_info`; `whisper` takes an array of bytes and answers words and `vtt`.
fn transcription(model: &str, body: &Value) -> Response {
    let bytes: Option<Vec<u8>> = if model.contains("turbo") {
        body["audio"].as_str().and_then(unbase64)
    } else {
        body["audio"].as_array().map(|a| {
            a.iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect()
        })
    };
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        return cf_error(400, 5006, "Error: required properties at '/' are 'audio'");
    };
    let (text, seconds) = heard(&bytes);
    let vtt = format!(
        "WEBVTT\n\n00:00:00.000 --> {}\n{text}\n\n",
        vtt_stamp(seconds)
    );
    let result = if model.contains("turbo") {
        json!({"text": text, "word_count": text.split(' ').count(), "segments": heard_segments(&text, seconds), "vtt": vtt,
            "transcription_info": {"language": body["language"].as_str().unwrap_or("en"), "language_probability": 1.0,
                "duration": seconds, "duration_after_vad": seconds}})
    } else {
        json!({"text": text, "word_count": text.split(' ').count(), "words": [{"word": "The", "start": 0.0, "end": 0.2}], "vtt": vtt})
    };
    Json(json!({"result": result, "success": true, "errors": [], "messages": []})).into_response()
}

fn vtt_stamp(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Text-to-speech (§6.4): melotts answers `{"audio": base64 MP3}` in the envelope, aura the audio's bytes.
fn speech(model: &str, body: &Value) -> Response {
    let input = if model.contains("aura") {
        &body["text"]
    } else {
        &body["prompt"]
    };
    let Some(input) = input.as_str().filter(|t| !t.is_empty()) else {
        return cf_error(400, 5006, "Error: required properties at '/' are missing");
    };
    if model.contains("aura") {
        return (
            StatusCode::OK,
            [("content-type", "audio/mpeg")],
            spoken(input),
        )
            .into_response();
    }
    Json(json!({"result": {"audio": base64(&spoken(input))}, "success": true, "errors": [], "messages": []})).into_response()
}
