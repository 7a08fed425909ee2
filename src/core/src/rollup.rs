//! Rollups: the log summed per hour and per day × key × team × provider × model × rule (table `usage_rollups`,
//! migrations/0005_cost.sql), added to as rows are written — natively per batch of rows, on Workers with each
//! row in one D1 batch — so usage reports read sums, never the raw log. A rollup's totals are the sums of the rows
//! it covers, by construction: each row is added once, to its hour and its day, in the transaction that writes it.

use std::collections::BTreeMap;

use crate::log::{LogRecord, SqlValue};

/// Everything a batch of rows writes, in order: each row's insert, then the batch's rollups. Both hosts run
/// these in one transaction (a SQLite transaction natively, a D1 batch on Workers), so the rollups never
/// disagree with the rows.
pub fn write_statements(rows: &[LogRecord]) -> Vec<(String, Vec<SqlValue>)> {
    let mut rollups = Rollups::default();
    let mut out = Vec::with_capacity(rows.len() + 2);
    for rec in rows {
        out.push((crate::log::INSERT_SQL.to_owned(), rec.sql_params()));
        rollups.add(rec);
    }
    let upsert = upsert_sql();
    out.extend(
        rollups
            .statements()
            .into_iter()
            .map(|p| (upsert.clone(), p)),
    );
    out
}

/// Upper bounds (ms) of the latency and time-to-first-token buckets; a 13th bucket takes the rest.
pub const LATENCY_BOUNDS_MS: [f64; 12] = [
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
];
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A group of one hour; its sums are added to its hour's row and to its day's row by one statement.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    hour_ms: i64,
    key_id: String,
    team: String,
    provider: String,
    model: String,
    rule_id: String,
    reporting_currency: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Sums {
    requests: u64,
    errors: u64,
    prompt: u64,
    cached: u64,
    completion: u64,
    reasoning: u64,
    cost_reporting_pico: u64,
    estimated: u64,
    latency: [u64; BUCKETS],
    ttft: [u64; BUCKETS],
}

/// Rows summed by hour and group, ready to be added to `usage_rollups` (each hour's sums to its hour and its day:
/// the upserts add, so a day's row is the sum of its hours).
#[derive(Debug, Default)]
pub struct Rollups(BTreeMap<Key, Sums>);

/// The bucket a duration falls in.
pub fn bucket(ms: f64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(BUCKETS - 1)
}

impl Rollups {
    /// Adds a row of the API's traffic (chat, messages, responses, embeddings, images, models: rows with an `endpoint`). The gateway's own
    /// endpoints (health, the admin API and the console that calls it, unknown paths) stay in the log but are
    /// not usage, so a dashboard's request counts are the apps' requests.
    pub fn add(&mut self, rec: &LogRecord) {
        if rec.endpoint.is_none() {
            return;
        }
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let usage = rec.usage.unwrap_or_default();
        let key = Key {
            hour_ms: rec.ts_ms.div_euclid(HOUR_MS) * HOUR_MS,
            key_id: text(&rec.key_id),
            team: text(&rec.team),
            provider: text(&rec.provider),
            model: text(&rec.model),
            rule_id: text(&rec.rule_id),
            reporting_currency: text(&rec.reporting_currency),
        };
        let s = self.0.entry(key).or_default();
        // Token counts come from providers: sums saturate rather than overflow.
        let add = |sum: &mut u64, n: u64| *sum = sum.saturating_add(n);
        add(&mut s.requests, 1);
        add(&mut s.errors, u64::from(rec.status >= 400));
        add(&mut s.prompt, usage.prompt_tokens);
        add(&mut s.cached, usage.cached_tokens.unwrap_or(0));
        add(&mut s.completion, usage.completion_tokens);
        add(&mut s.reasoning, usage.reasoning_tokens.unwrap_or(0));
        if let Some(c) = &rec.cost {
            add(&mut s.cost_reporting_pico, c.reporting_pico.unwrap_or(0));
            add(&mut s.estimated, u64::from(c.estimated));
        }
        s.latency[bucket(rec.latency_ms)] += 1;
        if let Some(t) = rec.ttft_ms {
            s.ttft[bucket(t)] += 1;
        }
    }

