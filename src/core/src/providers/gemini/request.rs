//! Gemini requests: OpenAI messages, tools and sampling options as `generateContent`'s contents,
//! `systemInstruction`, `tools`, `toolConfig` and `generationConfig`.

use crate::providers::text_of;
use serde_json::{json, Map, Value};

use super::SIGNATURE_MARK;
use crate::error::ApiError;
use crate::ports::UpstreamRequest;
use crate::providers::ProviderConfig;

pub(super) fn chat_request(
    p: &ProviderConfig,
    body: Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<UpstreamRequest, ApiError> {
    let mut out = Map::new();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Tool-call id -> function name, to name `functionResponse`s.
    let mut call_names: Map<String, Value> = Map::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let param = || format!("messages[{i}]");
        match role {
            "system" | "developer" => system.push(json!({"text": text_of(m.get("content"))})),
            "user" => contents
                .push(json!({"role": "user", "parts": user_parts(m.get("content"), &param())?})),
            "assistant" => {
                // Another provider's `reasoning_content` is not Gemini's to read back: dropped.
                let mut parts = Vec::new();
                let text = text_of(m.get("content"));
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let id = call.get("id").and_then(Value::as_str).unwrap_or("");
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let args_text = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}");
                    let args: Value = serde_json::from_str(args_text).map_err(|_| {
                        ApiError::invalid_request(format!(
                            "tool call `{id}` has arguments that are not JSON"
                        ))
                        .with_param(&param())
                    })?;
                    call_names.insert(id.to_owned(), Value::String(name.to_owned()));
                    let mut part = json!({"functionCall": {"name": name, "args": args}});
                    if let Some((_, sig)) = id.split_once(SIGNATURE_MARK) {
                        part["thoughtSignature"] = Value::String(sig.to_owned());
                    }
                    parts.push(part);
                }
                if !parts.is_empty() {
                    contents.push(json!({"role": "model", "parts": parts}));
                }
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let Some(name) = call_names.get(id).cloned() else {
                    return Err(ApiError::invalid_request(format!(
                        "tool result `{id}` answers no earlier tool call"
                    ))
                    .with_param(&param()));
                };
                let content = m.get("content").cloned().unwrap_or(Value::Null);
                let response = match content {
                    Value::String(s) => match serde_json::from_str::<Value>(&s) {
                        Ok(Value::Object(o)) => Value::Object(o),
                        _ => json!({"content": s}),
                    },
                    Value::Object(o) => Value::Object(o),
                    other => json!({"content": text_of(Some(&other))}),
                };
                let part = json!({"functionResponse": {"name": name, "response": response}});
                // Parallel results go in one user turn.
                match contents.last_mut() {
                    Some(last)
                        if last["role"] == "user"
                            && last["parts"][0].get("functionResponse").is_some() =>
                    {
                        if let Some(parts) = last["parts"].as_array_mut() {
                            parts.push(part);
                        }
                    }
                    _ => contents.push(json!({"role": "user", "parts": [part]})),
                }
            }
            other => {
                return Err(
                    ApiError::invalid_request(format!("unknown message role `{other}`"))
                        .with_param(&param()),
                )
            }
        }
    }
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    out.insert("contents".into(), Value::Array(contents));
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let decls: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut d = json!({"name": f.get("name").cloned().unwrap_or(Value::Null)});
                if let Some(desc) = f.get("description") {
                    d["description"] = desc.clone();
                }
                if let Some(params) = f.get("parameters") {
                    d["parametersJsonSchema"] = params.clone();
                }
                d
            })
            .collect();
        if !decls.is_empty() {
            out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        }
    }
    if let Some(choice) = body.get("tool_choice") {
        let config = match choice {
            Value::String(s) if s == "none" => json!({"mode": "NONE"}),
            Value::String(s) if s == "required" => json!({"mode": "ANY"}),
            Value::Object(o) => {
                json!({"mode": "ANY", "allowedFunctionNames": [o.get("function").and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null)]})
            }
            _ => json!({"mode": "AUTO"}),
        };
        out.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    out.insert(
        "generationConfig".into(),
        Value::Object(generation_config(&body, model)?),
    );
    let action = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let url = format!("{}/models/{model}:{action}", p.base_url);
    Ok(crate::providers::json_post(p, url, super::google_key, &out))
}

fn generation_config(
    body: &Map<String, Value>,
    model: &str,
) -> Result<Map<String, Value>, ApiError> {
    let mut g = Map::new();
    let copy = |g: &mut Map<String, Value>, from: &str, to: &str| {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            g.insert(to.into(), v.clone());
        }
    };
    copy(&mut g, "temperature", "temperature");
    copy(&mut g, "top_p", "topP");
    copy(&mut g, "seed", "seed");
    copy(&mut g, "n", "candidateCount");
    copy(&mut g, "max_tokens", "maxOutputTokens");
    copy(&mut g, "max_completion_tokens", "maxOutputTokens");
    match body.get("stop") {
        Some(Value::String(s)) => {
            g.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            g.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    match body
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => {
            g.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            g.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = body
                .get("response_format")
                .and_then(|f| f.pointer("/json_schema/schema"))
            {
                g.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    if let Some(effort) = body.get("reasoning_effort").and_then(Value::as_str) {
        // Gemini 3 takes a level; 2.5 a token budget. Never both (providers.md §3.2).
        let thinking = if model.starts_with("gemini-2.") {
            let budget = match effort {
                "none" | "minimal" => 0,
                "low" => 1024,
                "medium" => 8192,
                _ => 24576,
            };
            json!({"thinkingBudget": budget})
        } else {
            let level = match effort {
                "none" | "minimal" => "MINIMAL",
                "low" => "LOW",
                "medium" => "MEDIUM",
                _ => "HIGH",
            };
            json!({"thinkingLevel": level})
        };
        g.insert("thinkingConfig".into(), thinking);
    }
    Ok(g)
}

/// The text of a message's content (a string, or the text parts of an array).
fn user_parts(content: Option<&Value>, param: &str) -> Result<Vec<Value>, ApiError> {
    let Some(Value::Array(parts)) = content else {
        return Ok(vec![json!({"text": text_of(content)})]);
    };
    let mut out = Vec::new();
    for p in parts {
        match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                out.push(json!({"text": p.get("text").cloned().unwrap_or(Value::Null)}))
            }
            Some("image_url") => {
                let url = p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let Some((mime, data)) = url
                    .strip_prefix("data:")
                    .and_then(|r| r.split_once(";base64,"))
                else {
                    return Err(ApiError::invalid_request(
                        "gemini takes images inline: send them as data: URLs (data:image/png;base64,…)",
                    )
                    .with_param(param));
                };
                out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
            }
            other => {
                return Err(ApiError::invalid_request(format!(
                    "gemini does not take content parts of type `{}` through this gateway",
                    other.unwrap_or("?")
                ))
                .with_param(param))
            }
        }
    }
    Ok(out)
}
