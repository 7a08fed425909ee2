//! OpenRouter (providers.md §4): OpenAI-shaped, plus:
//! - attribution headers (`HTTP-Referer`, `X-OpenRouter-Title`) from `OPENROUTER_HEADERS`;
//! - its own `provider` routing object passes through (the gateway's `provider` is a string);
//! - `: OPENROUTER PROCESSING` comments (skipped by the SSE decoder);
//! - a mid-stream failure is a chunk with a top-level `error` and `finish_reason: "error"`, turned into an
//!   OpenAI error event; usage attached to a finish chunk is moved to its own chunk;
//! - errors carry the HTTP status as a number in `error.code` and a type in `error.metadata.error_type`.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::ports::UpstreamRequest;
use crate::providers::{openai, Connector, ErrorResponse, ProviderConfig, StreamEvent};

pub struct OpenRouter;

impl Connector for OpenRouter {
    type StreamState = ();

    fn chat_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        openai::prepare_body(&mut body, model);
        openai::ask_for_usage(&mut body, stream);
        Ok(openai::post(p, "/chat/completions", &body))
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        Ok(openai::embeddings_request(p, body, model))
    }

    fn stream_event(&self, _state: &mut (), data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            let status = e
                .get("code")
                .and_then(Value::as_u64)
                .map_or(502, |c| c as u16);
            let mut err = error_for(status, e, "openrouter");
            err.message = format!("the stream failed upstream: {}", err.message);
            out.push(StreamEvent::error(&err));
            return;
        }
        let u = openai::usage(&v);
        super::move_usage_off_chunk(v, data, u, out);
    }

    /// providers.md §4.4 and §7.3.
    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        match e.json.and_then(|v| v.get("error")) {
            Some(obj) => error_for(e.status, obj, e.provider),
            None => openai::error_from_object(e),
        }
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
        (413, _) => ApiError::new(ErrorCode::RequestTooLarge, said),
        (429, _) => ApiError::new(
            ErrorCode::RateLimited {
                code: error_type.map(str::to_owned),
            },
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
    use crate::providers::Dialect;

    crate::providers::connector_test_helpers!(Dialect::OpenRouter);

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
        assert_eq!((e.status(), e.kind()), (402, "insufficient_quota"));
        let h = vec![("retry-after".to_owned(), "7".to_owned())];
        let e = upstream_error("openrouter", 429, &h, br#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"x","provider_name":"Google AI Studio"}}}"#);
        assert_eq!((e.status(), e.retry_after.as_deref()), (429, Some("7")));
        let e = upstream_error(
            "openrouter",
            400,
            &[],
            br#"{"error":{"code":400,"message":"Invalid model specified"}}"#,
        );
        assert_eq!(e.status(), 400);
        let e = upstream_error("openrouter", 403, &[], br#"{"error":{"code":403,"message":"Request blocked: prompt injection patterns detected","metadata":{"patterns":["ignore all previous instructions"]}}}"#);
        assert_eq!(e.kind(), "permission_error");
    }
}
