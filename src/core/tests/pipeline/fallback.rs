//! Fallback: retryable failures move on to the next target (before the first byte of a stream too), retries
//! with backoff, `retry_on`, cooldowns.

use super::*;

#[test]
fn the_policy_routes_and_a_rate_limited_provider_falls_back_to_the_next() {
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]),
    ));
    let gw = with_policy(&host, ZH_POLICY);
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    let urls: Vec<String> = host.sent.borrow().iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "http://ds/chat/completions",
            "http://mock/v1/chat/completions"
        ]
    );
    assert_eq!(host.sent_body()["model"], "deepseek-flash");
    assert_eq!(
        (
            seen.header("x-gateway-provider"),
            seen.header("x-gateway-attempts")
        ),
        (Some("openai"), Some("2"))
    );
    assert_eq!(seen.header("x-gateway-rule"), Some("zh"));
    assert_eq!(seen.header("x-gateway-policy").map(str::len), Some(64));
    let r = &seen.record;
    assert_eq!(
        (r.attempts, r.provider.as_deref(), r.rule_id.as_deref()),
        (2, Some("openai"), Some("zh"))
    );
}

#[test]
fn client_errors_do_not_fall_back_and_exhausted_attempts_say_what_was_tried() {
    let bad = br#"{"error":{"message":"bad parameter","type":"invalid_request_error","param":null,"code":null}}"#.to_vec();
    let host = FakeHost::new(ok_json());
    host.routes
        .borrow_mut()
        .push(("http://ds".into(), Script::Reply(400, vec![], vec![bad])));
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!((seen.status, seen.record.attempts), (400, 1));
    assert_eq!(host.sent.borrow().len(), 1);

    let host = FakeHost::new(Script::Reply(503, vec![], vec![b"overloaded".to_vec()]));
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]),
    ));
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 503);
    let message = seen.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("also tried: deepseek:deepseek-flash (429 rate_limit_exceeded)"),
        "{message}"
    );
    assert_eq!(seen.record.attempts, 2);
    assert_eq!(
        (
            seen.header("x-gateway-attempts"),
            seen.header("x-gateway-rule")
        ),
        (Some("2"), Some("zh"))
    );
}

#[test]
fn streams_fall_back_before_their_first_byte() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]),
    ));
    let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"你好，请介绍一下你自己"}]}"#;
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(seen.status, 200);
    assert!(seen.body.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        (seen.header("x-gateway-attempts"), seen.record.attempts),
        (Some("2"), 2)
    );
}

#[test]
fn a_stream_that_fails_before_its_first_token_falls_back_and_the_client_sees_one_clean_stream() {
    for failing in [
        // DeepSeek's mid-stream error event right after its role chunk.
        Script::Reply(200, vec![], sse(&[ROLE, ERROR_EVENT])),
        // Cut after the role chunk.
        Script::Reply(200, vec![], sse(&[ROLE])),
        // Stalled after the role chunk.
        Script::Stall(sse(&[ROLE])),
        // An HTML error page where the first event should be.
        Script::Reply(
            200,
            vec![],
            sse(&["<html><body>502 Bad Gateway</body></html>"]),
        ),
        // A redirect: never followed, it is the attempt's failure.
        Script::Reply(
            307,
            vec![("location".into(), "http://elsewhere/steal".into())],
            vec![],
        ),
    ] {
        let host = FakeHost::new(Script::Reply(
            200,
            vec![],
            sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
        ));
        host.routes.borrow_mut().push(("http://ds".into(), failing));
        let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"你好，请介绍一下你自己"}]}"#;
        let seen = run_with(
            &with_policy(&host, ZH_POLICY),
            request("POST", "/v1/chat/completions", Some(KEY), body),
        );
        assert_eq!(seen.status, 200);
        // Exactly one role chunk: the failed attempt's was held back, never sent.
        assert_eq!(
            seen.body,
            format!("data: {ROLE}\n\ndata: {TEXT}\n\ndata: {FINISH}\n\ndata: [DONE]\n\n")
        );
        let log: Vec<(&str, Option<&str>)> = seen
            .record
            .attempt_log
            .iter()
            .map(|a| (a.provider.as_str(), a.error.map(FailureClass::as_str)))
            .collect();
        let first_error = log[0].1;
        assert!(
            matches!(first_error, Some("stream" | "timeout" | "invalid")),
            "{first_error:?}"
        );
        assert_eq!(log[1], ("openai", None));
        assert!(!seen.record.truncated);
        // Nothing was sent where a redirect pointed.
        assert!(host
            .sent
            .borrow()
            .iter()
            .all(|r| !r.url.contains("elsewhere")));
    }
}

#[test]
fn a_provider_error_that_echoes_the_key_or_the_address_is_masked_for_the_client_and_the_log() {
    let config = config();
    let key = config
        .providers
        .get("openai")
        .unwrap()
        .api_key
        .as_deref()
        .unwrap();
    let echoed = format!(
        r#"{{"error":{{"message":"bad key Bearer {key} at http://mock/v1/chat/completions","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    let host = FakeHost::new(Script::Reply(401, vec![], vec![echoed.into_bytes()]));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 502, "{}", seen.body);
    assert!(!seen.body.contains(key), "{}", seen.body);
    assert!(!seen.body.contains("http://mock"), "{}", seen.body);
    assert!(seen.body.contains("[redacted]"), "{}", seen.body);
    let row = format!("{:?}", seen.record);
    assert!(!row.contains(key), "{row}");
}

#[test]
fn retries_repeat_the_same_target_then_fall_back_and_retry_on_limits_what_falls_back() {
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(503, vec![], vec![b"busy".to_vec()]),
    ));
    let seen = run_with(
        &with_policy(&host, RETRY_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 200);
    let log: Vec<(&str, u16)> = seen
        .record
        .attempt_log
        .iter()
        .map(|a| (a.provider.as_str(), a.status))
        .collect();
    assert_eq!(log, [("deepseek", 503), ("deepseek", 503), ("openai", 200)]);
    assert_eq!(seen.header("x-gateway-attempts"), Some("3"));

    // A 429 is not in `retry_on {5xx}`: no retry, no fallback.
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(
            429,
            vec![("retry-after".into(), "1".into())],
            vec![RATE_LIMITED.to_vec()],
        ),
    ));
    let seen = run_with(
        &with_policy(&host, RETRY_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!((seen.status, seen.record.attempts), (429, 1));
}

#[test]
fn a_model_that_keeps_failing_cools_down_and_is_tried_last() {
    let host = FakeHost::new(ok_json());
    host.routes.borrow_mut().push((
        "http://ds".into(),
        Script::Reply(500, vec![], vec![b"boom".to_vec()]),
    ));
    let gw = with_policy(&host, ZH_POLICY);
    for _ in 0..3 {
        let seen = run_with(
            &gw,
            request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
        );
        assert_eq!(seen.record.attempt_log[0].provider, "deepseek");
    }
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.record.attempts, 1);
    assert_eq!(seen.record.provider.as_deref(), Some("openai"));
    let decision: Value =
        serde_json::from_str(seen.record.decision_attrs.as_deref().unwrap()).unwrap();
    assert_eq!(
        decision["plan"],
        json!(["openai:gpt-4o-mini", "deepseek:deepseek-flash"])
    );
    // After the cooldown, it is first again.
    host.now.set(host.now.get() + 31_000.0);
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.record.attempt_log[0].provider, "deepseek");
}
