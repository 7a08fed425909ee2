//! The payload archive: a rule's `archive` (or the deployment's `ARCHIVE`) writes the request and its answer (a
//! stream as its assembled answer, an error as its body), redacted, under the day its retention ends; the row
//! names the key. Other requests leave nothing behind.

use super::*;

const ARCHIVED: &str = "rule kept: when tokens > 0 and meta[\"x-app\"] == \"support\" -> openai:gpt-4o-mini with archive 7d\ndefault -> requested\n";
const PRIVATE: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"I am li.lei@example.com, call me on 13800138000. My key is gw-0123456789abcdef0123 and the upstream's sk-upstream."}]}"#;

fn support(req: GatewayRequest) -> GatewayRequest {
    let mut req = req;
    req.headers
        .push(("x-gateway-meta-x-app".into(), "support".into()));
    req
}

fn document(host: &FakeHost, key: &str) -> Value {
    let docs = host.archive.borrow();
    serde_json::from_slice(docs.get(key).expect("archived")).unwrap()
}

fn answering(text: &str) -> Script {
    let body = json!({"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38}});
    Script::Reply(200, vec![], vec![serde_json::to_vec(&body).unwrap()])
}

#[test]
fn an_archived_request_keeps_both_bodies_redacted_under_its_expiry_day() {
    let host = FakeHost::new(answering(
        "Noted. We will write to li.lei@example.com or call +86 138 0013 8000.",
    ));
    let gw = with_policy(&host, ARCHIVED);
    let seen = run_with(
        &gw,
        support(request("POST", "/v1/chat/completions", Some(KEY), PRIVATE)),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    // The client's answer is untouched: redaction is for what is kept.
    assert!(seen.body.contains("li.lei@example.com"));
    let r = &seen.record;
    let key = r.archive.clone().expect("the row names the archive key");
    let day = gateway_core::archive::day(r.ts_ms + 7 * 86_400_000);
    assert_eq!(key, format!("{day}/{}.json", r.id));
    let doc = document(&host, &key);
    let asked = doc["request"]["messages"][0]["content"].as_str().unwrap();
    assert_eq!(
        asked,
        "I am [redacted:email], call me on [redacted:phone]. My key is [redacted:gateway_key] and the \
         upstream's [redacted:provider_key]."
    );
    assert_eq!(
        doc["response"]["choices"][0]["message"]["content"],
        "Noted. We will write to [redacted:email] or call [redacted:phone]."
    );
    assert_eq!(
        doc["redacted"],
        json!({"email": 2, "phone": 2, "gateway_key": 1, "provider_key": 1})
    );
    assert_eq!(
        (&doc["id"], &doc["rule_id"], &doc["status"], &doc["expires"]),
        (&json!(r.id), &json!("kept"), &json!(200), &json!(day))
    );
    let text = serde_json::to_string(&doc).unwrap();
    for secret in [
        "li.lei@example.com",
        "13800138000",
        "gw-0123456789abcdef0123",
        "sk-upstream",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // A request another rule decides is not archived.
    let other = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), PRIVATE),
    );
    assert_eq!(other.status, 200);
    assert_eq!(other.record.archive, None);
    assert_eq!(host.archive.borrow().len(), 1);
}

#[test]
fn a_stream_is_archived_as_its_assembled_answer() {
    let host = FakeHost::new(Script::Reply(
        200,
        vec![],
        sse(&[ROLE, TEXT, FINISH, USAGE, "[DONE]"]),
    ));
    let gw = with_policy(&host, ARCHIVED);
    let body =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let seen = run_with(
        &gw,
        support(request("POST", "/v1/chat/completions", Some(KEY), body)),
    );
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains("data: [DONE]"));
    let doc = document(&host, seen.record.archive.as_deref().unwrap());
    assert_eq!(doc["stream"], true);
    assert_eq!(doc["response"]["object"], "chat.completion");
    assert_eq!(doc["response"]["choices"][0]["message"]["content"], "Hi");
    assert_eq!(doc["response"]["choices"][0]["finish_reason"], "stop");
    assert_eq!(doc["response"]["usage"]["total_tokens"], 7);
    assert_eq!(doc["request"]["stream"], true);
}

#[test]
fn archive_everything_keeps_failures_too_and_a_bad_setting_is_refused() {
    let host = FakeHost::new(Script::Reply(429, vec![], vec![RATE_LIMITED.to_vec()]));
    let config = GatewayConfig::from_lookup(|n| match n {
        "ARCHIVE" => Some("1d".into()),
        "ARCHIVE_REDACT" => Some(r#"{"order": "ORD-[0-9]{6}"}"#.into()),
        _ => setting(n),
    })
    .unwrap();
    let gw = Gateway::new(host.clone(), Rc::new(config));
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"where is ORD-123456? I am a@b.io"}]}"#;
    let seen = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(seen.status, 429);
    let key = seen.record.archive.clone().expect("archived");
    assert!(key.starts_with(&gateway_core::archive::day(seen.record.ts_ms + 86_400_000)));
    let doc = document(&host, &key);
    // The configured patterns replace the defaults: the order number goes, the address stays.
    assert_eq!(
        doc["request"]["messages"][0]["content"],
        "where is [redacted:order]? I am a@b.io"
    );
    assert_eq!(doc["response"]["error"]["code"], "rate_limit_exceeded");
    assert_eq!(doc["status"], 429);

    for (name, value) in [("ARCHIVE", "forever"), ("ARCHIVE_REDACT", r#"{"x": "("}"#)] {
        let e = GatewayConfig::from_lookup(|n| {
            if n == name {
                Some(value.into())
            } else {
                setting(n)
            }
        })
        .unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn a_payload_that_was_not_archived_is_not_found() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    let mut req = request("GET", "/admin/logs/req_0123/payload", None, "");
    req.headers
        .push(("authorization".into(), "Bearer admin-secret".into()));
    let seen = run_with(&gw, req);
    assert_eq!(seen.status, 404, "{}", seen.body);
    assert!(seen.body.contains("no request `req_0123`"), "{}", seen.body);
}
