//! Google Gemini, native API (providers.md §3): `models/{m}:generateContent` and
//! `:streamGenerateContent?alt=sse`, translated both ways.
//! - Requests: system/developer messages become `systemInstruction`; roles become `user`/`model`; images must
//!   be `data:` URLs (inlined); tool calls and results become `functionCall`/`functionResponse` parts; sampling
//!   options go to `generationConfig`; `response_format` JSON to `responseMimeType`.
//! - Tool calls have no ids in Gemini: the gateway makes them up, and carries each call's thought signature in
//!   its id (`call_…~ts~<signature>`) so the signature goes back on the same part in later turns.
//! - Answers: text parts are the content, `thought` parts the `reasoning_content`; any function call makes the
//!   finish reason `tool_calls`; a blocked prompt (200, no candidates) is a `content_filter` answer.
//! - Streams: each event holds only new parts; there is no `[DONE]` (the finish chunk ends it); usage is cumulative.
//! - Errors are `google.rpc.Status`; an invalid key is a 400 `API_KEY_INVALID`; the retry delay is in `RetryInfo`.
//! - Images: the image models (`gemini-2.5-flash-image`) answer `generateContent` with `responseModalities:
//!   ["IMAGE"]` as `inlineData` parts (base64 and its MIME type), one image per request; their usage is tokens
//!   (`usageMetadata`), priced as such.

mod answer;
mod request;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{
    images, json_post, Answer, Connector, ErrorResponse, ProviderConfig, StreamEvent,
};
pub use answer::StreamState;
use answer::{normalize_answer, usage};
use request::chat_request;

/// Gemini takes the key in `x-goog-api-key`.
fn google_key(key: &str) -> (&'static str, String) {
    ("x-goog-api-key", key.to_owned())
}

/// Separates a synthesized tool-call id from the thought signature it carries.
const SIGNATURE_MARK: &str = "~ts~";

pub struct Gemini;

impl Connector for Gemini {
    type StreamState = StreamState;

    fn chat_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        chat_request(p, body, model, stream)
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        embeddings_request(p, body, model)
    }

    /// Images by URL are fetched by the gateway and sent inline.
    fn inline_images(&self) -> bool {
        true
    }

    fn images_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        images_request(p, &body, model)
    }

    fn images_answer(
        &self,
        p: &ProviderConfig,
        answer: super::Media,
        created: u64,
    ) -> Result<Value, ApiError> {
        images_answer(p, answer, created)
    }

    fn usage(&self, answer: &Value) -> Option<Usage> {
        usage(answer)
    }

    fn normalize_answer(&self, answer: &mut Value, created: u64) -> Result<Answer, ApiError> {
        normalize_answer(answer, created);
        Ok(Answer::Rewritten)
    }

    fn normalize_embeddings(&self, answer: &mut Value, model: &str) -> Answer {
        normalize_embeddings(answer, model);
        Answer::Rewritten
    }

    fn stream_event(&self, state: &mut StreamState, data: &str, out: &mut Vec<StreamEvent>) {
        state.event(data, out);
    }

    /// providers.md §3.7: `google.rpc.Status`, possibly inside an array.
    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        let status = match e.json {
            Some(Value::Array(items)) => items.first(),
            other => other,
        };
        status_error(e.provider, e.status, e.headers, status)
    }
}

/// `{"embeddings":[{"values":[…]}]}` as an OpenAI embedding list (replaces it in place).
fn normalize_embeddings(answer: &mut Value, model: &str) {
    let data: Vec<Value> = answer
        .get("embeddings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e.get("values").cloned().unwrap_or_else(|| json!([]))}))
        .collect();
    *answer = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}});
}

fn embeddings_request(
    p: &ProviderConfig,
    body: Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => {
            return Err(ApiError::invalid_request(
                "gemini embeds text: `input` must be a string or an array of strings",
            )
            .with_param("input"))
        }
    };
    let requests: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
            if let Some(d) = body.get("dimensions") {
                r["outputDimensionality"] = d.clone();
            }
            r
        })
        .collect();
    let url = format!("{}/models/{model}:batchEmbedContents", p.base_url);
    Ok(json_post(
        p,
        url,
        google_key,
        &json!({"requests": requests}),
    ))
}

/// An image request as `generateContent` with the IMAGE modality.
fn images_request(
    p: &ProviderConfig,
    body: &Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    images::one_image_only(&p.name, body.get("n"))?;
    let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
    let mut config = json!({"responseModalities": ["IMAGE"]});
    if let Some((w, h)) = images::size(body.get("size")) {
        // Gemini takes an aspect ratio, not pixels.
        let ratio = match (w, h) {
            (w, h) if w == h => "1:1",
            (w, h) if w * 2 == h * 3 => "3:2",
            (w, h) if w * 3 == h * 2 => "2:3",
            (w, h) if w * 9 == h * 16 => "16:9",
            (w, h) if w * 16 == h * 9 => "9:16",
            (w, h) if w > h => "4:3",
            _ => "3:4",
        };
        config["imageConfig"] = json!({"aspectRatio": ratio});
    }
    let out = json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config});
    let url = format!("{}/models/{model}:generateContent", p.base_url);
    Ok(json_post(p, url, google_key, &out))
}

