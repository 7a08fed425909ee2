//! OpenAI's Responses API inbound, its stateless subset (shared/providers-more.md §2): a `ResponseCreateParams`
//! body becomes a chat request, a chat completion a response object, the relay's chunks the `response.*` events.
//!
//! - `instructions` becomes the first system message, an `input` string one user message; message items map
//!   one to one (`input_text`/`output_text` → text, `input_image` → `image_url`); a run of `function_call` items
//!   becomes one assistant message's `tool_calls`, joining the assistant message just before it;
//!   `function_call_output` a `tool` message; a `reasoning` item the next assistant message's
//!   `reasoning_content` (DeepSeek needs it back on a tool-call turn).
//! - Flat function tools become nested ones; `max_output_tokens` is `max_completion_tokens`, `reasoning.effort`
//!   `reasoning_effort`, `text.format` `response_format`.
//! - Not supported, answered with a 400 naming the field: `previous_response_id`, `conversation`, `prompt`,
//!   `background: true` and `item_reference` items (the gateway stores nothing, so there is nothing to refer
//!   to); hosted tools (`web_search`, `file_search`, …); files. `store` is accepted and answered `false`.

use serde_json::{json, Map, Value};

use super::{carry, event, field, function_tools, invalid, usage_of, Ctx, Delta, Events, Said};
use crate::error::{shown, ApiError};
use crate::log::Usage;

/// What a response object repeats of its request.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "reasoning",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
];

pub(super) fn echo(body: &Map<String, Value>) -> Map<String, Value> {
    ECHOED
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), body.get(*k)?.clone())))
        .collect()
}

/// Fields that need state the gateway does not keep.
const STATEFUL: &[(&str, &str)] = &[
    ("previous_response_id", "`previous_response_id` is not supported: this gateway stores no responses; send the whole conversation in `input`"),
    ("conversation", "`conversation` is not supported: this gateway stores no conversations; send the whole conversation in `input`"),
    ("prompt", "`prompt` (stored prompt templates) is not supported by this gateway"),
];

