//! The Anthropic Messages API inbound (shared/providers-more.md §1): a `MessageCreateParams` body becomes a chat
//! request, a chat completion a `Message`, the relay's chunks Anthropic's event stream.
//!
//! - `system` (a string or text blocks) becomes the first system message; `tool_result` blocks become `tool`
//!   messages, ahead of the user text that shares their turn; `tool_use` blocks the assistant's `tool_calls`;
//!   images (base64 or URL) `image_url` parts.
//! - `thinking` blocks sent back become the assistant message's `reasoning_content` (DeepSeek needs it back on a
//!   tool-call turn), and, when signed, its `reasoning_details` (the Anthropic connector sends those back as
//!   they were). Answers carry the upstream's reasoning as a `thinking` block: signed when the upstream signed
//!   it, with an empty signature otherwise.
//! - `thinking.budget_tokens` or `output_config.effort` becomes `reasoning_effort`; `tool_choice` `any` is
//!   `required`; `disable_parallel_tool_use` is `parallel_tool_calls: false`; `stop_sequences` is `stop`;
//!   `metadata.user_id` is `user`. `top_k`, `cache_control`, `service_tier` and the like are dropped. Server
//!   tools (a dated `type`) and `document` blocks are refused with a 400.
//! - Usage: `input_tokens` is the prompt less its cached part, which is `cache_read_input_tokens`.

use serde_json::{json, Map, Value};

use super::{
    arguments_object, carry, event, field, function_tools, invalid, usage_of, Ctx, Delta, Events,
    Said,
};
use crate::error::ApiError;
use crate::log::Usage;

pub(super) fn request(body: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    if let Some(model) = body.get("model") {
        out.insert("model".into(), model.clone());
    }
    match body.get("max_tokens") {
        Some(n) if n.as_u64().is_some() => {
            out.insert("max_completion_tokens".into(), n.clone());
        }
        Some(_) => {
            return Err(invalid(
                "`max_tokens` must be a non-negative whole number",
                "max_tokens",
            ))
        }
        None => return Err(invalid("`max_tokens` is required", "max_tokens")),
    }
    let mut messages = Vec::new();
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let text = texts(blocks, "system")?;
            if !text.is_empty() {
                messages.push(json!({"role": "system", "content": text}));
            }
        }
        Some(_) => {
            return Err(invalid(
                "`system` must be a string or a list of text blocks",
                "system",
            ))
        }
    }
    match body.get("messages") {
        Some(Value::Array(turns)) => {
            for (i, turn) in turns.iter().enumerate() {
                translate_turn(turn, &format!("messages.{i}"), &mut messages)?;
            }
        }
        Some(_) => return Err(invalid("`messages` must be a list", "messages")),
        None => return Err(invalid("`messages` is required", "messages")),
    }
    out.insert("messages".into(), Value::Array(messages));
    // A stream's usage goes into its closing `message_delta`.
    carry(
        &body,
        &mut out,
        &[
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("stream", "stream"),
        ],
    );
    match body.get("stop_sequences") {
        Some(Value::Array(s)) if !s.is_empty() => {
            out.insert("stop".into(), Value::Array(s.clone()));
        }
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => {
            return Err(invalid(
                "`stop_sequences` must be a list of strings",
                "stop_sequences",
            ))
        }
    }
    if let Some(user) = field(&body, "metadata")
        .get("user_id")
        .and_then(Value::as_str)
    {
        out.insert("user".into(), json!(user));
    }
    if let Some(effort) = effort(&body) {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(format) = field(&body, "output_config").get("format") {
        if format["type"] == "json_schema" {
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "output", "schema": format["schema"]}}),
            );
        }
    }
    let has_tools = translate_tools(&body, &mut out)?;
    if has_tools {
        translate_tool_choice(&body, &mut out)?;
    }
    Ok(out)
}

