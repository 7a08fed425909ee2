//! Anthropic's Messages API (`POST /v1/messages`) as an upstream, translated both ways
//! (shared/providers-more.md §1).
//! - Requests: system/developer messages become `system` blocks; images become `image` blocks (base64 from a
//!   `data:` URL, or by URL); tool calls become `tool_use` blocks and tool messages `tool_result` blocks, first in
//!   one user message; `max_tokens` is required (4096 when the client gives none); `reasoning_effort` or an
//!   Anthropic-shaped `thinking` enables extended thinking; `n > 1` is a 400; OpenAI's sampling penalties, seed
//!   and logprobs have no counterpart and are not sent. The key goes in `x-api-key` with `anthropic-version`.
//! - Thinking across a tool turn: answers carry the thinking blocks with their signatures as
//!   `message.reasoning_details` (streams: one chunk before the finish); a client that sends them back with the
//!   assistant turn continues the turn with thinking. A turn that continues an open tool call without them is
//!   sent without thinking (Anthropic would refuse it).
//! - Answers and streams: text → `content`, thinking → `reasoning_content`, `tool_use` → `tool_calls`; usage
//!   counts cache reads and writes in the prompt (`cached_tokens`, `cache_write_tokens`) and thinking in the
//!   completion. The stream has no `[DONE]`: `message_stop` ends it.
//! - Errors: `{"type":"error","error":{"type","message"}}`; `overloaded_error` (529) is retryable like a 503, a
//!   spend cap (429 `enforced_spend_limit_reached`) is not.

mod answer;
mod request;

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{Answer, Connector, ErrorResponse, ProviderConfig, StreamEvent};
pub use answer::StreamState;

/// The API version the connector speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` when the client sets no limit (Anthropic requires one).
const DEFAULT_MAX_TOKENS: u64 = 4096;

pub struct Anthropic;

impl Connector for Anthropic {
    type StreamState = StreamState;

    fn chat_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        request::chat_request(p, body, model, stream)
    }

    fn usage(&self, answer: &Value) -> Option<Usage> {
        answer::usage(answer)
    }

    fn normalize_answer(&self, answer: &mut Value, created: u64) -> Result<Answer, ApiError> {
        if answer.get("type").and_then(Value::as_str) == Some("error") {
            return Err(error_object(answer.get("error"), "anthropic", 200));
        }
        answer::normalize_answer(answer, created);
        Ok(Answer::Rewritten)
    }

    fn stream_event(&self, state: &mut StreamState, data: &str, out: &mut Vec<StreamEvent>) {
        state.event(data, out);
    }

    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        let error = e.json.and_then(|v| v.get("error"));
        if error.is_none() {
            return crate::providers::openai::error_from_object(e);
        }
        error_object(error, e.provider, e.status)
    }
}