pub(super) fn request(body: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    for (field, why) in STATEFUL {
        if body.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(invalid(*why, field));
        }
    }
    if body.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(invalid(
            "`background` responses are not supported: this gateway answers while the request is open",
            "background",
        ));
    }
    let mut out = Map::new();
    if let Some(model) = body.get("model") {
        out.insert("model".into(), model.clone());
    }
    let mut messages = Vec::new();
    match body.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => return Err(invalid("`instructions` must be a string", "instructions")),
    }
    match body.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => translate_items(items, &mut messages)?,
        Some(_) => {
            return Err(invalid(
                "`input` must be a string or a list of items",
                "input",
            ))
        }
        None => return Err(invalid("`input` is required", "input")),
    }
    out.insert("messages".into(), Value::Array(messages));
    // A stream's usage goes into `response.completed`.
    carry(
        &body,
        &mut out,
        &[
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("stream", "stream"),
            ("parallel_tool_calls", "parallel_tool_calls"),
            ("max_output_tokens", "max_completion_tokens"),
            ("user", "user"),
        ],
    );
    if let Some(effort) = field(&body, "reasoning")
        .get("effort")
        .and_then(Value::as_str)
    {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    match field(&body, "text")
        .get("format")
        .and_then(|f| f["type"].as_str())
    {
        Some("json_schema") => {
            let f = &field(&body, "text")["format"];
            let mut schema = json!({"name": f.get("name").cloned().unwrap_or(json!("output")), "schema": f["schema"]});
            for k in ["strict", "description"] {
                if let Some(v) = f.get(k) {
                    schema[k] = v.clone();
                }
            }
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
        Some("json_object") => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    if translate_tools(&body, &mut out)? {
        translate_tool_choice(&body, &mut out)?;
    }
    Ok(out)
}

fn translate_items(items: &[Value], out: &mut Vec<Value>) -> Result<(), ApiError> {
    // Reasoning waiting for the assistant message it belongs to.
    let mut reasoning: Option<String> = None;
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let kind = item.get("type").and_then(Value::as_str);
        match kind {
            None | Some("message") => {
                let role = match item.get("role").and_then(Value::as_str) {
                    Some(r @ ("user" | "assistant" | "system")) => r,
                    Some("developer") => "system",
                    _ => {
                        return Err(invalid(
                            format!("{at}.role must be `user`, `assistant`, `system` or `developer`"),
                            &format!("{at}.role"),
                        ))
                    }
                };
                let mut m = json!({"role": role, "content": content(item.get("content"), &at)?});
                if role == "assistant" {
                    if let Some(r) = reasoning.take() {
                        m["reasoning_content"] = json!(r);
                    }
                }
                out.push(m);
            }
            Some("function_call") => {
                let call = json!({"id": item["call_id"], "type": "function", "function": {
                    "name": item["name"], "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or("{}")}});
                if item["call_id"].as_str().is_none() || item["name"].as_str().is_none() {
                    return Err(invalid(
                        format!("{at}: a function_call needs `call_id` and `name`"),
                        &at,
                    ));
                }
                // Calls join the assistant message just before them (its text, or the calls before them).
                match out.last_mut() {
                    Some(m) if m["role"] == "assistant" => {
                        if !m["tool_calls"].is_array() {
                            m["tool_calls"] = json!([]);
                        }
                        if let Some(calls) = m["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                        if let Some(r) = reasoning.take() {
                            m["reasoning_content"] = json!(r);
                        }
                    }
                    _ => out.push(json!({"role": "assistant", "content": null,
                        "reasoning_content": reasoning.take().unwrap_or_default(), "tool_calls": [call]})),
                }
                // DeepSeek wants `reasoning_content` back on every tool-call turn ("" when it had none).
                if let Some(m) = out.last_mut() {
                    if m.get("reasoning_content").is_none() {
                        m["reasoning_content"] = json!("");
                    }
                }
            }
            Some("function_call_output") => {
                let Some(id) = item["call_id"].as_str() else {
                    return Err(invalid(format!("{at}.call_id is required"), &format!("{at}.call_id")));
                };
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => crate::providers::text_of(Some(&Value::Array(parts.clone()))),
                    _ => String::new(),
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
            }
            Some("reasoning") => {
                let mut text = String::new();
                for part in item["summary"].as_array().into_iter().flatten().chain(item["content"].as_array().into_iter().flatten()) {
                    text.push_str(part["text"].as_str().unwrap_or(""));
                }
                reasoning.get_or_insert_with(String::new).push_str(&text);
            }
            Some("item_reference") => {
                return Err(invalid(
                    format!("{at}: item references are not supported: this gateway stores no items; send the item itself"),
                    &at,
                ))
            }
            Some(other) => {
                return Err(invalid(
                    format!("{at}: `{}` items are not supported by this gateway", shown(other)),
                    &format!("{at}.type"),
                ))
            }
        }
    }
    Ok(())
}

/// A message item's content as chat content: a string, or parts when there is an image.
fn content(content: Option<&Value>, at: &str) -> Result<Value, ApiError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(json!(s)),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(
                format!("{at}.content must be a string or a list of content parts"),
                &format!("{at}.content"),
            ))
        }
    };
    let mut out = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                out.push(json!({"type": "text", "text": p["text"].as_str().unwrap_or("")}))
            }
            Some("refusal") => {
                out.push(json!({"type": "text", "text": p["refusal"].as_str().unwrap_or("")}))
            }
            Some("input_image") => {
                let Some(url) = p["image_url"].as_str() else {
                    return Err(invalid(
                        format!("{here}: images by `file_id` are not supported (this gateway has no Files API); send `image_url`"),
                        &format!("{here}.image_url"),
                    ));
                };
                let mut image = json!({"url": url});
                if let Some(d) = p.get("detail").filter(|d| d.is_string()) {
                    image["detail"] = d.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            Some(other) => {
                return Err(invalid(
                    format!(
                        "{here}: `{}` parts are not supported by this gateway",
                        shown(other)
                    ),
                    &format!("{here}.type"),
                ))
            }
            None => {
                return Err(invalid(
                    format!("{here}.type is required"),
                    &format!("{here}.type"),
                ))
            }
        }
    }
    if out.iter().all(|p| p["type"] == "text") {
        return Ok(json!(out
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<String>()));
    }
    Ok(Value::Array(out))
}

