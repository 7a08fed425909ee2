//! The Anthropic Messages API and the Responses API inbound: translated to chat for the pipeline (policy, cache,
//! cost and the log row as for chat), answered in their own shapes, JSON, streams and errors.

use super::*;

const MESSAGE: &str = r#"{"model":"openai/gpt-4o-mini","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"hi"}]}"#;
const MESSAGE_STREAM: &str = r#"{"model":"openai/gpt-4o-mini","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const RESPONSE: &str =
    r#"{"model":"openai/gpt-4o-mini","instructions":"Be brief.","input":"hi","temperature":0.3}"#;
const RESPONSE_STREAM: &str = r#"{"model":"openai/gpt-4o-mini","input":"hi","stream":true}"#;

/// A request authorized the way Anthropic's SDKs do it: `x-api-key`.
fn anthropic(body: &str) -> GatewayRequest {
    let mut req = request("POST", "/v1/messages", None, body);
    req.headers.push(("x-api-key".into(), KEY.into()));
    req.headers
        .push(("anthropic-version".into(), "2023-06-01".into()));
    req
}

/// The `event:` names of a stream, and each event's JSON (whose `type` is its name).
fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let v: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(v["type"], name.as_str());
            (name, v)
        })
        .collect()
}

#[test]
fn a_messages_request_is_answered_as_an_anthropic_message_and_logged_as_messages() {
    let host = FakeHost::new(ok_json());
    let seen = run(&host, anthropic(MESSAGE));
    assert_eq!(seen.status, 200, "{}", seen.body);
    let m = seen.json();
    assert_eq!(
        (m["type"].as_str(), m["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert_eq!(m["content"], json!([{"type": "text", "text": "hello"}]));
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(
        (
            m["usage"]["input_tokens"].as_u64(),
            m["usage"]["output_tokens"].as_u64()
        ),
        (Some(9), Some(1))
    );
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    let sent = host.sent_body();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    let r = &seen.record;
    assert_eq!(
        (r.endpoint, r.provider.as_deref(), r.status),
        (Some("messages"), Some("openai"), 200)
    );
    assert!(r.cost.as_ref().unwrap().pico > 0, "priced as chat");
    assert!(seen.header("x-gateway-cost").is_some());
}

#[test]
fn a_messages_stream_is_anthropics_event_stream_with_the_usage_at_the_end() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    let seen = run(&host, anthropic(MESSAGE_STREAM));
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let events = named_events(&seen.body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
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
    assert_eq!(
        events[2].1["delta"],
        json!({"type": "text_delta", "text": "Hi"})
    );
    assert_eq!(events[4].1["usage"]["input_tokens"], 5);
    assert_eq!(events[4].1["usage"]["output_tokens"], 2);
    assert_eq!(host.sent_body()["stream_options"]["include_usage"], true);
    let r = &seen.record;
    assert_eq!(
        (r.endpoint, r.usage.map(|u| u.total_tokens), r.truncated),
        (Some("messages"), Some(7), false)
    );
}

#[test]
fn messages_errors_have_anthropics_shape_from_the_key_check_on() {
    let host = FakeHost::new(ok_json());
    let no_key = run(&host, request("POST", "/v1/messages", None, MESSAGE));
    assert_eq!(no_key.status, 401);
    assert_eq!(no_key.json()["type"], "error");
    assert_eq!(no_key.json()["error"]["type"], "authentication_error");
    assert_eq!(no_key.record.endpoint, Some("messages"));
    let no_max = run(
        &host,
        anthropic(r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#),
    );
    assert_eq!(no_max.status, 400);
    assert_eq!(no_max.json()["error"]["type"], "invalid_request_error");
    assert!(no_max.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
    assert!(host.sent.borrow().is_empty());
    // An upstream failure before the first byte: its status, in Anthropic's shape.
    let host = FakeHost::new(Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]));
    let limited = run(&host, anthropic(MESSAGE));
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
}

#[test]
fn a_stream_cut_after_its_first_token_ends_with_an_anthropic_error_event() {
    let host = FakeHost::new(Script::Reply(200, vec![], sse(&[ROLE, TEXT])));
    let seen = run(&host, anthropic(MESSAGE_STREAM));
    let events = named_events(&seen.body);
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(last["error"]["type"], "api_error");
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    assert!(seen.record.truncated);
}

#[test]
fn a_responses_request_is_answered_as_a_response_object() {
    let host = FakeHost::new(ok_json());
    let seen = run(&host, request("POST", "/v1/responses", Some(KEY), RESPONSE));
    assert_eq!(seen.status, 200, "{}", seen.body);
    let r = seen.json();
    assert_eq!(
        (r["object"].as_str(), r["status"].as_str()),
        (Some("response"), Some("completed"))
    );
    assert_eq!(
        r["output"][0]["content"][0],
        json!({"type": "output_text", "text": "hello", "annotations": []})
    );
    assert_eq!(
        (r["instructions"].as_str(), r["temperature"].as_f64()),
        (Some("Be brief."), Some(0.3))
    );
    assert_eq!(
        (
            r["usage"]["input_tokens"].as_u64(),
            r["usage"]["total_tokens"].as_u64()
        ),
        (Some(9), Some(10))
    );
    assert_eq!(r["store"], false);
    assert_eq!(host.sent_body()["messages"][0]["role"], "system");
    assert_eq!(seen.record.endpoint, Some("responses"));
}

#[test]
fn a_responses_stream_ends_with_response_completed() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    let seen = run(
        &host,
        request("POST", "/v1/responses", Some(KEY), RESPONSE_STREAM),
    );
    let events = named_events(&seen.body);
    assert_eq!(events[0].0, "response.created");
    let (name, done) = events.last().unwrap();
    assert_eq!(name, "response.completed");
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], "Hi");
    assert_eq!(done["response"]["usage"]["output_tokens"], 2);
    for (i, (_, e)) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64);
    }
}

