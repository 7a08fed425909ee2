//! Provider health, aggregated from the request log's attempts: per provider, the share of attempts that
//! failed through the provider's fault (rate limits, 5xx, timeouts, unreachable, broken streams) and the
//! median latency of its successful attempts, over a recent window.
//!
//! The same aggregation runs on a Cron Trigger on Workers (D1 → KV `health/snapshot`) and in the native
//! process (SQLite → memory); the gateway reads the snapshot as `health.<provider>.*` attributes.

use std::collections::BTreeMap;

use gateway_policy::HealthAttrs;
use serde::{Deserialize, Serialize};

use crate::log::Attempt;

/// Where the Workers host keeps the latest snapshot (in the `POLICY` namespace, beside the policies).
pub const SNAPSHOT_KV_KEY: &str = "health/snapshot";
/// The window a snapshot covers.
pub const WINDOW_MS: u64 = 5 * 60 * 1000;
/// The most recent log rows a snapshot reads (the newest first).
pub const MAX_ROWS: u32 = 5000;
/// A provider with at least this many attempts in the window and at least `DOWN_ERROR_RATE` of them failed
/// is down.
pub const DOWN_MIN_ATTEMPTS: u64 = 3;
pub const DOWN_ERROR_RATE: f64 = 0.5;

/// The attempt logs of the newest rows in the window: `?1` is the window's start (Unix ms), `?2` the row limit.
pub const RECENT_ATTEMPTS_SQL: &str = "SELECT attempt_log FROM request_logs \
WHERE ts_ms >= ?1 AND attempt_log IS NOT NULL ORDER BY ts_ms DESC LIMIT ?2";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was computed (Unix ms).
    pub at_ms: f64,
    pub window_ms: u64,
    pub providers: BTreeMap<String, ProviderHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderHealth {
    pub attempts: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Median latency of the successful attempts; 0 when there were none.
    pub p50_ms: i64,
    pub up: bool,
}

impl Snapshot {
    /// Aggregates attempt logs (each a JSON array of [`Attempt`]); rows that do not parse are skipped.
    pub fn aggregate<'a>(
        rows: impl IntoIterator<Item = &'a str>,
        now_ms: f64,
        window_ms: u64,
    ) -> Self {
        let mut per: BTreeMap<String, (u64, u64, Vec<f64>)> = BTreeMap::new();
        for row in rows {
            let Ok(attempts) = serde_json::from_str::<Vec<Attempt>>(row) else {
                continue;
            };
            for a in attempts {
                // A client's mistake (400, 404…) says nothing about the provider.
                if a.error.is_some() && !a.provider_fault() {
                    continue;
                }
                let e = per.entry(a.provider).or_default();
                e.0 += 1;
                if a.error.is_some() {
                    e.1 += 1;
                } else {
                    e.2.push(a.ms);
                }
            }
        }
        let providers = per
            .into_iter()
            .map(|(name, (attempts, errors, mut ok_ms))| {
                let error_rate = errors as f64 / attempts as f64;
                ok_ms.sort_by(f64::total_cmp);
                let p50_ms = ok_ms.get(ok_ms.len() / 2).map_or(0, |m| m.round() as i64);
                let down = attempts >= DOWN_MIN_ATTEMPTS && error_rate >= DOWN_ERROR_RATE;
                let health = ProviderHealth {
                    attempts,
                    errors,
                    error_rate: (error_rate * 1000.0).round() / 1000.0,
                    p50_ms,
                    up: !down,
                };
                (name, health)
            })
            .collect();
        Self {
            at_ms: now_ms,
            window_ms,
            providers,
        }
    }

    /// The `health.*` attributes of the policy scheme.
    pub fn attrs(&self) -> BTreeMap<String, HealthAttrs> {
        self.providers
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    HealthAttrs {
                        error_rate: h.error_rate,
                        p50_ms: h.p50_ms,
                        up: h.up,
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_the_provider_count_and_client_errors_do_not() {
        let rows = [
            r#"[{"provider":"deepseek","model":"m","status":429,"ms":12.0,"error":"429"},{"provider":"openai","model":"x","status":200,"ms":300.0}]"#,
            r#"[{"provider":"deepseek","model":"m","status":503,"ms":40.0,"error":"5xx"},{"provider":"openai","model":"x","status":200,"ms":100.0}]"#,
            r#"[{"provider":"deepseek","model":"m","status":200,"ms":80.0}]"#,
            r#"[{"provider":"openai","model":"x","status":400,"ms":5.0,"error":"4xx"}]"#,
            r#"[{"provider":"openai","model":"x","status":200,"ms":200.0}]"#,
            "not json",
        ];
        let s = Snapshot::aggregate(rows, 1.0, WINDOW_MS);
        let ds = &s.providers["deepseek"];
        assert_eq!(
            (ds.attempts, ds.errors, ds.p50_ms, ds.up),
            (3, 2, 80, false)
        );
        assert_eq!(ds.error_rate, 0.667);
        let oa = &s.providers["openai"];
        assert_eq!(
            (oa.attempts, oa.errors, oa.p50_ms, oa.up),
            (3, 0, 200, true)
        );
        let attrs = s.attrs();
        assert!(!attrs["deepseek"].up);
        assert_eq!(attrs["openai"].p50_ms, 200);
    }

    #[test]
    fn a_few_failures_do_not_mark_a_provider_down() {
        let rows = [r#"[{"provider":"gemini","model":"m","status":500,"ms":1.0,"error":"5xx"}]"#];
        let s = Snapshot::aggregate(rows, 1.0, WINDOW_MS);
        assert!(s.providers["gemini"].up);
        assert_eq!(s.providers["gemini"].error_rate, 1.0);
    }
}