/// The client's error for an Anthropic error object (`{"type", "message", "details"?}`) seen with `status` (200
/// for an error inside a stream or a 200 body).
fn error_object(error: Option<&Value>, provider: &str, status: u16) -> ApiError {
    let field = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str);
    let kind = field("type").unwrap_or("api_error");
    let said = field("message").unwrap_or("error");
    let message = format!("upstream `{provider}` returned {kind}: {said}");
    let spend_cap = error
        .and_then(|e| e.pointer("/details/error_code"))
        .and_then(Value::as_str)
        == Some("enforced_spend_limit_reached");
    match (kind, status) {
        ("authentication_error", _) | (_, 401) => ApiError::upstream_auth(provider, message),
        ("permission_error", _) | (_, 403) => ApiError::permission(message),
        ("not_found_error", _) | (_, 404) => ApiError::model_not_found(message),
        ("billing_error", _) | (_, 402) => ApiError::quota(message),
        ("rate_limit_error", _) | (_, 429) if spend_cap => {
            ApiError::new(ErrorCode::InsufficientQuota { status: 429 }, message)
        }
        ("rate_limit_error", _) | (_, 429) => ApiError::rate_limited(message),
        ("request_too_large", _) | (_, 413) => ApiError::new(
            ErrorCode::UpstreamRejected {
                status: 413,
                code: Some("request_too_large".into()),
            },
            message,
        ),
        ("overloaded_error", _) | (_, 529) => ApiError::new(ErrorCode::UpstreamOverloaded, message),
        ("timeout_error", _) | (_, 504) => ApiError::upstream_timeout(message),
        ("invalid_request_error", _) if said.contains("prompt is too long") => {
            ApiError::context_length(message)
        }
        ("invalid_request_error", _) => ApiError::new(
            ErrorCode::UpstreamRejected {
                status: if (400..500).contains(&status) {
                    status
                } else {
                    400
                },
                code: None,
            },
            said.to_owned(),
        ),
        _ => ApiError::upstream_failed(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Dialect, StreamEvent};
    use serde_json::json;

    crate::providers::connector_test_helpers!(Dialect::Anthropic);

    fn provider() -> ProviderConfig {
        crate::providers::test_provider(
            "claude",
            "https://api.anthropic.com/v1",
            "claude-sonnet-4-6",
            Dialect::Anthropic,
        )
    }

    fn sent(body: Value, stream: bool) -> (UpstreamRequest, Value) {
        let Value::Object(body) = body else {
            unreachable!()
        };
        let req = Anthropic
            .chat_request(&provider(), body, "claude-sonnet-4-6", stream)
            .unwrap();
        let v = serde_json::from_slice(&req.body).unwrap();
        (req, v)
    }

    #[test]
    fn a_tool_round_trip_request_has_system_blocks_tool_use_and_results_first() {
        let (req, v) = sent(
            json!({"model": "claude/claude-sonnet-4-6", "max_tokens": 300, "temperature": 1.7, "stop": "###",
                "user": "u1", "seed": 7, "presence_penalty": 1, "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                {"role": "user", "content": "And tomorrow?"}],
             "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}}}}}], "tool_choice": "required", "parallel_tool_calls": false}),
            false,
        );
        assert_eq!(req.url, "https://api.anthropic.com/v1/messages");
        assert!(req
            .headers
            .contains(&("x-api-key".into(), "sk-test".into())));
        assert!(req
            .headers
            .contains(&("anthropic-version".into(), ANTHROPIC_VERSION.into())));
        assert_eq!(v["system"], json!([{"type": "text", "text": "Be terse."}]));
        assert_eq!(
            (v["max_tokens"].as_u64(), v["temperature"].as_f64()),
            (Some(300), Some(1.0))
        );
        assert_eq!(v["stop_sequences"], json!(["###"]));
        assert_eq!(v["metadata"], json!({"user_id": "u1"}));
        assert!(v.get("seed").is_none() && v.get("presence_penalty").is_none());
        let m = v["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "iVBOR"})
        );
        assert_eq!(
            m[1]["content"],
            json!([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}])
        );
        assert_eq!(
            m[2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"})
        );
        assert_eq!(
            m[2]["content"][1],
            json!({"type": "text", "text": "And tomorrow?"})
        );
        assert_eq!(
            v["tools"][0]["input_schema"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn thinking_goes_back_with_its_signature_and_is_dropped_without_one() {
        let turn = |details: Value| {
            json!({"model": "m", "reasoning_effort": "medium", "messages": [
                {"role": "user", "content": "Check the sandbox."},
                {"role": "assistant", "content": null, "reasoning_details": details, "tool_calls": [{"id": "toolu_9",
                    "type": "function", "function": {"name": "check", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "toolu_9", "content": "0 errors"}]})
        };
        let (_, v) = sent(
            turn(json!([{"type": "thinking", "thinking": "Call it.", "signature": "Eq4C"}])),
            true,
        );
        assert_eq!(
            v["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert!(v["max_tokens"].as_u64().unwrap() > 4096);
        assert_eq!(v["stream"], true);
        assert_eq!(
            v["messages"][1]["content"][0],
            json!({"type": "thinking", "thinking": "Call it.", "signature": "Eq4C"})
        );
        assert_eq!(v["messages"][1]["content"][1]["input"], json!({}));
        let (_, v) = sent(turn(Value::Null), false);
        assert!(
            v.get("thinking").is_none(),
            "an unsigned open tool turn must go without thinking"
        );
    }

    #[test]
    fn n_over_one_and_unknown_parts_are_400s() {
        let Value::Object(body) = json!({"model": "m", "n": 2, "messages": []}) else {
            unreachable!()
        };
        let e = Anthropic
            .chat_request(&provider(), body, "m", false)
            .unwrap_err();
        assert_eq!((e.status(), e.param.as_deref()), (400, Some("n")));
    }

    #[test]
    fn the_real_thinking_tool_answer_becomes_a_chat_completion_with_its_signature() {
        // shared/providers-more.md §1.3 (vercel:issue-13430-thinking-tool-call.json)
        let mut a = json!({"model":"claude-sonnet-4-6","id":"msg_011CfWBu94HWxZXjXK6ZhEXM","type":"message","role":"assistant",
            "content":[{"type":"thinking","thinking":"The user wants me to call checkSandboxErrors immediately.","signature":"Eq4CCpIBCBIYAipAM+SG"},
              {"type":"tool_use","id":"toolu_017R7ACrx7NF7sLDDtvdQ1u9","name":"checkSandboxErrors","input":{},"caller":{"type":"direct"}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":599,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":59,
              "output_tokens_details":{"thinking_tokens":18}}});
        let u = Anthropic.usage(&a).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (629, 59, 688)
        );
        assert_eq!(
            (u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens),
            (Some(20), Some(10), Some(18))
        );
        Anthropic.normalize_answer(&mut a, 5).unwrap();
        let c = &a["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls");
        assert_eq!(
            c["message"]["tool_calls"][0]["function"],
            json!({"name": "checkSandboxErrors", "arguments": "{}"})
        );
        assert_eq!(
            c["message"]["reasoning_details"][0]["signature"],
            "Eq4CCpIBCBIYAipAM+SG"
        );
        assert!(c["message"]["content"].is_null());
        assert_eq!(
            a["usage"]["prompt_tokens_details"],
            json!({"cached_tokens": 20, "cache_write_tokens": 10})
        );
        assert_eq!(crate::providers::openai::usage(&a).unwrap(), u);
    }

    #[test]
    fn the_real_tool_stream_becomes_openai_chunks_and_ends_itself() {
        // shared/providers-more.md §1.4, stream C
        let mut t = Dialect::Anthropic.stream_translator(9);
        let mut out = Vec::new();
        for data in [
            r#"{"type":"message_start","message":{"id":"msg_019Q","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll check."}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01N","name":"get_weather","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"locati"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"on\": \"Paris\"}"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            t.translate(data, &mut out);
        }
        let data: Vec<Value> = out
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Chunk { data, .. } | StreamEvent::UsageOnly(_, data) => {
                    serde_json::from_str(data).ok()
                }
                _ => None,
            })
            .collect();
        assert_eq!(data[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(data[0]["id"], "chatcmpl-msg_019Q");
        assert_eq!(data[1]["choices"][0]["delta"]["content"], "I'll check.");
        assert_eq!(
            data[2]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "toolu_01N"
        );
        let args: String = data[3..5]
            .iter()
            .map(|d| {
                d["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(args, r#"{"location": "Paris"}"#);
        assert_eq!(data[5]["choices"][0]["finish_reason"], "tool_calls");
        assert!(
            matches!(out[out.len() - 2], StreamEvent::UsageOnly(u, _) if u.prompt_tokens == 377 && u.completion_tokens == 65)
        );
        assert_eq!(out.last(), Some(&StreamEvent::End));
    }

    #[test]
    fn a_thinking_stream_gives_reasoning_then_its_signed_blocks_before_the_finish() {
        let mut t = Dialect::Anthropic.stream_translator(0);
        let mut out = Vec::new();
        for data in [
            r#"{"type":"message_start","message":{"id":"m1","model":"claude-sonnet-5","usage":{"input_tokens":47,"output_tokens":2}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"GCD first."}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EsEC"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"21"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":47,"output_tokens":373,"output_tokens_details":{"thinking_tokens":62}}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            t.translate(data, &mut out);
        }
        assert!(
            matches!(&out[1], StreamEvent::Chunk { content: true, data, .. } if data.contains("\"reasoning_content\":\"GCD first.\""))
        );
        let details = out
            .iter()
            .find_map(|e| match e {
                StreamEvent::Chunk { data, .. } if data.contains("reasoning_details") => {
                    Some(data.clone())
                }
                _ => None,
            })
            .unwrap();
        let v: Value = serde_json::from_str(&details).unwrap();
        assert_eq!(
            v["choices"][0]["delta"]["reasoning_details"],
            json!([{"type": "thinking", "thinking": "GCD first.", "signature": "EsEC"}])
        );
        assert!(
            matches!(out[out.len() - 2], StreamEvent::UsageOnly(u, _) if u.reasoning_tokens == Some(62))
        );
    }

    #[test]
    fn errors_map_by_type_overloaded_is_retryable_and_a_spend_cap_is_not() {
        let e = upstream_error(
            "claude",
            529,
            &[],
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!((e.status(), e.retryable()), (503, true));
        let e = upstream_error(
            "claude",
            429,
            &[("retry-after".into(), "7".into())],
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        );
        assert_eq!((e.status(), e.retry_after.as_deref()), (429, Some("7")));
        let e = upstream_error("claude", 429, &[], br#"{"type":"error","error":{"type":"rate_limit_error","message":"cap","details":{"error_code":"enforced_spend_limit_reached"}}}"#);
        assert!(!e.retryable());
        let e = upstream_error("claude", 401, &[], br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#);
        assert_eq!(e.status(), 502);
        let e = upstream_error("claude", 400, &[], br#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.1: bad"}}"#);
        assert_eq!((e.status(), e.message.as_str()), (400, "messages.1: bad"));
        let events = stream_events(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert!(matches!(&events[0], StreamEvent::Error(d) if d.contains("upstream_overloaded")));
    }
}
