//! The APIs clients speak besides Chat Completions: the Anthropic Messages API (`POST /v1/messages`) and OpenAI's
//! Responses API (`POST /v1/responses`, its stateless subset). Each is translated into the gateway's chat
//! request before the plan, so policy, limits, cache, cost, archive and the log row treat it as they treat chat;
//! its answer is translated back after the relay: a JSON answer whole, a stream event by event (the relay's
//! OpenAI chunks in, the API's own events out), an error into the API's own error body.
//!
//! Wire formats: shared/providers-more.md §1 (Messages: §1.2 request, §1.3 answer, §1.4 stream and what the
//! `anthropic` SDK requires of it, §1.5 errors, §1.7 the mapping) and §2 (Responses: §2.2–2.3 request and input
//! items, §2.4 the response object, §2.5 streams, §2.6 the mapping onto Chat Completions).

mod messages;
mod responses;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::log::Usage;
use crate::sse::Decoder;

/// Which API the client speaks.
#[derive(Clone, Debug, Default)]
pub(crate) enum Front {
    #[default]
    Chat,
    Messages,
    /// With the request's parameters a response object echoes (`instructions`, `tools`, `temperature`, …).
    Responses(Box<Map<String, Value>>),
}

/// What a translated answer needs to know of its request: the gateway's request id (the answer's ids are made
/// from it) and when it arrived (Unix seconds).
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub id: String,
    pub created: u64,
}

impl Ctx {
    /// The request id's hex digits, for the API's own ids (`msg_…`, `resp_…`).
    fn hex(&self) -> &str {
        self.id.strip_prefix("req_").unwrap_or(&self.id)
    }
}

impl Front {
    /// The endpoint as policies name it and the log row records it.
    pub(crate) fn endpoint(&self) -> &'static str {
        match self {
            Front::Chat => "chat",
            Front::Messages => "messages",
            Front::Responses(_) => "responses",
        }
    }

    /// A Messages or Responses request body as the gateway's chat request body (400 naming the field for what
    /// cannot be translated).
    pub(crate) fn messages_request(
        body: Map<String, Value>,
    ) -> Result<Map<String, Value>, ApiError> {
        messages::request(body)
    }

    /// A Responses request body as a chat body, and the parameters its answer echoes.
    pub(crate) fn responses_request(
        body: Map<String, Value>,
    ) -> Result<(Map<String, Value>, Front), ApiError> {
        let echo = responses::echo(&body);
        Ok((responses::request(body)?, Front::Responses(Box::new(echo))))
    }

    /// A chat completion's JSON as this API's answer (unchanged for chat).
    pub(crate) fn answer(&self, body: Vec<u8>, ctx: &Ctx) -> Vec<u8> {
        let chat = || serde_json::from_slice::<Value>(&body).ok();
        let translated = match self {
            Front::Chat => return body,
            Front::Messages => chat().map(|c| messages::answer(&c, ctx)),
            Front::Responses(echo) => chat().map(|c| responses::answer(&c, ctx, echo)),
        };
        translated
            .and_then(|v| serde_json::to_vec(&v).ok())
            .unwrap_or(body)
    }

    /// An error as this API's error body.
    pub(crate) fn error_body(&self, err: &ApiError, ctx: &Ctx) -> Vec<u8> {
        match self {
            Front::Messages => messages::error_body(err, ctx),
            Front::Chat | Front::Responses(_) => err.body(),
        }
    }

    /// The translator of the relay's stream into this API's events (`None` for chat, which is relayed as it is).
    pub(crate) fn restream(&self, ctx: &Ctx) -> Option<Restream> {
        let events = match self {
            Front::Chat => return None,
            Front::Messages => Translator::Messages(messages::Stream::new(ctx.clone())),
            Front::Responses(echo) => {
                Translator::Responses(responses::Stream::new(ctx.clone(), (**echo).clone()))
            }
        };
        Some(Restream {
            decoder: Decoder::new(),
            events,
        })
    }
}

/// One API's stream events, made from the relay's OpenAI chunks.
trait Events {
    /// A `chat.completion.chunk` (with choices, or a usage chunk).
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<u8>);
    /// `[DONE]`: the stream finished.
    fn done(&mut self, out: &mut Vec<u8>);
    /// The relay's terminal error event (`{"error": {…}}`): the stream failed.
    fn error(&mut self, error: &Value, out: &mut Vec<u8>);
}

/// One stream's translator, by API.
enum Translator {
    Messages(messages::Stream),
    Responses(responses::Stream),
}

impl Translator {
    fn events(&mut self) -> &mut dyn Events {
        match self {
            Translator::Messages(s) => s,
            Translator::Responses(s) => s,
        }
    }
}

/// Translates the relay's SSE bytes (OpenAI chunks, `[DONE]`, a terminal error event) into another API's events.
pub(crate) struct Restream {
    decoder: Decoder,
    events: Translator,
}

impl Restream {
    /// The client-bound bytes for the events these relay bytes complete.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let events = self.events.events();
        for event in self.decoder.feed(bytes) {
            let data = event.data.trim();
            if data == "[DONE]" {
                events.done(&mut out);
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            match v.get("error") {
                Some(e) if !e.is_null() => events.error(e, &mut out),
                _ => events.chunk(&v, &mut out),
            }
        }
        out
    }
}

/// One named SSE event: `event: <name>` and its JSON, whose `type` is the name (both APIs frame events so).
fn event(out: &mut Vec<u8>, name: &str, mut data: Value) {
    if let Some(o) = data.as_object_mut() {
        o.insert("type".into(), json!(name));
    }
    crate::sse::push_event(out, Some(name), &data);
}

