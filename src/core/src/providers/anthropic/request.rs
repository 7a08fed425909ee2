//! OpenAI chat request → Anthropic Messages request (shared/providers-more.md §1.2, §1.6, §1.7).

use serde_json::{json, Map, Value};

use super::{ANTHROPIC_VERSION, DEFAULT_MAX_TOKENS};
use crate::error::ApiError;
use crate::ports::UpstreamRequest;
use crate::providers::{text_of, ProviderConfig};

/// Thinking budgets for `reasoning_effort` (tokens).
fn budget_for(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" | "xhigh" | "max" => Some(16384),
        _ => None, // "none" or unknown: no thinking
    }
}

pub(super) fn chat_request(
    p: &ProviderConfig,
    body: Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<UpstreamRequest, ApiError> {
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(ApiError::invalid_request(format!(
            "provider `{}` (Anthropic) answers one choice per request: `n` must be 1",
            p.name
        ))
        .with_param("n"));
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (system, mut turns, open_tool_call_unsigned) = translate_messages(&messages)?;
    merge_same_roles(&mut turns);
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(turns));
    let mut thinking = thinking(&body);
    // A signature is needed to continue a tool turn with thinking on; a client that dropped it gets the turn
    // continued without thinking rather than a 400.
    if open_tool_call_unsigned {
        thinking = None;
    }
    let asked = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    let mut max_tokens = asked.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(t) = &thinking {
        let budget = t.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
        if max_tokens <= budget {
            max_tokens = budget + asked.unwrap_or(DEFAULT_MAX_TOKENS);
        }
        out.insert("thinking".into(), t.clone());
    }
    out.insert("max_tokens".into(), json!(max_tokens));
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    // Sampling: Anthropic's temperature is 0–1; it takes none while thinking.
    if thinking.is_none() {
        if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
            out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(t) = body.get("top_p").and_then(Value::as_f64) {
            out.insert("top_p".into(), json!(t));
        }
    }
    if let Some(u) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools.iter().filter_map(tool).collect();
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = tool_choice(&body, thinking.is_some()) {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(schema) = body
        .get("response_format")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("json_schema"))
        .and_then(|f| f.pointer("/json_schema/schema"))
    {
        out.insert(
            "output_config".into(),
            json!({"format": {"type": "json_schema", "schema": schema}}),
        );
    }
    // Anthropic's prompt caching, asked for as Anthropic takes it (a top-level breakpoint): OpenAI has no field
    // for it, so a client sends it as an extra field.
    if let Some(c) = body.get("cache_control").filter(|c| c.is_object()) {
        out.insert("cache_control".into(), c.clone());
    }
    if stream {
        out.insert("stream".into(), json!(true));
    }
    let url = format!("{}/messages", p.base_url);
    let mut req = crate::providers::json_post(p, url, |key| ("x-api-key", key.to_owned()), &out);
    req.headers.insert(
        1,
        ("anthropic-version".to_owned(), ANTHROPIC_VERSION.to_owned()),
    );
    Ok(req)
}

/// `thinking` as Anthropic takes it: the client's own Anthropic-shaped `thinking` object (also DeepSeek's
/// `{"type": "enabled"}`), or one made from `reasoning_effort`.
fn thinking(body: &Map<String, Value>) -> Option<Value> {
    if let Some(t) = body.get("thinking").filter(|t| t.is_object()) {
        return match t.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = t
                    .get("budget_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(1024)
                    .max(1024);
                Some(json!({"type": "enabled", "budget_tokens": budget}))
            }
            Some("adaptive") => Some(json!({"type": "adaptive"})),
            _ => None,
        };
    }
    let effort = body.get("reasoning_effort").and_then(Value::as_str)?;
    budget_for(effort).map(|b| json!({"type": "enabled", "budget_tokens": b}))
}

/// OpenAI tool → Anthropic tool.
fn tool(t: &Value) -> Option<Value> {
    let f = t.get("function")?;
    let mut out = Map::new();
    out.insert("name".into(), f.get("name")?.clone());
    if let Some(d) = f.get("description") {
        out.insert("description".into(), d.clone());
    }
    let schema = f
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    out.insert("input_schema".into(), schema);
    if let Some(s) = f.get("strict").filter(|s| s.is_boolean()) {
        out.insert("strict".into(), s.clone());
    }
    Some(Value::Object(out))
}

/// `tool_choice` and `parallel_tool_calls`. With thinking on, a forced choice is not allowed: `auto` is sent.
fn tool_choice(body: &Map<String, Value>, thinking: bool) -> Option<Value> {
    let mut choice = match body.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" if !thinking => json!({"type": "any"}),
            "required" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            _ => return None,
        },
        Some(Value::Object(o)) => match o.get("function").and_then(|f| f.get("name")) {
            Some(name) if !thinking => json!({"type": "tool", "name": name}),
            Some(_) => json!({"type": "auto"}),
            None => return None,
        },
        _ => Value::Null,
    };
    if body.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        if choice.is_null() {
            choice = json!({"type": "auto"});
        }
        if let Value::Object(o) = &mut choice {
            o.insert("disable_parallel_tool_use".into(), json!(true));
        }
    }
    (!choice.is_null()).then_some(choice)
}

