use std::path::Path;

use gateway_policy::eval::{Outcome, Policy};
use gateway_policy::Attrs;

use crate::{Format, Sources};

/// A policy from sources, or from a compiled `.json` artifact.
fn load(path: &Path, catalog: Option<&Path>) -> Result<Option<Policy>, String> {
    if path.extension().is_some_and(|e| e == "json") {
        let json = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Policy::from_json(&json)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    super::policy(&Sources {
        paths: vec![path.to_path_buf()],
        catalog: catalog.map(Path::to_path_buf),
    })
}

fn describe(p: &Policy, attrs: &Attrs) -> (String, String) {
    let d = p.decide(attrs);
    let what = match &d.outcome {
        Outcome::Deny { status, .. } => format!("deny {status}"),
        Outcome::Route { .. } => d.chain().join(" → "),
    };
    (d.rule, what)
}

pub fn run(
    old: &Path,
    new: &Path,
    attrs_file: &Path,
    format: Format,
    catalog: Option<&Path>,
) -> Result<bool, String> {
    let (Some(old_p), Some(new_p)) = (load(old, catalog)?, load(new, catalog)?) else {
        return Ok(false);
    };
    let text = std::fs::read_to_string(attrs_file)
        .map_err(|e| format!("{}: {e}", attrs_file.display()))?;
    let mut total = 0;
    let mut changes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let attrs: Attrs = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: {e}", attrs_file.display(), i + 1))?;
        total += 1;
        let (a, b) = (describe(&old_p, &attrs), describe(&new_p, &attrs));
        if a != b {
            changes.push(serde_json::json!({"line": i + 1, "old": {"rule": a.0, "decision": a.1}, "new": {"rule": b.0, "decision": b.1}}));
        }
    }
    if format == Format::Human {
        for c in &changes {
            say!(
                "line {}: `{}` {}  ⇒  `{}` {}",
                c["line"],
                c["old"]["rule"].as_str().unwrap_or(""),
                c["old"]["decision"].as_str().unwrap_or(""),
                c["new"]["rule"].as_str().unwrap_or(""),
                c["new"]["decision"].as_str().unwrap_or("")
            );
        }
        say!(
            "{} of {total} request(s) decided differently (old {} → new {})",
            changes.len(),
            short(old_p.hash()),
            short(new_p.hash())
        );
    } else {
        let out = serde_json::json!({"total": total, "changed": changes.len(), "changes": changes, "old_hash": old_p.hash(), "new_hash": new_p.hash()});
        say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(changes.is_empty())
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
