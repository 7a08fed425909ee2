//! The usage report (`GET /admin/usage`, `gateway usage`): sums of `usage_rollups` over a time range, grouped by
//! key, team, provider, model, rule, hour or day, with latency and time-to-first-token percentiles read from the
//! summed histograms. Pure: a host (or the CLI) runs the SQL [`UsageQuery::sql`] builds and hands the rows to
//! [`render`].

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::log::SqlValue;
use crate::rollup::{BUCKETS, LATENCY_BOUNDS_MS};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Without `from`: the last seven days.
const DEFAULT_SPAN_MS: i64 = 7 * DAY_MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Key,
    Team,
    Provider,
    Model,
    Rule,
    Hour,
    Day,
}

impl Group {
    const ALL: [(&'static str, Group); 7] = [
        ("key", Group::Key),
        ("team", Group::Team),
        ("provider", Group::Provider),
        ("model", Group::Model),
        ("rule", Group::Rule),
        ("hour", Group::Hour),
        ("day", Group::Day),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, g)| *g == self)
            .map_or("", |(n, _)| n)
    }

    fn expr(self) -> &'static str {
        match self {
            Group::Key => "key_id",
            Group::Team => "team",
            Group::Provider => "provider",
            Group::Model => "model",
            Group::Rule => "rule_id",
            Group::Hour => "start_ms",
            Group::Day => "(start_ms / 86400000) * 86400000",
        }
    }
}

/// What a usage report covers: `[from_ms, to_ms)` in whole hours, and how it is grouped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub group_by: Vec<Group>,
    pub csv: bool,
}

/// The latest time a report can name (9999-12-31T23:59:59Z): arithmetic on the range cannot overflow.
const MAX_MS: i64 = 253_402_300_799_999;

/// `2026-12-01`, `2026-12-01T08:00:00Z` or milliseconds since the epoch (0 to year 9999).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return (0..=MAX_MS).contains(&ms).then_some(ms);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let day = gateway_policy::prices::parse_date(date)?;
    let mut ms = day * DAY_MS;
    if let Some(t) = time {
        let mut parts = t.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next().unwrap_or("0").parse().ok()?;
        let sec: i64 = parts.next().unwrap_or("0").parse().ok()?;
        if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&sec) {
            return None;
        }
        ms += ((h * 60 + m) * 60 + sec) * 1000;
    }
    Some(ms)
}

/// A query string's parameters, their values percent-decoded.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, String)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k, percent_decode(v))
    })
}

/// The time parameter `k` (see [`parse_time`]), or the 400 that says what it takes.
pub(crate) fn time_param(k: &str, v: &str) -> Result<i64, ApiError> {
    parse_time(v).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "`{k}` must be a date (2026-12-01), a UTC time (2026-12-01T08:00:00Z) or milliseconds, got `{v}`"
        ))
        .with_param(k)
    })
}

