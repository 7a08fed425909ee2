#![allow(dead_code, clippy::unwrap_used)]

use gateway_policy::catalog::Catalog;
use gateway_policy::check::{check, Checked};
use gateway_policy::syntax::ast::SourceFile;

pub fn checked(text: &str) -> Checked {
    check(
        vec![SourceFile {
            name: "main.policy".into(),
            text: text.into(),
        }],
        &Catalog::builtin(),
    )
}

pub fn codes(text: &str) -> Vec<&'static str> {
    checked(text).diagnostics.iter().map(|d| d.code).collect()
}

/// The design brief's example (design.md §5), verbatim.
pub const DESIGN_EXAMPLE: &str = r#"# targets: a provider name (its default model), provider:model, or provider:"model/with/slashes"
target zh_fast = deepseek:deepseek-flash
group  cheap   = [deepseek, siliconflow:"Qwen/Qwen3-8B", gemini:gemini-2.5-flash]
list   vip     = {"research", "ml-platform"}

deny  free_frontier: when key.tier == "free" and model matches "^gpt-6" -> deny 403 "upgrade your plan"
rule  zh_short:      when tokens < 500 and lang == zh -> deepseek fallback siliconflow with timeout 8s
when tokens < 500 and lang == zh -> deepseek fallback siliconflow        # the seed's anonymous form stays valid
rule  vision:        when has_images -> fastest(gemini, openai)
rule  canary:        when model == "gpt-6-sol" and sample < 10 -> split { openai:gpt-6-sol 90, openrouter 10 }
rule  vip_route:     when key.team in $vip -> openai fallback openrouter with retries 1
default -> requested fallback openrouter
"#;
