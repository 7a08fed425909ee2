//! `gateway-policy replay` over a generated log of 100,000 requests: its counts are those of a naive
//! re-evaluation (each request decided by the old and the new policy, side by side), and the time it takes.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::checked;
use gateway_policy::catalog::Catalog;
use gateway_policy::compile::compile;
use gateway_policy::eval::{Outcome, Policy};
use gateway_policy::Attrs;
use serde_json::{json, Value};

const OLD: &str = r#"deny free_frontier: when key.tier == "free" and model matches "^gpt-6" -> deny 403 "upgrade"
rule zh_short: when tokens < 500 and lang == zh -> deepseek fallback siliconflow
rule long: when tokens >= 4000 -> gemini:gemini-3.8-flash fallback openai
rule coding: when task == code -> deepseek:deepseek-v4-pro fallback openai
default -> requested
"#;

// Short Chinese prompts move to SiliconFlow, the long-prompt threshold drops, free keys lose gpt-4o too, and
// coding requests go to the cheaper DeepSeek model.
const NEW: &str = r#"deny free_frontier: when key.tier == "free" and model matches "^gpt-(6|4o)" -> deny 403 "upgrade"
rule zh_short: when tokens < 500 and lang == zh -> siliconflow fallback deepseek
rule long: when tokens >= 2000 -> gemini:gemini-3.8-flash fallback openai
rule coding: when task == code -> deepseek:deepseek-flash fallback openai
default -> requested
"#;

fn policy(text: &str) -> Policy {
    let c = checked(text);
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
    Policy::new(compile(&c, &Catalog::builtin()).unwrap()).unwrap()
}

/// A request's first target and whether it was denied, as replay names them.
fn first(p: &Policy, a: &Attrs) -> (String, Option<String>, bool) {
    let d = p.decide(a);
    let target = match &d.outcome {
        Outcome::Deny { .. } => None,
        Outcome::Route { attempts, .. } => attempts.first().map(|t| match t.to_string().as_str() {
            "requested" => format!("{}:{}", a.provider, a.model),
            other => other.to_owned(),
        }),
    };
    let denied = matches!(d.outcome, Outcome::Deny { .. });
    (d.rule, target, denied)
}

/// `gateway-policy replay DIR --jsonl LOG --format json`'s report.
fn replay_json(dir: &std::path::Path, log: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway-policy"))
        .arg("replay")
        .arg(dir)
        .arg("--jsonl")
        .arg(log)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn replay_counts_match_a_naive_re_evaluation_of_100k_logged_requests() {
    let (old, new) = (policy(OLD), policy(NEW));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let dir = std::env::temp_dir().join(format!("gateway-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.policy"), NEW).unwrap();
    let mut log = String::new();
    let (mut rule, mut target, mut denied) = (0u64, 0u64, 0u64);
    const ROWS: u64 = 100_000;
    for i in 0..ROWS {
        let models = [
            ("openai", "gpt-4o-mini"),
            ("openai", "gpt-6-luna"),
            ("deepseek", "deepseek-flash"),
        ];
        let (provider, model) = models[next(3) as usize];
        let tokens = next(6000) as i64;
        let lang = ["en", "zh", "ja"][next(3) as usize];
        let task = ["chat", "code", "translation"][next(3) as usize];
        let tier = ["free", "pro"][next(2) as usize];
        let mut a: Attrs = serde_json::from_value(json!({
            "tokens": tokens, "lang": lang, "model": model, "provider": provider, "endpoint": "chat",
            "task": task, "key": {"tier": tier},
        }))
        .unwrap();
        a.now_ms = 1_796_000_000_000 + i as i64 * 1000;
        let (old_rule, old_target, old_denied) = first(&old, &a);
        let (new_rule, new_target, new_denied) = first(&new, &a);
        rule += u64::from(old_rule != new_rule);
        target += u64::from(old_target != new_target);
        denied += u64::from(new_denied && !old_denied);
        let attrs = serde_json::to_value(&a).unwrap();
        let decided =
            json!({"attrs": attrs, "plan": old_target.iter().collect::<Vec<_>>(), "skipped": []});
        let row = json!({
            "id": format!("req_{:012x}{i:020x}", a.now_ms), "ts_ms": a.now_ms, "rule_id": old_rule,
            "status": if old_denied { 403 } else { 200 }, "prompt_tokens": a.tokens, "completion_tokens": 100,
            "cost_reporting_pico": if old_denied { Value::Null } else { json!("1000000") },
            "reporting_currency": "USD", "decision_attrs": decided.to_string(),
        });
        log.push_str(&row.to_string());
        log.push('\n');
    }
    let path = dir.join("log.jsonl");
    std::fs::write(&path, &log).unwrap();
    let started = std::time::Instant::now();
    let report = replay_json(&dir, &path);
    let took = started.elapsed();
    println!(
        "replay of {ROWS} rows ({} MB of log): {:.2} s",
        log.len() / 1_000_000,
        took.as_secs_f64()
    );
    assert_eq!(report["replayed"], ROWS);
    assert_eq!(report["changed_rule"], rule);
    assert_eq!(report["changed_first_target"], target);
    assert_eq!(report["newly_denied"], denied);
    // Each kind of change happens (the generated traffic reaches every rule).
    assert!(
        rule > 1000 && target > rule && denied > 1000,
        "{rule} {target} {denied}"
    );
    assert_eq!(report["sample"].as_array().unwrap().len(), 10);
    // The same policy changes nothing.
    std::fs::write(dir.join("main.policy"), OLD).unwrap();
    let same = replay_json(&dir, &path);
    assert_eq!(
        (
            same["changed_rule"].as_u64(),
            same["changed_first_target"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(same["cost"][0]["difference"], "0");
    let _ = std::fs::remove_dir_all(&dir);
}
