//! The per-request log row (`request_logs` in migrations/0001_init.sql), identical on D1 and SQLite.

use serde::Serialize;

use crate::error::FailureClass;

/// Token counts as the provider reported them, normalized to OpenAI's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Of `prompt_tokens`, read from the provider's cache.
    pub cached_tokens: Option<u64>,
    /// Of `completion_tokens`, spent on reasoning.
    pub reasoning_tokens: Option<u64>,
    /// Of `prompt_tokens`, written to the provider's cache (billed apart where the provider charges for it).
    pub cache_write_tokens: Option<u64>,
    /// Images generated (`images` requests; priced per image where the provider prices so).
    pub images: Option<u64>,
    /// Milliseconds of audio transcribed (`transcriptions`; priced per minute where the provider prices so).
    pub audio_ms: Option<u64>,
    /// Characters spoken (`speech`; priced per million characters where the provider prices so).
    pub characters: Option<u64>,
}

/// The least request id of a request that arrived at or after `ms` (ids begin with their arrival time, see
/// `gateway::request_id`): time ranges of the log become ranges of its primary key, which also orders it.
pub fn id_floor(ms: i64) -> String {
    format!("req_{:012x}", (ms.max(0) as u64) & 0xffff_ffff_ffff)
}

/// One row per request that reached the gateway, whatever its outcome. Never holds prompt or completion text.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LogRecord {
    pub id: String,
    pub ts_ms: i64,
    pub key_id: Option<String>,
    pub method: String,
    pub path: String,
    pub endpoint: Option<&'static str>,
    pub requested_model: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    pub stream: bool,
    pub attempts: u32,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub usage: Option<Usage>,
    /// A stream that ended without `[DONE]` (cut, stalled, failed upstream, or client gone).
    pub truncated: bool,
    /// The compiled policy that decided, and its deciding rule (none without a policy).
    pub policy_hash: Option<String>,
    pub rule_id: Option<String>,
    /// Every upstream attempt, in order (`attempt_log`, JSON).
    pub attempt_log: Vec<Attempt>,
    /// The request attributes the policy decided on, as JSON (`decision_attrs`); never prompt text.
    pub decision_attrs: Option<String>,
    /// What it cost (none when nothing was charged for: no usage, or a model without a price).
    pub cost: Option<CostRecord>,
    /// The currency costs are reported in (`REPORTING_CURRENCY`), once the request is priced at all.
    pub reporting_currency: Option<String>,
    /// The key's team.
    pub team: Option<String>,
    /// The limit that refused the request (`key:requests_per_minute`, `team:budget_day`).
    pub limited_by: Option<String>,
    /// What admission reserved in the key's and team's scopes: settled with the row (never written).
    #[serde(skip)]
    pub held: Vec<crate::limits::Held>,
    /// The response cache: `hit`, `miss`, `refresh` (asked to skip the cache and store anew) or `bypass` (the
    /// client opted out); none when the deciding rule does not cache.
    pub cache: Option<&'static str>,
    /// On a hit: what the cached answer cost when it was made (reporting currency, pico-units).
    pub cache_saved_pico: Option<u64>,
    /// An answer to store once the row is complete (never written to the log).
    #[serde(skip)]
    pub cache_write: Option<crate::cache::Write>,
    /// The payload archive's key (`YYYY-MM-DD/<id>.json`, the day it expires) when the bodies were archived.
    pub archive: Option<String>,
    /// Bodies to archive once the row is complete (never written to the log).
    #[serde(skip)]
    pub archive_pending: Option<crate::archive::Pending>,
}

/// A request's cost, priced with the published price table.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CostRecord {
    /// Whole pico-units (10⁻¹²) of `currency`, the provider's billing currency.
    pub pico: u64,
    pub currency: String,
    /// The same in the reporting currency (none without an exchange rate for it).
    pub reporting_pico: Option<u64>,
    /// Priced from the gateway's estimate of the tokens: the provider reported no usage.
    pub estimated: bool,
    /// The price table's version.
    pub price_version: String,
}

/// One upstream attempt of a request: which target, how it ended, how long it took.
#[derive(Debug, Clone, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// The upstream's HTTP status when it answered (200, 429, 503…); the gateway's (502, 504) when it did not.
    pub status: u16,
    /// Until the answer (JSON) or the first content token (streams), or the failure.
    pub ms: f64,
    /// Why the attempt failed (`429`, `5xx`, `4xx`, `auth`, `timeout`, `connect`, `stream`, `invalid`);
    /// absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureClass>,
}