/// `thinking` (a budget) or `output_config.effort` as a chat `reasoning_effort`.
fn effort(body: &Map<String, Value>) -> Option<&'static str> {
    if let Some(e) = field(body, "output_config")
        .get("effort")
        .and_then(Value::as_str)
    {
        return Some(match e {
            "low" => "low",
            "medium" => "medium",
            _ => "high",
        });
    }
    match field(body, "thinking").get("type").and_then(Value::as_str) {
        Some("enabled") => Some(match field(body, "thinking")["budget_tokens"].as_u64() {
            Some(0..=2048) => "low",
            Some(2049..=8192) => "medium",
            _ => "high",
        }),
        Some("adaptive") => Some("medium"),
        _ => None,
    }
}

/// The text of a list of text blocks (`system`, a tool result's content), joined by newlines.
fn texts(blocks: &[Value], param: &str) -> Result<String, ApiError> {
    let mut parts = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(b.get("text").and_then(Value::as_str).unwrap_or("")),
            _ => {
                return Err(invalid(
                    format!("{param}.{i}: only text blocks are accepted here"),
                    &format!("{param}.{i}"),
                ))
            }
        }
    }
    Ok(parts.join("\n"))
}

/// One Messages turn as chat messages (a user turn with tool results becomes `tool` messages first).
fn translate_turn(turn: &Value, param: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let role = turn.get("role").and_then(Value::as_str);
    let content = turn.get("content");
    let blocks = match content {
        Some(Value::String(s)) => {
            let role = match role {
                Some(r @ ("user" | "assistant" | "system")) => r,
                _ => return Err(bad_role(param)),
            };
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(invalid(
                format!("{param}.content must be a string or a list of content blocks"),
                &format!("{param}.content"),
            ))
        }
    };
    match role {
        Some("user") => user_turn(blocks, param, out),
        Some("assistant") => {
            out.push(assistant_turn(blocks, param)?);
            Ok(())
        }
        Some("system") => {
            out.push(
                json!({"role": "system", "content": texts(blocks, &format!("{param}.content"))?}),
            );
            Ok(())
        }
        _ => Err(bad_role(param)),
    }
}

fn bad_role(param: &str) -> ApiError {
    invalid(
        format!("{param}.role must be `user` or `assistant`"),
        &format!("{param}.role"),
    )
}

fn user_turn(blocks: &[Value], param: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut parts = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("{param}.content.{i}");
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(json!({"type": "text", "text": b.get("text").and_then(Value::as_str).unwrap_or("")})),
            Some("image") => parts.push(image(b, &at)?),
            Some("tool_result") => {
                let mut content = match b.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(inner)) => texts(inner, &format!("{at}.content"))?,
                    Some(_) => {
                        return Err(invalid(
                            format!("{at}.content must be a string or a list of text blocks"),
                            &format!("{at}.content"),
                        ))
                    }
                };
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    content = format!("Error: {content}");
                }
                let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
                    return Err(invalid(
                        format!("{at}.tool_use_id is required"),
                        &format!("{at}.tool_use_id"),
                    ));
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            Some(other) => return Err(unsupported_block(other, &at)),
            None => return Err(invalid(format!("{at}.type is required"), &format!("{at}.type"))),
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = if parts.iter().all(|p| p["type"] == "text") {
        // Text only: one string, which every upstream takes.
        json!(parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"))
    } else {
        Value::Array(parts)
    };
    out.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn image(b: &Value, at: &str) -> Result<Value, ApiError> {
    let source = &b["source"];
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or("image/png"),
            source["data"].as_str().unwrap_or("")
        ),
        Some("url") => source["url"].as_str().unwrap_or("").to_owned(),
        _ => {
            return Err(invalid(
                format!("{at}.source must be a base64 or url image source"),
                &format!("{at}.source"),
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn unsupported_block(kind: &str, at: &str) -> ApiError {
    invalid(
        format!(
            "{at}: `{}` blocks are not supported by this gateway",
            crate::error::shown(kind)
        ),
        &format!("{at}.type"),
    )
}

fn assistant_turn(blocks: &[Value], param: &str) -> Result<Value, ApiError> {
    let (mut text, mut reasoning, mut details, mut calls) =
        (Vec::new(), String::new(), Vec::new(), Vec::new());
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("{param}.content.{i}");
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
                // An unsigned block (the gateway's, from an upstream that does not sign) has nothing to prove.
                if b.get("signature")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                {
                    details.push(json!({"type": "thinking", "thinking": b["thinking"], "signature": b["signature"]}));
                }
            }
            Some("redacted_thinking") => {
                details.push(json!({"type": "redacted_thinking", "data": b["data"]}))
            }
            Some("tool_use") => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": b["id"], "type": "function",
                    "function": {"name": b["name"], "arguments": input.to_string()}}));
            }
            Some(other) => return Err(unsupported_block(other, &at)),
            None => {
                return Err(invalid(
                    format!("{at}.type is required"),
                    &format!("{at}.type"),
                ))
            }
        }
    }
    let text = text.join("");
    let mut m = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !reasoning.is_empty() || !calls.is_empty() {
        // DeepSeek wants `reasoning_content` back on every tool-call turn ("" when it had none).
        m["reasoning_content"] = json!(reasoning);
    }
    if !details.is_empty() {
        m["reasoning_details"] = Value::Array(details);
    }
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    Ok(m)
}

