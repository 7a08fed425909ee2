//! Connectors through the whole pipeline: requests as each provider wants them, answers and errors as OpenAI's,
//! every provider's real stream fixture (also re-chunked at random).

use super::*;

#[test]
fn json_chat_is_forwarded_with_the_configured_key_and_logged_with_usage() {
    let host = FakeHost::new(ok_json());
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json()["choices"][0]["message"]["content"], "hello");
    assert_eq!(seen.header("x-gateway-provider"), Some("openai"));
    assert_eq!(seen.header("x-gateway-model"), Some("gpt-4o-mini"));
    let sent = &host.sent.borrow()[0];
    assert_eq!(sent.url, "http://mock/v1/chat/completions");
    assert!(sent
        .headers
        .contains(&("authorization".into(), "Bearer sk-upstream".into())));
    let r = &seen.record;
    assert_eq!(
        (r.status, r.key_id.as_deref(), r.provider.as_deref()),
        (200, Some("key_test"), Some("openai"))
    );
    assert_eq!(
        r.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((9, 1))
    );
    assert_eq!(r.id, seen.header("x-request-id").unwrap());
    assert!(!r.stream);
}

#[test]
fn upstream_errors_before_the_first_byte_are_real_http_errors() {
    let body = br#"{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#.to_vec();
    let host = FakeHost::new(Script::Reply(
        429,
        vec![("retry-after".into(), "3".into())],
        vec![body],
    ));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 429);
    assert_eq!(seen.header("retry-after"), Some("3"));
    assert_eq!(seen.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        seen.record.error_code.as_deref(),
        Some("rate_limit_exceeded")
    );

    let seen = run(
        &FakeHost::new(Script::Unreachable),
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 502);
    assert_eq!(seen.json()["error"]["code"], "upstream_unreachable");

    let host = FakeHost::new(Script::Reply(
        500,
        vec![],
        vec![b"<html>oops</html>".to_vec()],
    ));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 502);
    assert!(seen.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("<html>oops</html>"));
}

#[test]
fn embeddings_are_forwarded() {
    let body = json!({"object": "list", "data": [{"object": "embedding", "embedding": [0.1], "index": 0}],
        "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}});
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        vec![serde_json::to_vec(&body).unwrap()],
    ));
    let req = request(
        "POST",
        "/v1/embeddings",
        Some(KEY),
        r#"{"model":"text-embedding-3-small","input":"hi"}"#,
    );
    let seen = run(&host, req);
    assert_eq!(seen.status, 200);
    assert_eq!(host.sent.borrow()[0].url, "http://mock/v1/embeddings");
    assert_eq!(seen.record.usage.map(|u| u.prompt_tokens), Some(8));
    let missing = run(
        &host,
        request("POST", "/v1/embeddings", Some(KEY), r#"{"model":"m"}"#),
    );
    assert_eq!(missing.json()["error"]["param"], "input");
}

#[test]
fn deepseek_streams_become_openai_streams() {
    // providers.md §2.4: keep-alive comments while queued, reasoning deltas, usage on the finish chunk.
    let role = r#"{"id":"b1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let thought = r#"{"id":"b1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Hm"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let finish = r#"{"id":"b1","object":"chat.completion.chunk","created":1,"model":"deepseek-flash","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":1},"prompt_cache_hit_tokens":4,"prompt_cache_miss_tokens":5}}"#;
    let mut chunks = vec![b": keep-alive\n\n".to_vec()];
    chunks.extend(sse(&[role, thought, finish, "[DONE]"]));
    for wants_usage in [false, true] {
        let host = FakeHost::new(Script::Reply(200, vec![], chunks.clone()));
        let body = format!(
            r#"{{"model":"deepseek/deepseek-flash","stream":true,"stream_options":{{"include_usage":{wants_usage}}},"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        let seen = run(
            &host,
            request("POST", "/v1/chat/completions", Some(KEY), &body),
        );
        assert_eq!(host.sent.borrow()[0].url, "http://ds/chat/completions");
        assert_eq!(seen.header("x-gateway-provider"), Some("deepseek"));
        let events: Vec<&str> = seen.body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(
            events[1],
            format!("data: {thought}"),
            "reasoning deltas pass through"
        );
        let finish_out: Value =
            serde_json::from_str(events[2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(finish_out["choices"][0]["finish_reason"], "stop");
        assert!(
            finish_out.get("usage").is_none(),
            "usage is moved off the finish chunk"
        );
        if wants_usage {
            let usage: Value =
                serde_json::from_str(events[3].strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(
                (
                    usage["choices"].clone(),
                    usage["usage"]["total_tokens"].clone()
                ),
                (json!([]), json!(12))
            );
            assert_eq!(events[4], "data: [DONE]");
        } else {
            assert_eq!(events[3], "data: [DONE]");
        }
        let u = seen.record.usage.unwrap();
        assert_eq!(
            (u.total_tokens, u.cached_tokens, u.reasoning_tokens),
            (12, Some(4), Some(1))
        );
    }
}

#[test]
fn deepseek_has_no_embeddings_and_its_errors_keep_their_meaning() {
    let host = FakeHost::new(ok_json());
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/embeddings",
            Some(KEY),
            r#"{"model":"deepseek/deepseek-flash","input":"x"}"#,
        ),
    );
    assert_eq!(seen.status, 400);
    assert!(host.sent.borrow().is_empty());
    let body = br#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#.to_vec();
    let host = FakeHost::new(Script::Reply(402, vec![], vec![body]));
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/chat/completions",
            Some(KEY),
            r#"{"model":"deepseek/deepseek-flash","messages":[{"role":"user","content":"x"}]}"#,
        ),
    );
    assert_eq!(
        (seen.status, seen.json()["error"]["type"].as_str()),
        (402, Some("insufficient_quota"))
    );
}