impl Attempt {
    /// A failure that says something about the provider's health (not a client's mistake).
    pub fn provider_fault(&self) -> bool {
        self.error.is_some_and(FailureClass::provider_fault)
    }
}

/// A value bound to a SQL parameter; each host maps it to its driver's type.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

pub const INSERT_SQL: &str = "INSERT INTO request_logs (id, ts_ms, key_id, method, path, endpoint, \
requested_model, provider, model, status, error_code, stream, attempts, latency_ms, ttft_ms, \
prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, truncated, policy_hash, rule_id, \
attempt_log, decision_attrs, cache_write_tokens, cost_pico, cost_currency, cost_reporting_pico, reporting_currency, \
cost_estimated, price_version, team, limited_by, cache_saved_pico, cache, archive, images, audio_ms, characters) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, \
?26, CAST(?27 AS INTEGER), ?28, CAST(?29 AS INTEGER), ?30, ?31, ?32, ?33, ?34, CAST(?35 AS INTEGER), ?36, ?37, ?38, ?39, \
?40)";

impl LogRecord {
    /// Parameters for [`INSERT_SQL`], in order.
    pub fn sql_params(&self) -> Vec<SqlValue> {
        fn text(v: &Option<String>) -> SqlValue {
            v.as_ref()
                .map_or(SqlValue::Null, |s| SqlValue::Text(s.clone()))
        }
        fn int(v: Option<u64>) -> SqlValue {
            v.map_or(SqlValue::Null, |n| {
                SqlValue::Integer(n.min(i64::MAX as u64) as i64)
            })
        }
        let u = self.usage;
        vec![
            SqlValue::Text(self.id.clone()),
            SqlValue::Integer(self.ts_ms),
            text(&self.key_id),
            SqlValue::Text(self.method.clone()),
            SqlValue::Text(self.path.clone()),
            self.endpoint
                .map_or(SqlValue::Null, |e| SqlValue::Text(e.to_owned())),
            text(&self.requested_model),
            text(&self.provider),
            text(&self.model),
            SqlValue::Integer(i64::from(self.status)),
            text(&self.error_code),
            SqlValue::Integer(i64::from(self.stream)),
            SqlValue::Integer(i64::from(self.attempts)),
            SqlValue::Real(round3(self.latency_ms)),
            self.ttft_ms
                .map_or(SqlValue::Null, |t| SqlValue::Real(round3(t))),
            int(u.map(|u| u.prompt_tokens)),
            int(u.map(|u| u.completion_tokens)),
            int(u.map(|u| u.total_tokens)),
            int(u.and_then(|u| u.cached_tokens)),
            int(u.and_then(|u| u.reasoning_tokens)),
            SqlValue::Integer(i64::from(self.truncated)),
            text(&self.policy_hash),
            text(&self.rule_id),
            if self.attempt_log.is_empty() {
                SqlValue::Null
            } else {
                serde_json::to_string(&self.attempt_log).map_or(SqlValue::Null, SqlValue::Text)
            },
            text(&self.decision_attrs),
            int(u.and_then(|u| u.cache_write_tokens)),
            int(self.cost.as_ref().map(|c| c.pico)),
            text(&self.cost.as_ref().map(|c| c.currency.clone())),
            int(self.cost.as_ref().and_then(|c| c.reporting_pico)),
            text(&self.reporting_currency),
            self.cost.as_ref().map_or(SqlValue::Null, |c| {
                SqlValue::Integer(i64::from(c.estimated))
            }),
            text(&self.cost.as_ref().map(|c| c.price_version.clone())),
            text(&self.team),
            text(&self.limited_by),
            int(self.cache_saved_pico),
            self.cache
                .map_or(SqlValue::Null, |c| SqlValue::Text(c.to_owned())),
            text(&self.archive),
            int(u.and_then(|u| u.images)),
            int(u.and_then(|u| u.audio_ms)),
            int(u.and_then(|u| u.characters)),
        ]
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parameter_per_placeholder() {
        let n = LogRecord::default().sql_params().len();
        assert!(INSERT_SQL.contains(&format!("?{n})")));
        assert!(!INSERT_SQL.contains(&format!("?{}", n + 1)));
        let columns = INSERT_SQL[INSERT_SQL.find('(').unwrap()..INSERT_SQL.find(')').unwrap()]
            .split(',')
            .count();
        assert_eq!(columns, n);
    }
}
