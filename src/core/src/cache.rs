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
/// sent: what a stream stores in the cache and in the payload archive. Every choice (by its `index`) with its
/// content, reasoning, refusal and tool calls (each call's id, type and name once, its arguments joined).
#[derive(Debug, Default)]
pub struct Assembler {
    id: Value,
    created: Value,
    model: Value,
    choices: Vec<Choice>,
    usage: Value,
    /// A chunk that is not JSON was seen: nothing is assembled.
    unreadable: bool,
}

#[derive(Debug, Default)]
struct Choice {
    content: String,
    reasoning: String,
    refusal: String,
    /// `(id, type, name, arguments)` by the call's index.
    calls: Vec<(Value, Value, String, String)>,
    finish: Value,
}

/// Choices and tool calls a chunk may name by index: more are not assembled (a provider could name any index).
const MAX_INDEX: usize = 128;

impl Assembler {
    /// One translated chunk's JSON.
    pub fn chunk(&mut self, data: &str) {
        if self.unreadable {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            self.unreadable = true;
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
            let Some(choice) = slot(&mut self.choices, c["index"].as_u64().unwrap_or(0)) else {
                continue;
            };
            let delta = &c["delta"];
            for (field, text) in [
                ("content", &mut choice.content),
                ("reasoning_content", &mut choice.reasoning),
                ("refusal", &mut choice.refusal),
            ] {
                if let Some(t) = delta[field].as_str() {
                    text.push_str(t);
                }
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let Some(at) = slot(&mut choice.calls, call["index"].as_u64().unwrap_or(0)) else {
                    continue;
                };
                for (field, kept) in [("id", &mut at.0), ("type", &mut at.1)] {
                    if kept.is_null() && !call[field].is_null() {
                        *kept = call[field].clone();
                    }
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    at.2.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    at.3.push_str(args);
                }
            }
            if !c["finish_reason"].is_null() {
                choice.finish = c["finish_reason"].clone();
            }
        }
    }

    /// Whether every choice has its finish reason: a whole answer, which the cache may store.
    pub fn finished(&self) -> bool {
        !self.unreadable
            && !self.choices.is_empty()
            && self.choices.iter().all(|c| !c.finish.is_null())
    }

    /// The answer as far as it came (a stream cut before its end has choices without a finish reason); none when
    /// a chunk was not JSON.
    pub fn answer(self) -> Option<Value> {
        if self.unreadable {
            return None;
        }
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut message = json!({"role": "assistant", "content": c.content});
                if !c.reasoning.is_empty() {
                    message["reasoning_content"] = json!(c.reasoning);
                }
                if !c.refusal.is_empty() {
                    message["refusal"] = json!(c.refusal);
                }
                if !c.calls.is_empty() {
                    if c.content.is_empty() {
                        message["content"] = Value::Null;
                    }
                    message["tool_calls"] = c
                        .calls
                        .into_iter()
                        .map(|(id, kind, name, arguments)| {
                            json!({"id": id, "type": if kind.is_null() { json!("function") } else { kind },
                                   "function": {"name": name, "arguments": arguments}})
                        })
                        .collect();
                }
                json!({"index": i, "message": message, "logprobs": null, "finish_reason": c.finish})
            })
            .collect();
        Some(
            json!({"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                    "choices": choices, "usage": self.usage}),
        )
    }
}

/// The item at `index`, made (with those before it) if it is new; none past [`MAX_INDEX`].
fn slot<T: Default>(items: &mut Vec<T>, index: u64) -> Option<&mut T> {
    let i = usize::try_from(index).ok().filter(|i| *i < MAX_INDEX)?;
    if items.len() <= i {
        items.resize_with(i + 1, T::default);
    }
    items.get_mut(i)
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
        assert!(asm.finished());
        assert_eq!(asm.answer().unwrap(), answer);
        // Without include_usage, no usage event.
        assert!(!String::from_utf8(as_stream(&answer, false))
            .unwrap()
            .contains("usage"));
        // Tool calls assemble by index, their arguments joined; a stream cut before its finish is not finished
        // (the cache does not store it) but is assembled as far as it came (the archive keeps it).
        let mut tools = Assembler::default();
        tools.chunk(r#"{"id":"c2","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#);
        tools.chunk(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"#);
        tools.chunk(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#);
        tools.chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#);
        assert!(tools.finished());
        let got = tools.answer().unwrap();
        let message = &got["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"],
            json!([{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
        );
        // Replayed as a stream and assembled again, the answer is the same.
        let mut again = Assembler::default();
        for e in String::from_utf8(as_stream(&got, false))
            .unwrap()
            .split("\n\n")
        {
            if let Some(d) = e.strip_prefix("data: ").filter(|d| *d != "[DONE]") {
                again.chunk(d);
            }
        }
        assert_eq!(again.answer().unwrap()["choices"], got["choices"]);
        let mut cut = Assembler::default();
        cut.chunk(r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#);
        assert!(!cut.finished());
        assert_eq!(
            cut.answer().unwrap()["choices"][0]["message"]["content"],
            "Hel"
        );
        // A choice index far out is not assembled (nor allocated for).
        let mut far = Assembler::default();
        far.chunk(
            r#"{"choices":[{"index":4000000000,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
        );
        assert!(!far.finished());
        let mut bad = Assembler::default();
        bad.chunk("not json");
        assert!(bad.answer().is_none());
    }
}