/// Real stream fixtures (providers.md) per provider: the model to ask for and the upstream bytes.
fn fixtures() -> Vec<(&'static str, String)> {
    let openai = [ROLE, TEXT, FINISH, USAGE, "[DONE]"]
        .iter()
        .map(|e| format!("data: {e}\n\n"))
        .collect::<String>();
    let deepseek = concat!(
        ": keep-alive\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"reasoning_content\":\"We\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"There\",\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"b1e2\",\"object\":\"chat.completion.chunk\",\"created\":1786782776,\"model\":\"deepseek-v4-flash\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":97,\"completion_tokens\":106,\"total_tokens\":203,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":88},\"prompt_cache_hit_tokens\":0,\"prompt_cache_miss_tokens\":97}}\n\n",
        "data: [DONE]\n\n"
    )
    .to_owned();
    let siliconflow = concat!(
        "data: {\"id\":\"01983a922eff7e1cee0f9a1cdbbd74f4\",\"object\":\"chat.completion.chunk\",\"created\":1753329315,\"model\":\"deepseek-ai/DeepSeek-V3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning_content\":null,\"role\":\"assistant\"},\"finish_reason\":null}],\"system_fingerprint\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":0,\"total_tokens\":4}}\r\n\r\n",
        "data: {\"id\":\"01983a922eff7e1cee0f9a1cdbbd74f4\",\"object\":\"chat.completion.chunk\",\"created\":1753329315,\"model\":\"deepseek-ai/DeepSeek-V3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\",\"reasoning_content\":null},\"finish_reason\":null}],\"system_fingerprint\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5}}\r\n\r\n",
        "data: {\"id\":\"01983a922eff7e1cee0f9a1cdbbd74f4\",\"object\":\"chat.completion.chunk\",\"created\":1753329315,\"model\":\"deepseek-ai/DeepSeek-V3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"！\",\"reasoning_content\":null},\"finish_reason\":\"eos\"}],\"system_fingerprint\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\r\n\r\n",
        "data: [DONE]\r\n\r\n"
    )
    .to_owned();
    let openrouter = concat!(
        ": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"native_finish_reason\":null}]}\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":null,\"native_finish_reason\":null}]}\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\",\"native_finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1779358422,\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,\"cost\":0.000075,\"is_byok\":false,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
        "data: [DONE]\n\n"
    )
    .to_owned();
    // providers.md §3.6: CRLF framing, no [DONE].
    let gemini = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"fixture ok\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 2,\"totalTokenCount\": 103,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 7}],\"thoughtsTokenCount\": 94,\"serviceTier\": \"standard\"},\"modelVersion\": \"gemini-3.7-flash\",\"responseId\": \"WQuqavG5KbfUjMcPuP_n6QI\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\",\"thoughtSignature\": \"EqkECqYEARFNMg+g...\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 2,\"totalTokenCount\": 103,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 7}],\"thoughtsTokenCount\": 94,\"serviceTier\": \"standard\"},\"modelVersion\": \"gemini-3.7-flash\",\"responseId\": \"WQuqavG5KbfUjMcPuP_n6QI\"}\r\n\r\n"
    )
    .to_owned();
    // providers.md §6.3, Llama-style native stream.
    let workers_ai = concat!(
        "data: {\"response\":\"Hello\",\"p\":\"abcdefghijklmnopqrstuvw\"}\n\n",
        "data: {\"response\":\"!\",\"p\":\"abcdefghijklmnopqrstuvw\"}\n\n",
        "data: {\"response\":\" How\",\"p\":\"abcdefgh\"}\n\n",
        "data: {\"response\":\"\"}\n\n",
        "data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":755,\"completion_tokens\":10,\"total_tokens\":765}}\n\n",
        "data: [DONE]\n\n"
    )
    .to_owned();
    vec![
        ("workers_ai/@cf/meta/llama-3.1-8b-instruct", workers_ai),
        ("gemini/gemini-3.7-flash", gemini),
        ("openai/gpt-4o-mini", openai),
        ("deepseek/deepseek-flash", deepseek),
        ("siliconflow/deepseek-ai/DeepSeek-V3", siliconflow),
        ("openrouter/openai/gpt-4o", openrouter),
    ]
}

