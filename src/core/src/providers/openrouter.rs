//! OpenRouter (providers.md §4): OpenAI-shaped, plus:
//! - attribution headers (`HTTP-Referer`, `X-OpenRouter-Title`) from `OPENROUTER_HEADERS`;
//! - its own `provider` routing object passes through (the gateway's `provider` is a string);
//! - `: OPENROUTER PROCESSING` comments (skipped by the SSE decoder);
//! - a mid-stream failure is a chunk with a top-level `error` and `finish_reason: "error"`, turned into an
//!   OpenAI error event; usage attached to a finish chunk is moved to its own chunk;
//! - errors carry the HTTP status as a number in `error.code` and a type in `error.metadata.error_type`.

use serde_json::{Map, Value};

use crate::config::ProviderConfig;
use crate::error::ApiError;
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{openai, StreamEvent};

pub fn chat_request(
    p: &ProviderConfig,
    mut body: Map<String, Value>,
    model: &str,
    stream: bool,
) -> UpstreamRequest {
    openai::prepare_body(&mut body, model);
    openai::ask_for_usage(&mut body, stream);
    openai::post(p, "/chat/completions", &body)
}

pub fn usage(response: &Value) -> Option<Usage> {
    openai::usage(response)
}

pub fn stream_events(data: &str) -> Vec<StreamEvent> {
    if data.trim() == "[DONE]" {
        return vec![StreamEvent::Done];
    }
    let Ok(v) = serde_json::from_str::<Value>(data) else {
        return vec![StreamEvent::Opaque(data.to_owned())];
    };
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        let status = e
            .get("code")
            .and_then(Value::as_u64)
            .map_or(502, |c| c as u16);
        let mut err = error_for(status, e, "openrouter");
        err.message = format!("the stream failed upstream: {}", err.message);
        return vec![StreamEvent::error(&err)];
    }
    let u = usage(&v);
    super::move_usage_off_chunk(v, data, u)
}

/// providers.md §4.4 and §7.3.
pub fn upstream_error(
    provider: &str,
    status: u16,
    _headers: &[(String, String)],
    body: &[u8],
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => error_for(status, e, provider),
        None => openai::error_from_object(provider, status, parsed.as_ref(), body),
    }
}

/// The OpenAI error for an OpenRouter error object seen with `status`.
fn error_for(status: u16, e: &Value, provider: &str) -> ApiError {
    let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
    let error_type = e.pointer("/metadata/error_type").and_then(Value::as_str);
    let said = format!("upstream `{provider}` returned {status}: {message}");
    match (status, error_type) {
        (_, Some("context_length_exceeded")) => ApiError::context_length(said),
        (401, _) => ApiError::upstream_auth(provider, said),
        (402, _) => ApiError::quota(said),
        (403, _) => ApiError::permission(said),
        (404, _) => ApiError::model_not_found(said),
        (408, _) => ApiError::upstream_timeout(said),
        (413, _) => ApiError::new(
            413,
            "invalid_request_error",
            Some("request_too_large"),
            said,
        ),
        (429, _) => ApiError::new(
            429,
            "rate_limit_error",
            Some(error_type.unwrap_or("rate_limit_exceeded")),
            said,
        ),
        (503, _) => ApiError::upstream_unavailable(said),
        (400..=499, _) => ApiError::invalid_request(said),
        _ => ApiError::upstream_failed(said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mid_stream_error_chunk_becomes_an_openai_error_event() {
        // providers.md §4.3, verbatim
        let chunk = r#"{"id":"gen-abc123","object":"chat.completion.chunk","created":1234567890,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}"#;
        let events = stream_events(chunk);
        let [StreamEvent::Error(e)] = events.as_slice() else {
            panic!("{events:?}")
        };
        let e: Value = serde_json::from_str(e).unwrap();
        assert_eq!(
            e,
            serde_json::json!({"error": {"message": "the stream failed upstream: upstream `openrouter` returned 429: Rate limit exceeded",
            "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})
        );
    }

    #[test]
    fn the_usage_chunk_passes_and_cost_is_ignored() {
        let usage_chunk = r#"{"id":"gen-abc","object":"chat.completion.chunk","created":1779358422,"model":"openai/gpt-4o","provider":"OpenAI","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"cost":0.000075,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;
        assert!(
            matches!(&stream_events(usage_chunk)[..], [StreamEvent::UsageOnly(u, _)] if u.total_tokens == 15)
        );
    }

    #[test]
    fn openrouter_errors_with_numeric_codes() {
        let e = upstream_error(
            "openrouter",
            402,
            &[],
            br#"{"error":{"message":"This request requires more credits","code":402}}"#,
        );
        assert_eq!((e.status, e.kind), (402, "insufficient_quota"));
        let h = vec![("retry-after".to_owned(), "7".to_owned())];
        let e = crate::providers::Connector::OpenRouter.upstream_error("openrouter", 429, &h, br#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"x","provider_name":"Google AI Studio"}}}"#);
        assert_eq!((e.status, e.retry_after.as_deref()), (429, Some("7")));
        let e = upstream_error(
            "openrouter",
            400,
            &[],
            br#"{"error":{"code":400,"message":"Invalid model specified"}}"#,
        );
        assert_eq!(e.status, 400);
        let e = upstream_error("openrouter", 403, &[], br#"{"error":{"code":403,"message":"Request blocked: prompt injection patterns detected","metadata":{"patterns":["ignore all previous instructions"]}}}"#);
        assert_eq!(e.kind, "permission_error");
    }
}
