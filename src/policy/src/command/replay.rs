//! `gateway-policy replay`: what a candidate policy would change on logged traffic. Every logged request the
//! policy decided has its decision attributes in the row (`decision_attrs`: the attributes, the plan and the
//! skipped targets); each is decided again by the candidate and compared with what happened: the rule, the
//! first target, denials, and the cost of the usage the row reports at the candidate's first target (the price
//! table in force at the request's time, in the row's reporting currency).
//!
//! Log sources: a native gateway's SQLite file (`--db`), D1 through wrangler (`--d1 DB --local|--remote`), or
//! rows as JSON lines (`--jsonl`, what `wrangler d1 execute --json` returns per row; the fixture in
//! `policies/tests/` is one).

use std::path::{Path, PathBuf};

use gateway_policy::eval::{Outcome, Policy};
use gateway_policy::prices::{format_pico, Tokens};
use gateway_policy::scheme::FieldId;
use gateway_policy::Attrs;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{Format, Sources};

#[derive(clap::Args)]
pub struct LogSource {
    /// A native gateway's database (`gateway serve --db FILE`).
    #[arg(long, conflicts_with_all = ["d1", "jsonl"])]
    pub db: Option<PathBuf>,
    /// A D1 database (its binding or name), read with `wrangler d1 execute` (`--local` or `--remote`).
    #[arg(long, conflicts_with = "jsonl")]
    pub d1: Option<String>,
    #[arg(long, requires = "d1")]
    pub local: bool,
    #[arg(long, requires = "d1")]
    pub remote: bool,
    /// wrangler's local state directory (with `--local`).
    #[arg(long, requires = "d1")]
    pub persist_to: Option<PathBuf>,
    /// The wrangler command (default: `npx wrangler`).
    #[arg(long)]
    pub wrangler: Option<String>,
    /// Logged rows, one JSON object per line.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
    /// Only requests at or after this time (Unix ms or `YYYY-MM-DD`).
    #[arg(long)]
    pub from: Option<String>,
    /// Only requests before this time.
    #[arg(long)]
    pub to: Option<String>,
}

/// The columns replay reads (costs as text, so D1's numbers stay exact).
const SELECT: &str = "SELECT id, ts_ms, rule_id, status, prompt_tokens, completion_tokens, cached_tokens, \
reasoning_tokens, CAST(cost_reporting_pico AS TEXT) AS cost_reporting_pico, reporting_currency, decision_attrs, \
images, audio_ms, characters FROM request_logs WHERE endpoint IS NOT NULL";

/// One logged request, as replay reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Row {
    pub id: String,
    pub ts_ms: i64,
    pub rule_id: Option<String>,
    pub status: i64,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    #[serde(deserialize_with = "text_or_number")]
    pub cost_reporting_pico: Option<String>,
    pub reporting_currency: Option<String>,
    pub decision_attrs: Option<String>,
    /// Images generated (`images` requests), audio transcribed (ms), characters spoken.
    pub images: Option<u64>,
    pub audio_ms: Option<u64>,
    pub characters: Option<u64>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// What the row's decision recorded: the attributes, the plan (targets in order) and the skipped targets.
#[derive(Deserialize)]
struct Decided {
    attrs: Attrs,
    #[serde(default)]
    plan: Vec<String>,
    #[serde(default)]
    skipped: Vec<String>,
}

/// The counts of a replay, and a sample of the requests that changed.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    pub rows: u64,
    pub replayed: u64,
    pub not_replayable: u64,
    pub changed_rule: u64,
    pub changed_target: u64,
    pub newly_denied: u64,
    pub no_longer_denied: u64,
    /// Per reporting currency: (before, after) in pico-units.
    pub cost: std::collections::BTreeMap<String, (u128, u128)>,
    /// Answered requests whose new first target has no price (their recorded cost is kept).
    pub unpriced: u64,
    pub sample: Vec<Value>,
}

/// A target's name for comparison: `requested` is what the request asked for.
fn name(target: &str, attrs: &Attrs) -> String {
    if target == "requested" {
        format!("{}:{}", attrs.provider, attrs.model)
    } else {
        target.to_owned()
    }
}