#[test]
fn stored_responses_and_previous_response_id_are_clear_refusals() {
    let host = FakeHost::new(ok_json());
    let chained = run(
        &host,
        request(
            "POST",
            "/v1/responses",
            Some(KEY),
            r#"{"model":"openai/gpt-4o-mini","input":"and then?","previous_response_id":"resp_1"}"#,
        ),
    );
    assert_eq!(chained.status, 400);
    assert_eq!(chained.json()["error"]["param"], "previous_response_id");
    assert!(chained.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stores no responses"));
    let stored = run(&host, request("GET", "/v1/responses/resp_1", Some(KEY), ""));
    assert_eq!(stored.status, 404);
    assert!(stored.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stored responses are not supported"));
    let anonymous = run(&host, request("GET", "/v1/responses/resp_1", None, ""));
    assert_eq!(anonymous.status, 401, "nothing is said without a key");
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn a_policy_routes_by_endpoint_and_a_cached_answer_is_given_in_the_clients_api() {
    let host = FakeHost::new(ok_json());
    let gw = with_policy(
        &host,
        "rule agents: when endpoint in {messages, responses} -> deepseek:deepseek-flash with cache 10m\ndefault -> requested\n",
    );
    let body = r#"{"model":"claude-sonnet-4-6","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let first = run_with(&gw, anthropic(body));
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        (
            first.header("x-gateway-provider"),
            first.header("x-gateway-rule")
        ),
        (Some("deepseek"), Some("agents"))
    );
    let second = run_with(&gw, anthropic(body));
    assert_eq!(second.header("x-gateway-cache"), Some("hit"));
    assert_eq!(second.json()["content"], first.json()["content"]);
    assert_eq!(second.json()["type"], "message");
    // The same question as a stream, from the cache, as Anthropic events.
    let stream = body.replacen(
        "\"max_tokens\":100",
        "\"max_tokens\":100,\"stream\":true",
        1,
    );
    let third = run_with(&gw, anthropic(&stream));
    assert_eq!(
        third.header("x-gateway-cache"),
        Some("hit"),
        "{}",
        third.body
    );
    let events = named_events(&third.body);
    assert_eq!(events.first().unwrap().0, "message_start");
    assert_eq!(events.last().unwrap().0, "message_stop");
    assert_eq!(host.sent.borrow().len(), 1);
    // Chat is not an agent endpoint here.
    let chat = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(chat.header("x-gateway-provider"), Some("openai"));
}

fn images_json(data: Value, usage: Option<Value>) -> Script {
    let mut body = json!({"created": 1, "data": data});
    if let Some(u) = usage {
        body["usage"] = u;
    }
    Script::Reply(200, vec![], vec![serde_json::to_vec(&body).unwrap()])
}

#[test]
fn an_image_request_is_counted_and_priced_per_image_or_by_tokens() {
    let host = FakeHost::new(images_json(
        json!([{"url": "https://x/1.png"}, {"url": "https://x/2.png"}]),
        None,
    ));
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/images/generations",
            Some(KEY),
            r#"{"model":"openai/dall-e-3","prompt":"a lighthouse","n":2}"#,
        ),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.json()["data"][1]["url"], "https://x/2.png");
    assert!(host.sent.borrow()[0].url.ends_with("/images/generations"));
    assert_eq!(host.sent_body()["prompt"], "a lighthouse");
    let r = &seen.record;
    assert_eq!(
        (r.endpoint, r.usage.and_then(|u| u.images)),
        (Some("images"), Some(2))
    );
    // dall-e-3: 0.04 USD an image.
    assert_eq!(r.cost.as_ref().map(|c| c.pico), Some(80_000_000_000));

    let host = FakeHost::new(images_json(
        json!([{"b64_json": "iVBORw0K"}]),
        Some(json!({"input_tokens": 10, "output_tokens": 1000, "total_tokens": 1010})),
    ));
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/images/generations",
            Some(KEY),
            r#"{"model":"openai/gpt-image-1","prompt":"a lighthouse","response_format":"url"}"#,
        ),
    );
    assert_eq!(
        seen.json()["data"][0]["url"],
        "data:image/png;base64,iVBORw0K",
        "a URL was asked for"
    );
    let r = &seen.record;
    assert_eq!(
        r.usage
            .map(|u| (u.prompt_tokens, u.completion_tokens, u.images)),
        Some((10, 1000, Some(1)))
    );
    // gpt-image-1: 5 USD per 1M input tokens, 40 per 1M output tokens.
    assert_eq!(
        r.cost.as_ref().map(|c| c.pico),
        Some(10 * 5_000_000 + 1000 * 40_000_000)
    );
}

