//! The response cache: a cacheable rule's answer is stored and given again (JSON, or as a stream) without an
//! upstream call, limits or cost; clients opt out or refresh; scopes never share.

use super::*;

const CACHED: &str = "rule cached: when temperature == 0 and not has_tools -> openai:gpt-4o-mini with cache 10m\nrule team: when temperature == 0 and not has_tools and tokens > 100 -> openai:gpt-4o-mini with team_cache 10m\ndefault -> requested\n";
const ASK: &str = r#"{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"What is 2+2?"}]}"#;
const ASK_STREAM: &str = r#"{"model":"gpt-4o-mini","temperature":0,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"What is 2+2?"}]}"#;

fn with_header(mut req: GatewayRequest, name: &str, value: &str) -> GatewayRequest {
    req.headers.push((name.into(), value.into()));
    req
}

#[test]
fn the_same_request_twice_reaches_the_provider_once_and_the_hit_costs_nothing() {
    let host = FakeHost::new(ok_json());
    let gw = with_policy(&host, CACHED);
    let first = run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK));
    assert_eq!(
        (first.status, first.header("x-gateway-cache")),
        (200, Some("miss"))
    );
    assert!(first.record.cost.as_ref().unwrap().pico > 0);
    let second = run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK));
    assert_eq!(
        (second.status, second.header("x-gateway-cache")),
        (200, Some("hit")),
        "{}",
        second.body
    );
    assert_eq!(host.sent.borrow().len(), 1, "one upstream call");
    assert_eq!(second.json()["choices"], first.json()["choices"]);
    let r = &second.record;
    assert_eq!(
        (r.cache, r.attempts, r.provider.as_deref()),
        (Some("hit"), 0, Some("openai"))
    );
    assert_eq!(
        r.cost.as_ref().map(|c| (c.pico, c.reporting_pico)),
        Some((0, Some(0)))
    );
    assert_eq!(
        r.cache_saved_pico,
        first.record.cost.as_ref().unwrap().reporting_pico
    );
    assert!(r.usage.is_none(), "a hit consumed no tokens");
    assert_eq!(second.header("x-gateway-cost"), Some("0 USD; cached"));

    // The same question as a stream: replayed from the entry as OpenAI chunks, with its usage.
    let stream = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ASK_STREAM),
    );
    assert_eq!(stream.header("x-gateway-cache"), Some("hit"));
    assert_eq!(
        stream.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(
        stream
            .body
            .contains(r#""delta":{"content":"hello","role":"assistant"}"#)
            || stream.body.contains(r#""content":"hello""#),
        "{}",
        stream.body
    );
    assert!(
        stream.body.contains(r#""usage":{"completion_tokens":1"#)
            && stream.body.trim_end().ends_with("data: [DONE]")
    );
    assert_eq!(host.sent.borrow().len(), 1);
}

#[test]
fn clients_opt_out_or_refresh_and_other_rules_do_not_cache() {
    let host = FakeHost::new(ok_json());
    let gw = with_policy(&host, CACHED);
    run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK));
    // Each header sends the request upstream and says what the cache did.
    for (n, (name, value, said)) in [
        ("cache-control", "no-cache", "bypass"),
        ("x-gateway-cache", "refresh", "refresh"),
    ]
    .into_iter()
    .enumerate()
    {
        let ask = with_header(
            request("POST", "/v1/chat/completions", Some(KEY), ASK),
            name,
            value,
        );
        assert_eq!(run_with(&gw, ask).header("x-gateway-cache"), Some(said));
        assert_eq!(host.sent.borrow().len(), n + 2);
    }
    assert_eq!(
        run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK))
            .header("x-gateway-cache"),
        Some("hit")
    );
    // Sampled requests are decided by a rule without a cache: no header, every one goes upstream.
    let sampled = ASK.replace("\"temperature\":0", "\"temperature\":0.7");
    for _ in 0..2 {
        assert_eq!(
            run_with(
                &gw,
                request("POST", "/v1/chat/completions", Some(KEY), &sampled)
            )
            .header("x-gateway-cache"),
            None
        );
    }
    assert_eq!(host.sent.borrow().len(), 5);
}

#[test]
fn scopes_never_share_entries_and_entries_expire() {
    let host = FakeHost::new(ok_json());
    host.keys.borrow_mut().insert(
        gateway_core::auth::hash_key("sk-other"),
        key_record("key_other"),
    );
    let gw = with_policy(&host, CACHED);
    run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK));
    // Another key: its own entry (per-key scope).
    let theirs = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some("sk-other"), ASK),
    );
    assert_eq!(theirs.header("x-gateway-cache"), Some("miss"));
    assert_eq!(host.sent.borrow().len(), 2);
    // After the rule's ten minutes the entry is gone.
    host.advance(600_001.0);
    assert_eq!(
        run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK))
            .header("x-gateway-cache"),
        Some("miss")
    );
    assert_eq!(host.sent.borrow().len(), 3);
}

#[test]
fn a_streamed_answer_is_stored_and_given_again_as_json_and_as_a_stream() {
    let chunks = sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]);
    let host = FakeHost::new(Script::Reply(
        200,
        vec![("content-type".into(), "text/event-stream".into())],
        chunks,
    ));
    let gw = with_policy(&host, CACHED);
    let first = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ASK_STREAM),
    );
    assert_eq!(first.header("x-gateway-cache"), Some("miss"));
    assert!(first.body.contains("data: [DONE]"), "{}", first.body);
    let json = run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), ASK));
    assert_eq!(json.header("x-gateway-cache"), Some("hit"), "{}", json.body);
    assert_eq!(json.json()["choices"][0]["message"]["content"], "Hi");
    assert_eq!(json.json()["usage"]["prompt_tokens"], 5);
    let again = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ASK_STREAM),
    );
    assert_eq!(again.header("x-gateway-cache"), Some("hit"));
    assert!(
        again.body.contains(r#""content":"Hi""#) && again.body.trim_end().ends_with("data: [DONE]")
    );
    assert_eq!(host.sent.borrow().len(), 1);
}