/// Decides `row` again with `policy` and adds the outcome to `report`; `sample` caps the changed requests kept.
pub fn replay_row(policy: &Policy, row: &Row, report: &mut Report, sample: usize) {
    report.rows += 1;
    let Some(decided) = row
        .decision_attrs
        .as_deref()
        .and_then(|d| serde_json::from_str::<Decided>(d).ok())
    else {
        report.not_replayable += 1;
        return;
    };
    report.replayed += 1;
    let mut attrs = decided.attrs;
    attrs.now_ms = row.ts_ms;
    let decision = policy.decide(&attrs);
    // The targets the gateway skipped for this request (capabilities, allow-lists, cooldowns) are skipped again.
    let skipped: Vec<&str> = decided
        .skipped
        .iter()
        .filter_map(|s| s.split(" (").next())
        .collect();
    let (new_target, new_denied) = match &decision.outcome {
        Outcome::Deny { .. } => (None, true),
        Outcome::Route { attempts, .. } => (
            attempts
                .iter()
                .map(|t| name(&t.to_string(), &attrs))
                .find(|t| !skipped.contains(&t.as_str())),
            false,
        ),
    };
    let old_target = decided.plan.first().map(|t| name(t, &attrs));
    let old_denied =
        old_target.is_none() && (400..500).contains(&row.status) && decided.plan.is_empty();
    let old_rule = row.rule_id.clone().unwrap_or_default();
    let rule_changed = old_rule != decision.rule;
    let target_changed = old_target != new_target;
    report.changed_rule += u64::from(rule_changed);
    report.changed_target += u64::from(target_changed);
    report.newly_denied += u64::from(new_denied && !old_denied);
    report.no_longer_denied += u64::from(old_denied && !new_denied);

    // Cost: the row's recorded cost before; after, the same usage at the new first target (nothing when the
    // candidate denies it).
    let currency = row
        .reporting_currency
        .clone()
        .unwrap_or_else(|| "USD".into());
    let before: u128 = row
        .cost_reporting_pico
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let answered = row.status < 400 && row.prompt_tokens.is_some();
    let after = if new_denied {
        0
    } else if !target_changed || !answered {
        before
    } else {
        let priced = new_target.as_deref().and_then(|t| {
            let (provider, model) = t.split_once(':')?;
            let book = policy.prices();
            let prompt = row.prompt_tokens.unwrap_or(0);
            let quote = book.quote(provider, model, row.ts_ms, prompt)?;
            let cost = quote.cost(Tokens {
                prompt,
                cached: row.cached_tokens.unwrap_or(0),
                cache_write: 0,
                completion: row.completion_tokens.unwrap_or(0),
                reasoning: row.reasoning_tokens.unwrap_or(0),
                images: row.images.unwrap_or(0),
                audio_ms: row.audio_ms.unwrap_or(0),
                characters: row.characters.unwrap_or(0),
            });
            book.convert(cost.pico, &cost.currency, &currency)
        });
        priced.unwrap_or_else(|| {
            report.unpriced += 1;
            before
        })
    };
    let sums = report.cost.entry(currency.clone()).or_default();
    sums.0 = sums.0.saturating_add(before);
    sums.1 = sums.1.saturating_add(after);

    if (rule_changed || target_changed) && report.sample.len() < sample {
        let side = |rule: &str, target: &Option<String>, denied: bool, pico: u128| json!({"rule": rule, "target": target, "denied": denied, "cost": format_pico(pico)});
        report.sample.push(json!({
            "id": row.id,
            "currency": currency,
            "before": side(&old_rule, &old_target, old_denied, before),
            "after": side(&decision.rule, &new_target, new_denied, after),
        }));
    }
}

fn time_bound(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .or_else(|| gateway_policy::prices::parse_date(s))
        .ok_or_else(|| format!("`{s}` is not Unix milliseconds or a YYYY-MM-DD date"))
}

/// The request id bound of a time (ids begin with the arrival time in hex).
fn id_bound(ms: i64) -> String {
    format!("req_{:012x}", (ms.max(0) as u64) & 0xffff_ffff_ffff)
}

/// Reads the rows of `source` in id order, handing each to `each`.
fn read(source: &LogSource, mut each: impl FnMut(Row)) -> Result<(), String> {
    let from = source.from.as_deref().map(time_bound).transpose()?;
    let to = source.to.as_deref().map(time_bound).transpose()?;
    let mut sql = SELECT.to_owned();
    if let Some(f) = from {
        sql.push_str(&format!(" AND id >= '{}'", id_bound(f)));
    }
    if let Some(t) = to {
        sql.push_str(&format!(" AND id < '{}'", id_bound(t)));
    }
    sql.push_str(" ORDER BY id");
    if let Some(db) = &source.db {
        return read_sqlite(db, &sql, each);
    }
    if let Some(path) = &source.jsonl {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let row: Row = serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
            let inside = from.is_none_or(|f| row.ts_ms >= f) && to.is_none_or(|t| row.ts_ms < t);
            if inside {
                each(row);
            }
        }
        return Ok(());
    }
    let Some(d1) = &source.d1 else {
        return Err(
            "say where the log is: --db FILE, --d1 DB (--local or --remote) or --jsonl FILE".into(),
        );
    };
    if source.local == source.remote {
        return Err("--d1 needs one of --local and --remote".into());
    }
    let wrangler = source.wrangler.as_deref().unwrap_or("npx wrangler");
    let mut parts = wrangler.split_whitespace();
    let program = parts.next().unwrap_or("npx");
    let mut cmd = std::process::Command::new(program);
    cmd.args(parts)
        .args(["d1", "execute", d1, "--json", "--command", &sql])
        .arg(if source.remote { "--remote" } else { "--local" });
    if let Some(p) = &source.persist_to {
        cmd.arg("--persist-to").arg(p);
    }
    let out = cmd.output().map_err(|e| format!("{wrangler}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "wrangler d1 execute failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let answer: Vec<Value> =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("wrangler's answer: {e}"))?;
    for result in answer {
        let rows = result
            .get("results")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        let rows: Vec<Row> = serde_json::from_value(rows).map_err(|e| format!("a D1 row: {e}"))?;
        rows.into_iter().for_each(&mut each);
    }
    Ok(())
}

