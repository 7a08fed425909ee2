//! The response cache: what identifies an answer, what is stored, and how a stored answer is sent again (as JSON,
//! or as an OpenAI stream). A rule's `cache` / `team_cache` / `shared_cache` option makes its answers cacheable;
//! the stage is `gateway/cache.rs`, the storage each host's [`crate::ports::CacheStore`].
//!
//! The key is a SHA-256 of the scope (the key, its team, or everyone), the plan's first target and the request
//! body with the fields that do not change the answer removed (`model`, which the plan replaces, `stream`,
//! `stream_options`, `user`, `metadata`, `store`), with object keys in sorted order: headers never count. So a
//! stream and a JSON request for the same thing share one entry.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::http::find_header;

/// Body fields that do not change the answer.
const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
];

/// What the client asked of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Use it: an entry answers, else the answer is stored.
    Use,
    /// `x-gateway-cache: refresh`: skip the entry and store the new answer.
    Refresh,
    /// `cache-control: no-cache` (or `no-store`): neither read nor write.
    Bypass,
}

impl Ask {
    pub fn of(headers: &[(String, String)]) -> Self {
        let control = find_header(headers, "cache-control")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if control.contains("no-cache") || control.contains("no-store") {
            return Ask::Bypass;
        }
        match find_header(headers, "x-gateway-cache") {
            Some(v) if v.trim().eq_ignore_ascii_case("refresh") => Ask::Refresh,
            _ => Ask::Use,
        }
    }
}

/// The cache key of a request body for a scope and a target.
pub fn key(scope: &str, target: &str, body: &Map<String, Value>) -> String {
    let mut text = String::new();
    text.push_str(scope);
    text.push('\n');
    text.push_str(target);
    text.push('\n');
    let kept: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    canonical(&Value::Object(kept), &mut text);
    crate::auth::hex(&Sha256::digest(text.as_bytes()))
}

/// JSON with object keys sorted, whatever order the map keeps them in.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A stored answer: who made it, the answer as the client got it (OpenAI's JSON), and what it cost then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub provider: String,
    pub model: String,
    pub body: Value,
    /// Reporting currency, pico-units (none when it was not priced).
    pub cost_pico: Option<u64>,
}

/// An answer to store once its row is complete.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub key: String,
    pub ttl_ms: u64,
    pub entry: Entry,
}

