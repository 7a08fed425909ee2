//! Anthropic Messages answer and stream → OpenAI chat completion and chunks (shared/providers-more.md §1.3,
//! §1.4, §1.7).

use serde_json::{json, Value};

use crate::log::Usage;
use crate::providers::{NewStream, StreamEvent};

/// Usage in OpenAI's meaning: the prompt is every input token (plain, cache reads, cache writes); cached and
/// cache-write tokens are parts of it, thinking tokens a part of the completion.
pub(super) fn usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(read_usage(u, None))
}

/// Reads an Anthropic usage object over `base` (a stream's `message_delta` repeats or omits the input counts).
fn read_usage(u: &Value, base: Option<&Usage>) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let write = n("cache_creation_input_tokens").or(base.and_then(|b| b.cache_write_tokens));
    let read = n("cache_read_input_tokens").or(base.and_then(|b| b.cached_tokens));
    let plain = n("input_tokens").or(base.map(|b| {
        b.prompt_tokens - b.cached_tokens.unwrap_or(0) - b.cache_write_tokens.unwrap_or(0)
    }));
    let prompt = plain.unwrap_or(0) + read.unwrap_or(0) + write.unwrap_or(0);
    let completion = n("output_tokens")
        .or(base.map(|b| b.completion_tokens))
        .unwrap_or(0);
    let thinking = u
        .pointer("/output_tokens_details/thinking_tokens")
        .and_then(Value::as_u64)
        .or(base.and_then(|b| b.reasoning_tokens));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        cached_tokens: read,
        reasoning_tokens: thinking.map(|t| t.min(completion)),
        cache_write_tokens: write,
        ..Usage::default()
    }
}

pub(super) fn usage_json(u: &Usage) -> Value {
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens.unwrap_or(0),
            "cache_write_tokens": u.cache_write_tokens.unwrap_or(0)},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)}})
}

fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// A thinking block as the gateway gives it out (`reasoning_details`) and takes it back.
fn detail(block: &Value) -> Option<Value> {
    match block.get("type").and_then(Value::as_str)? {
        "thinking" => Some(
            json!({"type": "thinking", "thinking": block.get("thinking").cloned().unwrap_or(json!("")),
            "signature": block.get("signature").cloned().unwrap_or(json!(""))}),
        ),
        "redacted_thinking" => Some(
            json!({"type": "redacted_thinking", "data": block.get("data").cloned().unwrap_or(json!(""))}),
        ),
        _ => None,
    }
}

/// A Messages answer → an OpenAI `chat.completion`: text blocks are the content, `tool_use` blocks the tool
/// calls, thinking the `reasoning_content`, and the thinking blocks themselves (with their signatures)
/// `reasoning_details`, which a client sends back with the assistant turn to continue a tool loop.
pub(super) fn normalize_answer(answer: &mut Value, created: u64) {
    let blocks = answer
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut text, mut reasoning, mut calls, mut details) =
        (String::new(), String::new(), Vec::new(), Vec::new());
    for b in &blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
                details.extend(detail(b));
            }
            Some("redacted_thinking") => details.extend(detail(b)),
            Some("tool_use") => calls.push(json!({"id": b.get("id"), "type": "function", "function": {
                "name": b.get("name"), "arguments": b.get("input").map_or("{}".to_owned(), Value::to_string)}})),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    if !details.is_empty() {
        message["reasoning_details"] = Value::Array(details);
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let stop = answer.get("stop_reason").and_then(Value::as_str);
    let mut out = json!({"id": format!("chatcmpl-{}", answer.get("id").and_then(Value::as_str).unwrap_or("anthropic")),
        "object": "chat.completion", "created": created, "model": answer.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(stop)}]});
    if let Some(u) = usage(answer) {
        out["usage"] = usage_json(&u);
    }
    *answer = out;
}

/// What a stream remembers: the message's id, model and usage so far, which blocks are tool calls (and their
/// OpenAI index), the thinking blocks being read, and how it finished.
pub struct StreamState {
    created: u64,
    id: String,
    model: Value,
    usage: Option<Usage>,
    /// By block index: the OpenAI tool-call index of a `tool_use` block.
    tool_index: Vec<(u64, usize)>,
    tools: usize,
    /// The thinking block being read (text, signature) and those done.
    thinking: Option<(String, String)>,
    details: Vec<Value>,
    finish: Option<&'static str>,
}

