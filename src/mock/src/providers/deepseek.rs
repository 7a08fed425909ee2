//! DeepSeek (providers.md §2).

use crate::*;

/// DeepSeek's `/chat/completions` (providers.md §2): UUID ids, thinking on by default (`reasoning_content`),
/// blank lines before queued JSON answers, `: keep-alive` before stream events, usage on the finish chunk,
/// its own error bodies, and `mock-insufficient` ending with `insufficient_system_resource`.
pub(crate) async fn chat(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match accept(&state, &headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if !model.starts_with("deepseek-") && !model.starts_with("mock") {
        return error_response(
            400,
            "Model Not Exist",
            "invalid_request_error",
            Some("invalid_request_error"),
        );
    }
    let plan = plan(&model, &headers, &state, "deepseek").await;
    if let Fault::Status(status) = plan.fault {
        return match status {
            402 => error_response(
                402,
                "Insufficient Balance",
                "unknown_error",
                Some("invalid_request_error"),
            ),
            s => fault_response(s, &model),
        };
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let id = format!("b1e2c3d4-0000-4000-8000-{n:012}");
    let thinking = body["thinking"]["type"] != "disabled";
    let words = reply_words(&body);
    let thoughts: Vec<String> = if thinking {
        ["Let ", "me ", "think."].map(String::from).to_vec()
    } else {
        vec![]
    };
    // In thinking mode DeepSeek needs each tool-call turn's reasoning back in every later request (providers.md
    // §2.2). Stricter than DeepSeek, which checks only that it is there: the mock wants the text it gave, so a
    // test sees the reasoning itself came back, not an empty stand-in.
    if thinking
        && body["messages"].as_array().into_iter().flatten().any(|m| {
            m["role"] == "assistant"
                && m.get("tool_calls").is_some()
                && m["reasoning_content"].as_str() != Some(thoughts.concat().as_str())
        })
    {
        return error_response(
            400,
            "The `reasoning_content` in the thinking mode must be passed back to the API.",
            "invalid_request_error",
            Some("invalid_request_error"),
        );
    }
    let prompt = prompt_tokens(&body);
    let completion = (words.len() + thoughts.len()) as u64;
    let forced = crate::faults::forced_usage(&state, "deepseek");
    let (prompt, cached, completion, reasoning) = match forced {
        Some(c) => (c.prompt, c.cached, c.completion, c.reasoning),
        None => (prompt, 0, completion, thoughts.len() as u64),
    };
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached}, "completion_tokens_details": {"reasoning_tokens": reasoning},
        "prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": prompt - cached.min(prompt)});
    let created = now_secs();
    let finish = if model == "mock-insufficient" {
        "insufficient_system_resource"
    } else {
        "stop"
    };
    if body["stream"] != true {
        let mut message = json!({"role": "assistant", "content": words.concat()});
        let mut finish = finish;
        if let Some(call) = tool_turn(&body, "call_00_IhCAliIHtM9gKpgfqbBV9873") {
            message = call;
            finish = "tool_calls";
        }
        if thinking {
            message["reasoning_content"] = json!(thoughts.concat());
        }
        let answer = json!({"id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage, "system_fingerprint": "fp_mock_ds"});
        // Queued requests get blank lines before the JSON (providers.md §2.6).
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(format!("\n\n{answer}")))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock_ds", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": usage})
    };
    let first = if thinking {
        json!({"role": "assistant", "content": null, "reasoning_content": ""})
    } else {
        json!({"role": "assistant", "content": ""})
    };
    let mut events = vec![chunk(first, Value::Null, Value::Null)];
    events.extend(thoughts.iter().map(|t| {
        chunk(
            json!({"content": null, "reasoning_content": t}),
            Value::Null,
            Value::Null,
        )
    }));
    let mut finish = finish;
    if let Some(call) = tool_turn(&body, "call_00_IhCAliIHtM9gKpgfqbBV9873") {
        // The call's id and name first, then its arguments in pieces (providers.md §2.4).
        let c = &call["tool_calls"][0];
        let args = c["function"]["arguments"].as_str().unwrap_or("{}");
        events.push(chunk(
            json!({"content": null, "reasoning_content": null, "tool_calls": [{"index": 0, "id": c["id"],
                "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}]}),
            Value::Null,
            Value::Null,
        ));
        let (head, tail) = args.split_at(args.len() / 2);
        for piece in [head, tail] {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                Value::Null,
                Value::Null,
            ));
        }
        finish = "tool_calls";
    } else {
        events.extend(words.iter().map(|w| {
            chunk(
                json!({"content": w, "reasoning_content": null}),
                Value::Null,
                Value::Null,
            )
        }));
    }
    let include_usage = body["stream_options"]["include_usage"] == true;
    events.push(chunk(
        json!({"content": "", "reasoning_content": null}),
        json!(finish),
        if include_usage { usage } else { Value::Null },
    ));
    sse_response(vec![Bytes::from_static(b": keep-alive\n\n")], &events, plan)
}
