//! Prometheus metrics of the native host, served at `/metrics` (text exposition format 0.0.4).
//!
//! Everything is counted from the log row, when a request's row is handed to the log writer: the row is the one
//! place where route, status, provider, model, rule, attempts, limits and cache are all known, so the metrics and
//! the log cannot disagree. The log writer's own counts (`LogStats`) give its queue depth and dropped rows.
//!
//! Cost: one mutex taken per request (after the response), a few map lookups. Label values come from the row;
//! a client can name arbitrary models, so each family keeps at most [`MAX_SERIES`] label sets and counts the
//! rest under `other`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gateway_core::{LogRecord, LogStats};

/// Label sets per family at most; further ones are counted under the value `other`.
pub const MAX_SERIES: usize = 2_000;

/// Upper bounds of the latency and time-to-first-token histograms, in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

type Labels = Vec<String>;

#[derive(Default)]
struct Counter(BTreeMap<Labels, u64>);

impl Counter {
    fn add(&mut self, labels: Labels, n: u64) {
        let labels = capped(&self.0, labels);
        *self.0.entry(labels).or_default() += n;
    }
}

#[derive(Default, Clone)]
struct Buckets {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Histogram(BTreeMap<Labels, Buckets>);

impl Histogram {
    fn observe(&mut self, labels: Labels, seconds: f64) {
        let labels = capped(&self.0, labels);
        let b = self.0.entry(labels).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                b.counts[i] += 1;
            }
        }
        b.sum += seconds;
        b.count += 1;
    }
}

/// `labels`, or every value `other` once the family holds [`MAX_SERIES`] other label sets.
fn capped<V>(map: &BTreeMap<Labels, V>, labels: Labels) -> Labels {
    if map.len() < MAX_SERIES || map.contains_key(&labels) {
        labels
    } else {
        vec!["other".to_owned(); labels.len()]
    }
}

#[derive(Default)]
struct Families {
    requests: Counter,
    duration: Histogram,
    ttft: Histogram,
    attempts: Counter,
    limited: Counter,
    cache: Counter,
    tokens: Counter,
    rows_sent: u64,
}

/// The metrics every worker thread records into.
#[derive(Clone)]
pub struct Metrics {
    families: Arc<Mutex<Families>>,
    log_stats: Arc<LogStats>,
    /// Open client connections: the connection limit, and its permits still free.
    connections: (usize, Arc<tokio::sync::Semaphore>),
}

fn or_none(v: Option<&str>) -> String {
    v.unwrap_or("none").to_owned()
}

impl Metrics {
    pub fn new(
        log_stats: Arc<LogStats>,
        connections: (usize, Arc<tokio::sync::Semaphore>),
    ) -> Self {
        Self {
            families: Arc::default(),
            log_stats,
            connections,
        }
    }