/// `2026-12-01T08:00:00Z`.
pub fn format_time(ms: i64) -> String {
    let (y, m, d) = gateway_policy::prices::civil_from_days(ms.div_euclid(DAY_MS));
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl UsageQuery {
    /// From a query string: `from`, `to` (default: the last seven days up to now), `group_by` (a comma list of
    /// key, team, provider, model, rule, hour, day), `format` (`json` or `csv`).
    pub fn parse(query: &str, now_ms: i64) -> Result<Self, ApiError> {
        let mut from = None;
        let mut to = None;
        let mut group_by = Vec::new();
        let mut csv = false;
        for (k, v) in query_pairs(query) {
            match k {
                "from" => from = Some(time_param(k, &v)?),
                "to" => to = Some(time_param(k, &v)?),
                "group_by" => {
                    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        let Some((_, g)) = Group::ALL.iter().find(|(n, _)| *n == name) else {
                            return Err(ApiError::invalid_request(format!(
                                "`group_by` takes key, team, provider, model, rule, hour and day, got `{name}`"
                            ))
                            .with_param("group_by"));
                        };
                        if !group_by.contains(g) {
                            group_by.push(*g);
                        }
                    }
                }
                "format" => match v.as_str() {
                    "json" => csv = false,
                    "csv" => csv = true,
                    other => {
                        return Err(ApiError::invalid_request(format!(
                            "`format` is json or csv, got `{other}`"
                        ))
                        .with_param("format"))
                    }
                },
                other => {
                    return Err(ApiError::invalid_request(format!(
                        "unknown parameter `{other}` (from, to, group_by, format)"
                    ))
                    .with_param(other))
                }
            }
        }
        // Rollups hold whole hours: the range is widened to them.
        let to_ms = to.unwrap_or(now_ms).clamp(0, MAX_MS);
        let to_ms = to_ms.div_euclid(HOUR_MS) * HOUR_MS
            + if to_ms.rem_euclid(HOUR_MS) == 0 {
                0
            } else {
                HOUR_MS
            };
        let from_ms = from.unwrap_or(to_ms - DEFAULT_SPAN_MS).div_euclid(HOUR_MS) * HOUR_MS;
        if from_ms >= to_ms {
            return Err(
                ApiError::invalid_request("`from` must come before `to`").with_param("from")
            );
        }
        Ok(Self {
            from_ms,
            to_ms,
            group_by,
            csv,
        })
    }

    /// The query on `usage_rollups`: day rows when the range is whole days and nothing is grouped by hour (fewer
    /// rows), else hour rows; the same sums either way. Columns: the groups, the reporting currency, the sums
    /// (the cost as text: exact past 2⁵³ on D1 too), the latency then the time-to-first-token buckets.
    pub fn sql(&self) -> (String, Vec<SqlValue>) {
        let whole_days = self.from_ms % DAY_MS == 0 && self.to_ms % DAY_MS == 0;
        let period = if whole_days && !self.group_by.contains(&Group::Hour) {
            "day"
        } else {
            "hour"
        };
        let mut select: Vec<String> = self.group_by.iter().map(|g| g.expr().to_owned()).collect();
        select.push("reporting_currency".into());
        let group = select.join(", ");
        let mut sums = vec![
            "SUM(requests)".to_owned(),
            "SUM(errors)".into(),
            "SUM(prompt_tokens)".into(),
            "SUM(cached_tokens)".into(),
            "SUM(completion_tokens)".into(),
            "SUM(reasoning_tokens)".into(),
            "CAST(SUM(cost_reporting_pico) AS TEXT)".into(),
            "SUM(estimated)".into(),
        ];
        sums.extend((0..BUCKETS).map(|i| format!("SUM(lat_{i})")));
        sums.extend((0..BUCKETS).map(|i| format!("SUM(ttft_{i})")));
        let sql = format!(
            "SELECT {group}, {} FROM usage_rollups WHERE period = ?1 AND start_ms >= ?2 AND start_ms < ?3 \
             GROUP BY {group} ORDER BY {group}",
            sums.join(", ")
        );
        (
            sql,
            vec![
                SqlValue::Text(period.into()),
                SqlValue::Integer(self.from_ms),
                SqlValue::Integer(self.to_ms),
            ],
        )
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One group's sums.
#[derive(Default)]
struct Sums {
    counts: [u64; 6],
    cost_pico: u128,
    estimated: u64,
    latency: [u64; BUCKETS],
    ttft: [u64; BUCKETS],
}

/// The counts a report gives as numbers: the rollups' first six sums (the cost and the estimated count follow).
fn counts() -> &'static [&'static str] {
    &crate::rollup::SUM_COLUMNS[..6]
}

impl Sums {
    fn from_row(values: &[SqlValue]) -> Self {
        let int = |v: Option<&SqlValue>| match v {
            Some(SqlValue::Integer(n)) => (*n).max(0) as u64,
            Some(SqlValue::Real(f)) => f.max(0.0) as u64,
            Some(SqlValue::Text(t)) => t.parse().unwrap_or(0),
            _ => 0,
        };
        let mut s = Sums::default();
        for (i, c) in s.counts.iter_mut().enumerate() {
            *c = int(values.get(i));
        }
        s.cost_pico = match values.get(6) {
            Some(SqlValue::Text(t)) => t.parse().unwrap_or(0),
            Some(SqlValue::Integer(n)) => (*n).max(0) as u128,
            _ => 0,
        };
        s.estimated = int(values.get(7));
        for i in 0..BUCKETS {
            s.latency[i] = int(values.get(8 + i));
            s.ttft[i] = int(values.get(8 + BUCKETS + i));
        }
        s
    }

    fn add(&mut self, o: &Sums) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.cost_pico += o.cost_pico;
        self.estimated += o.estimated;
        for i in 0..BUCKETS {
            self.latency[i] += o.latency[i];
            self.ttft[i] += o.ttft[i];
        }
    }

    fn json(&self, currency: &str) -> Map<String, Value> {
        let mut m = Map::new();
        for (name, n) in counts().iter().zip(self.counts) {
            m.insert((*name).into(), json!(n));
        }
        m.insert(
            "cost".into(),
            json!(gateway_policy::prices::format_pico(self.cost_pico)),
        );
        m.insert("cost_pico".into(), json!(self.cost_pico.to_string()));
        m.insert("currency".into(), json!(currency));
        m.insert("estimated".into(), json!(self.estimated));
        m.insert("latency_ms".into(), percentiles(&self.latency));
        m.insert("ttft_ms".into(), percentiles(&self.ttft));
        m
    }
}