/// Flat function tools as chat's nested ones; hosted tools are refused.
fn translate_tools(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<bool, ApiError> {
    let refuse = |at: &str, kind: Option<&str>| match kind {
        Some("function") => None,
        Some(kind) => Some(format!(
            "{at}: hosted tools (`{}`) are not supported by this gateway; declare a function tool",
            shown(kind)
        )),
        None => Some(format!("{at}.type is required")),
    };
    function_tools(body, out, "parameters", |i| format!("tools[{i}]"), refuse)
}

fn translate_tool_choice(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let chat = match body.get("tool_choice") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) if ["auto", "required", "none"].contains(&s.as_str()) => json!(s),
        Some(c) if c["type"] == "function" && c["name"].is_string() => {
            json!({"type": "function", "function": {"name": c["name"]}})
        }
        // The mode only: chat has no way to narrow the tools offered.
        Some(c) if c["type"] == "allowed_tools" && c["mode"].is_string() => c["mode"].clone(),
        Some(_) => {
            return Err(invalid(
                "`tool_choice` must be `auto`, `required`, `none` or a function",
                "tool_choice",
            ))
        }
    };
    out.insert("tool_choice".into(), chat);
    Ok(())
}

/// The Responses API's usage: cached tokens a part of the input, reasoning a part of the output (counts over
/// their totals, from an upstream that says so, are the totals).
fn usage(u: &Usage) -> Value {
    let (input, output) = (u.prompt_tokens, u.completion_tokens);
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": u.cached_tokens.unwrap_or(0).min(input)},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0).min(output)},
        "total_tokens": input + output})
}

/// `completed`, or `incomplete` with why, for a chat finish reason.
fn status(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The response object: the request's echoed parameters with their defaults, and what happened.
fn response(
    ctx: &Ctx,
    echo: &Map<String, Value>,
    (model, status, output): (&Value, &str, Vec<Value>),
    usage: Value,
    (incomplete, error): (Value, Value),
) -> Value {
    let mut r = json!({"id": format!("resp_{}", ctx.hex()), "object": "response", "created_at": ctx.created,
        "status": status, "background": false, "error": error, "incomplete_details": incomplete,
        "instructions": null, "max_output_tokens": null, "model": model, "output": output,
        "parallel_tool_calls": true, "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null}, "store": false, "temperature": 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "truncation": "disabled", "usage": usage, "user": null, "metadata": {}});
    for (k, v) in echo {
        if !v.is_null() {
            r[k.as_str()] = v.clone();
        }
    }
    r
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"id": id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
}

fn call_item(id: &str, call: (&Value, &Value, &str), status: &str) -> Value {
    let (call_id, name, arguments) = call;
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
        "arguments": arguments})
}

pub(super) fn answer(chat: &Value, ctx: &Ctx, echo: &Map<String, Value>) -> Value {
    let said = Said::of(chat);
    let hex = ctx.hex();
    let mut output = Vec::new();
    if !said.reasoning.is_empty() {
        output.push(reasoning_item(&format!("rs_{hex}"), said.reasoning));
    }
    if !said.text.is_empty() || said.tool_calls.is_empty() {
        output.push(message_item(&format!("msg_{hex}"), &said.text, "completed"));
    }
    for (k, call) in said.tool_calls.iter().enumerate() {
        let f = &call["function"];
        let arguments = f["arguments"].as_str().unwrap_or("{}");
        output.push(call_item(
            &format!("fc_{hex}_{k}"),
            (&call["id"], &f["name"], arguments),
            "completed",
        ));
    }
    let (status, incomplete) = status(said.finish);
    response(
        ctx,
        echo,
        (&chat["model"], status, output),
        usage(&usage_of(chat).unwrap_or_default()),
        (incomplete, Value::Null),
    )
}

/// The output item being written.
enum Item {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        index: u64,
        call_id: Value,
        name: Value,
        arguments: String,
    },
}

