//! Anthropic's Messages API at `/anthropic/v1/messages` (shared/providers-more.md §1): `x-api-key` and
//! `anthropic-version` required; `max_tokens` required; a `tool_result` must answer a `tool_use` of the turn
//! before; with thinking enabled, a turn that continues a tool call must start with the thinking block the mock
//! gave out, signature unchanged (the real API's 400s otherwise). Answers: a signed thinking block when thinking
//! is on, a `tool_use` of the first tool when tools are offered (until a result comes back), text otherwise.
//! Streams are `event:` + `data:` frames without `[DONE]`; cache reads and writes are reported when the request
//! has a `cache_control` breakpoint. Faults by model name as for every route (`mock-529` is `overloaded_error`).

use crate::*;

const THINKING: &str = "The user asks something; answer briefly.";

/// The signature of a thinking text: stands for Anthropic's (opaque, checked on the way back).
fn signature(thinking: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in thinking.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("EqMock{h:016x}")
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    raw_json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"}),
    )
}

fn fault(status: u16) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    };
    let mut r = error(status, kind, "mock fault");
    if status == 429 {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    r
}

/// What the request breaks of the API's rules, as the API says it.
fn invalid(body: &Value) -> Option<String> {
    if body["max_tokens"].as_u64().is_none() {
        return Some("max_tokens: Field required".into());
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Some("messages: at least one message is required".into());
    };
    if let Some(budget) = body
        .pointer("/thinking/budget_tokens")
        .and_then(Value::as_u64)
    {
        if budget >= body["max_tokens"].as_u64().unwrap_or(0) {
            return Some("`max_tokens` must be greater than `thinking.budget_tokens`".into());
        }
    }
    let blocks = |m: &Value| m["content"].as_array().cloned().unwrap_or_default();
    for (i, m) in messages.iter().enumerate() {
        let results: Vec<Value> = blocks(m)
            .into_iter()
            .filter(|b| b["type"] == "tool_result")
            .collect();
        if results.is_empty() {
            continue;
        }
        let asked: Vec<Value> = i
            .checked_sub(1)
            .map(|p| blocks(&messages[p]))
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| b["id"].clone())
            .collect();
        if let Some(r) = results.iter().find(|r| !asked.contains(&r["tool_use_id"])) {
            return Some(format!("messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", r["tool_use_id"].as_str().unwrap_or("")));
        }
        if blocks(m).first().map(|b| b["type"].clone()) != Some(json!("tool_result")) {
            return Some(format!(
                "messages.{i}.content: `tool_result` blocks must come first"
            ));
        }
    }
    let thinking_on = body.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled");
    let last_assistant = messages.iter().rposition(|m| m["role"] == "assistant");
    if let (true, Some(i)) = (thinking_on, last_assistant) {
        let content = blocks(&messages[i]);
        if content.iter().any(|b| b["type"] == "tool_use") {
            match content.first() {
                Some(b) if b["type"] == "thinking" => {
                    let text = b["thinking"].as_str().unwrap_or("");
                    if b["signature"].as_str() != Some(signature(text).as_str()) {
                        return Some("Invalid `signature` in `thinking` block".into());
                    }
                }
                Some(b) if b["type"] == "redacted_thinking" => {}
                other => return Some(format!("messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). To avoid this requirement, disable `thinking`.",
                    other.and_then(|b| b["type"].as_str()).unwrap_or("text"))),
            }
        }
    }
    None
}