/// Client tools as chat function tools (their schema is `input_schema`); server tools, which have a dated
/// `type`, are refused.
fn translate_tools(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<bool, ApiError> {
    let refuse = |at: &str, kind: Option<&str>| match kind {
        None | Some("custom") => None,
        Some(kind) => Some(format!(
            "{at}: server tools (`{}`) are not supported by this gateway",
            crate::error::shown(kind)
        )),
    };
    function_tools(body, out, "input_schema", |i| format!("tools.{i}"), refuse)
}

fn translate_tool_choice(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) else {
        return Ok(());
    };
    let chat = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return Err(invalid("tool_choice.name is required", "tool_choice.name")),
        },
        _ => {
            return Err(invalid(
                "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
                "tool_choice.type",
            ))
        }
    };
    out.insert("tool_choice".into(), chat);
    if choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true)
    {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

/// A chat finish reason as Anthropic's `stop_reason`.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage: `input_tokens` is the prompt less its cached part (a cached count over the prompt, from
/// an upstream that says so, is the whole prompt).
fn usage(u: &Usage) -> Value {
    let cached = u.cached_tokens.unwrap_or(0).min(u.prompt_tokens);
    json!({"input_tokens": u.prompt_tokens - cached, "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached})
}

/// The reasoning blocks of an answer: the upstream's signed blocks as they were, or its reasoning text as one
/// unsigned `thinking` block.
fn thinking_blocks(reasoning: &str, details: &[Value]) -> Vec<Value> {
    let signed: Vec<Value> = details
        .iter()
        .filter(|d| matches!(d["type"].as_str(), Some("thinking" | "redacted_thinking")))
        .cloned()
        .collect();
    if !signed.is_empty() {
        return signed;
    }
    if reasoning.is_empty() {
        return Vec::new();
    }
    vec![json!({"type": "thinking", "thinking": reasoning, "signature": ""})]
}

pub(super) fn answer(chat: &Value, ctx: &Ctx) -> Value {
    let said = Said::of(chat);
    let mut content = thinking_blocks(said.reasoning, said.details);
    if !said.text.is_empty() || said.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": said.text}));
    }
    for call in said.tool_calls {
        let f = &call["function"];
        content.push(
            json!({"type": "tool_use", "id": call["id"], "name": f["name"],
            "input": arguments_object(f["arguments"].as_str().unwrap_or(""))}),
        );
    }
    json!({"id": format!("msg_{}", ctx.hex()), "type": "message", "role": "assistant",
        "model": chat["model"], "content": content, "stop_reason": stop_reason(said.finish),
        "stop_sequence": null, "usage": usage(&usage_of(chat).unwrap_or_default())})
}

/// Anthropic's error type for a status (§1.5).
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

pub(super) fn error_body(err: &ApiError, ctx: &Ctx) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": "error",
        "error": {"type": error_type(err.status()), "message": err.message}, "request_id": ctx.id}))
    .unwrap_or_default()
}