    /// Counts one request's row, just before it is handed to the log writer.
    pub fn record(&self, row: &LogRecord) {
        let Ok(mut f) = self.families.lock() else {
            return;
        };
        let route = row.endpoint.unwrap_or("other").to_owned();
        let provider = or_none(row.provider.as_deref());
        let model = or_none(row.model.as_deref());
        f.rows_sent += 1;
        f.requests.add(
            vec![
                route.clone(),
                row.status.to_string(),
                provider.clone(),
                model.clone(),
                or_none(row.rule_id.as_deref()),
            ],
            1,
        );
        f.duration
            .observe(vec![route, provider.clone()], row.latency_ms / 1e3);
        if let Some(ms) = row.ttft_ms {
            f.ttft
                .observe(vec![provider.clone(), model.clone()], ms / 1e3);
        }
        for a in &row.attempt_log {
            let outcome = a.error.map_or("ok", |e| e.as_str());
            f.attempts.add(
                vec![a.provider.clone(), a.model.clone(), outcome.to_owned()],
                1,
            );
        }
        if let Some(limit) = &row.limited_by {
            f.limited.add(vec![limit.clone()], 1);
        }
        if let Some(cache) = row.cache {
            f.cache.add(vec![cache.to_owned()], 1);
        }
        if let Some(u) = &row.usage {
            let kinds = [
                ("prompt", Some(u.prompt_tokens)),
                ("completion", Some(u.completion_tokens)),
                ("cached", u.cached_tokens),
                ("reasoning", u.reasoning_tokens),
            ];
            for (kind, n) in kinds {
                if let Some(n) = n.filter(|n| *n > 0) {
                    f.tokens
                        .add(vec![provider.clone(), model.clone(), kind.to_owned()], n);
                }
            }
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let (written, retried, lost) = (
            self.log_stats.written.load(Ordering::Relaxed),
            self.log_stats.retried.load(Ordering::Relaxed),
            self.log_stats.lost.load(Ordering::Relaxed),
        );
        let (max, permits) = &self.connections;
        let open = max.saturating_sub(permits.available_permits());
        {
            let Ok(f) = self.families.lock() else {
                return out;
            };
            counter(
                &mut out,
                "gateway_requests_total",
                "Requests answered, by route, status, provider, model and deciding rule.",
                &["route", "status", "provider", "model", "rule"],
                &f.requests,
            );
            histogram(
                &mut out,
                "gateway_request_duration_seconds",
                "Time from the request's arrival to the end of its answer (a stream's last event).",
                &["route", "provider"],
                &f.duration,
            );
            histogram(
                &mut out,
                "gateway_time_to_first_token_seconds",
                "Time from the request's arrival to a stream's first content token.",
                &["provider", "model"],
                &f.ttft,
            );
            counter(
                &mut out,
                "gateway_upstream_attempts_total",
                "Upstream attempts, by provider, model and outcome (ok, or the failure class).",
                &["provider", "model", "outcome"],
                &f.attempts,
            );
            counter(
                &mut out,
                "gateway_limit_rejections_total",
                "Requests refused by a limit or budget (429), by the limit.",
                &["limit"],
                &f.limited,
            );
            counter(
                &mut out,
                "gateway_cache_requests_total",
                "Requests of rules that cache, by result (hit, miss, refresh, bypass).",
                &["result"],
                &f.cache,
            );
            counter(
                &mut out,
                "gateway_tokens_total",
                "Tokens reported by providers, by provider, model and kind (cached of prompt, reasoning of completion).",
                &["provider", "model", "kind"],
                &f.tokens,
            );
            gauge(
                &mut out,
                "gateway_log_queue_depth",
                "Log rows handed to the log writer and not yet written or lost.",
                f.rows_sent.saturating_sub(written + lost),
            );
        }
        let plain = [
            (
                "gateway_log_rows_written_total",
                "counter",
                "Log rows written to the database.",
                written,
            ),
            (
                "gateway_log_batch_retries_total",
                "counter",
                "Log batches the database refused and that were tried again.",
                retried,
            ),
            (
                "gateway_log_rows_dropped_total",
                "counter",
                "Log rows lost after every retry (should stay 0).",
                lost,
            ),
            (
                "gateway_open_connections",
                "gauge",
                "Client connections open now.",
                open as u64,
            ),
        ];
        for (name, kind, help, value) in plain {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// The answer to `GET /metrics`: the exposition with `token` presented as a bearer (or with none wanted); a
/// 401 or 405 otherwise, in the API's error shape. Status, content type, body.
pub fn answer(
    metrics: &Metrics,
    method: &str,
    headers: &[(String, String)],
    token: Option<&str>,
) -> (u16, &'static str, Vec<u8>) {
    use gateway_core::{auth, ApiError};
    if let Some(token) = token {
        let presented = auth::presented_key(headers).map(auth::hash_key);
        if presented.as_deref() != Some(auth::hash_key(token).as_str()) {
            let e = ApiError::unauthorized(
                "`/metrics` needs `Authorization: Bearer <GATEWAY_METRICS_TOKEN>` (or the admin token when no metrics token is set)",
            );
            return (e.status(), "application/json", e.body());
        }
    }
    if method != "GET" && method != "HEAD" {
        let e = ApiError::method_not_allowed(method, "/metrics");
        return (e.status(), "application/json", e.body());
    }
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        metrics.render().into_bytes()
    };
    (200, "text/plain; version=0.0.4; charset=utf-8", body)
}

/// Serves `/metrics` (and nothing else) on `addr` from a thread of its own, without a token.
pub fn spawn_listener(addr: std::net::SocketAddr, metrics: Metrics) -> Result<(), String> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("metrics listen {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("gateway-metrics".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    };
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                let (status, kind, body) = if req.uri().path() == "/metrics" {
                                    answer(&metrics, req.method().as_str(), &[], None)
                                } else {
                                    let e = gateway_core::ApiError::not_found(
                                        "this address serves `/metrics` only",
                                    );
                                    (e.status(), "application/json", e.body())
                                };
                                let mut r =
                                    hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                                *r.status_mut() = hyper::StatusCode::from_u16(status)
                                    .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
                                r.headers_mut().insert(
                                    hyper::header::CONTENT_TYPE,
                                    hyper::header::HeaderValue::from_static(kind),
                                );
                                async move { Ok::<_, std::convert::Infallible>(r) }
                            });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(std::time::Duration::from_secs(10))
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        let _ = conn.await;
                    });
                }
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// `name{a="x",b="y"}` with the values escaped as the format requires.
fn series(
    out: &mut String,
    name: &str,
    keys: &[&str],
    values: &[String],
    extra: Option<(&str, &str)>,
) {
    out.push_str(name);
    let mut pairs: Vec<(&str, &str)> = keys
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect();
    pairs.extend(extra);
    if !pairs.is_empty() {
        out.push('{');
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
}

fn counter(out: &mut String, name: &str, help: &str, keys: &[&str], c: &Counter) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (values, n) in &c.0 {
        series(out, name, keys, values, None);
        let _ = writeln!(out, " {n}");
    }
}

