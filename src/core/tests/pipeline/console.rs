//! What the console relies on: signing in with the admin token for a session cookie (writes need its CSRF
//! token), the policy view with its history and rollback, and explain.

use super::*;

fn with_cookie(mut req: GatewayRequest, cookie: &str, csrf: Option<&str>) -> GatewayRequest {
    req.headers
        .push(("cookie".into(), format!("theme=dark; {cookie}")));
    if let Some(c) = csrf {
        req.headers.push(("x-csrf-token".into(), c.into()));
    }
    req
}

/// The `name=value` of a `set-cookie` header.
fn cookie_of(seen: &Seen) -> String {
    seen.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_admin_token_signs_in_a_session_whose_writes_need_its_csrf_token() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    let wrong = run_with(
        &gw,
        request("POST", "/admin/session", None, r#"{"token": "guess"}"#),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());

    let signed = run_with(
        &gw,
        request(
            "POST",
            "/admin/session",
            None,
            r#"{"token": "admin-secret"}"#,
        ),
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    let set = signed.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/admin")
    );
    assert!(!set.contains("Secure"), "not over TLS");
    assert!(!signed.body.contains("admin-secret"));
    let cookie = cookie_of(&signed);
    let csrf = signed.json()["csrf"].as_str().unwrap().to_owned();

    // Reads with the cookie alone; the page, loaded again, gets its CSRF token back.
    let keys = run_with(
        &gw,
        with_cookie(request("GET", "/admin/keys", None, ""), &cookie, None),
    );
    assert_eq!(keys.status, 200, "{}", keys.body);
    let again = run_with(
        &gw,
        with_cookie(request("GET", "/admin/session", None, ""), &cookie, None),
    );
    assert_eq!(again.json()["csrf"], csrf.as_str());
    assert_eq!(
        run_with(&gw, request("GET", "/admin/session", None, "")).status,
        401
    );

    // A write without the CSRF token (what another site could make the browser send) is refused.
    let body = r#"{"name": "from-console"}"#;
    let forged = run_with(
        &gw,
        with_cookie(request("POST", "/admin/keys", None, body), &cookie, None),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains("x-csrf-token"));
    let wrong_csrf = run_with(
        &gw,
        with_cookie(
            request("POST", "/admin/keys", None, body),
            &cookie,
            Some("00ff"),
        ),
    );
    assert_eq!(wrong_csrf.status, 403);
    assert!(host
        .keys
        .borrow()
        .values()
        .all(|k| k.name != "from-console"));
    let made = run_with(
        &gw,
        with_cookie(
            request("POST", "/admin/keys", None, body),
            &cookie,
            Some(&csrf),
        ),
    );
    assert_eq!(made.status, 201, "{}", made.body);

    // A forged cookie, and the session after the admin token changed, are no session at all.
    let forged_cookie = format!("gw_session={}.{}", i64::MAX, "0".repeat(64));
    assert_eq!(
        run_with(
            &gw,
            with_cookie(
                request("GET", "/admin/keys", None, ""),
                &forged_cookie,
                None
            )
        )
        .status,
        401
    );
    let mut config = config();
    config.admin_token = Some("rotated".into());
    let rotated = Gateway::new(host.clone(), Rc::new(config));
    assert_eq!(
        run_with(
            &rotated,
            with_cookie(request("GET", "/admin/keys", None, ""), &cookie, None)
        )
        .status,
        401
    );

    // Signing out clears the cookie.
    let out = run_with(
        &gw,
        with_cookie(
            request("DELETE", "/admin/session", None, ""),
            &cookie,
            Some(&csrf),
        ),
    );
    assert_eq!(out.status, 200);
    assert!(out
        .header("set-cookie")
        .unwrap()
        .starts_with("gw_session=; Max-Age=0"));
    // The session cookie is never accepted where keys are: the API routes want a gateway key.
    let chat = run_with(
        &gw,
        with_cookie(
            request("POST", "/v1/chat/completions", None, CHAT),
            &cookie,
            None,
        ),
    );
    assert_eq!(chat.status, 401);
}

#[test]
fn a_session_over_tls_gets_a_secure_cookie() {
    let host = FakeHost::new(ok_json());
    let mut req = request(
        "POST",
        "/admin/session",
        None,
        r#"{"token": "admin-secret"}"#,
    );
    req.headers
        .push(("x-forwarded-proto".into(), "https".into()));
    assert!(run(&host, req)
        .header("set-cookie")
        .unwrap()
        .ends_with("; Secure"));
}

fn history(host: &FakeHost) -> Vec<String> {
    serde_json::from_str(&host.entries.borrow()["policy/history"]).unwrap()
}

const CHEAP: &str =
    "rule cheap: when tokens < 500 -> deepseek fallback openai:gpt-4o-mini\ndefault -> requested\n";
const ZH_ONLY: &str = "rule zh: when lang == zh -> deepseek\ndefault -> requested\n";

#[test]
fn the_policy_view_shows_the_rules_and_history_and_a_rollback_takes_effect_at_once() {
    let host = FakeHost::new(ok_json());
    let first = publish(&host, CHEAP);
    let gw = gateway(&host);
    assert_eq!(
        run_then_background(
            &gw,
            request("POST", "/v1/chat/completions", Some(KEY), CHAT)
        )
        .record
        .rule_id
        .as_deref(),
        Some("cheap")
    );
    // A second policy published over it (what `gateway-policy publish` does to the store).
    let artifact = compiled(ZH_ONLY);
    let second = artifact.hash.clone();
    host.earlier.borrow_mut().insert(
        first.clone(),
        host.published.borrow().as_ref().unwrap().1.clone(),
    );
    *host.published.borrow_mut() =
        Some((second.clone(), serde_json::to_string(&artifact).unwrap()));
    host.entries
        .borrow_mut()
        .insert("policy/history".into(), json!([first]).to_string());
    host.advance(60_000.0);
    run_then_background(&gw, request("GET", "/healthz", None, ""));

    let view = run_with(
        &gw,
        request("GET", "/admin/policy", Some("admin-secret"), ""),
    );
    assert_eq!(view.status, 200, "{}", view.body);
    let v = view.json();
    assert_eq!(v["active"]["hash"], second.as_str());
    assert_eq!(
        v["history"],
        json!([{"hash": first, "active_since_ms": null}])
    );
    let texts: Vec<&str> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "rule zh (p.policy:1): when lang == zh -> deepseek:deepseek-flash",
            "default (p.policy:2): -> requested"
        ]
    );

    let back = run_with(
        &gw,
        request("POST", "/admin/policy/rollback", Some("admin-secret"), "{}"),
    );
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.json()["active"], first.as_str());
    assert_eq!(history(&host), Vec::<String>::new());
    let log: Value = serde_json::from_str(&host.entries.borrow()["policy/log"]).unwrap();
    assert_eq!(
        (log[0]["hash"].as_str(), log[0]["by"].as_str()),
        (Some(first.as_str()), Some("console"))
    );
    let view = run_with(
        &gw,
        request("GET", "/admin/policy", Some("admin-secret"), ""),
    )
    .json();
    assert_eq!(view["published_at_ms"], log[0]["at_ms"]);
    // The next request on this isolate is decided by the policy rolled back to.
    let r = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(
        (r.record.policy_hash.as_deref(), r.record.rule_id.as_deref()),
        (Some(first.as_str()), Some("cheap"))
    );

    // Nothing earlier is left; a hash not in the history is refused; both say why.
    let none = run_with(
        &gw,
        request("POST", "/admin/policy/rollback", Some("admin-secret"), "{}"),
    );
    assert_eq!(none.status, 400);
    assert!(none.body.contains("no earlier policy"), "{}", none.body);
    let stranger = run_with(
        &gw,
        request(
            "POST",
            "/admin/policy/rollback",
            Some("admin-secret"),
            &format!(r#"{{"to": "{}"}}"#, "ab".repeat(32)),
        ),
    );
    assert_eq!(stranger.status, 400);
    // Back to the second by its hash: the current one is remembered.
    host.earlier
        .borrow_mut()
        .insert(second.clone(), serde_json::to_string(&artifact).unwrap());
    host.entries
        .borrow_mut()
        .insert("policy/history".into(), json!([second]).to_string());
    let to = run_with(
        &gw,
        request(
            "POST",
            "/admin/policy/rollback",
            Some("admin-secret"),
            &format!(r#"{{"to": "{second}"}}"#),
        ),
    );
    assert_eq!(to.status, 200, "{}", to.body);
    assert_eq!(history(&host).last(), Some(&first));
}

#[test]
fn explain_decides_a_request_as_the_gateway_would_without_sending_it() {
    let host = FakeHost::new(ok_json());
    publish(&host, ZH_POLICY);
    let gw = gateway(&host);
    run_then_background(&gw, request("GET", "/healthz", None, ""));
    let seen = run_with(
        &gw,
        request("POST", "/admin/explain", Some("admin-secret"), ZH_CHAT),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    let e = seen.json();
    assert_eq!(e["rule"], "zh");
    assert_eq!(
        e["plan"],
        json!(["deepseek:deepseek-flash", "openai:gpt-4o-mini"])
    );
    assert_eq!(e["attrs"]["lang"], "zh");
    let trace = e["trace"].as_array().unwrap();
    assert!(
        trace
            .iter()
            .any(|r| r["id"] == "zh" && r["matched"] == true),
        "{trace:?}"
    );
    assert_eq!(host.sent.borrow().len(), 0, "nothing was sent upstream");
    // A key's tier is what the deny rule tests.
    host.keys.borrow_mut().insert(
        "hash-of-free".into(),
        gateway_core::auth::KeyRecord {
            id: "key_free".into(),
            tier: Some("free".into()),
            ..Default::default()
        },
    );
    let denied = run_with(
        &gw,
        request(
            "POST",
            "/admin/explain?key=key_free",
            Some("admin-secret"),
            CHAT,
        ),
    );
    assert_eq!(denied.json()["deny"]["status"], 403, "{}", denied.body);
    assert_eq!(
        run_with(
            &gw,
            request("POST", "/admin/explain", Some("admin-secret"), "{}")
        )
        .status,
        400
    );
    assert_eq!(
        run_with(&gw, request("POST", "/admin/explain", None, CHAT)).status,
        401
    );
}
