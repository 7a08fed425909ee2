//! The key administration API: create a key (shown once), list and show keys and teams with their spend, change
//! limits and allow-lists, revoke; each change applies to the next request.

use super::*;

fn admin(method: &str, path: &str, body: &str) -> GatewayRequest {
    request(method, path, Some("admin-secret"), body)
}

#[test]
fn a_key_created_by_the_api_works_and_its_changes_apply_to_the_next_request() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    let created = run_with(
        &gw,
        admin(
            "POST",
            "/admin/keys",
            r#"{"name": "app", "team": "research", "limits": {"requests_per_minute": 5}}"#,
        ),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let view = created.json();
    let key = view["key"].as_str().unwrap().to_owned();
    let id = view["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("gw-") && id.starts_with("key_"));
    // The key is stored as its hash only, and never shown again.
    assert!(host
        .keys
        .borrow()
        .contains_key(&gateway_core::auth::hash_key(&key)));
    let listed = run_with(&gw, admin("GET", "/admin/keys", ""));
    assert!(!listed.body.contains(&key));
    let mine = listed.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(mine["standing"]["remaining_requests"], 5);
    assert_eq!(mine["team"], "research");

    let used = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(&key), CHAT),
    );
    assert_eq!(used.status, 200);
    assert_eq!(used.header("x-ratelimit-remaining-requests"), Some("4"));
    let shown = run_with(&gw, admin("GET", &format!("/admin/keys/{id}"), ""));
    assert_eq!(shown.json()["standing"]["remaining_requests"], 4);
    let spent = shown.json()["standing"]["spend_day"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(spent, "0", "the answer's cost is in the key's spend");

    // A new limit applies to the next request (the cached record is dropped).
    let patched = run_with(
        &gw,
        admin(
            "PATCH",
            &format!("/admin/keys/{id}"),
            r#"{"limits": {"requests_per_minute": 1}, "allow": ["openai/*"]}"#,
        ),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.json()["allow"][0], "openai/*");
    let limited = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(&key), CHAT),
    );
    assert_eq!(limited.status, 429, "{}", limited.body);

    let revoked = run_with(&gw, admin("POST", &format!("/admin/keys/{id}/revoke"), ""));
    assert_eq!(revoked.json()["revoked"], true);
    let refused = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(&key), CHAT),
    );
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("revoked"));
}

#[test]
fn teams_are_created_once_and_changed_with_patch() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    let body = r#"{"name": "research", "limits": {"budget": {"currency": "CNY", "day": "50"}}}"#;
    let created = run_with(&gw, admin("POST", "/admin/teams", body));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["standing"]["budget_remaining_pct"], 100.0);
    assert_eq!(
        run_with(&gw, admin("POST", "/admin/teams", body)).status,
        400
    );
    let patched = run_with(
        &gw,
        admin(
            "PATCH",
            "/admin/teams/research",
            r#"{"allow": ["deepseek/*"]}"#,
        ),
    );
    assert_eq!(patched.json()["allow"][0], "deepseek/*");
    assert_eq!(patched.json()["limits"]["budget"]["day"], "50");
    let listed = run_with(&gw, admin("GET", "/admin/teams", ""));
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        run_with(&gw, admin("GET", "/admin/teams/nope", "")).status,
        404
    );
}

#[test]
fn bad_admin_requests_get_clear_errors() {
    let host = FakeHost::new(ok_json());
    let gw = gateway(&host);
    for (method, path, body, status, needle) in [
        (
            "POST",
            "/admin/keys",
            r#"{"name": "a", "colour": "red"}"#,
            400,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/admin/keys",
            r#"{"limits": {}}"#,
            400,
            "`name` is required",
        ),
        (
            "POST",
            "/admin/keys",
            r#"{"name": "a", "limits": {"rpm": 5}}"#,
            400,
            "unknown field `rpm`",
        ),
        (
            "POST",
            "/admin/keys",
            r#"{"name": "a", "allow": ["deepseek"]}"#,
            400,
            "provider/model",
        ),
        (
            "POST",
            "/admin/keys",
            r#"{"name": "a", "team": "a b"}"#,
            400,
            "team name",
        ),
        (
            "POST",
            "/admin/keys",
            r#"{"name": "a", "limits": {"budget": {"currency": "CNY"}}}"#,
            400,
            "`day` or `month`",
        ),
        ("GET", "/admin/keys/key_nope", "", 404, "no key with id"),
        ("DELETE", "/admin/keys", "", 404, "no route"),
    ] {
        let seen = run_with(&gw, admin(method, path, body));
        assert_eq!(seen.status, status, "{method} {path} {body}: {}", seen.body);
        assert!(seen.body.contains(needle), "{}", seen.body);
    }
    let no_token = run_with(&gw, request("GET", "/admin/keys", Some(KEY), ""));
    assert_eq!(no_token.status, 401);
}

#[test]
fn a_revocation_reaches_an_isolate_that_cached_the_key_within_a_second() {
    // Two isolates (two gateways, each with its own caches) over one store with a changes feed, as on Workers:
    // the admin API writes the feed, every isolate asks it at most once a second.
    let mut host = FakeHost::new(ok_json());
    host.has_feed = true;
    let (edge, admin_side) = (gateway(&host), gateway(&host));
    let created = run_with(
        &admin_side,
        admin("POST", "/admin/keys", r#"{"name": "app"}"#),
    );
    let (key, id) = (
        created.json()["key"].as_str().unwrap().to_owned(),
        created.json()["id"].as_str().unwrap().to_owned(),
    );
    let chat = |key: &str| {
        run_with(
            &edge,
            request("POST", "/v1/chat/completions", Some(key), CHAT),
        )
    };
    // The edge isolate reads and caches the key record (for KEY_CACHE_MS).
    assert_eq!(chat(&key).status, 200);
    run_with(
        &admin_side,
        admin("POST", &format!("/admin/keys/{id}/revoke"), ""),
    );
    // Within the second, its cache may still answer; after it, the feed says the key was revoked.
    host.now.set(host.now.get() + 1_000.0);
    let refused = chat(&key);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("revoked"));
    // A new limit likewise.
    let other = run_with(
        &admin_side,
        admin("POST", "/admin/keys", r#"{"name": "b"}"#),
    );
    let (key_b, id_b) = (
        other.json()["key"].as_str().unwrap().to_owned(),
        other.json()["id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(chat(&key_b).status, 200);
    run_with(
        &admin_side,
        admin(
            "PATCH",
            &format!("/admin/keys/{id_b}"),
            r#"{"limits": {"requests_per_minute": 1}}"#,
        ),
    );
    host.now.set(host.now.get() + 1_000.0);
    assert_eq!(chat(&key_b).status, 200);
    let limited = chat(&key_b);
    assert_eq!(limited.status, 429, "{}", limited.body);
}