/// A chat answer's or chunk's usage (`None` on chunks without it), read as the OpenAI connector reads it.
fn usage_of(chat: &Value) -> Option<Usage> {
    crate::providers::openai::usage(chat)
}

/// What one chunk's first choice adds: reasoning text, answer text, tool-call pieces, signed thinking blocks
/// (`reasoning_details`), the finish reason.
struct Delta<'a> {
    reasoning: &'a str,
    content: &'a str,
    tool_calls: &'a [Value],
    details: &'a [Value],
    finish: Option<&'a str>,
}

impl<'a> Delta<'a> {
    fn of(chunk: &'a Value) -> Option<Self> {
        let choice = chunk
            .get("choices")?
            .as_array()?
            .iter()
            .find(|c| c["index"].as_u64().unwrap_or(0) == 0)?;
        let d = &choice["delta"];
        let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        let reasoning = match text("reasoning_content") {
            "" => text("reasoning"),
            r => r,
        };
        let list = |k: &str| {
            d.get(k)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        Some(Self {
            reasoning,
            content: text("content"),
            tool_calls: list("tool_calls"),
            details: list("reasoning_details"),
            finish: choice.get("finish_reason").and_then(Value::as_str),
        })
    }
}

/// A chat answer's first message: its text, reasoning, tool calls, signed thinking blocks and finish reason.
struct Said<'a> {
    text: String,
    reasoning: &'a str,
    tool_calls: &'a [Value],
    details: &'a [Value],
    finish: Option<&'a str>,
}

impl<'a> Said<'a> {
    fn of(chat: &'a Value) -> Self {
        let choice = &chat["choices"][0];
        let m = &choice["message"];
        let list = |k: &str| {
            m.get(k)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let reasoning = m
            .get("reasoning_content")
            .or_else(|| m.get("reasoning"))
            .and_then(Value::as_str)
            .unwrap_or("");
        Self {
            text: crate::providers::text_of(m.get("content")),
            reasoning,
            tool_calls: list("tool_calls"),
            details: list("reasoning_details"),
            finish: choice.get("finish_reason").and_then(Value::as_str),
        }
    }
}

/// A tool call's arguments (a JSON string) as an object: `{}` when empty or not JSON.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// A top-level field of a request body, `null` when absent (indexing a `Map` would panic).
fn field<'a>(body: &'a Map<String, Value>, key: &str) -> &'a Value {
    body.get(key).unwrap_or(&Value::Null)
}

/// Copies the fields a translation keeps as they are (`from` in the client's body, `to` in the chat body), and
/// asks a stream for its usage: both APIs report it when the stream ends.
fn carry(body: &Map<String, Value>, out: &mut Map<String, Value>, fields: &[(&str, &str)]) {
    for (from, to) in fields {
        if let Some(v) = body.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).into(), v.clone());
        }
    }
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
}

/// The client's tools as chat function tools (`{name, parameters, description?, strict?}`); whether there are
/// any. `at(i)` names a tool the API's way (`tools.0`, `tools[0]`), `refuse(at, type)` says why a tool of that
/// `type` cannot be passed on, `schema` is the field its parameters are in.
fn function_tools(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
    schema: &str,
    at: impl Fn(usize) -> String,
    refuse: impl Fn(&str, Option<&str>) -> Option<String>,
) -> Result<bool, ApiError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(invalid("`tools` must be a list", "tools")),
    };
    let mut functions = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let at = at(i);
        if let Some(why) = refuse(&at, t.get("type").and_then(Value::as_str)) {
            return Err(invalid(why, &format!("{at}.type")));
        }
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            return Err(invalid(
                format!("{at}.name is required"),
                &format!("{at}.name"),
            ));
        };
        let parameters = t
            .get(schema)
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut f = json!({"name": name, "parameters": parameters});
        if let Some(d) = t.get("description").filter(|d| d.is_string()) {
            f["description"] = d.clone();
        }
        if let Some(s) = t.get("strict").filter(|s| s.is_boolean()) {
            f["strict"] = s.clone();
        }
        functions.push(json!({"type": "function", "function": f}));
    }
    if functions.is_empty() {
        return Ok(false);
    }
    out.insert("tools".into(), Value::Array(functions));
    Ok(true)
}

/// A required-shape error naming the field the way the API does.
fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For the translators' tests: the events `stream` makes of these relay payloads (`[DONE]`, a `{"error"}`
    /// object, or a chunk), parsed, each checked to be named after its `type`.
    pub(super) fn run_events(stream: &mut dyn Events, payloads: &[&str]) -> Vec<Value> {
        let mut out = Vec::new();
        for payload in payloads {
            if *payload == "[DONE]" {
                stream.done(&mut out);
                continue;
            }
            let v: Value = serde_json::from_str(payload).expect("a test payload is JSON");
            match v.get("error") {
                Some(e) => stream.error(e, &mut out),
                None => stream.chunk(&v, &mut out),
            }
        }
        String::from_utf8(out)
            .expect("events are UTF-8")
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').expect("an event line and a data line");
                let data = data.strip_prefix("data: ").expect("a data line");
                let v: Value = serde_json::from_str(data).expect("event data is JSON");
                assert_eq!(name.strip_prefix("event: "), v["type"].as_str());
                v
            })
            .collect()
    }

    #[test]
    fn a_restream_ignores_what_is_not_json_and_handles_events_split_anywhere() {
        let mut r = Front::Messages
            .restream(&Ctx {
                id: "req_00ab".into(),
                created: 1,
            })
            .unwrap();
        let chunk =
            br#"data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}

data: not json

data: [DONE]

"#;
        let mut out = Vec::new();
        for piece in chunk.chunks(7) {
            out.extend(r.feed(piece));
        }
        let text = String::from_utf8(out).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }
}
