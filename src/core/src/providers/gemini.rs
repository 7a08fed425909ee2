//! Google Gemini, native API (providers.md §3): `models/{m}:generateContent` and
//! `:streamGenerateContent?alt=sse`, translated both ways.
//! - Requests: system/developer messages become `systemInstruction`; roles become `user`/`model`; images must
//!   be `data:` URLs (inlined); tool calls and results become `functionCall`/`functionResponse` parts; sampling
//!   options go to `generationConfig`; `response_format` JSON to `responseMimeType`.
//! - Tool calls have no ids in Gemini: the gateway makes them up, and carries each call's thought signature in
//!   its id (`call_…~ts~<signature>`) so the signature goes back on the same part in later turns.
//! - Answers: text parts are the content, `thought` parts the `reasoning_content`; any function call makes the
//!   finish reason `tool_calls`; a blocked prompt (200, no candidates) is a `content_filter` answer.
//! - Streams: each event holds only new parts; there is no `[DONE]` (the finish chunk ends it); usage is cumulative.
//! - Errors are `google.rpc.Status`; an invalid key is a 400 `API_KEY_INVALID`; the retry delay is in `RetryInfo`.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::log::Usage;
use crate::ports::UpstreamRequest;
use crate::providers::{Answer, Connector, ErrorResponse, NewStream, ProviderConfig, StreamEvent};

/// Separates a synthesized tool-call id from the thought signature it carries.
const SIGNATURE_MARK: &str = "~ts~";

pub struct Gemini;

impl Connector for Gemini {
    type StreamState = StreamState;

    fn chat_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        chat_request(p, body, model, stream)
    }

    fn embeddings_request(
        &self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        embeddings_request(p, body, model)
    }

    fn usage(&self, answer: &Value) -> Option<Usage> {
        usage(answer)
    }

    fn normalize_answer(&self, answer: &mut Value, created: u64) -> Result<Answer, ApiError> {
        normalize_answer(answer, created);
        Ok(Answer::Rewritten)
    }

    fn normalize_embeddings(&self, answer: &mut Value, model: &str) -> Answer {
        normalize_embeddings(answer, model);
        Answer::Rewritten
    }

    fn stream_event(&self, state: &mut StreamState, data: &str, out: &mut Vec<StreamEvent>) {
        state.event(data, out);
    }

    /// providers.md §3.7: `google.rpc.Status`, possibly inside an array.
    fn upstream_error(&self, e: &ErrorResponse<'_>) -> ApiError {
        let status = match e.json {
            Some(Value::Array(items)) => items.first(),
            other => other,
        };
        status_error(e.provider, e.status, e.headers, status)
    }
}

fn chat_request(
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
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(key) = &p.api_key {
        headers.push(("x-goog-api-key".to_owned(), key.clone()));
    }
    headers.extend(p.headers.iter().cloned());
    Ok(UpstreamRequest {
        method: "POST",
        url: format!("{}/models/{model}:{action}", p.base_url),
        headers,
        body: serde_json::to_vec(&Value::Object(out)).unwrap_or_default(),
    })
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
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

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

/// providers.md §3.4.
fn usage(response: &Value) -> Option<Usage> {
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
fn normalize_answer(answer: &mut Value, created: u64) {
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

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            out.push(StreamEvent::Opaque(data.to_owned()));
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

/// `{"embeddings":[{"values":[…]}]}` as an OpenAI embedding list (replaces it in place).
fn normalize_embeddings(answer: &mut Value, model: &str) {
    let data: Vec<Value> = answer
        .get("embeddings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e.get("values").cloned().unwrap_or_else(|| json!([]))}))
        .collect();
    *answer = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}});
}

fn embeddings_request(
    p: &ProviderConfig,
    body: Map<String, Value>,
    model: &str,
) -> Result<UpstreamRequest, ApiError> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => {
            return Err(ApiError::invalid_request(
                "gemini embeds text: `input` must be a string or an array of strings",
            )
            .with_param("input"))
        }
    };
    let requests: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
            if let Some(d) = body.get("dimensions") {
                r["outputDimensionality"] = d.clone();
            }
            r
        })
        .collect();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(key) = &p.api_key {
        headers.push(("x-goog-api-key".to_owned(), key.clone()));
    }
    Ok(UpstreamRequest {
        method: "POST",
        url: format!("{}/models/{model}:batchEmbedContents", p.base_url),
        headers,
        body: serde_json::to_vec(&json!({"requests": requests})).unwrap_or_default(),
    })
}