#[test]
fn image_requests_are_validated_and_routed_only_to_image_models() {
    let host = FakeHost::new(images_json(json!([{"b64_json": "iVBO"}]), None));
    for (body, param) in [
        (r#"{"model":"openai/gpt-image-1"}"#, "prompt"),
        (r#"{"model":"openai/gpt-image-1","prompt":"x","n":11}"#, "n"),
        (
            r#"{"model":"openai/gpt-image-1","prompt":"x","response_format":"png"}"#,
            "response_format",
        ),
        (
            r#"{"model":"openai/gpt-image-1","prompt":"x","stream":"yes"}"#,
            "stream",
        ),
        (
            r#"{"model":"openai/gpt-image-1","prompt":"x","stream":true,"response_format":"url"}"#,
            "response_format",
        ),
    ] {
        let seen = run(
            &host,
            request("POST", "/v1/images/generations", Some(KEY), body),
        );
        assert_eq!(
            (seen.status, seen.json()["error"]["param"].as_str()),
            (400, Some(param)),
            "{body}"
        );
    }
    // SiliconFlow gives URLs only: base64 is refused before the call.
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/images/generations",
            Some(KEY),
            r#"{"model":"siliconflow/Kwai-Kolors/Kolors","prompt":"x","response_format":"b64_json"}"#,
        ),
    );
    assert_eq!(seen.status, 400);
    assert!(seen.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("URLs only"));
    // DeepSeek makes no images.
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/images/generations",
            Some(KEY),
            r#"{"model":"deepseek/deepseek-flash","prompt":"x"}"#,
        ),
    );
    assert_eq!(seen.status, 400);
    assert!(host.sent.borrow().is_empty());
    // A policy's chain skips what makes no images, and says why.
    let gw = with_policy(&host, "rule pictures: when endpoint == images -> openai:gpt-4o-mini fallback openai:gpt-image-1\ndefault -> requested\n");
    let seen = run_with(
        &gw,
        request(
            "POST",
            "/v1/images/generations",
            Some(KEY),
            r#"{"model":"any","prompt":"a lighthouse"}"#,
        ),
    );
    assert_eq!(
        (seen.status, seen.header("x-gateway-model")),
        (200, Some("gpt-image-1")),
        "{}",
        seen.body
    );
    assert!(seen
        .record
        .decision_attrs
        .as_deref()
        .unwrap()
        .contains("makes no images"));
}

