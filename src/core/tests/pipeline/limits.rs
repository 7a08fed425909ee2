//! Limits, budgets and allow-lists of keys and teams: what a limited client sees, and what the log row says.

use super::*;
use gateway_core::limits::{Budget, Limits};

/// The test key with these limits (and team), stored as the key store would have it.
fn limit_key(host: &FakeHost, limits: Limits, team: Option<&str>, allow: &[&str]) {
    let mut key = key_record("key_test");
    key.limits = limits;
    key.team = team.map(str::to_owned);
    key.allow = allow.iter().map(|s| (*s).to_owned()).collect();
    host.keys
        .borrow_mut()
        .insert(gateway_core::auth::hash_key(KEY), key);
}

#[test]
fn a_key_gets_its_requests_per_minute_then_429_with_openais_headers() {
    let host = FakeHost::new(ok_json());
    limit_key(
        &host,
        Limits {
            requests_per_minute: Some(2),
            ..Limits::default()
        },
        None,
        &[],
    );
    let gw = gateway(&host);
    let first = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining-requests"), Some("1"));
    assert!(first.header("x-ratelimit-reset-requests").is_some());
    assert_eq!(
        first.header("x-ratelimit-limit-tokens"),
        None,
        "no token limit was set"
    );
    let second = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(second.header("x-ratelimit-remaining-requests"), Some("0"));
    let third = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(third.status, 429);
    assert_eq!(third.json()["error"]["code"], "rate_limit_exceeded");
    assert!(third.header("retry-after").is_some());
    assert_eq!(
        third.record.limited_by.as_deref(),
        Some("key:requests_per_minute")
    );
    assert_eq!(
        host.sent.borrow().len(),
        2,
        "the refused request reached no provider"
    );
    // The next minute admits again.
    host.now.set(host.now.get() + 60_000.0);
    let later = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(later.status, 200);
}

#[test]
fn a_team_budget_refuses_with_insufficient_quota_once_spent() {
    let host = FakeHost::new(ok_json());
    limit_key(&host, Limits::default(), Some("research"), &[]);
    // gpt-4o-mini: $0.15 / $0.60 per 1M; the answer reports 9 prompt and 1 completion token = $0.00000195.
    host.teams.borrow_mut().insert(
        "research".into(),
        TeamRecord {
            name: "research".into(),
            limits: Limits {
                budget: Some(Budget {
                    currency: "USD".into(),
                    day: Some("0.000004".into()),
                    month: None,
                }),
                ..Limits::default()
            },
            ..TeamRecord::default()
        },
    );
    let gw = gateway(&host);
    // A request whose worst case (its prompt and max_tokens at the model's prices) does not fit is refused.
    let big =
        r#"{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
    let refused = run_with(&gw, request("POST", "/v1/chat/completions", Some(KEY), big));
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"]["code"], "insufficient_quota");
    assert_eq!(
        refused.record.limited_by.as_deref(),
        Some("team:budget_day")
    );
    // Small ones fit, are settled at what they cost, and the budget is never passed.
    let small =
        r#"{"model":"gpt-4o-mini","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut spent = 0;
    for _ in 0..5 {
        let seen = run_with(
            &gw,
            request("POST", "/v1/chat/completions", Some(KEY), small),
        );
        if seen.status == 200 {
            spent += seen.record.cost.as_ref().unwrap().reporting_pico.unwrap();
        } else {
            assert_eq!(seen.json()["error"]["code"], "insufficient_quota");
        }
    }
    assert_eq!(
        spent,
        2 * 1_950_000,
        "two answers at $0.00000195 fit in $0.000004"
    );
}

#[test]
fn a_model_outside_the_allow_list_is_403_and_the_plan_skips_such_targets() {
    let host = FakeHost::new(ok_json());
    limit_key(&host, Limits::default(), None, &["deepseek/*"]);
    let seen = run(
        &host,
        request("POST", "/v1/chat/completions", Some(KEY), CHAT),
    );
    assert_eq!(seen.status, 403);
    let message = seen.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("openai/gpt-4o-mini") && message.contains("deepseek/*"),
        "{message}"
    );
    assert!(host.sent.borrow().is_empty());
    // A policy that falls back to an allowed target skips the other.
    let gw = with_policy(&host, "default -> openai:gpt-4o-mini fallback deepseek\n");
    let routed = run_with(
        &gw,
        request(
            "POST",
            "/v1/chat/completions",
            Some(KEY),
            r#"{"model":"x","messages":[{"role":"user","content":"hi"}]}"#,
        ),
    );
    assert_eq!(routed.status, 200, "{}", routed.body);
    assert_eq!(routed.record.provider.as_deref(), Some("deepseek"));
    assert!(routed
        .record
        .decision_attrs
        .unwrap()
        .contains("not allowed for this key"));
    // A model named with its provider is checked before the policy runs.
    let named = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let refused = run_with(
        &gw,
        request("POST", "/v1/chat/completions", Some(KEY), named),
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.record.rule_id, None,
        "refused before the policy ran"
    );
}