/// The words of the answer: to a tool result, what the tool said; otherwise an echo of the last user text.
fn words(body: &Value) -> Vec<String> {
    let last = body["messages"].as_array().and_then(|m| m.last());
    let result = last
        .and_then(|m| m["content"].as_array())
        .and_then(|c| c.iter().find(|b| b["type"] == "tool_result"));
    if let Some(r) = result {
        let said = match &r["content"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return format!("The tool said: {said}")
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect();
    }
    let text = match last.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let echo: String = text.chars().take(60).collect();
    format!("This is the mock provider answering: {echo}")
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn messages(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(expected) = &state.args.api_key {
        if header("x-api-key") != Some(expected.as_str()) {
            return error(401, "authentication_error", "invalid x-api-key");
        }
    }
    if header("anthropic-version").is_none() {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "invalid_request_error", "invalid JSON body");
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let plan = plan(&model, &headers, &state, "anthropic").await;
    if let Fault::Status(s) = plan.fault {
        return fault(s);
    }
    if let Some(said) = invalid(&body) {
        return error(400, "invalid_request_error", &said);
    }
    let id = format!("msg_mock{}", state.counter.fetch_add(1, Ordering::Relaxed));
    let thinking = body.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled");
    let answered_tool = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
    let tool = body["tools"]
        .as_array()
        .and_then(|t| t.first())
        .filter(|_| !answered_tool)
        .map(|t| t["name"].clone());
    let words = words(&body);
    let cached = body.to_string().contains("cache_control");
    let prompt = prompt_tokens(&body);
    let thinking_tokens = if thinking { 9 } else { 0 };
    let output = words.len() as u64 + thinking_tokens;
    let usage = json!({"input_tokens": prompt, "cache_creation_input_tokens": if cached { 5 } else { 0 },
        "cache_read_input_tokens": if cached { 10 } else { 0 }, "output_tokens": output,
        "output_tokens_details": {"thinking_tokens": thinking_tokens}});
    let mut content = Vec::new();
    if thinking {
        content.push(
            json!({"type": "thinking", "thinking": THINKING, "signature": signature(THINKING)}),
        );
    }
    let stop = match &tool {
        Some(name) => {
            content.push(json!({"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {"city": "Boston"}}));
            "tool_use"
        }
        None => {
            content.push(json!({"type": "text", "text": words.concat()}));
            "end_turn"
        }
    };
    if body["stream"] != true {
        return Json(json!({"id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop, "stop_sequence": null, "usage": usage}))
        .into_response();
    }
    let frame = |v: Value| {
        Bytes::from(format!(
            "event: {}\ndata: {v}\n\n",
            v["type"].as_str().unwrap_or("")
        ))
    };
    let mut frames = vec![
        frame(
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
            "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": prompt, "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                "cache_read_input_tokens": usage["cache_read_input_tokens"], "output_tokens": 1}}}),
        ),
        frame(json!({"type": "ping"})),
    ];
    for (i, block) in content.iter().enumerate() {
        let start = match block["type"].as_str() {
            Some("thinking") => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Some("tool_use") => {
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})
            }
            _ => json!({"type": "text", "text": ""}),
        };
        frames.push(frame(
            json!({"type": "content_block_start", "index": i, "content_block": start}),
        ));
        let deltas: Vec<Value> = match block["type"].as_str() {
            Some("thinking") => vec![
                json!({"type": "thinking_delta", "thinking": THINKING}),
                json!({"type": "signature_delta", "signature": block["signature"]}),
            ],
            Some("tool_use") => {
                let args = block["input"].to_string();
                let (a, b) = args.split_at(args.len() / 2);
                vec![
                    json!({"type": "input_json_delta", "partial_json": ""}),
                    json!({"type": "input_json_delta", "partial_json": a}),
                    json!({"type": "input_json_delta", "partial_json": b}),
                ]
            }
            _ => words
                .iter()
                .map(|w| json!({"type": "text_delta", "text": w}))
                .collect(),
        };
        for d in deltas {
            frames.push(frame(
                json!({"type": "content_block_delta", "index": i, "delta": d}),
            ));
        }
        frames.push(frame(json!({"type": "content_block_stop", "index": i})));
    }
    frames.push(frame(
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": usage}),
    ));
    frames.push(frame(json!({"type": "message_stop"})));
    let error_frame = frame(
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    sse_frames(frames, (2, None), error_frame, plan)
}