/// A multipart upload as the OpenAI SDK sends it.
fn upload(fields: &[(&str, &str)], file: Option<&[u8]>) -> GatewayRequest {
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--B\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some(f) = file {
        body.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n");
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--B--\r\n");
    let mut req = request("POST", "/v1/audio/transcriptions", Some(KEY), "");
    req.headers[0] = (
        "content-type".into(),
        "multipart/form-data; boundary=B".into(),
    );
    req.body = RequestBody::Bytes(body);
    req
}

#[test]
fn a_transcription_is_sent_as_a_form_rendered_as_asked_and_priced_by_the_minute() {
    let verbose = json!({"task": "transcribe", "language": "english", "duration": 3.0, "text": "Hello there.",
        "segments": [{"id": 0, "start": 0.0, "end": 3.0, "text": " Hello there."}], "usage": {"type": "duration", "seconds": 3}});
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        vec![serde_json::to_vec(&verbose).unwrap()],
    ));
    // CRLFs and dashes inside the audio are data (only the form's own boundary ends a part).
    let audio = b"RIFF\x00\x01\r\n--C\r\n\xff";
    let seen = run(
        &host,
        upload(
            &[
                ("model", "openai/whisper-1"),
                ("response_format", "srt"),
                ("language", "en"),
            ],
            Some(audio),
        ),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-subrip; charset=utf-8")
    );
    assert_eq!(
        seen.body,
        "1\n00:00:00,000 --> 00:00:03,000\nHello there.\n\n"
    );
    let sent = &host.sent.borrow()[0];
    assert!(sent.url.ends_with("/audio/transcriptions"));
    let ct = sent
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .unwrap()
        .1
        .clone();
    assert!(ct.starts_with("multipart/form-data; boundary="));
    let form = String::from_utf8_lossy(&sent.body);
    assert!(
        form.contains("name=\"response_format\"\r\n\r\nverbose_json"),
        "whisper-1 is asked for its segments"
    );
    assert!(
        form.contains("name=\"model\"\r\n\r\nwhisper-1")
            && form.contains("name=\"language\"\r\n\r\nen")
    );
    assert!(
        sent.body.windows(audio.len()).any(|w| w == audio),
        "the audio's bytes, unchanged"
    );
    let r = &seen.record;
    assert_eq!(
        (r.endpoint, r.usage.and_then(|u| u.audio_ms)),
        (Some("transcriptions"), Some(3000))
    );
    // whisper-1: 0.006 USD a minute.
    assert_eq!(r.cost.as_ref().map(|c| c.pico), Some(300_000_000));
    let file = r.decision_attrs.as_deref().unwrap_or("");
    assert!(!file.contains("RIFF"), "the audio never reaches the log");
}

#[test]
fn bad_uploads_are_400s_and_413s_before_any_call() {
    let host = FakeHost::new(ok_json());
    let no_file = run(&host, upload(&[("model", "openai/whisper-1")], None));
    assert_eq!(
        (no_file.status, no_file.json()["error"]["param"].as_str()),
        (400, Some("file"))
    );
    let mut not_a_form = request(
        "POST",
        "/v1/audio/transcriptions",
        Some(KEY),
        r#"{"model":"whisper-1"}"#,
    );
    not_a_form.headers[0].1 = "application/json".into();
    let seen = run(&host, not_a_form);
    assert!(
        seen.status == 400 && seen.body.contains("multipart/form-data"),
        "{}",
        seen.body
    );
    let mut big = upload(&[("model", "openai/whisper-1")], Some(b"x"));
    big.body = RequestBody::TooLarge;
    let seen = run(&host, big);
    assert_eq!(seen.status, 413);
    assert!(seen.body.contains("MAX_AUDIO_BYTES"));
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn speech_is_the_providers_bytes_and_is_priced_by_the_character() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![("content-type".into(), "audio/mpeg".into())],
        vec![b"ID3\x04audio".to_vec()],
    ));
    let seen = run(
        &host,
        request(
            "POST",
            "/v1/audio/speech",
            Some(KEY),
            r#"{"model":"openai/tts-1","voice":"alloy","input":"你好, world"}"#,
        ),
    );
    assert_eq!(
        (seen.status, seen.header("content-type")),
        (200, Some("audio/mpeg"))
    );
    assert_eq!(seen.body, "ID3\u{4}audio");
    let r = &seen.record;
    assert_eq!(
        (r.endpoint, r.usage.and_then(|u| u.characters)),
        (Some("speech"), Some(9))
    );
    // tts-1: 15 USD per 1M characters.
    assert_eq!(r.cost.as_ref().map(|c| c.pico), Some(9 * 15_000_000));
    let no_voice = run(
        &host,
        request(
            "POST",
            "/v1/audio/speech",
            Some(KEY),
            r#"{"model":"openai/tts-1","input":"x"}"#,
        ),
    );
    assert_eq!(
        (no_voice.status, no_voice.json()["error"]["param"].as_str()),
        (400, Some("voice"))
    );
}

