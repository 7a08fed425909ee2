//! The request log, read: `GET /admin/logs` (newest first, filtered, paginated on the time-ordered request id) and
//! `GET /admin/logs/{id}` (one request with its attempts and what decided it). The SQL runs through the
//! `UsageStore` port (D1 / SQLite), on the primary key (ids begin with the arrival time) and the indexes by key
//! and team, which end with the id so that each filter reads its newest rows first.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::log::{id_floor, SqlValue};
use crate::usage::{query_pairs, time_param};

/// The columns of a list entry, in order.
const LIST: &[&str] = &[
    "id",
    "ts_ms",
    "key_id",
    "team",
    "method",
    "path",
    "endpoint",
    "requested_model",
    "provider",
    "model",
    "status",
    "error_code",
    "stream",
    "attempts",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "truncated",
    "policy_hash",
    "rule_id",
    "cost_pico",
    "cost_currency",
    "cost_reporting_pico",
    "reporting_currency",
    "cost_estimated",
    "limited_by",
    "cache",
    "cache_saved_pico",
    "archive",
    "images",
    "audio_ms",
    "characters",
];

/// Columns a detail adds (JSON text, parsed in the answer).
const DETAIL: &[&str] = &["attempt_log", "decision_attrs"];

const MAX_LIMIT: i64 = 200;

/// What a log listing asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogQuery {
    pub limit: i64,
    /// Only requests older than this id (the previous page's `next`).
    pub before: Option<String>,
    pub filters: Vec<(&'static str, SqlValue)>,
    /// `status=error`: every status from 400 on.
    pub errors_only: bool,
    /// `endpoint=api`: the API's traffic only (chat, messages, responses, embeddings, images, models), not the gateway's own endpoints.
    pub api_only: bool,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl LogQuery {
    /// `limit` (1–200, default 50), `before`, `key`, `team`, `provider`, `model`, `rule`, `endpoint` (`chat`,
    /// `messages`, `responses`, `embeddings`, `images`, `models`, or `api` for all of them), `status` (a number or
    /// `error`), `from`, `to` (dates, UTC times or milliseconds).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut q = LogQuery {
            limit: 50,
            ..LogQuery::default()
        };
        for (k, v) in query_pairs(query) {
            let bad = |what: &str| {
                ApiError::invalid_request(format!("`{k}` {what}, got `{v}`")).with_param(k)
            };
            match k {
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad("must be 1 to 200"))?
                }
                "before" => q.before = Some(v),
                "key" => q.filters.push(("key_id", SqlValue::Text(v))),
                "team" => q.filters.push(("team", SqlValue::Text(v))),
                "provider" => q.filters.push(("provider", SqlValue::Text(v))),
                "model" => q.filters.push(("model", SqlValue::Text(v))),
                "rule" => q.filters.push(("rule_id", SqlValue::Text(v))),
                "endpoint" if v == "api" => q.api_only = true,
                "endpoint" => q.filters.push(("endpoint", SqlValue::Text(v))),
                "status" if v == "error" => q.errors_only = true,
                "status" => q.filters.push((
                    "status",
                    SqlValue::Integer(
                        v.parse()
                            .ok()
                            .filter(|s| (100..=599).contains(s))
                            .ok_or_else(|| bad("must be an HTTP status or `error`"))?,
                    ),
                )),
                "from" => q.from_ms = Some(time_param(k, &v)?),
                "to" => q.to_ms = Some(time_param(k, &v)?),
                other => {
                    return Err(ApiError::invalid_request(format!(
                        "unknown parameter `{other}` (limit, before, key, team, provider, model, rule, endpoint, status, from, to)"
                    ))
                    .with_param(other))
                }
            }
        }
        Ok(q)
    }

    /// The query, newest first: ids begin with the arrival time, so `id < before` pages back in time.
    pub fn sql(&self) -> (String, Vec<SqlValue>) {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        let mut bind = |clause: String, v: SqlValue, params: &mut Vec<SqlValue>| {
            params.push(v);
            clauses.push(clause.replace('?', &format!("?{}", params.len())));
        };
        for (column, v) in &self.filters {
            bind(format!("{column} = ?"), v.clone(), &mut params);
        }
        if let Some(b) = &self.before {
            bind("id < ?".into(), SqlValue::Text(b.clone()), &mut params);
        }
        // A time range is a range of ids (they begin with the arrival time): the primary key finds it in order.
        if let Some(f) = self.from_ms {
            bind("id >= ?".into(), SqlValue::Text(id_floor(f)), &mut params);
        }
        if let Some(t) = self.to_ms {
            bind("id < ?".into(), SqlValue::Text(id_floor(t)), &mut params);
        }
        if self.errors_only {
            clauses.push("status >= 400".into());
        }
        if self.api_only {
            clauses.push("endpoint IS NOT NULL".into());
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        params.push(SqlValue::Integer(self.limit));
        (
            format!(
                "SELECT {} FROM request_logs{filter} ORDER BY id DESC LIMIT ?{}",
                columns(LIST),
                params.len()
            ),
            params,
        )
    }
}

