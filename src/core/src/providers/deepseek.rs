//! DeepSeek (providers.md §2): OpenAI-shaped, with its own quirks.
//! - Requests: `developer` becomes `system`, `max_completion_tokens` becomes `max_tokens`, OpenAI-only fields
//!   are dropped; `thinking` and assistant `reasoning_content` pass through (DeepSeek needs the latter back on
//!   tool-call turns).
//! - Streams: `: keep-alive` comments while queued (the SSE decoder skips them); usage rides on the finish
//!   chunk, which is split into the finish chunk and an OpenAI `choices: []` usage chunk;
//!   `finish_reason: "insufficient_system_resource"` is a retryable failure, not a normal end.
//! - Usage: `prompt_cache_hit_tokens` are the cached tokens.
//! - Errors: 402 is an exhausted balance; an unknown model is a 400 "Model Not Exist".

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{openai, Connector, ErrorResponse, ProviderConfig, StreamEvent};

/// OpenAI request fields DeepSeek does not document (providers.md §0.2).
const DROPPED_FIELDS: &[&str] = &[
    "store",
    "metadata",
    "service_tier",
    "parallel_tool_calls",
    "modalities",
];

pub struct DeepSeek;

impl Connector for DeepSeek {
    type StreamState = ();

    fn chat_request(
        &self,
        p: &ProviderConfig,
        mut body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        openai::compatible_body(&mut body, model, DROPPED_FIELDS);
        openai::ask_for_usage(&mut body, stream);
        Ok(openai::post(p, "/chat/completions", &body))
    }

    fn usage(&self, answer: &Value) -> Option<Usage> {
        usage(answer)
    }

    /// The finish chunk's usage is moved to its own usage chunk; running out of capacity is a failure.
    fn stream_event(&self, _state: &mut (), data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        let finish = v
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str);
        if finish == Some("insufficient_system_resource") {
            let err = ApiError::new(
                ErrorCode::UpstreamOverloaded,
                "upstream `deepseek` stopped: insufficient system resources; retry or use another provider",
            );
            out.push(StreamEvent::error(&err));
            return;
        }
        let u = usage(&v);
        super::move_usage_off_chunk(v, data, u, out);
    }

    /// providers.md §2.5 and §7.3, DeepSeek's codes.
    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        let provider = e.provider;
        let message = e
            .json
            .and_then(|v| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match e.status {
            402 => ApiError::new(
                ErrorCode::InsufficientQuota { status: 402 },
                format!("upstream `{provider}`: the account's balance is exhausted ({message})"),
            ),
            400 if message.contains("Model Not Exist") => ApiError::model_not_found(format!(
                "upstream `{provider}` does not have this model ({message})"
            )),
            422 => ApiError::invalid_request(format!(
                "upstream `{provider}` rejected a parameter: {message}"
            )),
            _ => openai::error_from_object(e),
        }
    }
}

/// providers.md §7.2, DeepSeek row: `prompt_cache_hit_tokens` are the cached tokens.
pub(crate) fn usage(response: &Value) -> Option<Usage> {
    let mut u = openai::usage(response)?;
    let hit = response
        .get("usage")
        .and_then(|u| u.get("prompt_cache_hit_tokens"))
        .and_then(Value::as_u64);
    if hit.is_some() {
        u.cached_tokens = hit;
    }
    Some(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    crate::providers::connector_test_helpers!(Dialect::DeepSeek);

    fn provider() -> ProviderConfig {
        crate::providers::test_provider(
            "deepseek",
            "https://api.deepseek.com",
            "deepseek-flash",
            Dialect::DeepSeek,
        )
    }

    #[test]
    fn requests_are_cleaned_for_deepseek_and_keep_its_own_fields() {
        let body = serde_json::json!({"model": "deepseek/deepseek-flash", "max_completion_tokens": 50, "store": true,
            "thinking": {"type": "disabled"}, "stream": true,
            "messages": [{"role": "developer", "content": "be brief"},
                         {"role": "assistant", "content": "", "reasoning_content": "thought", "tool_calls": []},
                         {"role": "user", "content": "hi"}]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let req = DeepSeek
            .chat_request(&provider(), body, "deepseek-flash", true)
            .unwrap();
        assert_eq!(req.url, "https://api.deepseek.com/chat/completions");
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent["max_tokens"], 50);
        assert!(sent.get("max_completion_tokens").is_none() && sent.get("store").is_none());
        assert_eq!(sent["messages"][0]["role"], "system");
        assert_eq!(sent["messages"][1]["reasoning_content"], "thought");
        assert_eq!(sent["thinking"], serde_json::json!({"type": "disabled"}));
        assert_eq!(sent["stream_options"]["include_usage"], true);
    }

    #[test]
    fn usage_reads_cache_hits_and_reasoning_from_the_real_fixture() {
        // providers.md §2.3, the thinking response
        let v = serde_json::json!({"usage":{"prompt_tokens":97,"completion_tokens":131,"total_tokens":228,
            "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":113},
            "prompt_cache_hit_tokens":5,"prompt_cache_miss_tokens":92}});
        let u = usage(&v).unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (97, 131, Some(5), Some(113))
        );
    }

    #[test]
    fn the_finish_chunk_is_split_from_its_usage() {
        // providers.md §2.4: usage rides on the chunk that carries finish_reason.
        let finish = r#"{"id":"b1e2","object":"chat.completion.chunk","created":1786782776,"model":"deepseek-v4-flash","system_fingerprint":"a26a","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":97,"completion_tokens":106,"total_tokens":203,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":88},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":97}}"#;
        let events = stream_events(finish);
        assert_eq!(events.len(), 2);
        let StreamEvent::Chunk {
            usage: None,
            data: chunk,
            ..
        } = &events[0]
        else {
            panic!("{events:?}")
        };
        let chunk: Value = serde_json::from_str(chunk).unwrap();
        assert!(chunk.get("usage").is_none());
        assert_eq!(chunk["choices"][0]["finish_reason"], "stop");
        let StreamEvent::UsageOnly(u, usage_chunk) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!((u.completion_tokens, u.reasoning_tokens), (106, Some(88)));
        let usage_chunk: Value = serde_json::from_str(usage_chunk).unwrap();
        assert_eq!(usage_chunk["choices"], serde_json::json!([]));
        assert_eq!(usage_chunk["id"], "b1e2");
        // Reasoning deltas pass through unchanged.
        let reasoning = r#"{"id":"b1e2","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"We"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        assert_eq!(
            stream_events(reasoning),
            vec![StreamEvent::Chunk {
                usage: None,
                data: reasoning.to_owned(),
                content: true
            }]
        );
    }

    #[test]
    fn insufficient_resources_is_a_failure_not_an_end() {
        let chunk = r#"{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"insufficient_system_resource"}]}"#;
        let events = stream_events(chunk);
        let [StreamEvent::Error(e)] = events.as_slice() else {
            panic!()
        };
        assert!(e.contains("upstream_overloaded"));
    }

    #[test]
    fn deepseek_errors_map_to_openai_meanings() {
        let e = upstream_error("deepseek", 402, &[], br#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#);
        assert_eq!((e.status(), e.kind()), (402, "insufficient_quota"));
        let e = upstream_error("deepseek", 400, &[], br#"{"error":{"message":"Model Not Exist","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#);
        assert_eq!((e.status(), e.code.code()), (404, Some("model_not_found")));
        assert_eq!(upstream_error("deepseek", 503, &[], b"{}").status(), 503);
    }
}
