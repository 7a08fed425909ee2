//! The policy: deny rules, the default, capability skips, loading and refreshing the published policy, health.

use super::*;

#[test]
fn a_deny_rule_answers_with_its_status_and_message_and_sends_nothing() {
    let mut free = key_record("key_test");
    free.tier = Some("free".into());
    let host = FakeHost::new(ok_json()).with_key("gw-free", free);
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some("gw-free"), CHAT),
    );
    assert_eq!(seen.status, 403);
    let err = &seen.json()["error"];
    assert_eq!(
        (
            err["message"].as_str(),
            err["code"].as_str(),
            err["type"].as_str()
        ),
        (
            Some("upgrade to use this gateway"),
            Some("policy_denied"),
            Some("permission_error")
        )
    );
    assert_eq!(seen.record.rule_id.as_deref(), Some("no_free"));
    assert_eq!(seen.header("x-gateway-rule"), Some("no_free"));
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn without_a_matching_rule_the_default_sends_what_was_requested() {
    let host = FakeHost::new(ok_json());
    let seen = run_with(
        &with_policy(&host, ZH_POLICY),
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(
        (seen.status, seen.header("x-gateway-rule")),
        (200, Some("default"))
    );
    assert_eq!(host.sent.borrow()[0].url, "http://mock/v1/chat/completions");
}

#[test]
fn targets_that_cannot_take_images_are_skipped_and_the_log_says_why() {
    let host = FakeHost::new(ok_json());
    let policy = "rule pics: when has_images -> deepseek:deepseek-v4-pro fallback openai:gpt-5.5\ndefault -> requested\n";
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#;
    let seen = run_with(
        &with_policy(&host, policy),
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(host.sent.borrow().len(), 1);
    assert_eq!(host.sent_body()["model"], "gpt-5.5");
    let decision: Value =
        serde_json::from_str(seen.record.decision_attrs.as_deref().unwrap()).unwrap();
    assert_eq!(decision["attrs"]["has_images"], true);
    assert_eq!(
        decision["skipped"],
        json!(["deepseek:deepseek-v4-pro (no image input)"])
    );
    assert!(!seen
        .record
        .decision_attrs
        .as_deref()
        .unwrap()
        .contains("what is this"));
}

#[test]
fn the_published_policy_is_loaded_refreshed_in_the_background_and_a_broken_one_never_replaces_it() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    // Nothing published: the built-in default sends what was requested.
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(
        (
            seen.header("x-gateway-policy"),
            seen.header("x-gateway-provider")
        ),
        (Some("builtin"), Some("openai"))
    );
    let first = publish(&host, ZH_POLICY);
    // Still within the refresh interval: the old decision stands, and no refresh is due.
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some("builtin"));
    host.now.set(host.now.get() + 1_000.0);
    // Due: this request still uses what it has and refreshes after its response.
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some("builtin"));
    let seen = run_then_background(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some(first.as_str()));
    assert_eq!(seen.header("x-gateway-provider"), Some("deepseek"));

    // A pointer to a corrupted artifact, then to a missing one: the good policy stays.
    for broken in [
        Some(("0".repeat(64), r#"{"format":1,"hash":"nope"}"#.to_string())),
        Some(("f".repeat(64), String::new())),
    ] {
        let (hash, json) = broken.unwrap();
        *host.published.borrow_mut() = Some((hash, json));
        host.now.set(host.now.get() + 1_000.0);
        run_then_background(&gw, request("GET", "/v1/models", Some(KEY), ""));
        let seen = run_then_background(
            &gw,
            request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
        );
        assert_eq!(seen.header("x-gateway-policy"), Some(first.as_str()));
    }
    let status = run_with(
        &gw,
        GatewayRequest {
            headers: vec![("authorization".into(), "Bearer admin-secret".into())],
            ..request("GET", "/admin/status", None, "")
        },
    );
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["policy"]["hash"], first.as_str());
    assert!(status["policy"]["last_error"]
        .as_str()
        .unwrap()
        .contains("policy/"));
}

#[test]
fn a_fresh_isolate_waits_for_the_published_policy_before_its_first_decision() {
    let host = FakeHost::new(ok_json());
    let hash = publish(&host, ZH_POLICY);
    let seen = run_with(
        &gateway(&host),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-policy"), Some(hash.as_str()));
    assert_eq!(seen.record.policy_hash.as_deref(), Some(hash.as_str()));
}

#[test]
fn health_from_the_snapshot_steers_the_policy() {
    let host = FakeHost::new(ok_json());
    publish(
        &host,
        "rule degraded: when lang == zh and not health.deepseek.up -> openai:gpt-4o-mini\nrule zh: when lang == zh -> deepseek\ndefault -> requested\n",
    );
    let down = r#"{"at_ms":1,"window_ms":300000,"providers":{"deepseek":{"attempts":10,"errors":9,"error_rate":0.9,"p50_ms":0,"up":false}}}"#;
    *host.health.borrow_mut() = Some(down.into());
    let seen = run_with(
        &gateway(&host),
        request("POST", "/v1/chat/completions", Some(KEY), ZH_CHAT),
    );
    assert_eq!(seen.header("x-gateway-rule"), Some("degraded"));
    let decision: Value =
        serde_json::from_str(seen.record.decision_attrs.as_deref().unwrap()).unwrap();
    assert_eq!(decision["attrs"]["health"]["deepseek"]["up"], false);
}