/// p50, p95 and p99 as the upper bound of the bucket each falls in (`null` past the last bound, or with no
/// requests).
fn percentiles(h: &[u64; BUCKETS]) -> Value {
    let total: u64 = h.iter().sum();
    let at = |q: f64| -> Value {
        if total == 0 {
            return Value::Null;
        }
        let rank = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in h.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_MS
                    .get(i)
                    .map_or(Value::Null, |b| json!(*b as u64));
            }
        }
        Value::Null
    };
    json!({"p50": at(0.50), "p95": at(0.95), "p99": at(0.99)})
}

/// The report for `rows` (as [`UsageQuery::sql`] selects them): JSON, or CSV with `format=csv`.
pub fn render(q: &UsageQuery, rows: &[Vec<SqlValue>]) -> (&'static str, Vec<u8>) {
    let n = q.group_by.len();
    let mut groups = Vec::new();
    let mut totals: Vec<(String, Sums)> = Vec::new();
    for row in rows {
        let mut keys = Map::new();
        for (i, g) in q.group_by.iter().enumerate() {
            let v = match (g, row.get(i)) {
                (Group::Hour | Group::Day, Some(SqlValue::Integer(ms))) => json!(format_time(*ms)),
                (Group::Hour | Group::Day, Some(SqlValue::Real(ms))) => {
                    json!(format_time(*ms as i64))
                }
                (_, Some(SqlValue::Text(t))) => json!(t),
                _ => json!(""),
            };
            keys.insert(g.name().into(), v);
        }
        let currency = match row.get(n) {
            Some(SqlValue::Text(t)) => t.clone(),
            _ => String::new(),
        };
        let sums = Sums::from_row(row.get(n + 1..).unwrap_or_default());
        match totals.iter_mut().find(|(c, _)| *c == currency) {
            Some((_, t)) => t.add(&sums),
            None => {
                let mut t = Sums::default();
                t.add(&sums);
                totals.push((currency.clone(), t));
            }
        }
        let mut m = keys;
        m.extend(sums.json(&currency));
        groups.push(Value::Object(m));
    }
    if q.csv {
        return ("text/csv; charset=utf-8", csv(q, &groups));
    }
    let totals: Vec<Value> = totals
        .iter()
        .map(|(c, s)| Value::Object(s.json(c)))
        .collect();
    let body = json!({
        "from": format_time(q.from_ms),
        "to": format_time(q.to_ms),
        "group_by": q.group_by.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "rows": groups,
        "totals": totals,
    });
    (
        crate::http::JSON,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn csv(q: &UsageQuery, groups: &[Value]) -> Vec<u8> {
    let mut columns: Vec<&str> = q.group_by.iter().map(|g| g.name()).collect();
    columns.extend(counts());
    columns.extend(["cost", "currency", "estimated"]);
    let percentile_columns = [
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "ttft_p99_ms",
    ];
    let mut out = columns
        .iter()
        .chain(&percentile_columns)
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for g in groups {
        let mut cells: Vec<String> = columns.iter().map(|c| cell(&g[*c])).collect();
        for (h, p) in [
            ("latency_ms", "p50"),
            ("latency_ms", "p95"),
            ("latency_ms", "p99"),
            ("ttft_ms", "p50"),
            ("ttft_ms", "p95"),
            ("ttft_ms", "p99"),
        ] {
            cells.push(cell(&g[h][p]));
        }
        let _ = writeln!(out, "{}", cells.join(","));
    }
    out.into_bytes()
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn cell(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_parsed_and_widened_to_whole_hours() {
        let now = parse_time("2026-12-01T10:30:00Z").unwrap();
        let q =
            UsageQuery::parse("from=2026-11-30&group_by=team,provider&format=csv", now).unwrap();
        assert_eq!(
            (q.from_ms, q.to_ms),
            (parse_time("2026-11-30").unwrap(), now + 1_800_000)
        );
        assert_eq!(q.group_by, [Group::Team, Group::Provider]);
        assert!(q.csv);
        let (sql, params) = q.sql();
        assert!(
            sql.starts_with("SELECT team, provider, reporting_currency, SUM(requests)"),
            "{sql}"
        );
        assert_eq!(params[0], SqlValue::Text("hour".into()));
        let days = UsageQuery::parse("from=2026-11-01&to=2026-12-01&group_by=day", now).unwrap();
        assert_eq!(days.sql().1[0], SqlValue::Text("day".into()));
        for bad in [
            "group_by=colour",
            "from=yesterday",
            "format=xml",
            "limit=5",
            "from=2026-12-02&to=2026-12-01",
            "to=9223372036854775807",
            "from=-9223372036854775808",
        ] {
            assert!(UsageQuery::parse(bad, now).is_err(), "{bad}");
        }
        assert_eq!(
            format_time(parse_time("2027-01-05T13:30:00Z").unwrap()),
            "2027-01-05T13:30:00Z"
        );
        assert_eq!(percent_decode("team%2Cprovider"), "team,provider");
    }

    #[test]
    fn reports_sum_groups_and_read_percentiles() {
        let q = UsageQuery::parse("from=2026-12-01&to=2026-12-02&group_by=provider", 0).unwrap();
        let row = |provider: &str, requests: i64, pico: &str| {
            let mut r = vec![
                SqlValue::Text(provider.into()),
                SqlValue::Text("USD".into()),
                SqlValue::Integer(requests),
                SqlValue::Integer(0),
                SqlValue::Integer(100),
                SqlValue::Integer(40),
                SqlValue::Integer(50),
                SqlValue::Integer(5),
                SqlValue::Text(pico.into()),
                SqlValue::Integer(0),
            ];
            // Every request in the 250 ms bucket; none streamed.
            r.extend((0..BUCKETS).map(|i| SqlValue::Integer(if i == 4 { requests } else { 0 })));
            r.extend((0..BUCKETS).map(|_| SqlValue::Integer(0)));
            r
        };
        let rows = vec![
            row("deepseek", 3, "2424000000"),
            row("openai", 2, "9007199254740993"),
        ];
        let (_, body) = render(&q, &rows);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["rows"][0]["provider"], "deepseek");
        assert_eq!(v["rows"][0]["cost"], "0.002424");
        assert_eq!(v["rows"][0]["latency_ms"]["p95"], 250);
        assert_eq!(v["rows"][0]["ttft_ms"]["p50"], Value::Null);
        // Past 2^53 pico-dollars the total stays exact.
        assert_eq!(v["totals"][0]["cost_pico"], "9007201678740993");
        assert_eq!(v["totals"][0]["requests"], 5);
        let (kind, csv) = render(&UsageQuery { csv: true, ..q }, &rows);
        assert!(kind.starts_with("text/csv"));
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with("provider,requests,errors,"), "{csv}");
        assert!(
            csv.contains("\ndeepseek,3,0,100,40,50,5,0.002424,USD,0,250,250,250,,,\n"),
            "{csv}"
        );
    }
}