/// The `inlineData` parts of the answer as OpenAI images, with the tokens they were billed as.
fn images_answer(
    p: &ProviderConfig,
    answer: super::Media,
    created: u64,
) -> Result<Value, ApiError> {
    let super::Media::Json(v) = answer else {
        return Err(super::Media::missing(&p.name, "images", "JSON"));
    };
    let pictures: Vec<(String, Option<String>)> = v["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["content"]["parts"].as_array().into_iter().flatten())
        .filter_map(|part| {
            let d = part.get("inlineData").or_else(|| part.get("inline_data"))?;
            let mime = d.get("mimeType").and_then(Value::as_str).map(str::to_owned);
            Some((d.get("data")?.as_str()?.to_owned(), mime))
        })
        .collect();
    if pictures.is_empty() {
        // A prompt the model refused (`IMAGE_SAFETY`, `NO_IMAGE`) comes back with no picture.
        let why = v["candidates"][0]["finishReason"]
            .as_str()
            .or_else(|| v["promptFeedback"]["blockReason"].as_str())
            .unwrap_or("no reason given");
        // OpenAI refuses such prompts with a 400 `moderation_blocked` (§5.1): the same here.
        return Err(ApiError::new(
            crate::error::ErrorCode::UpstreamRejected {
                status: 400,
                code: Some("moderation_blocked".into()),
            },
            format!("upstream `{}` made no image ({why})", p.name),
        ));
    }
    let mut out = images::from_base64(pictures, created);
    if let Some(u) = usage(&v) {
        out["usage"] = json!({"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens});
    }
    Ok(out)
}

/// The OpenAI error for a parsed `google.rpc.Status` body (`{"error": {...}}`) seen with `status`.
fn status_error(
    provider: &str,
    status: u16,
    headers: &[(String, String)],
    parsed: Option<&Value>,
) -> ApiError {
    let e = parsed.and_then(|v| v.get("error"));
    let message = e
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("error");
    let grpc = e
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let details = e
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let reason = |r: &str| {
        details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some(r))
    };
    let said = format!("upstream `{provider}` returned {status} {grpc}: {message}");
    let mut err = match (status, grpc) {
        _ if reason("API_KEY_INVALID") || status == 401 || status == 403 => {
            ApiError::upstream_auth(provider, said)
        }
        (404, _) | (_, "NOT_FOUND") => ApiError::model_not_found(said),
        (429, _) | (_, "RESOURCE_EXHAUSTED") => ApiError::rate_limited(said),
        (503, _) | (_, "UNAVAILABLE") => ApiError::upstream_unavailable(said),
        (504, _) | (_, "DEADLINE_EXCEEDED") => ApiError::upstream_timeout(said),
        (400..=499, _) => ApiError::invalid_request(said),
        _ => ApiError::upstream_failed(said),
    };
    // No Retry-After header: the delay is in RetryInfo ("34.4s"), rounded up to whole seconds.
    err.retry_after = crate::http::find_header(headers, "retry-after")
        .map(str::to_owned)
        .or_else(|| {
            details
                .iter()
                .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
                .and_then(|s| {
                    s.trim_end_matches('s')
                        .parse::<f64>()
                        .ok()
                        .map(|secs| format!("{}", secs.ceil() as u64))
                })
        });
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    crate::providers::connector_test_helpers!(Dialect::Gemini);

    fn provider() -> ProviderConfig {
        crate::providers::test_provider(
            "gemini",
            "https://g/v1beta",
            "gemini-3.8-flash",
            Dialect::Gemini,
        )
    }

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_tool_round_trip_translates_both_ways_and_keeps_the_signature() {
        let b = body(
            json!({"model": "gemini/gemini-3.8-flash", "max_tokens": 100, "stop": "END", "temperature": 0.2,
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_r_0~ts~EskgCsYg", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Boston\"}"}}]},
                {"role": "tool", "tool_call_id": "call_r_0~ts~EskgCsYg", "content": "{\"tempC\":21}"}]}),
        );
        let req = chat_request(&provider(), b, "gemini-3.8-flash", false).unwrap();
        assert_eq!(
            req.url,
            "https://g/v1beta/models/gemini-3.8-flash:generateContent"
        );
        assert!(req
            .headers
            .contains(&("x-goog-api-key".into(), "sk-test".into())));
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            sent["systemInstruction"],
            json!({"parts": [{"text": "You are terse."}]})
        );
        assert_eq!(
            sent["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBO"}})
        );
        assert_eq!(
            sent["contents"][1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Boston"}}, "thoughtSignature": "EskgCsYg"}]})
        );
        assert_eq!(
            sent["contents"][2],
            json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"tempC": 21}}}]})
        );
        assert_eq!(
            sent["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
        assert_eq!(
            sent["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
        assert_eq!(
            sent["generationConfig"],
            json!({"temperature": 0.2, "maxOutputTokens": 100, "stopSequences": ["END"], "responseMimeType": "application/json"})
        );
    }

    #[test]
    fn images_by_http_url_and_orphan_tool_results_are_clear_400s() {
        let b = body(
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        );
        assert_eq!(
            chat_request(&provider(), b, "m", false)
                .unwrap_err()
                .status(),
            400
        );
        let b =
            body(json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}));
        assert_eq!(
            chat_request(&provider(), b, "m", false)
                .unwrap_err()
                .param
                .as_deref(),
            Some("messages[0]")
        );
    }

    #[test]
    fn the_real_answer_fixture_becomes_a_chat_completion() {
        // providers.md §3.3
        let mut v = json!({"candidates": [{"content": {"parts": [{"text": "There are **3** r's in strawberry.", "thoughtSignature": "EtoF"}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 28, "totalTokenCount": 281, "thoughtsTokenCount": 244},
            "modelVersion": "gemini-3-pro-preview", "responseId": "Un6LacrVMcjUxs0PmJfWoQc"});
        assert_eq!(
            usage(&v).map(|u| (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.reasoning_tokens
            )),
            Some((9, 272, 281, Some(244)))
        );
        normalize_answer(&mut v, 7);
        assert_eq!(v["id"], "chatcmpl-Un6LacrVMcjUxs0PmJfWoQc");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "There are **3** r's in strawberry."
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["completion_tokens"], 272);
    }

    #[test]
    fn stop_with_a_function_call_is_tool_calls_and_a_blocked_prompt_is_content_filter() {
        let mut v = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "weather", "args": {"location": "San Francisco"}}, "thoughtSignature": "Esk"}], "role": "model"},
            "finishReason": "STOP", "finishMessage": "Model generated function call(s).", "index": 0}], "responseId": "R"});
        normalize_answer(&mut v, 0);
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(
            (call["id"].as_str(), call["function"]["arguments"].as_str()),
            (
                Some("call_R_0~ts~Esk"),
                Some("{\"location\":\"San Francisco\"}")
            )
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        // providers.md §3.5
        let mut blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-3.7-flash", "responseId": "EXCP"});
        normalize_answer(&mut blocked, 0);
        assert_eq!(blocked["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(blocked["choices"][0]["message"]["content"], Value::Null);
    }

    #[test]
    fn the_real_stream_fixture_becomes_openai_chunks_ending_in_done() {
        // providers.md §3.6
        let a = r#"{"candidates": [{"content": {"parts": [{"text": "fixture ok"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 2,"totalTokenCount": 103,"thoughtsTokenCount": 94},"modelVersion": "gemini-3.7-flash","responseId": "WQuqavG5KbfUjMcPuP_n6QI"}"#;
        let b = r#"{"candidates": [{"content": {"parts": [{"text": "","thoughtSignature": "EqkE"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 2,"totalTokenCount": 103,"thoughtsTokenCount": 94},"modelVersion": "gemini-3.7-flash","responseId": "WQuqavG5KbfUjMcPuP_n6QI"}"#;
        let mut s = Dialect::Gemini.stream_translator(1);
        let first = s.events(a);
        assert_eq!(first.len(), 2);
        let StreamEvent::Chunk {
            data: role,
            content: false,
            ..
        } = &first[0]
        else {
            panic!()
        };
        assert!(
            role.contains(r#""role":"assistant""#)
                && role.contains("chatcmpl-WQuqavG5KbfUjMcPuP_n6QI")
        );
        let StreamEvent::Chunk {
            data: text,
            content: true,
            ..
        } = &first[1]
        else {
            panic!()
        };
        assert!(text.contains(r#""content":"fixture ok""#));
        let last = s.events(b);
        assert!(
            matches!(&last[0], StreamEvent::Chunk { data: f, .. } if f.contains(r#""finish_reason":"stop""#))
        );
        assert!(matches!(&last[1], StreamEvent::UsageOnly(u, _) if u.completion_tokens == 96));
        assert_eq!(last[2], StreamEvent::End);
    }

    #[test]
    fn google_errors_map_with_their_retry_delay() {
        let e = upstream_error("gemini", 400, &[], br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#);
        assert_eq!(
            (e.status(), e.code.code()),
            (502, Some("upstream_authentication_failed"))
        );
        let e = upstream_error("gemini", 429, &[], br#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"x"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.4s"}]}}"#);
        assert_eq!((e.status(), e.retry_after.as_deref()), (429, Some("35")));
        let e = upstream_error("gemini", 404, &[], br#"[{"error":{"code":404,"message":"models/gemini-2.0-flash is not found","status":"NOT_FOUND"}}]"#);
        assert_eq!(e.code.code(), Some("model_not_found"));
        assert_eq!(upstream_error("gemini", 503, &[], br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#).status(), 503);
    }
}