    /// One [`upsert_sql`] parameter list per hour and group: the hour's start, its day's start, the group, the
    /// sums.
    pub fn statements(&self) -> Vec<Vec<SqlValue>> {
        let int = |n: u64| SqlValue::Integer(n.min(i64::MAX as u64) as i64);
        let text = |s: &str| SqlValue::Text(s.to_owned());
        self.0
            .iter()
            .map(|(k, s)| {
                let mut p = vec![
                    SqlValue::Integer(k.hour_ms),
                    SqlValue::Integer(k.hour_ms.div_euclid(DAY_MS) * DAY_MS),
                    text(&k.key_id),
                    text(&k.team),
                    text(&k.provider),
                    text(&k.model),
                    text(&k.rule_id),
                    text(&k.reporting_currency),
                    int(s.requests),
                    int(s.errors),
                    int(s.prompt),
                    int(s.cached),
                    int(s.completion),
                    int(s.reasoning),
                    int(s.cost_reporting_pico),
                    int(s.estimated),
                ];
                p.extend(s.latency.iter().chain(&s.ttft).map(|n| int(*n)));
                p
            })
            .collect()
    }
}

const KEY_COLUMNS: [&str; 8] = [
    "period",
    "start_ms",
    "key_id",
    "team",
    "provider",
    "model",
    "rule_id",
    "reporting_currency",
];
/// The summed counters, in the order the upsert and the usage report list them.
pub(crate) const SUM_COLUMNS: [&str; 8] = [
    "requests",
    "errors",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_reporting_pico",
    "estimated",
];

/// The columns that are summed: the counters, then `lat_0…lat_12`, then `ttft_0…ttft_12`.
pub fn sum_columns() -> Vec<String> {
    SUM_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain((0..BUCKETS).map(|i| format!("lat_{i}")))
        .chain((0..BUCKETS).map(|i| format!("ttft_{i}")))
        .collect()
}

/// Adds one hour's group sums to its row of `usage_rollups` and to its day's row (inserting them if they are the
/// first): one statement, its parameters bound once for both rows.
pub fn upsert_sql() -> String {
    let sums = sum_columns();
    let columns: Vec<String> = KEY_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(sums.iter().cloned())
        .collect();
    // ?1 the hour's start, ?2 the day's, ?3… the group's text columns, then the sums. Integers stay integers
    // whatever the driver binds (D1 binds JavaScript numbers): sums are exact.
    let group = KEY_COLUMNS.len() - 2;
    let rest: Vec<String> = (0..group)
        .map(|i| format!("?{}", i + 3))
        .chain((0..sums.len()).map(|i| format!("CAST(?{} AS INTEGER)", i + 3 + group)))
        .collect();
    let rest = rest.join(", ");
    let updates: Vec<String> = sums
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO usage_rollups ({}) VALUES ('hour', CAST(?1 AS INTEGER), {rest}), \
         ('day', CAST(?2 AS INTEGER), {rest}) ON CONFLICT ({}) DO UPDATE SET {}",
        columns.join(", "),
        KEY_COLUMNS.join(", "),
        updates.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{CostRecord, Usage};

    #[test]
    fn rows_are_summed_per_hour_and_day() {
        let row = |ts_ms: i64, status: u16, pico: u64| LogRecord {
            ts_ms,
            status,
            endpoint: Some("chat"),
            key_id: Some("key_1".into()),
            provider: Some("deepseek".into()),
            model: Some("deepseek-flash".into()),
            reporting_currency: Some("USD".into()),
            latency_ms: 120.0,
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_tokens: Some(4),
                ..Usage::default()
            }),
            cost: Some(CostRecord {
                pico,
                reporting_pico: Some(pico),
                ..CostRecord::default()
            }),
            ..LogRecord::default()
        };
        let mut r = Rollups::default();
        r.add(&row(HOUR_MS + 5, 200, 7));
        r.add(&row(HOUR_MS + 9, 502, 0));
        r.add(&row(2 * HOUR_MS, 200, 11));
        // The gateway's own endpoints (health, admin) are not usage.
        r.add(&LogRecord {
            endpoint: None,
            ..row(HOUR_MS + 7, 200, 0)
        });
        let st = r.statements();
        // Two hours of one day: each statement adds to its hour and to the day.
        assert_eq!(st.len(), 2);
        assert_eq!(st[0][..2], [HOUR_MS, 0].map(SqlValue::Integer));
        assert_eq!(st[1][..2], [2 * HOUR_MS, 0].map(SqlValue::Integer));
        assert_eq!(
            st[0][8..16],
            [2, 1, 20, 8, 10, 0, 7, 0].map(SqlValue::Integer)
        );
        // 120 ms falls in the 250 ms bucket (index 4).
        assert_eq!(st[0][16 + 4], SqlValue::Integer(2));
        let sql = upsert_sql();
        // Every parameter but the two starts is named twice (the hour's row and the day's).
        assert_eq!(sql.matches('?').count(), 2 * st[0].len() - 2);
        assert!(sql.contains("CAST(?9 AS INTEGER)") && sql.contains(", ?3,"));
        assert!(sql.contains("('day', CAST(?2 AS INTEGER), ?3,"));
        assert!(sql.contains("lat_12 = lat_12 + excluded.lat_12"));
    }
}