/// The system blocks, the turns, and whether the conversation ends in an assistant tool call that carries no
/// thinking signature (`reasoning_details`) to continue it with.
fn translate_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>, bool), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    let mut open_unsigned = false;
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        match m.get("role").and_then(Value::as_str) {
            Some("system") | Some("developer") => {
                let text = text_of(m.get("content"));
                if !text.is_empty() {
                    system.push(json!({"type": "text", "text": text}));
                }
            }
            Some("user") => {
                turns.push(
                    json!({"role": "user", "content": user_blocks(m.get("content"), &param)?}),
                );
                open_unsigned = false;
            }
            Some("assistant") => {
                let (blocks, signed) = assistant_blocks(m);
                let calls = m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty());
                open_unsigned = calls && !signed;
                if !blocks.is_empty() {
                    turns.push(json!({"role": "assistant", "content": blocks}));
                }
            }
            Some("tool") => {
                let id = m.get("tool_call_id").cloned().unwrap_or(Value::Null);
                let content = text_of(m.get("content"));
                let result = json!({"type": "tool_result", "tool_use_id": id, "content": content});
                turns.push(json!({"role": "user", "content": [result]}));
            }
            other => {
                return Err(ApiError::invalid_request(format!(
                    "unknown message role `{}`",
                    other.unwrap_or("?")
                ))
                .with_param(&param))
            }
        }
    }
    Ok((system, turns, open_unsigned))
}

/// An assistant message's blocks: its thinking blocks first (from `reasoning_details`, as the gateway gave them
/// out), then text, then tool calls; and whether it carried a signed thinking block.
fn assistant_blocks(m: &Value) -> (Vec<Value>, bool) {
    let mut blocks = Vec::new();
    let mut signed = false;
    for d in m
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match d.get("type").and_then(Value::as_str) {
            Some("thinking") if d.get("signature").and_then(Value::as_str).is_some() => {
                signed = true;
                blocks.push(json!({"type": "thinking", "thinking": d.get("thinking").cloned().unwrap_or(json!("")),
                    "signature": d["signature"]}));
            }
            Some("redacted_thinking") => {
                signed = true;
                blocks.push(json!({"type": "redacted_thinking", "data": d.get("data").cloned().unwrap_or(json!(""))}));
            }
            _ => {}
        }
    }
    let text = text_of(m.get("content"));
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = call.get("function");
        let arguments = f
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let input = serde_json::from_str::<Value>(arguments)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        blocks.push(
            json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": f.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null), "input": input}),
        );
    }
    (blocks, signed)
}

fn user_blocks(content: Option<&Value>, param: &str) -> Result<Value, ApiError> {
    let Some(Value::Array(parts)) = content else {
        return Ok(json!(text_of(content)));
    };
    let mut out = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => out.push(
                json!({"type": "text", "text": part.get("text").cloned().unwrap_or(json!(""))}),
            ),
            Some("image_url") => {
                let url = part
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let source =
                    match url
                        .strip_prefix("data:")
                        .and_then(|r| r.split_once(";base64,"))
                    {
                        Some((media_type, data)) => {
                            json!({"type": "base64", "media_type": media_type, "data": data})
                        }
                        None if url.starts_with("https://") || url.starts_with("http://") => {
                            json!({"type": "url", "url": url})
                        }
                        None => return Err(ApiError::invalid_request(
                            "an image is a data: URL (data:image/png;base64,…) or an http(s) URL",
                        )
                        .with_param(param)),
                    };
                out.push(json!({"type": "image", "source": source}));
            }
            other => {
                return Err(ApiError::invalid_request(format!(
                    "Anthropic does not take content parts of type `{}` through this gateway",
                    other.unwrap_or("?")
                ))
                .with_param(param))
            }
        }
    }
    Ok(Value::Array(out))
}

/// Anthropic merges consecutive turns of one role; the gateway does it itself so that tool results come first in
/// their user message, with any text the client sent after them following.
fn merge_same_roles(turns: &mut Vec<Value>) {
    let mut merged: Vec<Value> = Vec::with_capacity(turns.len());
    for turn in turns.drain(..) {
        match merged.last_mut() {
            Some(last) if last["role"] == turn["role"] => {
                let mut blocks = as_blocks(last["content"].take());
                blocks.extend(as_blocks(turn["content"].clone()));
                last["content"] = Value::Array(blocks);
            }
            _ => merged.push(turn),
        }
    }
    *turns = merged;
}

fn as_blocks(content: Value) -> Vec<Value> {
    match content {
        Value::Array(blocks) => blocks,
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        _ => Vec::new(),
    }
}
