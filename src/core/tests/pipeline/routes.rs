//! Routes and the gateway's own endpoints: health, models, admin status, 404 / 405, bad and oversized bodies.

use super::*;

#[test]
fn healthz_needs_no_key() {
    let seen = run(
        &FakeHost::new(ok_json()),
        request("GET", "/healthz", None, ""),
    );
    assert_eq!(seen.status, 200);
    assert_eq!(seen.json(), json!({"status": "ok"}));
}

#[test]
fn unknown_route_is_404_and_wrong_method_is_405_with_allow() {
    let host = FakeHost::new(ok_json());
    let seen = run(&host, request("GET", "/v1/nothing", Some(KEY), ""));
    assert_eq!(seen.status, 404);
    assert_eq!(seen.json()["error"]["type"], "invalid_request_error");
    let seen = run(&host, request("GET", "/v1/chat/completions", Some(KEY), ""));
    assert_eq!(seen.status, 405);
    assert_eq!(seen.header("allow"), Some("POST"));
    assert_eq!(seen.record.status, 405);
}

#[test]
fn bad_bodies_are_400_naming_the_field() {
    let host = FakeHost::new(ok_json());
    for (body, param) in [
        ("{not json", Value::Null),
        ("[1,2]", Value::Null),
        (
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            json!("model"),
        ),
        (r#"{"model":"m"}"#, json!("messages")),
        (r#"{"model":"m","messages":[]}"#, json!("messages")),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
            json!("stream"),
        ),
    ] {
        let seen = run(
            &host,
            request("POST", "/v1/chat/completions", Some(KEY), body),
        );
        assert_eq!(seen.status, 400, "{body}");
        assert_eq!(seen.json()["error"]["param"], param, "{body}");
    }
    assert!(host.sent.borrow().is_empty());
}

#[test]
fn oversized_bodies_are_413() {
    let host = FakeHost::new(ok_json());
    let mut req = request("POST", "/v1/chat/completions", Some(KEY), "");
    req.body = RequestBody::TooLarge;
    let seen = run(&host, req);
    assert_eq!(seen.status, 413);
    assert!(seen.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1000 bytes"));
    let big = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2000)
    );
    assert_eq!(
        run(
            &host,
            request("POST", "/v1/chat/completions", Some(KEY), &big)
        )
        .status,
        413
    );
}

#[test]
fn models_are_provider_qualified_and_unconfigured_providers_are_404() {
    let host = FakeHost::new(ok_json());
    let seen = run(&host, request("GET", "/v1/models", Some(KEY), ""));
    let ids: Vec<String> = seen.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"openai/gpt-4o-mini".to_owned()), "{ids:?}");
    // A bare model id with a slash that is not a provider name goes to the default provider verbatim.
    let body = r#"{"model":"meta-llama/llama-4","messages":[{"role":"user","content":"x"}]}"#;
    run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(host.sent_body()["model"], "meta-llama/llama-4");
}

#[test]
fn the_admin_endpoint_needs_its_own_token() {
    let host = FakeHost::new(ok_json());
    let admin = |auth: Option<&str>| {
        let mut req = request("GET", "/admin/status", None, "");
        if let Some(a) = auth {
            req.headers
                .push(("authorization".into(), format!("Bearer {a}")));
        }
        run(&host, req).status
    };
    assert_eq!(admin(None), 401);
    assert_eq!(admin(Some(KEY)), 401);
    assert_eq!(admin(Some("admin-secret")), 200);
}

#[test]
fn a_request_begun_yields_its_row_answered_or_dropped_before_its_answer() {
    use futures::FutureExt;
    // The provider sends headers, then nothing: the JSON answer never completes.
    let mut host = FakeHost::new(Script::Stall(vec![]));
    host.timers = Timers::Never;
    let gw = gateway(&host);
    let (work, abandoned) = gw.begin(request("POST", "/v1/chat/completions", Some(KEY), CHAT));
    let mut work = work;
    assert!(
        (&mut work).now_or_never().is_none(),
        "the answer cannot be ready"
    );
    drop(work); // the client left
    let row = abandoned
        .now_or_never()
        .flatten()
        .expect("a row for the dropped request");
    assert_eq!(
        (row.status, row.error_code.as_deref()),
        (499, Some("client_closed"))
    );
    assert_eq!(row.provider.as_deref(), Some("openai"));
    assert_eq!(host.sent.borrow().len(), 1, "the provider was called");

    // A request that is answered yields the row of its answer there, once.
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    let (work, row) = gw.begin(request("POST", "/v1/chat/completions", Some(KEY), CHAT));
    let handled = block_on(work);
    assert_eq!(handled.response.status, 200);
    let row = block_on(row).expect("the answer's row");
    assert_eq!((row.status, row.error_code), (200, None));
    assert_eq!(row.usage.map(|u| u.total_tokens), Some(10));
}