#[test]
fn a_budget_rule_routes_to_the_cheap_target_before_the_budget_runs_out() {
    let host = FakeHost::new(ok_json());
    limit_key(
        &host,
        Limits {
            budget: Some(Budget {
                currency: "USD".into(),
                day: Some("0.00001".into()),
                month: None,
            }),
            ..Limits::default()
        },
        None,
        &[],
    );
    let gw = with_policy(
        &host,
        "rule saving: when key.budget.remaining_pct < 70 -> deepseek\ndefault -> openai:gpt-4o-mini\n",
    );
    let small = r#"{"model":"x","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}"#;
    let rules: Vec<String> = (0..3)
        .map(|_| {
            let seen = run_with(
                &gw,
                request("POST", "/v1/chat/completions", Some(KEY), small),
            );
            assert_eq!(seen.status, 200, "{}", seen.body);
            seen.record.rule_id.unwrap()
        })
        .collect();
    // $0.00000195 of $0.00001 each: 100%, 80.5%, 61% left.
    assert_eq!(rules, ["default", "default", "saving"]);
}

#[test]
fn a_budget_reserves_the_costliest_target_of_the_plan_so_a_fallback_stays_inside() {
    // DeepSeek Flash first (¥1 / ¥4 per 1M off-peak), gpt-5.4 as the fallback ($2.50 / $15). With max_tokens
    // 1,000 the worst cases are $0.00056 and $0.0150: a $0.01 budget fits the first but not the fallback, so the
    // request is refused rather than risk passing the budget when DeepSeek fails.
    let budget = |day: &str| Limits {
        budget: Some(Budget {
            currency: "USD".into(),
            day: Some(day.into()),
            month: None,
        }),
        ..Limits::default()
    };
    let host = FakeHost::new(ok_json());
    host.route(
        "http://ds",
        Script::Reply(500, vec![], vec![b"{}".to_vec()]),
    );
    limit_key(&host, budget("0.01"), None, &[]);
    let policy = "default -> deepseek:deepseek-flash fallback openai:gpt-5.4\n";
    let body = r#"{"model":"x","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}"#;
    let refused = run_with(
        &with_policy(&host, policy),
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.record.limited_by.as_deref(), Some("key:budget_day"));
    assert!(host.sent.borrow().is_empty());
    // With $0.02 it is admitted; DeepSeek fails, gpt-5.4 answers (9 + 1 tokens: $0.0000375), inside the budget.
    let host = FakeHost::new(ok_json());
    host.route(
        "http://ds",
        Script::Reply(500, vec![], vec![b"{}".to_vec()]),
    );
    limit_key(&host, budget("0.02"), None, &[]);
    let seen = run_with(
        &with_policy(&host, policy),
        request("POST", "/v1/chat/completions", Some(KEY), body),
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.record.provider.as_deref(), Some("openai"));
    assert_eq!(
        seen.record.cost.as_ref().unwrap().reporting_pico,
        Some(37_500_000)
    );
    let standing = host.ledger.standing(&[gateway_core::limits::ScopeAsk {
        scope: "key:key_test".into(),
        limits: budget("0.02").resolve(&gw_prices(), "USD").unwrap(),
        zone: Default::default(),
        ask: gateway_core::limits::Ask {
            now_ms: host.now.get() as i64,
            ..Default::default()
        },
        currency: "USD".into(),
    }]);
    assert_eq!(standing[0].day_pico, 37_500_000, "settled at what it cost");
}

fn gw_prices() -> gateway_policy::prices::PriceBook {
    gateway_policy::prices::PriceBook::new(&gateway_policy::catalog::Catalog::builtin().prices)
}