/// The block being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    /// A tool call, by its index among the chunk's tool calls.
    Tool(u64),
}

pub(super) struct Stream {
    ctx: Ctx,
    started: bool,
    /// The open block and its index in `content`.
    open: Option<(Open, usize)>,
    next: usize,
    /// The indexes of the thinking blocks, in order: a signature (`reasoning_details`) arrives for them later.
    thinking: Vec<usize>,
    finish: Option<String>,
    usage: Usage,
}

impl Stream {
    pub(super) fn new(ctx: Ctx) -> Self {
        Self {
            ctx,
            started: false,
            open: None,
            next: 0,
            thinking: Vec::new(),
            finish: None,
            usage: Usage::default(),
        }
    }

    fn start(&mut self, model: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        // The SDK needs integer counts here; the real ones come with `message_delta`.
        event(
            out,
            "message_start",
            json!({"message": {"id": format!("msg_{}", self.ctx.hex()),
            "type": "message", "role": "assistant", "content": [], "model": model, "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            event(out, "content_block_stop", json!({"index": index}));
        }
    }

    /// Opens a block of this kind unless it is the open one; its index.
    fn open(&mut self, kind: Open, block: impl FnOnce() -> Value, out: &mut Vec<u8>) -> usize {
        if let Some((k, index)) = self.open {
            if k == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next;
        self.next += 1;
        if kind == Open::Thinking {
            self.thinking.push(index);
        }
        event(
            out,
            "content_block_start",
            json!({"index": index, "content_block": block()}),
        );
        self.open = Some((kind, index));
        index
    }

    fn delta(out: &mut Vec<u8>, index: usize, delta: Value) {
        event(
            out,
            "content_block_delta",
            json!({"index": index, "delta": delta}),
        );
    }
}

impl Events for Stream {
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        self.start(&chunk["model"], out);
        if let Some(u) = usage_of(chunk) {
            self.usage = u;
        }
        let Some(d) = Delta::of(chunk) else { return };
        if !d.reasoning.is_empty() {
            let i = self.open(
                Open::Thinking,
                || json!({"type": "thinking", "thinking": "", "signature": ""}),
                out,
            );
            Self::delta(
                out,
                i,
                json!({"type": "thinking_delta", "thinking": d.reasoning}),
            );
        }
        // Signed thinking blocks arrive after their text (the Anthropic connector sends them before the finish):
        // each signature goes to its thinking block, by order; a redacted block is a block of its own.
        let mut signed = 0;
        for detail in d.details {
            match detail["type"].as_str() {
                Some("thinking") => {
                    if let (Some(&i), Some(sig)) =
                        (self.thinking.get(signed), detail["signature"].as_str())
                    {
                        Self::delta(out, i, json!({"type": "signature_delta", "signature": sig}));
                    }
                    signed += 1;
                }
                Some("redacted_thinking") => {
                    self.close(out);
                    let index = self.next;
                    self.next += 1;
                    event(
                        out,
                        "content_block_start",
                        json!({"index": index, "content_block": detail}),
                    );
                    event(out, "content_block_stop", json!({"index": index}));
                }
                _ => {}
            }
        }
        if !d.content.is_empty() {
            let i = self.open(Open::Text, || json!({"type": "text", "text": ""}), out);
            Self::delta(out, i, json!({"type": "text_delta", "text": d.content}));
        }
        for call in d.tool_calls {
            let n = call["index"].as_u64().unwrap_or(0);
            let f = &call["function"];
            let i = self.open(
                Open::Tool(n),
                || json!({"type": "tool_use", "id": call["id"], "name": f["name"], "input": {}}),
                out,
            );
            if let Some(args) = f["arguments"].as_str().filter(|a| !a.is_empty()) {
                Self::delta(
                    out,
                    i,
                    json!({"type": "input_json_delta", "partial_json": args}),
                );
            }
        }
        if let Some(f) = d.finish {
            self.finish = Some(f.to_owned());
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.start(&Value::Null, out);
        self.close(out);
        event(
            out,
            "message_delta",
            json!({"delta": {"stop_reason": stop_reason(self.finish.as_deref()),
            "stop_sequence": null}, "usage": usage(&self.usage)}),
        );
        event(out, "message_stop", json!({}));
    }

    fn error(&mut self, error: &Value, out: &mut Vec<u8>) {
        let said = |k: &str| error[k].as_str().unwrap_or("");
        let kind = if said("type").contains("rate_limit") || said("code").contains("rate_limit") {
            "rate_limit_error"
        } else if said("code").contains("unavailable") {
            "overloaded_error"
        } else {
            "api_error"
        };
        event(
            out,
            "error",
            json!({"error": {"type": kind, "message": error["message"]}}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            id: "req_0123abcd".into(),
            created: 1_800_000_000,
        }
    }

    #[test]
    fn a_tool_loop_turn_becomes_chat_messages_with_the_reasoning_kept() {
        // §1.6's continuation, with an unsigned thinking block such as the gateway gives for DeepSeek.
        let body = json!({"model": "claude-sonnet-4-6", "max_tokens": 2048,
            "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "checkSandboxErrors", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": "Check the sandbox for errors."},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Call it.", "signature": ""},
                    {"type": "tool_use", "id": "call_1", "name": "checkSandboxErrors", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "0 errors"}]},
                    {"type": "text", "text": "Anything else?"}]}]});
        let chat = Value::Object(request(body.as_object().unwrap().clone()).unwrap());
        let m = &chat["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "Be terse."}));
        assert_eq!(m[2]["reasoning_content"], "Call it.");
        assert!(
            m[2].get("reasoning_details").is_none(),
            "unsigned: nothing to prove"
        );
        assert_eq!(
            m[2]["tool_calls"][0]["function"],
            json!({"name": "checkSandboxErrors", "arguments": "{}"})
        );
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "0 errors"})
        );
        assert_eq!(m[4], json!({"role": "user", "content": "Anything else?"}));
        assert_eq!(chat["max_completion_tokens"], 2048);
        assert_eq!(chat["reasoning_effort"], "low");
        assert_eq!(chat["parallel_tool_calls"], false);
        assert_eq!(chat["tools"][0]["function"]["name"], "checkSandboxErrors");
    }

    #[test]
    fn signed_thinking_goes_back_as_reasoning_details_and_images_as_parts() {
        let body = json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is it?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hm.", "signature": "Eq4C"},
                {"type": "redacted_thinking", "data": "EmwK"}, {"type": "text", "text": "A cat."}]}]});
        let chat = Value::Object(request(body.as_object().unwrap().clone()).unwrap());
        assert_eq!(
            chat["messages"][0]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBO"
        );
        let a = &chat["messages"][1];
        assert_eq!(
            (a["content"].as_str(), a["reasoning_content"].as_str()),
            (Some("A cat."), Some("Hm."))
        );
        assert_eq!(a["reasoning_details"][0]["signature"], "Eq4C");
        assert_eq!(a["reasoning_details"][1]["type"], "redacted_thinking");
    }

    #[test]
    fn what_cannot_be_translated_is_a_400_naming_the_field() {
        let refused = |body: Value| request(body.as_object().unwrap().clone()).unwrap_err();
        let e = refused(json!({"model": "m", "messages": []}));
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = refused(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {}}]}]}),
        );
        assert_eq!(e.param.as_deref(), Some("messages.0.content.0.type"));
        assert!(
            e.message.contains("`document` blocks are not supported"),
            "{}",
            e.message
        );
        let e = refused(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        );
        assert_eq!(e.param.as_deref(), Some("tools.0.type"));
        let e = refused(
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}),
        );
        assert_eq!(e.param.as_deref(), Some("messages.0.role"));
    }

    #[test]
    fn an_answer_with_reasoning_and_a_tool_call_becomes_a_message() {
        let chat = json!({"id": "x", "model": "deepseek-flash", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "reasoning_content": "Need the weather.",
                "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 12, "prompt_tokens_details": {"cached_tokens": 10}}});
        let m = answer(&chat, &ctx());
        assert_eq!(m["id"], "msg_0123abcd");
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["content"][0],
            json!({"type": "thinking", "thinking": "Need the weather.", "signature": ""})
        );
        assert_eq!(
            m["content"][1],
            json!({"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Paris"}})
        );
        assert_eq!(m["content"].as_array().unwrap().len(), 2);
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 20, "output_tokens": 12,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10})
        );
    }

    fn events(chunks: &[&str]) -> Vec<Value> {
        super::super::tests::run_events(&mut Stream::new(ctx()), chunks)
    }

    #[test]
    fn a_stream_of_reasoning_text_and_a_tool_call_becomes_ordered_blocks() {
        let ev = events(&[
            r#"{"model":"deepseek-flash","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""}}]}"#,
            r#"{"model":"deepseek-flash","choices":[{"index":0,"delta":{"reasoning_content":"Think."}}]}"#,
            r#"{"model":"deepseek-flash","choices":[{"index":0,"delta":{"content":"Let me look."}}]}"#,
            r#"{"model":"deepseek-flash","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"model":"deepseek-flash","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}"#,
            r#"{"model":"deepseek-flash","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"model":"deepseek-flash","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":5}}"#,
            "[DONE]",
        ]);
        let kinds: Vec<String> = ev
            .iter()
            .map(|e| match e["type"].as_str().unwrap() {
                "content_block_start" => {
                    format!("start {}", e["content_block"]["type"].as_str().unwrap())
                }
                "content_block_delta" => {
                    format!("{} {}", e["index"], e["delta"]["type"].as_str().unwrap())
                }
                t => t.to_owned(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "start thinking",
                "0 thinking_delta",
                "content_block_stop",
                "start text",
                "1 text_delta",
                "content_block_stop",
                "start tool_use",
                "2 input_json_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[7]["content_block"]["id"], "call_1");
        let delta = &ev[10];
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            (
                delta["usage"]["input_tokens"].as_u64(),
                delta["usage"]["output_tokens"].as_u64()
            ),
            (Some(9), Some(5))
        );
    }

    #[test]
    fn a_signature_reaches_its_thinking_block_and_an_error_is_an_error_event() {
        let ev = events(&[
            r#"{"model":"claude","choices":[{"index":0,"delta":{"reasoning_content":"Hm."}}]}"#,
            r#"{"model":"claude","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"model":"claude","choices":[{"index":0,"delta":{"reasoning_details":[{"type":"thinking","thinking":"Hm.","signature":"EsEC"}]}}]}"#,
            r#"{"error":{"message":"the upstream closed the stream","type":"upstream_error","code":"upstream_truncated"}}"#,
        ]);
        let sig = ev
            .iter()
            .find(|e| e["delta"]["type"] == "signature_delta")
            .unwrap();
        assert_eq!(
            (sig["index"].as_u64(), sig["delta"]["signature"].as_str()),
            (Some(0), Some("EsEC"))
        );
        let last = ev.last().unwrap();
        assert_eq!(last["type"], "error");
        assert_eq!(last["error"]["type"], "api_error");
        assert!(!ev.iter().any(|e| e["type"] == "message_stop"));
    }

    #[test]
    fn cached_tokens_over_the_prompt_are_the_whole_prompt() {
        let u = json!({"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 99}});
        let chat = json!({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}], "usage": u});
        assert_eq!(
            answer(&chat, &ctx())["usage"],
            json!({"input_tokens": 0, "output_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10})
        );
    }

    #[test]
    fn errors_have_anthropics_shape_and_type_by_status() {
        let body = error_body(&ApiError::unauthorized("bad key"), &ctx());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"},
            "request_id": "req_0123abcd"})
        );
        assert_eq!(error_type(429), "rate_limit_error");
        assert_eq!(error_type(502), "api_error");
    }
}