/// The query of one request's row.
pub fn detail_sql(id: &str) -> (String, Vec<SqlValue>) {
    let all: Vec<&str> = LIST.iter().chain(DETAIL).copied().collect();
    (
        format!("SELECT {} FROM request_logs WHERE id = ?1", columns(&all)),
        vec![SqlValue::Text(id.to_owned())],
    )
}

/// Costs are read as text so that D1's JavaScript numbers keep them exact.
fn columns(names: &[&str]) -> String {
    names
        .iter()
        .map(|c| {
            if c.ends_with("_pico") {
                format!("CAST({c} AS TEXT)")
            } else {
                (*c).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry(names: &[&str], row: Vec<SqlValue>) -> Map<String, Value> {
    let mut m = Map::new();
    for (name, v) in names.iter().zip(row) {
        let value = match v {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(i) => json!(i),
            SqlValue::Real(f) => json!(f),
            SqlValue::Text(s) if DETAIL.contains(name) => {
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            }
            SqlValue::Text(s) => Value::String(s),
        };
        m.insert((*name).to_owned(), value);
    }
    m
}

/// A page of entries, and the `before` of the next page (none when this one is not full).
pub fn render_list(query: &LogQuery, rows: Vec<Vec<SqlValue>>) -> Value {
    let full = rows.len() as i64 == query.limit;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|r| Value::Object(entry(LIST, r)))
        .collect();
    let next = if full {
        data.last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned)
    } else {
        None
    };
    json!({"object": "list", "data": data, "next": next})
}

/// One request, or `None` when there is no such row.
pub fn render_detail(rows: Vec<Vec<SqlValue>>) -> Option<Value> {
    let all: Vec<&str> = LIST.iter().chain(DETAIL).copied().collect();
    let row = rows.into_iter().next()?;
    Some(Value::Object(entry(&all, row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_pages_and_limits_become_bound_parameters() {
        let q =
            LogQuery::parse("team=research&status=error&before=req_0190&limit=20&from=2026-12-01")
                .unwrap();
        let (sql, params) = q.sql();
        assert!(
            sql.contains("WHERE team = ?1 AND id < ?2 AND id >= ?3 AND status >= 400"),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY id DESC LIMIT ?4"), "{sql}");
        assert_eq!(params.len(), 4);
        assert_eq!(params[3], SqlValue::Integer(20));
        // 2026-12-01T00:00:00Z = 1,796,083,200,000 ms.
        assert_eq!(
            params[2],
            SqlValue::Text(format!("req_{:012x}", 1_796_083_200_000_u64))
        );
        assert!(sql.contains("CAST(cost_pico AS TEXT)"));
        for bad in [
            "limit=0",
            "limit=500",
            "status=teapot",
            "from=yesterday",
            "colour=red",
        ] {
            assert!(LogQuery::parse(bad).is_err(), "{bad}");
        }
        let (sql, _) = LogQuery::parse("endpoint=api").unwrap().sql();
        assert!(sql.contains("WHERE endpoint IS NOT NULL"), "{sql}");
        let (sql, params) = LogQuery::parse("endpoint=chat").unwrap().sql();
        assert!(sql.contains("WHERE endpoint = ?1") && params[0] == SqlValue::Text("chat".into()));
        // A value is a parameter, never SQL.
        let (sql, params) = LogQuery::parse("key=x'%20OR%201=1--").unwrap().sql();
        assert!(!sql.contains("OR 1=1"));
        assert_eq!(params[0], SqlValue::Text("x' OR 1=1--".into()));
    }

    #[test]
    fn a_full_page_names_the_next_one() {
        let q = LogQuery::parse("limit=1").unwrap();
        let mut row = vec![SqlValue::Null; LIST.len()];
        row[0] = SqlValue::Text("req_01".into());
        assert_eq!(render_list(&q, vec![row.clone()])["next"], "req_01");
        assert_eq!(
            render_list(&LogQuery::parse("limit=2").unwrap(), vec![row])["next"],
            Value::Null
        );
        let mut detail = vec![SqlValue::Null; LIST.len() + 2];
        detail[LIST.len()] = SqlValue::Text(r#"[{"provider":"openai"}]"#.into());
        let d = render_detail(vec![detail]).unwrap();
        assert_eq!(d["attempt_log"][0]["provider"], "openai");
    }
}