fn histogram(out: &mut String, name: &str, help: &str, keys: &[&str], h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let bucket = format!("{name}_bucket");
    for (values, b) in &h.0 {
        for (bound, n) in BUCKETS.iter().zip(b.counts) {
            series(out, &bucket, keys, values, Some(("le", &bound.to_string())));
            let _ = writeln!(out, " {n}");
        }
        series(out, &bucket, keys, values, Some(("le", "+Inf")));
        let _ = writeln!(out, " {}", b.count);
        series(out, &format!("{name}_sum"), keys, values, None);
        let _ = writeln!(out, " {}", b.sum);
        series(out, &format!("{name}_count"), keys, values, None);
        let _ = writeln!(out, " {}", b.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(
            Arc::default(),
            (10, Arc::new(tokio::sync::Semaphore::new(10))),
        )
    }

    #[test]
    fn counts_rows_and_escapes_labels() {
        let m = metrics();
        let mut row = LogRecord {
            endpoint: Some("chat"),
            status: 200,
            provider: Some("deepseek".into()),
            model: Some("deepseek-chat".into()),
            rule_id: Some("zh".into()),
            latency_ms: 30.0,
            ..LogRecord::default()
        };
        m.record(&row);
        m.record(&row);
        row.model = Some("we\"ird\\".into());
        row.status = 429;
        row.limited_by = Some("key:requests_per_minute".into());
        m.record(&row);
        let text = m.render();
        assert!(text.contains(
            "gateway_requests_total{route=\"chat\",status=\"200\",provider=\"deepseek\",model=\"deepseek-chat\",rule=\"zh\"} 2\n"
        ), "{text}");
        assert!(text.contains("model=\"we\\\"ird\\\\\""), "{text}");
        assert!(text.contains(
            "gateway_request_duration_seconds_bucket{route=\"chat\",provider=\"deepseek\",le=\"0.025\"} 0\n"
        ));
        assert!(text.contains(
            "gateway_request_duration_seconds_bucket{route=\"chat\",provider=\"deepseek\",le=\"0.05\"} 3\n"
        ));
        assert!(
            text.contains("gateway_limit_rejections_total{limit=\"key:requests_per_minute\"} 1\n")
        );
        // Three rows handed over, none written yet.
        assert!(text.contains("gateway_log_queue_depth 3\n"), "{text}");
    }

    /// What the metrics cost a request, measured (not asserted):
    /// `cargo test --release -p gateway-native metrics_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn metrics_cost() {
        let m = metrics();
        let row = LogRecord {
            endpoint: Some("chat"),
            status: 200,
            provider: Some("deepseek".into()),
            model: Some("deepseek-chat".into()),
            rule_id: Some("zh".into()),
            latency_ms: 30.0,
            ttft_ms: Some(12.0),
            attempt_log: vec![gateway_core::Attempt {
                provider: "deepseek".into(),
                model: "deepseek-chat".into(),
                status: 200,
                ms: 12.0,
                error: None,
            }],
            usage: Some(gateway_core::Usage {
                prompt_tokens: 10,
                completion_tokens: 20,
                ..Default::default()
            }),
            ..LogRecord::default()
        };
        let n = 200_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            m.record(&row);
        }
        let per_row = t.elapsed().as_nanos() / n;
        for i in 0..MAX_SERIES {
            m.record(&LogRecord {
                model: Some(format!("model-{i}")),
                ..row.clone()
            });
        }
        let t = std::time::Instant::now();
        let text = m.render();
        println!(
            "record: {per_row} ns a row; render with every family full: {:?}, {} KiB",
            t.elapsed(),
            text.len() / 1024
        );
    }

    #[test]
    fn label_sets_are_capped() {
        let m = metrics();
        for i in 0..MAX_SERIES + 5 {
            m.record(&LogRecord {
                status: 404,
                model: Some(format!("model-{i}")),
                ..LogRecord::default()
            });
        }
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("gateway_requests_total{"))
            .count();
        assert_eq!(series, MAX_SERIES + 1, "the extra ones under `other`");
        assert!(text.contains("model=\"other\",rule=\"other\"} 5\n"));
    }
}