/// A stored chat answer as OpenAI stream events: per choice its role and content (and tool calls), then its
/// finish reason, then (when the client asked with `stream_options.include_usage`) the usage, then `[DONE]`.
pub fn as_stream(body: &Value, include_usage: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let base = |choices: Value| {
        json!({"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
               "model": body["model"], "choices": choices})
    };
    let mut event = |v: Value| {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    };
    let choices = body["choices"].as_array().cloned().unwrap_or_default();
    for (i, c) in choices.iter().enumerate() {
        let index = c.get("index").cloned().unwrap_or(json!(i));
        let message = &c["message"];
        let mut delta = Map::new();
        delta.insert("role".into(), json!("assistant"));
        delta.insert(
            "content".into(),
            message.get("content").cloned().unwrap_or(Value::Null),
        );
        for extra in ["reasoning_content", "refusal"] {
            if let Some(v) = message.get(extra).filter(|v| !v.is_null()) {
                delta.insert(extra.into(), v.clone());
            }
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(n, call)| {
                    let mut call = call.clone();
                    if let Value::Object(m) = &mut call {
                        m.insert("index".into(), json!(n));
                    }
                    call
                })
                .collect();
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        event(base(
            json!([{"index": index, "delta": delta, "finish_reason": null}]),
        ));
        event(base(
            json!([{"index": index, "delta": {}, "finish_reason": c["finish_reason"]}]),
        ));
    }
    if include_usage && !body["usage"].is_null() {
        let mut last = base(json!([]));
        last["usage"] = body["usage"].clone();
        event(last);
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

/// A streamed chat answer put back together as OpenAI's JSON answer, from the translated chunks the client was
/// sent: what a stream stores in the cache. Streams with tool calls or several choices are not assembled (their
/// deltas are not worth merging for a cache that should not hold them; W108 warns about tools).
#[derive(Debug, Default)]
pub struct Assembler {
    id: Value,
    created: Value,
    model: Value,
    content: String,
    reasoning: String,
    finish: Value,
    usage: Value,
    /// Something that is not assembled was seen.
    unsupported: bool,
}

impl Assembler {
    /// One translated chunk's JSON.
    pub fn chunk(&mut self, data: &str) {
        if self.unsupported {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            self.unsupported = true;
            return;
        };
        for (field, slot) in [
            ("id", &mut self.id),
            ("created", &mut self.created),
            ("model", &mut self.model),
        ] {
            if slot.is_null() {
                *slot = v[field].clone();
            }
        }
        if !v["usage"].is_null() {
            self.usage = v["usage"].clone();
        }
        for c in v["choices"].as_array().into_iter().flatten() {
            if c["index"].as_u64().unwrap_or(0) != 0 || !c["delta"]["tool_calls"].is_null() {
                self.unsupported = true;
                return;
            }
            if let Some(t) = c["delta"]["content"].as_str() {
                self.content.push_str(t);
            }
            if let Some(t) = c["delta"]["reasoning_content"].as_str() {
                self.reasoning.push_str(t);
            }
            if !c["finish_reason"].is_null() {
                self.finish = c["finish_reason"].clone();
            }
        }
    }

    /// The whole answer, when the stream was one that can be assembled and it finished.
    pub fn answer(self) -> Option<Value> {
        if self.unsupported || self.finish.is_null() {
            return None;
        }
        let mut message = json!({"role": "assistant", "content": self.content});
        if !self.reasoning.is_empty() {
            message["reasoning_content"] = json!(self.reasoning);
        }
        Some(
            json!({"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                    "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": self.finish}],
                    "usage": self.usage}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_key_depends_on_what_determines_the_answer_only() {
        let a = body(
            json!({"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}),
        );
        let b = body(
            json!({"temperature": 0, "stream": true, "user": "u1", "model": "y",
                            "messages": [{"content": "hi", "role": "user"}]}),
        );
        assert_eq!(
            key("key:k1", "openai:gpt-4o-mini", &a),
            key("key:k1", "openai:gpt-4o-mini", &b)
        );
        assert_ne!(
            key("key:k1", "openai:gpt-4o-mini", &a),
            key("key:k2", "openai:gpt-4o-mini", &a)
        );
        assert_ne!(
            key("key:k1", "openai:gpt-4o-mini", &a),
            key("key:k1", "deepseek:deepseek-flash", &a)
        );
        let c = body(json!({"messages": [{"role": "user", "content": "hi!"}], "temperature": 0}));
        assert_ne!(key("shared", "t", &a), key("shared", "t", &c));
    }

    #[test]
    fn clients_opt_out_or_refresh_with_headers() {
        let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(Ask::of(&[]), Ask::Use);
        assert_eq!(Ask::of(&h("cache-control", "No-Cache")), Ask::Bypass);
        assert_eq!(
            Ask::of(&h("cache-control", "no-store, max-age=0")),
            Ask::Bypass
        );
        assert_eq!(Ask::of(&h("x-gateway-cache", "refresh")), Ask::Refresh);
    }

    #[test]
    fn an_answer_streams_back_and_a_stream_assembles_into_the_answer() {
        let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "logprobs": null,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
        let sse = String::from_utf8(as_stream(&answer, true)).unwrap();
        let events: Vec<&str> = sse.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 4, "{sse}");
        assert_eq!(*events.last().unwrap(), "data: [DONE]");
        let mut asm = Assembler::default();
        for e in &events[..3] {
            asm.chunk(e.strip_prefix("data: ").unwrap());
        }
        assert_eq!(asm.answer().unwrap(), answer);
        // Without include_usage, no usage event.
        assert!(!String::from_utf8(as_stream(&answer, false))
            .unwrap()
            .contains("usage"));
        // A stream with tool calls, or cut before its finish, is not assembled.
        let mut tools = Assembler::default();
        tools.chunk(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]},"finish_reason":null}]}"#);
        tools.chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#);
        assert!(tools.answer().is_none());
        let mut cut = Assembler::default();
        cut.chunk(r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#);
        assert!(cut.answer().is_none());
    }
}