/// The OpenAI error for a parsed `google.rpc.Status` body (`{"error": {...}}`) seen with `status`.
fn status_error(
    provider: &str,
    status: u16,
    headers: &[(String, String)],
    parsed: Option<&Value>,
) -> ApiError {
    let e = parsed.and_then(|v| v.get("error"));
    let message = e
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("error");
    let grpc = e
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let details = e
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let reason = |r: &str| {
        details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some(r))
    };
    let said = format!("upstream `{provider}` returned {status} {grpc}: {message}");
    let mut err = match (status, grpc) {
        _ if reason("API_KEY_INVALID") || status == 401 || status == 403 => {
            ApiError::upstream_auth(provider, said)
        }
        (404, _) | (_, "NOT_FOUND") => ApiError::model_not_found(said),
        (429, _) | (_, "RESOURCE_EXHAUSTED") => ApiError::rate_limited(said),
        (503, _) | (_, "UNAVAILABLE") => ApiError::upstream_unavailable(said),
        (504, _) | (_, "DEADLINE_EXCEEDED") => ApiError::upstream_timeout(said),
        (400..=499, _) => ApiError::invalid_request(said),
        _ => ApiError::upstream_failed(said),
    };
    // No Retry-After header: the delay is in RetryInfo ("34.4s"), rounded up to whole seconds.
    err.retry_after = crate::http::find_header(headers, "retry-after")
        .map(str::to_owned)
        .or_else(|| {
            details
                .iter()
                .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
                .and_then(|s| {
                    s.trim_end_matches('s')
                        .parse::<f64>()
                        .ok()
                        .map(|secs| format!("{}", secs.ceil() as u64))
                })
        });
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    fn upstream_error(
        provider: &str,
        status: u16,
        h: &[(String, String)],
        body: &[u8],
    ) -> ApiError {
        crate::providers::test_error(Dialect::Gemini, provider, status, h, body)
    }

    fn provider() -> ProviderConfig {
        crate::providers::test_provider(
            "gemini",
            "https://g/v1beta",
            "gemini-3.8-flash",
            Dialect::Gemini,
        )
    }

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_tool_round_trip_translates_both_ways_and_keeps_the_signature() {
        let b = body(
            json!({"model": "gemini/gemini-3.8-flash", "max_tokens": 100, "stop": "END", "temperature": 0.2,
            "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_r_0~ts~EskgCsYg", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Boston\"}"}}]},
                {"role": "tool", "tool_call_id": "call_r_0~ts~EskgCsYg", "content": "{\"tempC\":21}"}]}),
        );
        let req = chat_request(&provider(), b, "gemini-3.8-flash", false).unwrap();
        assert_eq!(
            req.url,
            "https://g/v1beta/models/gemini-3.8-flash:generateContent"
        );
        assert!(req
            .headers
            .contains(&("x-goog-api-key".into(), "sk-test".into())));
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            sent["systemInstruction"],
            json!({"parts": [{"text": "You are terse."}]})
        );
        assert_eq!(
            sent["contents"][0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBO"}})
        );
        assert_eq!(
            sent["contents"][1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Boston"}}, "thoughtSignature": "EskgCsYg"}]})
        );
        assert_eq!(
            sent["contents"][2],
            json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"tempC": 21}}}]})
        );
        assert_eq!(
            sent["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
        assert_eq!(
            sent["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
        assert_eq!(
            sent["generationConfig"],
            json!({"temperature": 0.2, "maxOutputTokens": 100, "stopSequences": ["END"], "responseMimeType": "application/json"})
        );
    }

    #[test]
    fn images_by_http_url_and_orphan_tool_results_are_clear_400s() {
        let b = body(
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        );
        assert_eq!(
            chat_request(&provider(), b, "m", false)
                .unwrap_err()
                .status(),
            400
        );
        let b =
            body(json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}));
        assert_eq!(
            chat_request(&provider(), b, "m", false)
                .unwrap_err()
                .param
                .as_deref(),
            Some("messages[0]")
        );
    }

    #[test]
    fn the_real_answer_fixture_becomes_a_chat_completion() {
        // providers.md §3.3
        let mut v = json!({"candidates": [{"content": {"parts": [{"text": "There are **3** r's in strawberry.", "thoughtSignature": "EtoF"}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 28, "totalTokenCount": 281, "thoughtsTokenCount": 244},
            "modelVersion": "gemini-3-pro-preview", "responseId": "Un6LacrVMcjUxs0PmJfWoQc"});
        assert_eq!(
            usage(&v).map(|u| (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.reasoning_tokens
            )),
            Some((9, 272, 281, Some(244)))
        );
        normalize_answer(&mut v, 7);
        assert_eq!(v["id"], "chatcmpl-Un6LacrVMcjUxs0PmJfWoQc");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "There are **3** r's in strawberry."
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["completion_tokens"], 272);
    }

    #[test]
    fn stop_with_a_function_call_is_tool_calls_and_a_blocked_prompt_is_content_filter() {
        let mut v = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "weather", "args": {"location": "San Francisco"}}, "thoughtSignature": "Esk"}], "role": "model"},
            "finishReason": "STOP", "finishMessage": "Model generated function call(s).", "index": 0}], "responseId": "R"});
        normalize_answer(&mut v, 0);
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(
            (call["id"].as_str(), call["function"]["arguments"].as_str()),
            (
                Some("call_R_0~ts~Esk"),
                Some("{\"location\":\"San Francisco\"}")
            )
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        // providers.md §3.5
        let mut blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-3.7-flash", "responseId": "EXCP"});
        normalize_answer(&mut blocked, 0);
        assert_eq!(blocked["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(blocked["choices"][0]["message"]["content"], Value::Null);
    }

    #[test]
    fn the_real_stream_fixture_becomes_openai_chunks_ending_in_done() {
        // providers.md §3.6
        let a = r#"{"candidates": [{"content": {"parts": [{"text": "fixture ok"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 2,"totalTokenCount": 103,"thoughtsTokenCount": 94},"modelVersion": "gemini-3.7-flash","responseId": "WQuqavG5KbfUjMcPuP_n6QI"}"#;
        let b = r#"{"candidates": [{"content": {"parts": [{"text": "","thoughtSignature": "EqkE"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 2,"totalTokenCount": 103,"thoughtsTokenCount": 94},"modelVersion": "gemini-3.7-flash","responseId": "WQuqavG5KbfUjMcPuP_n6QI"}"#;
        let mut s = Dialect::Gemini.stream_translator(1);
        let first = s.events(a);
        assert_eq!(first.len(), 2);
        let StreamEvent::Chunk {
            data: role,
            content: false,
            ..
        } = &first[0]
        else {
            panic!()
        };
        assert!(
            role.contains(r#""role":"assistant""#)
                && role.contains("chatcmpl-WQuqavG5KbfUjMcPuP_n6QI")
        );
        let StreamEvent::Chunk {
            data: text,
            content: true,
            ..
        } = &first[1]
        else {
            panic!()
        };
        assert!(text.contains(r#""content":"fixture ok""#));
        let last = s.events(b);
        assert!(
            matches!(&last[0], StreamEvent::Chunk { data: f, .. } if f.contains(r#""finish_reason":"stop""#))
        );
        assert!(matches!(&last[1], StreamEvent::UsageOnly(u, _) if u.completion_tokens == 96));
        assert_eq!(last[2], StreamEvent::End);
    }

    #[test]
    fn google_errors_map_with_their_retry_delay() {
        let e = upstream_error("gemini", 400, &[], br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#);
        assert_eq!(
            (e.status(), e.code.code()),
            (502, Some("upstream_authentication_failed"))
        );
        let e = upstream_error("gemini", 429, &[], br#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"x"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.4s"}]}}"#);
        assert_eq!((e.status(), e.retry_after.as_deref()), (429, Some("35")));
        let e = upstream_error("gemini", 404, &[], br#"[{"error":{"code":404,"message":"models/gemini-2.0-flash is not found","status":"NOT_FOUND"}}]"#);
        assert_eq!(e.code.code(), Some("model_not_found"));
        assert_eq!(upstream_error("gemini", 503, &[], br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#).status(), 503);
    }
}