fn gateway_with(host: &FakeHost, extra: &[(&str, &str)]) -> Gateway<FakeHost> {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = GatewayConfig::from_lookup(|k| {
        extra
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .or_else(|| setting(k))
    })
    .unwrap();
    Gateway::new(host.clone(), Rc::new(config))
}

fn look(url: &str) -> GatewayRequest {
    let body = json!({"model": "gemini/gemini-3.8-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}]});
    request("POST", "/v1/chat/completions", Some(KEY), &body.to_string())
}

fn gemini_answer() -> Script {
    let answer = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "A pixel."}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}});
    Script::Reply(200, vec![], vec![serde_json::to_vec(&answer).unwrap()])
}

#[test]
fn images_by_url_are_fetched_from_public_https_addresses_only_and_sent_inline() {
    let host = FakeHost::new(gemini_answer());
    host.route(
        "https://images.example.com/",
        Script::Reply(
            200,
            vec![("content-type".into(), "image/png".into())],
            vec![b"\x89PNG..".to_vec()],
        ),
    );
    let gw = gateway(&host);
    let seen = run_with(&gw, look("https://images.example.com/cat.png"));
    assert_eq!(seen.status, 200, "{}", seen.body);
    let sent = host.sent.borrow();
    assert_eq!(
        (sent[0].method, sent[0].url.as_str()),
        ("GET", "https://images.example.com/cat.png")
    );
    let to_gemini: Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(
        to_gemini["contents"][0]["parts"][1]["inlineData"],
        json!({"mimeType": "image/png", "data": "iVBORy4u"})
    );
    drop(sent);
    // By default (IMAGE_FETCH=public), nothing on this machine or its network, and nothing but https.
    for (url, why) in [
        (
            "http://images.example.com/cat.png",
            "only https URLs are fetched",
        ),
        ("https://127.0.0.1/cat.png", "not a public one"),
        (
            "https://169.254.169.254/latest/meta-data",
            "not a public one",
        ),
        ("https://localhost/cat.png", "a local name"),
    ] {
        let seen = run_with(&gw, look(url));
        assert_eq!(seen.status, 400, "{url}");
        assert!(
            seen.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{url}: {}",
            seen.body
        );
        assert_eq!(
            seen.json()["error"]["param"],
            "messages[0].content[1].image_url.url"
        );
    }
    assert_eq!(
        host.sent.borrow().len(),
        2,
        "nothing more was fetched or sent"
    );
}

#[test]
fn image_fetching_can_be_turned_off_and_is_capped() {
    let host = FakeHost::new(gemini_answer());
    host.route(
        "https://images.example.com/",
        Script::Reply(
            200,
            vec![("content-type".into(), "image/png".into())],
            vec![vec![0u8; 64]],
        ),
    );
    let off = gateway_with(&host, &[("IMAGE_FETCH", "off")]);
    let seen = run_with(&off, look("https://images.example.com/cat.png"));
    assert!(
        seen.status == 400 && seen.body.contains("IMAGE_FETCH=off"),
        "{}",
        seen.body
    );
    let capped = gateway_with(&host, &[("IMAGE_FETCH_MAX_BYTES", "10")]);
    let seen = run_with(&capped, look("https://images.example.com/cat.png"));
    assert!(
        seen.status == 400 && seen.body.contains("larger than 10 bytes"),
        "{}",
        seen.body
    );
    assert!(
        GatewayConfig::from_lookup(|k| (k == "IMAGE_FETCH").then(|| "sometimes".into())).is_err()
    );
}

#[test]
fn count_tokens_is_the_gateways_estimate_and_asks_no_provider() {
    let host = FakeHost::new(ok_json());
    let count = |body: &str| {
        let mut req = anthropic(body);
        req.path = "/v1/messages/count_tokens".into();
        run(&host, req)
    };
    let short =
        count(r#"{"model":"deepseek/deepseek-flash","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(short.status, 200, "{}", short.body);
    let n = short.json()["input_tokens"].as_u64().unwrap();
    assert!(n > 0);
    let tools = count(
        r#"{"model":"deepseek/deepseek-flash","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"get_weather","description":"Current weather in a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}"#,
    );
    assert!(
        tools.json()["input_tokens"].as_u64().unwrap() > n,
        "tools count too"
    );
    assert!(host.sent.borrow().is_empty());
    assert_eq!(short.record.endpoint, None, "not usage");
    let bad = count(r#"{"model":"m","messages":"hi"}"#);
    assert_eq!(
        (bad.status, bad.json()["type"].as_str()),
        (400, Some("error"))
    );
}
