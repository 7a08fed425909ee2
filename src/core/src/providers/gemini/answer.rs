//! Gemini answers and streams as OpenAI's: candidates' parts as content, reasoning and tool calls (ids
//! synthesized, thought signatures carried in them), finish reasons, usage.

use serde_json::{json, Value};

use super::{status_error, SIGNATURE_MARK};
use crate::log::Usage;
use crate::providers::{NewStream, StreamEvent};

/// providers.md §3.4.
pub(super) fn usage(response: &Value) -> Option<Usage> {
    let u = response.get("usageMetadata")?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let prompt = n("promptTokenCount").unwrap_or(0) + n("toolUsePromptTokenCount").unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount").unwrap_or(0) + thoughts.unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: n("totalTokenCount").unwrap_or(prompt + completion),
        cached_tokens: n("cachedContentTokenCount"),
        reasoning_tokens: thoughts,
        cache_write_tokens: None,
        ..Usage::default()
    })
}

fn usage_json(u: &Usage) -> Value {
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens.unwrap_or(0)},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)}})
}

/// providers.md §3.4 / §7.1.
fn finish_reason(gemini: Option<&str>, has_calls: bool) -> &'static str {
    if has_calls {
        return "tool_calls";
    }
    match gemini {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "LANGUAGE"
            | "RECITATION"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION"
            | "IMAGE_OTHER",
        ) => "content_filter",
        _ => "stop",
    }
}

/// The OpenAI message pieces of one candidate's parts: content, reasoning, tool calls (ids synthesized).
fn read_parts(parts: &[Value], id_seed: &str, first_index: usize) -> (String, String, Vec<Value>) {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for part in parts {
        if let Some(call) = part.get("functionCall") {
            let index = first_index + calls.len();
            let mut id = format!("call_{id_seed}_{index}");
            if let Some(sig) = part.get("thoughtSignature").and_then(Value::as_str) {
                id = format!("{id}{SIGNATURE_MARK}{sig}");
            }
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            calls.push(json!({"index": index, "id": id, "type": "function",
                "function": {"name": call.get("name").cloned().unwrap_or(Value::Null), "arguments": args.to_string()}}));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                reasoning.push_str(text);
            } else {
                content.push_str(text);
            }
        }
    }
    (content, reasoning, calls)
}

/// A `generateContent` answer as an OpenAI `chat.completion` (replaces it in place).
pub(super) fn normalize_answer(answer: &mut Value, created: u64) {
    let id_seed = answer
        .get("responseId")
        .and_then(Value::as_str)
        .unwrap_or("gemini")
        .to_owned();
    let mut choices = Vec::new();
    let candidates = answer
        .get("candidates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, c) in candidates.iter().enumerate() {
        let parts = c
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (content, reasoning, mut calls) = read_parts(&parts, &id_seed, 0);
        for call in &mut calls {
            if let Value::Object(o) = call {
                o.remove("index");
            }
        }
        let mut message = json!({"role": "assistant", "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(content) }});
        if !reasoning.is_empty() {
            message["reasoning_content"] = Value::String(reasoning);
        }
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls.clone());
        }
        let finish = finish_reason(
            c.get("finishReason").and_then(Value::as_str),
            !calls.is_empty(),
        );
        choices.push(
            json!({"index": i, "message": message, "logprobs": null, "finish_reason": finish}),
        );
    }
    if choices.is_empty() {
        // A blocked prompt: 200 with no candidates (providers.md §3.5).
        choices.push(json!({"index": 0, "message": {"role": "assistant", "content": null}, "logprobs": null, "finish_reason": "content_filter"}));
    }
    let mut out = json!({"id": format!("chatcmpl-{id_seed}"), "object": "chat.completion", "created": created,
        "model": answer.get("modelVersion").cloned().unwrap_or(Value::Null), "choices": choices});
    if let Some(u) = usage(answer) {
        out["usage"] = usage_json(&u);
    }
    *answer = out;
}

/// Translates a Gemini stream: stateful, because ids, the role chunk and tool-call indexes span events.
#[derive(Debug)]
pub struct StreamState {
    created: u64,
    id: Option<String>,
    model: Value,
    role_sent: bool,
    calls: usize,
    usage: Option<Usage>,
}

impl NewStream for StreamState {
    fn new_stream(created: u64) -> Self {
        Self {
            created,
            id: None,
            model: Value::Null,
            role_sent: false,
            calls: 0,
            usage: None,
        }
    }
}

impl StreamState {
    fn chunk(&self, delta: Value, finish: Value) -> StreamEvent {
        let v = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        StreamEvent::chunk(&v, v.to_string(), None)
    }

    pub(super) fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Malformed(data.to_owned()));
            return;
        };
        let v = match v {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            v => v,
        };
        if v.get("error").is_some() {
            let status = v
                .pointer("/error/code")
                .and_then(Value::as_u64)
                .map_or(502, |c| c as u16);
            let err = status_error("gemini", status, &[], Some(&v));
            out.push(StreamEvent::error(&err));
            return;
        }
        if self.id.is_none() {
            let seed = v
                .get("responseId")
                .and_then(Value::as_str)
                .unwrap_or("gemini");
            self.id = Some(format!("chatcmpl-{seed}"));
            self.model = v.get("modelVersion").cloned().unwrap_or(Value::Null);
        }
        if let Some(u) = usage(&v) {
            self.usage = Some(u);
        }
        if !self.role_sent {
            self.role_sent = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
        let candidate = v.pointer("/candidates/0");
        let parts = candidate
            .and_then(|c| c.pointer("/content/parts"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let seed = self.id.clone().unwrap_or_default();
        let seed = seed.trim_start_matches("chatcmpl-");
        let (content, reasoning, calls) = read_parts(&parts, seed, self.calls);
        if !reasoning.is_empty() {
            out.push(self.chunk(json!({"reasoning_content": reasoning}), Value::Null));
        }
        if !content.is_empty() {
            out.push(self.chunk(json!({"content": content}), Value::Null));
        }
        if !calls.is_empty() {
            self.calls += calls.len();
            out.push(self.chunk(json!({"tool_calls": calls}), Value::Null));
        }
        let finish = candidate
            .and_then(|c| c.get("finishReason"))
            .and_then(Value::as_str);
        let blocked = v.pointer("/promptFeedback/blockReason").is_some() && candidate.is_none();
        if finish.is_some() || blocked {
            let reason = if blocked {
                "content_filter"
            } else {
                finish_reason(finish, self.calls > 0)
            };
            out.push(self.chunk(json!({}), json!(reason)));
            if let Some(u) = self.usage {
                let usage_chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage_json(&u)});
                out.push(StreamEvent::UsageOnly(u, usage_chunk.to_string()));
            }
            // Gemini has no [DONE]: the finish chunk is the end.
            out.push(StreamEvent::End);
        }
    }
}
