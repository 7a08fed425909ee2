//! Policy unit tests: `tests/*.toml` beside the policy files.
//!
//! ```toml
//! [[case]]
//! name  = "a short Chinese prompt goes to DeepSeek"
//! attrs = { tokens = 120, lang = "zh" }
//! rule  = "zh_short"                                   # any of rule / chain / deny
//! chain = ["deepseek:deepseek-flash", "siliconflow:deepseek-ai/DeepSeek-V3.2"]
//!
//! [[table]]                                            # one case per row
//! name    = "languages"
//! attrs   = { tokens = 100 }                           # shared by every row
//! columns = ["lang", "key.team", "rule"]               # attribute paths, then expectations
//! rows    = [["zh", "", "zh_short"], ["en", "research", "vip_route"]]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gateway_policy::eval::{Outcome, Policy};
use gateway_policy::Attrs;
use serde_json::{Map, Value};

use crate::Sources;

const EXPECTATIONS: &[&str] = &["rule", "chain", "deny"];

struct Case {
    name: String,
    attrs: Value,
    expect: Map<String, Value>,
}

pub fn run(sources: &Sources, cases: &[PathBuf]) -> Result<bool, String> {
    let files = case_files(sources, cases)?;
    if files.is_empty() {
        return Err(
            "no test files: put cases in tests/*.toml beside the policy, or pass --cases".into(),
        );
    }
    let Some(policy) = super::policy(sources)? else {
        return Ok(false);
    };
    let mut all = Vec::new();
    for f in &files {
        all.extend(read_cases(f)?);
    }
    let mut passed = 0;
    let mut failed = 0;
    let mut decided: BTreeSet<String> = BTreeSet::new();
    for case in &all {
        match run_case(&policy, case) {
            Ok(rule) => {
                passed += 1;
                decided.insert(rule);
            }
            Err((rule, why)) => {
                failed += 1;
                if let Some(r) = rule {
                    decided.insert(r);
                }
                say!("FAIL {}: {why}", case.name);
            }
        }
    }
    let a = &policy.artifact;
    let uncovered: Vec<&str> = a
        .deny
        .iter()
        .chain(&a.rules)
        .chain(std::iter::once(&a.default))
        .map(|r| r.id.as_str())
        .filter(|id| !decided.contains(*id))
        .collect();
    if !uncovered.is_empty() {
        say!("rules no case decided: {}", uncovered.join(", "));
    }
    say!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn case_files(sources: &Sources, explicit: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let dirs: Vec<PathBuf> = if explicit.is_empty() {
        sources
            .paths
            .iter()
            .filter(|p| p.is_dir())
            .map(|p| p.join("tests"))
            .filter(|p| p.is_dir())
            .collect()
    } else {
        explicit.to_vec()
    };
    let mut files = Vec::new();
    for d in dirs {
        if d.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&d)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(d);
        }
    }
    Ok(files)
}

fn read_cases(path: &Path) -> Result<Vec<Case>, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| at(e.to_string()))?;
    let doc = serde_json::to_value(doc).map_err(|e| at(e.to_string()))?;
    let file = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for (i, c) in doc
        .get("case")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{file} case {}", i + 1), str::to_owned);
        let attrs = c
            .get("attrs")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let expect: Map<String, Value> = EXPECTATIONS
            .iter()
            .filter_map(|k| c.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        if expect.is_empty() {
            return Err(at(format!(
                "case `{name}` expects nothing: give `rule`, `chain` or `deny`"
            )));
        }
        out.push(Case {
            name,
            attrs,
            expect,
        });
    }
    for (i, t) in doc
        .get("table")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{file} table {}", i + 1), str::to_owned);
        let columns: Vec<&str> = t
            .get("columns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !columns.iter().any(|c| EXPECTATIONS.contains(c)) {
            return Err(at(format!(
                "table `{name}` has no `rule`, `chain` or `deny` column"
            )));
        }
        for (r, row) in t
            .get("rows")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let cells = row
                .as_array()
                .ok_or_else(|| at(format!("table `{name}` row {} is not an array", r + 1)))?;
            if cells.len() != columns.len() {
                return Err(at(format!(
                    "table `{name}` row {} has {} cells for {} columns",
                    r + 1,
                    cells.len(),
                    columns.len()
                )));
            }
            let mut attrs = t
                .get("attrs")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let mut expect = Map::new();
            for (col, cell) in columns.iter().zip(cells) {
                if EXPECTATIONS.contains(col) {
                    expect.insert((*col).to_owned(), cell.clone());
                } else {
                    set_path(&mut attrs, col, cell.clone());
                }
            }
            out.push(Case {
                name: format!("{name}[{}]", r + 1),
                attrs,
                expect,
            });
        }
    }
    Ok(out)
}

/// Sets `a.b.c` in a JSON object, creating objects on the way.
fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return;
        }
        node = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The deciding rule, or (the deciding rule if any, why it failed).
fn run_case(policy: &Policy, case: &Case) -> Result<String, (Option<String>, String)> {
    let attrs: Attrs = serde_json::from_value(case.attrs.clone())
        .map_err(|e| (None, format!("invalid attrs: {e}")))?;
    let d = policy.decide(&attrs);
    let mut problems = Vec::new();
    if let Some(want) = case.expect.get("rule") {
        if want.as_str() != Some(d.rule.as_str()) {
            problems.push(format!("expected rule {want}, got \"{}\"", d.rule));
        }
    }
    if let Some(want) = case.expect.get("chain") {
        let got = d.chain();
        let want_list: Vec<&str> = want
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if want_list != got.iter().map(String::as_str).collect::<Vec<_>>() {
            problems.push(format!("expected chain {want}, got {got:?}"));
        }
    }
    if let Some(want) = case.expect.get("deny") {
        let got = match &d.outcome {
            Outcome::Deny { status, .. } => Some(*status),
            Outcome::Route { .. } => None,
        };
        let ok = match want {
            Value::Bool(b) => got.is_some() == *b,
            Value::Number(n) => n.as_u64().map(|n| n as u16) == got,
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "expected deny {want}, got {}",
                got.map_or("no deny".to_owned(), |s| format!("deny {s}"))
            ));
        }
    }
    if problems.is_empty() {
        Ok(d.rule)
    } else {
        Err((Some(d.rule), problems.join("; ")))
    }
}