fn stream_through(model: &str, chunks: Vec<Vec<u8>>) -> (String, LogRecord) {
    let host = FakeHost::new(Script::Reply(200, vec![], chunks));
    let body = format!(
        r#"{{"model":"{model}","stream":true,"stream_options":{{"include_usage":true}},"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), &body),
    );
    (seen.body, seen.record)
}

#[test]
fn every_provider_fixture_ends_in_one_usage_chunk_and_done() {
    for (model, bytes) in fixtures() {
        let (out, record) = stream_through(model, vec![bytes.into_bytes()]);
        assert!(out.ends_with("data: [DONE]\n\n"), "{model}: {out}");
        let events: Vec<Value> = out
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let usage_chunks = events.iter().filter(|e| e["choices"] == json!([])).count();
        assert_eq!(usage_chunks, 1, "{model}: {out}");
        assert!(
            events
                .iter()
                .filter(|e| e["choices"] != json!([]))
                .all(|e| e.get("usage").is_none_or(Value::is_null)),
            "{model}"
        );
        assert!(record.usage.is_some() && !record.truncated, "{model}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Upstream bytes arrive in arbitrary pieces (mid-line, mid-CRLF, mid-UTF-8): the client sees the same stream.
    #[test]
    fn rechunking_upstream_bytes_changes_nothing(which in 0usize..6, cuts in proptest::collection::vec(0usize..10_000, 0..40)) {
        let (model, bytes) = fixtures().swap_remove(which);
        let bytes = bytes.into_bytes();
        let (whole, whole_record) = stream_through(model, vec![bytes.clone()]);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            pieces.push(bytes[last..p].to_vec());
            last = p;
        }
        let (split, split_record) = stream_through(model, pieces);
        proptest::prop_assert_eq!(whole, split);
        proptest::prop_assert_eq!(whole_record.usage, split_record.usage);
    }
}