pub(super) struct Stream {
    ctx: Ctx,
    echo: Map<String, Value>,
    seq: u64,
    model: Value,
    /// Finished output items, and the open one.
    done: Vec<Value>,
    open: Option<Item>,
    finish: Option<String>,
    usage: Usage,
}

impl Stream {
    pub(super) fn new(ctx: Ctx, echo: Map<String, Value>) -> Self {
        Self {
            ctx,
            echo,
            seq: 0,
            model: Value::Null,
            done: Vec::new(),
            open: None,
            finish: None,
            usage: Usage::default(),
        }
    }

    /// An event with the next `sequence_number`.
    fn emit(&mut self, out: &mut Vec<u8>, name: &str, mut data: Value) {
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        event(out, name, data);
    }

    fn snapshot(&self, status: &str, usage: Value, end: (Value, Value)) -> Value {
        response(
            &self.ctx,
            &self.echo,
            (&self.model, status, self.done.clone()),
            usage,
            end,
        )
    }

    /// `response.created` and `.in_progress`, before any other event (the first to be numbered).
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.seq > 0 {
            return;
        }
        let r = self.snapshot("in_progress", Value::Null, (Value::Null, Value::Null));
        self.emit(out, "response.created", json!({"response": r}));
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.open.take() else { return };
        let index = self.output_index();
        let done = match item {
            Item::Reasoning { id, text } => {
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                );
                reasoning_item(&id, &text)
            }
            Item::Message { id, text } => {
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut d = at.clone();
                d["text"] = json!(text);
                d["logprobs"] = json!([]);
                self.emit(out, "response.output_text.done", d);
                let mut d = at;
                d["part"] = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit(out, "response.content_part.done", d);
                message_item(&id, &text, "completed")
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                self.emit(out, "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "name": name, "arguments": arguments}));
                call_item(&id, (&call_id, &name, &arguments), "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"item": done, "output_index": index}),
        );
        self.done.push(done);
    }

    fn reasoning(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Item::Reasoning { .. })) {
            self.close(out);
            let (index, id) = (
                self.output_index(),
                format!("rs_{}_{}", self.ctx.hex(), self.output_index()),
            );
            self.emit(out, "response.output_item.added",
                json!({"item": {"id": id, "type": "reasoning", "summary": []}, "output_index": index}));
            self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index,
                "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
            );
            self.open = Some(Item::Reasoning {
                id,
                text: String::new(),
            });
        }
        let index = self.output_index();
        if let Some(Item::Reasoning { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
            );
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Item::Message { .. })) {
            self.close(out);
            let (index, id) = (
                self.output_index(),
                format!("msg_{}_{}", self.ctx.hex(), self.output_index()),
            );
            self.emit(out, "response.output_item.added", json!({"item": {"id": id, "type": "message",
                "status": "in_progress", "role": "assistant", "content": []}, "output_index": index}));
            self.emit(out, "response.content_part.added", json!({"item_id": id, "output_index": index,
                "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
            self.open = Some(Item::Message {
                id,
                text: String::new(),
            });
        }
        let index = self.output_index();
        if let Some(Item::Message { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index,
                "content_index": 0, "delta": delta, "logprobs": []}),
            );
        }
    }

    fn call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let n = call["index"].as_u64().unwrap_or(0);
        if !matches!(self.open, Some(Item::Call { index, .. }) if index == n) {
            self.close(out);
            let (index, id) = (
                self.output_index(),
                format!("fc_{}_{}", self.ctx.hex(), self.output_index()),
            );
            let (call_id, name) = (call["id"].clone(), call["function"]["name"].clone());
            self.emit(
                out,
                "response.output_item.added",
                json!({"item": call_item(&id, (&call_id, &name, ""), "in_progress"),
                "output_index": index}),
            );
            self.open = Some(Item::Call {
                id,
                index: n,
                call_id,
                name,
                arguments: String::new(),
            });
        }
        let index = self.output_index();
        let delta = call["function"]["arguments"].as_str().unwrap_or("");
        if let (Some(Item::Call { id, arguments, .. }), false) = (&mut self.open, delta.is_empty())
        {
            arguments.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": delta}),
            );
        }
    }
}

