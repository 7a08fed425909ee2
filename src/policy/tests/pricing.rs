//! `cheapest(…)` ranks with the price table the gateway bills with: the provider's currency converted at the
//! table's rate, the time-of-day window in force, the date's price and the prompt's tier.
#![allow(clippy::unwrap_used)]

mod common;

use common::checked;
use gateway_policy::artifact::Target;
use gateway_policy::catalog::Catalog;
use gateway_policy::compile::compile;
use gateway_policy::eval::{Outcome, Policy};
use gateway_policy::prices::parse_date;
use gateway_policy::Attrs;

fn policy(text: &str) -> Policy {
    let c = checked(text);
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
    Policy::new(compile(&c, &Catalog::builtin()).unwrap()).unwrap()
}

fn first(policy: &Policy, attrs: &Attrs) -> String {
    match policy.decide(attrs).outcome {
        Outcome::Route { attempts, .. } => match &attempts[0] {
            Target::Model { provider, model } => format!("{provider}:{model}"),
            Target::Requested => "requested".into(),
        },
        other => panic!("{other:?}"),
    }
}

fn at(date: &str, utc_hour: i64) -> i64 {
    parse_date(date).unwrap() * 86_400_000 + utc_hour * 3_600_000
}

#[test]
fn cheapest_follows_deepseeks_peak_hours() {
    let p = policy(
        "default -> cheapest(deepseek:deepseek-flash, workers_ai:\"@cf/openai/gpt-oss-20b\")\n",
    );
    // 10,000 prompt tokens and up to 1,000 out: DeepSeek off-peak ¥0.014 ($0.00197 at 7.1) against $0.0023 on
    // Workers AI; at peak (¥0.028, $0.00394) Workers AI is cheaper.
    let mut attrs = Attrs {
        tokens: 10_000,
        max_tokens: 1_000,
        ..Attrs::default()
    };
    // Tuesday 2026-12-01, 13:00 UTC = 21:00 Beijing: off-peak.
    attrs.now_ms = at("2026-12-01", 13);
    assert_eq!(first(&p, &attrs), "deepseek:deepseek-flash");
    // 02:00 UTC = 10:00 Beijing: peak.
    attrs.now_ms = at("2026-12-01", 2);
    assert_eq!(first(&p, &attrs), "workers_ai:@cf/openai/gpt-oss-20b");
    // Without a time (a policy test case): the weekday and hour stand in.
    attrs.now_ms = 0;
    attrs.time.weekday = "tue".into();
    attrs.time.hour = 2;
    assert_eq!(first(&p, &attrs), "workers_ai:@cf/openai/gpt-oss-20b");
}

#[test]
fn cheapest_follows_price_dates_and_tiers() {
    // Gemini 3.8 Flash doubles on 2027-01-01: $0.75/$3.75 → $1.50/$7.50; gpt-5.4-mini is $0.75/$4.50.
    let p = policy("default -> cheapest(openai:gpt-5.4-mini, gemini:gemini-3.8-flash)\n");
    let mut attrs = Attrs {
        tokens: 1_000,
        max_tokens: 1_000,
        ..Attrs::default()
    };
    attrs.now_ms = at("2026-12-31", 23);
    assert_eq!(first(&p, &attrs), "gemini:gemini-3.8-flash");
    attrs.now_ms = at("2027-01-01", 0);
    assert_eq!(first(&p, &attrs), "openai:gpt-5.4-mini");
    // Gemini 3.1 Pro ($2/$12; $4/$18 above 200k prompt tokens) against gpt-5.4 ($2.50/$15; $5/$22.50 above
    // 272K): Gemini at 100k, OpenAI at 250k (Gemini's long-context price), Gemini again at 300k (OpenAI's).
    let p = policy("default -> cheapest(openai:gpt-5.4, gemini:gemini-3.1-pro-preview)\n");
    for (tokens, cheapest) in [
        (100_000, "gemini:gemini-3.1-pro-preview"),
        (250_000, "openai:gpt-5.4"),
        (300_000, "gemini:gemini-3.1-pro-preview"),
    ] {
        let attrs = Attrs {
            tokens,
            max_tokens: 100,
            now_ms: at("2026-12-01", 12),
            ..Attrs::default()
        };
        assert_eq!(first(&p, &attrs), cheapest, "{tokens} tokens");
    }
}