fn read_sqlite(db: &Path, sql: &str, mut each: impl FnMut(Row)) -> Result<(), String> {
    let err = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(err)?;
    let mut stmt = conn.prepare(sql).map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let u = |v: Option<i64>| v.map(|n| n.max(0) as u64);
    while let Some(r) = rows.next().map_err(err)? {
        each(Row {
            id: r.get(0).map_err(err)?,
            ts_ms: r.get(1).map_err(err)?,
            rule_id: r.get(2).map_err(err)?,
            status: r.get(3).map_err(err)?,
            prompt_tokens: u(r.get(4).map_err(err)?),
            completion_tokens: u(r.get(5).map_err(err)?),
            cached_tokens: u(r.get(6).map_err(err)?),
            reasoning_tokens: u(r.get(7).map_err(err)?),
            cost_reporting_pico: r.get(8).map_err(err)?,
            reporting_currency: r.get(9).map_err(err)?,
            decision_attrs: r.get(10).map_err(err)?,
            images: u(r.get(11).map_err(err)?),
            audio_ms: u(r.get(12).map_err(err)?),
            characters: u(r.get(13).map_err(err)?),
        });
    }
    Ok(())
}

pub fn run(
    sources: &Sources,
    log: &LogSource,
    sample: usize,
    format: Format,
) -> Result<bool, String> {
    let Some(policy) = super::policy(sources)? else {
        return Ok(false);
    };
    let started = std::time::Instant::now();
    let mut report = Report::default();
    read(log, |row| replay_row(&policy, &row, &mut report, sample))?;
    let seconds = started.elapsed().as_secs_f64();
    let prompt_text = policy.tests(&FieldId::Prompt) || policy.tests(&FieldId::System);
    let costs: Vec<Value> = report
        .cost
        .iter()
        .map(|(c, (before, after))| {
            let (sign, diff) = if after >= before {
                ("", after - before)
            } else {
                ("-", before - after)
            };
            json!({"currency": c, "before": format_pico(*before), "after": format_pico(*after),
                   "difference": format!("{sign}{}", format_pico(diff))})
        })
        .collect();
    if format == Format::Human {
        for s in &report.sample {
            let side = |v: &Value| {
                if v["denied"] == true {
                    format!("`{}` deny", v["rule"].as_str().unwrap_or(""))
                } else {
                    format!(
                        "`{}` {}",
                        v["rule"].as_str().unwrap_or(""),
                        v["target"].as_str().unwrap_or("-")
                    )
                }
            };
            say!(
                "{}: {}  ⇒  {}  ({} → {} {})",
                s["id"].as_str().unwrap_or(""),
                side(&s["before"]),
                side(&s["after"]),
                s["before"]["cost"].as_str().unwrap_or(""),
                s["after"]["cost"].as_str().unwrap_or(""),
                s["currency"].as_str().unwrap_or("")
            );
        }
        say!(
            "replayed {} of {} logged request(s) with policy {} in {seconds:.2} s ({} without decision attributes)",
            report.replayed, report.rows, policy.hash().get(..12).unwrap_or(policy.hash()), report.not_replayable
        );
        say!("  rule changes: {}   first-target changes: {}   newly denied: {}   no longer denied: {}",
            report.changed_rule, report.changed_target, report.newly_denied, report.no_longer_denied);
        for c in &costs {
            say!(
                "  cost ({}): {} before, {} after, {} difference",
                c["currency"].as_str().unwrap_or(""),
                c["before"].as_str().unwrap_or(""),
                c["after"].as_str().unwrap_or(""),
                c["difference"].as_str().unwrap_or("")
            );
        }
        if report.unpriced > 0 {
            say!(
                "  {} answered request(s) would go to a target without a price (their cost kept)",
                report.unpriced
            );
        }
        if prompt_text {
            say!("  note: the policy tests prompt or system text, which the log never holds: replayed as empty text");
        }
    } else {
        let out = json!({
            "policy": policy.hash(), "rows": report.rows, "replayed": report.replayed,
            "not_replayable": report.not_replayable, "changed_rule": report.changed_rule,
            "changed_first_target": report.changed_target, "newly_denied": report.newly_denied,
            "no_longer_denied": report.no_longer_denied, "cost": costs, "unpriced": report.unpriced,
            "tests_prompt_text": prompt_text, "seconds": seconds, "sample": report.sample,
        });
        say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    Ok(true)
}
