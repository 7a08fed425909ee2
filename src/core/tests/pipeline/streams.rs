//! Streams: relayed event by event, usage chunks, cuts, stalls, a client that leaves.

use super::*;

#[test]
fn stream_is_relayed_event_by_event_and_the_unrequested_usage_chunk_is_dropped() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(
        seen.body,
        format!("data: {ROLE}\n\ndata: {TEXT}\n\ndata: {FINISH}\n\ndata: [DONE]\n\n")
    );
    assert_eq!(
        host.sent_body()["stream_options"]["include_usage"],
        true,
        "usage is always requested upstream"
    );
    assert_eq!(
        host.sent_body()["model"],
        "gpt-4o-mini",
        "the provider prefix is stripped"
    );
    let r = &seen.record;
    assert_eq!(r.usage.map(|u| u.total_tokens), Some(7));
    assert!(r.stream && !r.truncated && r.ttft_ms.is_some());
}

#[test]
fn usage_chunk_is_kept_when_the_client_asked_for_it() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, FINISH, USAGE, "[DONE]"]),
    ));
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert!(seen.body.contains(r#""choices":[],"usage""#));
}

#[test]
fn a_stream_cut_before_done_ends_with_an_error_event_and_no_done() {
    let host = FakeHost::new(Script::Reply(200, vec![], sse(&[ROLE, TEXT])));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert!(seen
        .body
        .starts_with(&format!("data: {ROLE}\n\ndata: {TEXT}\n\n")));
    assert!(!seen.body.contains("[DONE]"));
    let last = seen.body.trim_end().rsplit("\n\n").next().unwrap();
    let err: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(err["error"]["code"], "upstream_truncated");
    assert!(seen.record.truncated);
    assert_eq!(seen.record.status, 502);
}

#[test]
fn a_stream_that_stalls_after_its_first_token_ends_with_a_timeout_error_event() {
    let host = FakeHost::new(Script::Stall(sse(&[ROLE, TEXT])));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 200);
    assert!(seen
        .body
        .starts_with(&format!("data: {ROLE}\n\ndata: {TEXT}\n\n")));
    assert!(seen.body.contains(r#""code":"upstream_timeout""#));
    assert!(!seen.body.contains("[DONE]"));
    assert_eq!((seen.record.status, seen.record.truncated), (504, true));
    let attempt = &seen.record.attempt_log[0];
    assert_eq!(
        (attempt.status, attempt.error.map(FailureClass::as_str)),
        (504, Some("stream"))
    );
}

#[test]
fn a_stream_that_stalls_before_its_first_token_is_a_timeout_error_not_a_stream() {
    // Only the content-free role chunk arrived: it is held back, so the client gets a plain HTTP error.
    let host = FakeHost::new(Script::Stall(sse(&[ROLE])));
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), STREAM),
    );
    assert_eq!(seen.status, 504);
    assert_eq!(seen.json()["error"]["code"], "upstream_timeout");
    assert!(!seen.record.truncated);
    assert_eq!(
        seen.record.attempt_log[0].error.map(FailureClass::as_str),
        Some("timeout")
    );
}

#[test]
fn a_client_that_leaves_mid_stream_is_logged_as_499() {
    let host = FakeHost::new(Script::Stall(sse(&[ROLE, TEXT])));
    let record = block_on(async {
        let Handled {
            response, record, ..
        } = gateway(&host)
            .handle(request("POST", "/v1/chat/completions", Some(KEY), STREAM))
            .await;
        let Body::Stream(mut body) = response.body else {
            panic!("expected a stream")
        };
        assert!(body.next().await.is_some());
        drop(body);
        record.await
    });
    assert_eq!((record.status, record.truncated), (499, true));
    assert_eq!(record.error_code.as_deref(), Some("client_closed"));
}