impl NewStream for StreamState {
    fn new_stream(created: u64) -> Self {
        Self {
            created,
            id: "chatcmpl-anthropic".into(),
            model: Value::Null,
            usage: None,
            tool_index: Vec::new(),
            tools: 0,
            thinking: None,
            details: Vec::new(),
            finish: None,
        }
    }
}

impl StreamState {
    fn chunk_value(&self, delta: Value, finish: Value) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    }

    fn chunk(&self, delta: Value) -> StreamEvent {
        let v = self.chunk_value(delta, Value::Null);
        StreamEvent::chunk(&v, v.to_string(), None)
    }

    pub(super) fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let m = v.get("message").cloned().unwrap_or(Value::Null);
                if let Some(id) = m.get("id").and_then(Value::as_str) {
                    self.id = format!("chatcmpl-{id}");
                }
                self.model = m.get("model").cloned().unwrap_or(Value::Null);
                self.usage = usage(&m);
                out.push(self.chunk(json!({"role": "assistant", "content": ""})));
            }
            Some("content_block_start") => {
                let block = v.get("content_block").cloned().unwrap_or(Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let k = self.tools;
                        self.tools += 1;
                        self.tool_index.push((index, k));
                        out.push(self.chunk(json!({"tool_calls": [{"index": k, "id": block.get("id"), "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""}}]})));
                    }
                    Some("thinking") => self.thinking = Some((String::new(), String::new())),
                    Some("redacted_thinking") => self.details.extend(detail(&block)),
                    _ => {}
                }
            }
            Some("content_block_delta") => {
                let d = v.get("delta").cloned().unwrap_or(Value::Null);
                let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => out.push(self.chunk(json!({"content": text("text")}))),
                    Some("thinking_delta") => {
                        let t = text("thinking");
                        if let Some((acc, _)) = &mut self.thinking {
                            acc.push_str(&t);
                        }
                        out.push(self.chunk(json!({"reasoning_content": t})));
                    }
                    Some("signature_delta") => {
                        if let Some((_, sig)) = &mut self.thinking {
                            sig.push_str(&text("signature"));
                        }
                    }
                    Some("input_json_delta") => {
                        let partial = text("partial_json");
                        let k = self
                            .tool_index
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map(|(_, k)| *k);
                        if let (Some(k), false) = (k, partial.is_empty()) {
                            out.push(self.chunk(json!({"tool_calls": [{"index": k, "function": {"arguments": partial}}]})));
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                if let Some((thinking, signature)) = self.thinking.take() {
                    self.details.push(
                        json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                    );
                }
            }
            Some("message_delta") => {
                if let Some(stop) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = Some(finish_reason(Some(stop)));
                }
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    self.usage = Some(read_usage(u, self.usage.as_ref()));
                }
            }
            Some("message_stop") => {
                if !self.details.is_empty() {
                    // The thinking blocks with their signatures, for the client to send back with this turn.
                    let details = std::mem::take(&mut self.details);
                    let v = self.chunk_value(json!({"reasoning_details": details}), Value::Null);
                    out.push(StreamEvent::Chunk {
                        usage: None,
                        data: v.to_string(),
                        content: false,
                    });
                }
                let finish = self.chunk_value(json!({}), json!(self.finish.unwrap_or("stop")));
                out.push(StreamEvent::chunk(&finish, finish.to_string(), None));
                if let Some(u) = self.usage {
                    let usage_chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage_json(&u)});
                    out.push(StreamEvent::UsageOnly(u, usage_chunk.to_string()));
                }
                // No [DONE] upstream: message_stop is the end.
                out.push(StreamEvent::End);
            }
            Some("error") => {
                let err = super::error_object(v.get("error"), "anthropic", 200);
                out.push(StreamEvent::error(&err));
            }
            // `ping`, and event types added after this connector: nothing to send.
            _ => {}
        }
    }
}