impl Events for Stream {
    fn chunk(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.model.is_null() {
            self.model = chunk["model"].clone();
        }
        self.start(out);
        if let Some(u) = usage_of(chunk) {
            self.usage = u;
        }
        let Some(d) = Delta::of(chunk) else { return };
        if !d.reasoning.is_empty() {
            self.reasoning(d.reasoning, out);
        }
        if !d.content.is_empty() {
            self.text(d.content, out);
        }
        for call in d.tool_calls {
            self.call(call, out);
        }
        if let Some(f) = d.finish {
            self.finish = Some(f.to_owned());
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        let (status, incomplete) = status(self.finish.as_deref());
        let r = self.snapshot(status, usage(&self.usage), (incomplete, Value::Null));
        let name = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(out, name, json!({"response": r}));
    }

    fn error(&mut self, error: &Value, out: &mut Vec<u8>) {
        self.start(out);
        // Nested, as real traffic has it: the SDK raises on an event whose `error` is set.
        self.emit(
            out,
            "error",
            json!({"error": {"type": error["type"], "code": error["code"],
            "message": error["message"], "param": null}}),
        );
        let code = error["code"]
            .as_str()
            .or_else(|| error["type"].as_str())
            .unwrap_or("server_error");
        let r = self.snapshot(
            "failed",
            Value::Null,
            (
                Value::Null,
                json!({"code": code, "message": error["message"]}),
            ),
        );
        self.emit(out, "response.failed", json!({"response": r}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            id: "req_00ff".into(),
            created: 1_800_000_000,
        }
    }

    fn translate(body: Value) -> Result<Value, ApiError> {
        request(body.as_object().unwrap().clone()).map(Value::Object)
    }

    #[test]
    fn input_items_become_chat_messages() {
        // §2.2's example request, with reasoning and assistant text before the call.
        let chat = translate(json!({"model": "gpt-5.4", "instructions": "You are terse.", "stream": true, "store": false,
            "max_output_tokens": 512, "reasoning": {"effort": "low", "summary": "auto"},
            "tools": [{"type": "function", "name": "get_weather", "description": "Get weather", "strict": true,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Beijing?"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look it up."}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "call_id": "call_2F", "name": "get_weather", "arguments": "{\"city\":\"Beijing\"}"},
                {"type": "function_call_output", "call_id": "call_2F", "output": "{\"temp_c\":21}"}]})).unwrap();
        let m = &chat["messages"];
        assert_eq!(m[0], json!({"role": "system", "content": "You are terse."}));
        assert_eq!(
            m[1],
            json!({"role": "user", "content": "Weather in Beijing?"})
        );
        assert_eq!(m[2]["content"], "Checking.");
        assert_eq!(m[2]["reasoning_content"], "Look it up.");
        assert_eq!(m[2]["tool_calls"][0]["id"], "call_2F");
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "call_2F", "content": "{\"temp_c\":21}"})
        );
        assert_eq!(m.as_array().unwrap().len(), 4);
        assert_eq!(chat["max_completion_tokens"], 512);
        assert_eq!(chat["reasoning_effort"], "low");
        assert_eq!(chat["stream_options"]["include_usage"], true);
        assert_eq!(
            chat["tools"][0]["function"]["parameters"]["required"][0],
            "city"
        );
        assert_eq!(
            chat["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert!(chat.get("store").is_none());
    }

    #[test]
    fn stateful_fields_hosted_tools_and_references_are_400s_naming_the_field() {
        let param = |body: Value| translate(body).unwrap_err().param;
        assert_eq!(
            param(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"})).as_deref(),
            Some("previous_response_id")
        );
        assert_eq!(
            param(json!({"model": "m", "input": "x", "background": true})).as_deref(),
            Some("background")
        );
        assert_eq!(
            param(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
                .as_deref(),
            Some("tools[0].type")
        );
        assert_eq!(
            param(json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}))
                .as_deref(),
            Some("input[0]")
        );
        assert_eq!(param(json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]})).as_deref(),
            Some("input[0].content[0].type"));
        assert_eq!(param(json!({"model": "m"})).as_deref(), Some("input"));
    }

    #[test]
    fn an_answer_becomes_a_response_object_echoing_the_request() {
        let chat = json!({"model": "deepseek-flash", "choices": [{"index": 0, "finish_reason": "length",
            "message": {"role": "assistant", "content": "Hello", "reasoning_content": "Hm."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 2}}});
        let echo = echo(
            json!({"instructions": "Be kind.", "temperature": 0.5, "input": "x"})
                .as_object()
                .unwrap(),
        );
        let r = answer(&chat, &ctx(), &echo);
        assert_eq!(
            (r["id"].as_str(), r["status"].as_str()),
            (Some("resp_00ff"), Some("incomplete"))
        );
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(
            (r["instructions"].as_str(), r["temperature"].as_f64()),
            (Some("Be kind."), Some(0.5))
        );
        assert_eq!(r["output"][0]["summary"][0]["text"], "Hm.");
        assert_eq!(r["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
        assert_eq!(r["usage"]["total_tokens"], 17);
        assert_eq!(r["store"], false);
    }

    fn events(chunks: &[&str]) -> Vec<Value> {
        super::super::tests::run_events(&mut Stream::new(ctx(), Map::new()), chunks)
    }

    #[test]
    fn a_stream_of_text_then_a_call_is_numbered_and_closed_in_order() {
        let ev = events(&[
            r#"{"model":"gpt-5.5","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"model":"gpt-5.5","choices":[{"index":0,"delta":{"content":"OK"}}]}"#,
            r#"{"model":"gpt-5.5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}]}"#,
            r#"{"model":"gpt-5.5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            r#"{"model":"gpt-5.5","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"model":"gpt-5.5","choices":[],"usage":{"prompt_tokens":45,"completion_tokens":25}}"#,
            "[DONE]",
        ]);
        let names: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64);
        }
        assert_eq!(ev[8]["output_index"], 1);
        let done = &ev[13]["response"];
        assert_eq!(done["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(done["usage"]["input_tokens"], 45);
        assert_eq!(done["status"], "completed");
    }

    #[test]
    fn details_over_their_totals_are_the_totals() {
        let u = json!({"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 99},
            "completion_tokens_details": {"reasoning_tokens": 9}});
        let chat = json!({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}], "usage": u});
        let r = answer(&chat, &ctx(), &Map::new());
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 10);
        assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 4);
    }

    #[test]
    fn a_failed_stream_ends_with_an_error_and_response_failed() {
        let ev = events(&[
            r#"{"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"error":{"message":"cut off","type":"upstream_error","code":"upstream_truncated"}}"#,
        ]);
        let n = ev.len();
        assert_eq!(ev[n - 2]["error"]["message"], "cut off");
        assert_eq!(ev[n - 1]["type"], "response.failed");
        assert_eq!(ev[n - 1]["response"]["error"]["code"], "upstream_truncated");
    }
}
