//! A compiled rule written out as text again (what the console's policy page shows).
#![allow(clippy::unwrap_used)]

mod common;

use common::{checked, DESIGN_EXAMPLE};
use gateway_policy::catalog::Catalog;
use gateway_policy::compile::compile;

#[test]
fn every_rule_of_the_design_example_reads_back_as_it_was_written() {
    let c = checked(DESIGN_EXAMPLE);
    assert_eq!(c.errors(), 0, "{:#?}", c.diagnostics);
    let a = compile(&c, &Catalog::builtin()).unwrap();
    let texts: Vec<String> = a
        .deny
        .iter()
        .map(|r| r.text("deny"))
        .chain(a.rules.iter().map(|r| r.text("rule")))
        .chain([a.default.text("default")])
        .collect();
    let want = [
        r#"deny free_frontier (main.policy:6): when key.tier == "free" and model matches "^gpt-6" -> deny 403 "upgrade your plan""#,
        "rule zh_short (main.policy:7): when tokens < 500 and lang == zh -> deepseek:deepseek-flash fallback siliconflow:deepseek-ai/DeepSeek-V3.2 with timeout 8s",
        "rule main.policy:8 (main.policy:8): when tokens < 500 and lang == zh -> deepseek:deepseek-flash fallback siliconflow:deepseek-ai/DeepSeek-V3.2",
        "rule vision (main.policy:9): when has_images -> fastest(gemini:gemini-3.8-flash, openai:gpt-6-luna)",
        r#"rule canary (main.policy:10): when model == "gpt-6-sol" and sample < 10 -> split { openai:gpt-6-sol 90, openrouter:deepseek/deepseek-v4-flash 10 }"#,
        "rule vip_route (main.policy:11): when key.team in $vip -> openai:gpt-6-luna fallback openrouter:deepseek/deepseek-v4-flash with retries 1",
        "default (main.policy:12): -> requested fallback openrouter:deepseek/deepseek-v4-flash",
    ];
    assert_eq!(texts, want);
}
