use gateway_policy::eval::{Outcome, RuleTrace};
use gateway_policy::Attrs;

use crate::{Format, Sources};

pub fn run(sources: &Sources, attrs: &str, format: Format) -> Result<bool, String> {
    let attrs: Attrs = serde_json::from_str(attrs).map_err(|e| format!("--attrs: {e}"))?;
    let Some(policy) = super::policy(sources)? else {
        return Ok(false);
    };
    let (decision, trace) = policy.explain(&attrs);
    let deny = match &decision.outcome {
        Outcome::Deny { status, message } => {
            serde_json::json!({"status": status, "message": message})
        }
        Outcome::Route { .. } => serde_json::Value::Null,
    };
    if format != Format::Human {
        let out = serde_json::json!({"rule": decision.rule, "chain": decision.chain(), "deny": deny, "trace": trace});
        say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(true);
    }
    say!("{}", summary(&decision));
    say!();
    for t in &trace {
        print_trace(t);
    }
    Ok(true)
}

fn summary(d: &gateway_policy::Decision) -> String {
    match &d.outcome {
        Outcome::Deny { status, message } => {
            format!("decision: deny {status} \"{message}\" (rule `{}`)", d.rule)
        }
        Outcome::Route { .. } => format!("decision: rule `{}` → {}", d.rule, d.chain().join(" → ")),
    }
}

fn print_trace(t: &RuleTrace) {
    let mark = if t.matched { "✓" } else { "✗" };
    say!(
        "{mark} {} `{}` ({}:{})",
        t.kind,
        t.id,
        t.loc.file,
        t.loc.line
    );
    let width = t
        .checks
        .iter()
        .map(|c| c.condition.chars().count())
        .max()
        .unwrap_or(0);
    for c in &t.checks {
        let pad = width - c.condition.chars().count();
        say!(
            "    {}{}   value {}   {}",
            c.condition,
            " ".repeat(pad),
            c.value,
            c.result
        );
    }
}
