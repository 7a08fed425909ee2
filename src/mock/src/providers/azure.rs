//! Azure OpenAI at `/azure/openai/deployments/{deployment}/chat/completions?api-version=…` (dated) and
//! `/azure/openai/v1/chat/completions` (v1, the deployment in `model`), after shared/providers-more.md §3:
//! the key in `api-key`; deployment `prod-mini` serves `gpt-4o-mini-2024-07-18` (others are 404
//! `DeploymentNotFound`); a prompt containing "jailbreak" is the content filter's 400; answers and chunks carry
//! `content_filter_results`; a stream starts with a choices-less `prompt_filter_results` chunk and has an
//! asynchronous filter annotation after its finish. `mock-429` is Azure's 429, its delay only in the message.

use crate::*;

const DEPLOYMENT: &str = "prod-mini";
const MODEL: &str = "gpt-4o-mini-2024-07-18";

fn azure_error(status: u16, code: &str, message: &str) -> Response {
    raw_json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

pub(crate) async fn dated(
    State(state): State<Shared>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !query.unwrap_or_default().contains("api-version=") {
        return azure_error(404, "404", "Resource not found");
    }
    chat(state, deployment, headers, body).await
}

pub(crate) async fn v1(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let deployment = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["model"].as_str().map(str::to_owned))
        .unwrap_or_default();
    chat(state, deployment, headers, body).await
}

async fn chat(state: Shared, deployment: String, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(expected) = &state.args.api_key {
        if headers.get("api-key").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return azure_error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.");
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return azure_error(400, "BadRequest", "invalid JSON");
    };
    let plan = plan(&deployment, &headers, &state, "azure").await;
    match plan.fault {
        Fault::Status(429) => return azure_error(429, "429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."),
        Fault::Status(s) => return fault_response(s, &deployment),
        _ => {}
    }
    if deployment != DEPLOYMENT && !deployment.starts_with("mock-") {
        return azure_error(404, "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.");
    }
    if body.to_string().contains("jailbreak") {
        return raw_json(
            400,
            &json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"jailbreak": {"filtered": true, "detected": true}}}}}),
        );
    }
    let filters = json!({"hate": {"filtered": false, "severity": "safe"}, "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"}, "violence": {"filtered": false, "severity": "safe"}});
    let id = format!(
        "chatcmpl-azure{}",
        state.counter.fetch_add(1, Ordering::Relaxed)
    );
    let words = reply_words(&body);
    let prompt = prompt_tokens(&body);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": words.len(), "total_tokens": prompt + words.len() as u64,
        "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}});
    let tool = tool_turn(&body, "call_azure_1");
    if body["stream"] != true {
        let (message, finish) = match tool {
            Some(m) => (m, "tool_calls"),
            None => (
                json!({"role": "assistant", "content": words.concat(), "refusal": null}),
                "stop",
            ),
        };
        return Json(
            json!({"id": id, "object": "chat.completion", "created": now_secs(), "model": MODEL,
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null,
                "content_filter_results": filters}], "usage": usage}),
        )
        .into_response();
    }
    let created = now_secs();
    let chunk = |delta: Value, finish: Value| {
        json!({"choices": [{"content_filter_results": {}, "delta": delta, "finish_reason": finish, "index": 0, "logprobs": null}],
            "created": created, "id": id, "model": MODEL, "object": "chat.completion.chunk", "obfuscation": "zRj",
            "system_fingerprint": null, "usage": null})
    };
    let mut events = vec![
        json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}]}),
        chunk(
            json!({"content": "", "refusal": null, "role": "assistant"}),
            Value::Null,
        ),
    ];
    let finish = match &tool {
        Some(m) => {
            let call = &m["tool_calls"][0];
            events.push(chunk(json!({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}}]}), Value::Null));
            "tool_calls"
        }
        None => {
            events.extend(
                words
                    .iter()
                    .map(|w| chunk(json!({"content": w}), Value::Null)),
            );
            "stop"
        }
    };
    events.push(chunk(json!({}), json!(finish)));
    // An asynchronous filter annotation, after the finish.
    events.push(json!({"choices": [{"index": 0, "finish_reason": null, "content_filter_offsets":
        {"check_offset": 0, "start_offset": 0, "end_offset": 40}, "content_filter_results": filters}],
        "created": 0, "id": "", "model": ""}));
    if body["stream_options"]["include_usage"] == true {
        events.push(
            json!({"choices": [], "created": created, "id": id, "model": MODEL,
            "object": "chat.completion.chunk", "usage": usage}),
        );
    }
    sse_response(Vec::new(), &events, plan)
}
