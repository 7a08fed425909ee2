//! The payload archive: a request's body and its answer (a stream as its assembled answer), kept when the
//! deciding rule says `archive <duration>` or the deployment archives every request (`ARCHIVE`), with secrets
//! and personal data redacted. Written after the response, through [`crate::ports::ArchiveStore`] (R2 on
//! Workers, a directory natively), under `<day it expires>/<request id>.json`: the log row's `archive` column
//! names that key, and a sweep (the Worker's Cron Trigger, a thread natively) deletes the days gone by.
//!
//! Redaction runs on every string in both bodies, in this order: the configured providers' keys and secret
//! header values (exactly), then anything shaped like a gateway key (`gw-…`) or a provider key (`sk-…`,
//! `AIza…`), then the configured patterns (`ARCHIVE_REDACT`; e-mail addresses and phone numbers unless set).
//! Each match becomes `[redacted:<name>]`, and the document counts what was redacted.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_policy::artifact::parse_duration;
use regex_lite::Regex;
use serde_json::{json, Value};

use crate::error::ConfigError;
use crate::log::LogRecord;
use crate::providers::Providers;

const DAY_MS: i64 = 86_400_000;

/// Keys the gateway and the providers issue, whatever the deployment configures.
const KEY_PATTERNS: &[(&str, &str, Needs)] = &[
    ("gateway_key", r"gw-[0-9a-f]{16,}", Needs::OneOf(&["gw-"])),
    (
        "provider_key",
        r"sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}",
        Needs::OneOf(&["sk-", "AIza"]),
    ),
];

/// `ARCHIVE_REDACT` unless set: e-mail addresses; phone numbers written internationally (`+86 138 0013 8000`,
/// `+1-202-555-0143`), as Chinese mobiles (`13800138000`), Chinese landlines (`010-12345678`) or North
/// American numbers with separators (`(202) 555-0143`).
const DEFAULT_PATTERNS: &[(&str, &str, Needs)] = &[
    (
        "email",
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
        Needs::OneOf(&["@"]),
    ),
    (
        "phone",
        r"\+\d{1,3}[ .\-]?\(?\d{1,4}\)?(?:[ .\-]?\d{2,5}){2,4}|\b1[3-9]\d{9}\b|\b0\d{2,3}-\d{7,8}\b|\(\d{3}\) ?\d{3}[ .\-]\d{4}\b|\b\d{3}[.\-]\d{3}[.\-]\d{4}\b",
        // The shortest number it takes (`+1 20 30 40`) has six digits.
        Needs::Digits(6),
    ),
];

/// What archiving does in this deployment: every request (`ARCHIVE`, a duration) or only the rules that say so,
/// and what is redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archiving {
    /// `ARCHIVE`: every API request is archived and kept this long (a rule's `archive` keeps its own for as long
    /// as it says).
    pub all_ms: Option<u64>,
    pub redactor: Arc<Redactor>,
}

impl Archiving {
    /// `ARCHIVE` (a duration: `30d`, `12h`; unset or `off`: only rules that say `archive`) and `ARCHIVE_REDACT`
    /// (a JSON object of names and regular expressions, replacing the defaults; `{}` redacts keys only).
    pub fn from_settings(all: Option<&str>, patterns: Option<&str>) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError::Archive(why);
        let all_ms = match all.map(str::trim) {
            None | Some("") | Some("off") => None,
            Some(v) => Some(parse_duration(v).filter(|ms| *ms > 0).ok_or_else(|| {
                bad(format!(
                    "ARCHIVE must be a duration such as `30d` or `12h`, or `off`; got `{v}`"
                ))
            })?),
        };
        let named: Vec<(String, String, Needs)> = match patterns {
            None => DEFAULT_PATTERNS
                .iter()
                .map(|(n, p, needs)| ((*n).to_owned(), (*p).to_owned(), *needs))
                .collect(),
            Some(json) => {
                let map: serde_json::Map<String, Value> = serde_json::from_str(json)
                    .map_err(|e| bad(format!("ARCHIVE_REDACT is not a JSON object: {e}")))?;
                map.into_iter()
                    .map(|(name, v)| match v {
                        Value::String(p) => Ok((name, p, Needs::Anything)),
                        _ => Err(bad(format!(
                            "ARCHIVE_REDACT: `{name}` must be a regular expression as a string"
                        ))),
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(Self {
            all_ms,
            redactor: Arc::new(Redactor::new(named).map_err(bad)?),
        })
    }
}

/// The patterns that are redacted, by name, compiled once per configuration.
#[derive(Debug)]
pub struct Redactor {
    patterns: Vec<(String, Regex, Needs)>,
}

/// What a text must hold for a built-in pattern to match in it (configured patterns: anything): checked first,
/// since most strings of a chat body hold no key, no `@` and few digits, and the regular expressions are the
/// archive's main cost.
#[derive(Debug, Clone, Copy)]
enum Needs {
    Anything,
    OneOf(&'static [&'static str]),
    Digits(usize),
}

impl Needs {
    fn met(self, text: &str) -> bool {
        match self {
            Needs::Anything => true,
            Needs::OneOf(any) => any.iter().any(|n| text.contains(n)),
            Needs::Digits(n) => text.bytes().filter(u8::is_ascii_digit).nth(n - 1).is_some(),
        }
    }
}

impl PartialEq for Redactor {
    fn eq(&self, other: &Self) -> bool {
        self.patterns.len() == other.patterns.len()
            && self
                .patterns
                .iter()
                .zip(&other.patterns)
                .all(|((a, ra, _), (b, rb, _))| a == b && ra.as_str() == rb.as_str())
    }
}

impl Eq for Redactor {}

impl Redactor {
    /// The key patterns, then `named`: an error names the pattern that does not compile.
    fn new(named: Vec<(String, String, Needs)>) -> Result<Self, String> {
        let keys = KEY_PATTERNS
            .iter()
            .map(|(n, p, needs)| ((*n).to_owned(), (*p).to_owned(), *needs));
        let mut patterns = Vec::new();
        for (name, source, needs) in keys.chain(named) {
            let re = Regex::new(&source).map_err(|e| {
                format!("ARCHIVE_REDACT: `{name}` is not a regular expression: {e}")
            })?;
            patterns.push((name, re, needs));
        }
        Ok(Self { patterns })
    }

    /// Redacts every string in `v` (object keys stay): `secrets` first, then the patterns. Counts by name.
    pub fn redact(&self, v: &mut Value, secrets: &[&str], counts: &mut BTreeMap<String, u64>) {
        match v {
            Value::String(s) => {
                if let Some(clean) = self.redact_text(s, secrets, counts) {
                    *s = clean;
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|i| self.redact(i, secrets, counts)),
            Value::Object(m) => m.values_mut().for_each(|i| self.redact(i, secrets, counts)),
            _ => {}
        }
    }

    /// `text` redacted, or `None` when nothing in it is.
    fn redact_text(
        &self,
        text: &str,
        secrets: &[&str],
        counts: &mut BTreeMap<String, u64>,
    ) -> Option<String> {
        let mut out: Option<String> = None;
        for s in secrets {
            let current = out.as_deref().unwrap_or(text);
            let n = current.matches(s).count();
            if n > 0 {
                out = Some(current.replace(s, "[redacted:provider_key]"));
                *counts.entry("provider_key".into()).or_default() += n as u64;
            }
        }
        for (name, re, needs) in &self.patterns {
            let current = out.as_deref().unwrap_or(text);
            if !needs.met(current) {
                continue;
            }
            // Spliced by hand: `replace_all` would link regex-lite's replacement expansion into the Worker.
            let mut spliced = String::new();
            let (mut n, mut last) = (0u64, 0);
            for m in re.find_iter(current) {
                spliced.push_str(&current[last..m.start()]);
                spliced.push_str("[redacted:");
                spliced.push_str(name);
                spliced.push(']');
                last = m.end();
                n += 1;
            }
            if n > 0 {
                spliced.push_str(&current[last..]);
                out = Some(spliced);
                *counts.entry(name.clone()).or_default() += n;
            }
        }
        out
    }
}

/// The configured providers' keys and secret header values, longest first.
pub fn provider_secrets(providers: &Providers) -> Vec<&str> {
    let mut secrets: Vec<&str> = Vec::new();
    for p in &providers.configured {
        crate::redact::collect_secrets(p, &mut secrets);
    }
    secrets
}

/// What a row carries to the archive once it is complete (never written to the log).
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub retention_ms: u64,
    pub request: Value,
    /// The answer as the client got it (JSON, a stream's assembled answer, an error body); none when the client
    /// left before there was one.
    pub response: Option<Value>,
    /// The request's provider table: whose secrets to redact.
    pub providers: Arc<Providers>,
}

/// The object key of a request archived at `ts_ms` for `retention_ms`: `YYYY-MM-DD/<id>.json`, the UTC day the
/// retention ends. The sweep deletes a day once it is over, so a payload is kept at least as long as asked and
/// less than a day longer.
pub fn object_key(id: &str, ts_ms: i64, retention_ms: u64) -> String {
    let until = ts_ms.saturating_add(i64::try_from(retention_ms).unwrap_or(i64::MAX / 2));
    format!("{}/{id}.json", day(until))
}

/// The UTC date of a Unix millisecond time, `YYYY-MM-DD`.
pub fn day(ms: i64) -> String {
    let (y, m, d) = gateway_policy::prices::civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Whether an archive day (the first part of a key, `YYYY-MM-DD`) is over at `now_ms`. Anything that is not a
/// day is not the archive's and is left alone.
pub fn expired(day_prefix: &str, now_ms: i64) -> bool {
    gateway_policy::prices::parse_date(day_prefix).is_some_and(|d| d < now_ms.div_euclid(DAY_MS))
}

/// A request id as it appears in a key: `req_` and hex digits (so a key can never climb out of its directory).
pub fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix("req_")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether a key is one [`object_key`] makes: `YYYY-MM-DD/req_<hex>.json` (what a host may turn into a path).
pub fn valid_key(key: &str) -> bool {
    let Some((day, file)) = key.split_once('/') else {
        return false;
    };
    let Some(id) = file.strip_suffix(".json") else {
        return false;
    };
    gateway_policy::prices::parse_date(day).is_some() && valid_id(id)
}

/// The archived document of a complete row: what decided and answered, then both bodies, redacted.
pub fn document(row: &LogRecord, pending: Pending, redactor: &Redactor) -> (String, Vec<u8>) {
    let key = object_key(&row.id, row.ts_ms, pending.retention_ms);
    let secrets = provider_secrets(&pending.providers);
    let mut counts = BTreeMap::new();
    let mut request = pending.request;
    redactor.redact(&mut request, &secrets, &mut counts);
    let mut response = pending.response.unwrap_or(Value::Null);
    redactor.redact(&mut response, &secrets, &mut counts);
    let doc = json!({
        "id": row.id,
        "ts_ms": row.ts_ms,
        "expires": key.split('/').next(),
        "endpoint": row.endpoint,
        "key_id": row.key_id,
        "team": row.team,
        "policy_hash": row.policy_hash,
        "rule_id": row.rule_id,
        "provider": row.provider,
        "model": row.model,
        "status": row.status,
        "stream": row.stream,
        "truncated": row.truncated,
        "cache": row.cache,
        "redacted": counts,
        "request": request,
        "response": response,
    });
    (key, serde_json::to_vec(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> (String, BTreeMap<String, u64>) {
        let r = Archiving::from_settings(None, None).unwrap();
        let mut v = json!(text);
        let mut counts = BTreeMap::new();
        r.redactor
            .redact(&mut v, &["live-secret-0123456789"], &mut counts);
        (v.as_str().unwrap_or_default().to_owned(), counts)
    }

    #[test]
    fn keys_emails_and_phone_numbers_are_redacted_and_counted() {
        let (text, counts) = redacted(
            "mail ops@example.com.cn or call +86 138 0013 8000, 13800138000, 010-12345678 or (202) 555-0143; \
             keys gw-0123456789abcdef0123, sk-proj-AbCdEf0123456789xyz, live-secret-0123456789",
        );
        assert_eq!(
            text,
            "mail [redacted:email] or call [redacted:phone], [redacted:phone], [redacted:phone] or \
             [redacted:phone]; keys [redacted:gateway_key], [redacted:provider_key], [redacted:provider_key]"
        );
        assert_eq!(counts["phone"], 4);
        assert_eq!(counts["provider_key"], 2);
        assert_eq!(counts["email"], 1);
    }

    #[test]
    fn ordinary_numbers_dates_and_text_are_left_alone() {
        for s in [
            "订单 2026-12-02 12:30, 共 1234567 件, 版本 3.14.159",
            "price 0.0025 per 1000 tokens, id 550e8400",
            "我的电话是 [redacted:phone]",
        ] {
            let (text, counts) = redacted(s);
            assert_eq!(text, s);
            assert!(counts.is_empty(), "{s}: {counts:?}");
        }
        // A Chinese mobile inside Chinese text is still one.
        assert_eq!(
            redacted("电话13912345678谢谢").0,
            "电话[redacted:phone]谢谢"
        );
    }

    #[test]
    fn the_setting_replaces_the_default_patterns() {
        let a = Archiving::from_settings(Some("7d"), Some(r#"{"order": "ORD-\\d{6}"}"#)).unwrap();
        assert_eq!(a.all_ms, Some(7 * 86_400_000));
        let mut v = json!({"messages": [{"content": "ORD-123456 from a@b.io"}], "n": 1});
        let mut counts = BTreeMap::new();
        a.redactor.redact(&mut v, &[], &mut counts);
        assert_eq!(v["messages"][0]["content"], "[redacted:order] from a@b.io");
        assert_eq!(v["n"], 1);
        for (all, patterns) in [
            (Some("7 days"), None),
            (Some("0d"), None),
            (None, Some("[1]")),
            (None, Some(r#"{"x": "(unclosed"}"#)),
            (None, Some(r#"{"x": 5}"#)),
        ] {
            let e = Archiving::from_settings(all, patterns).unwrap_err();
            assert!(e.to_string().contains("ARCHIVE"), "{e}");
        }
        assert_eq!(
            Archiving::from_settings(Some("off"), None).unwrap().all_ms,
            None
        );
    }

    #[test]
    fn keys_name_the_day_the_retention_ends_and_sweeps_take_days_gone_by() {
        let ts = 1_796_000_000_000; // 2026-11-30T…
        assert_eq!(day(ts), "2026-11-30");
        assert_eq!(
            object_key("req_00ab", ts, 7 * 86_400_000),
            "2026-12-07/req_00ab.json"
        );
        assert!(expired("2026-11-29", ts));
        assert!(!expired("2026-11-30", ts));
        assert!(!expired("2026-12-07", ts));
        assert!(!expired("notes", ts));
        assert!(!expired("2026-1-281", ts));
        assert!(valid_id("req_0123abcd"));
        assert!(valid_key("2026-12-07/req_00ab.json"));
        for bad in [
            "2026-12-07/../x.json",
            "../../etc/passwd",
            "2026-12-07/req_00ab",
            "x/req_00ab.json",
        ] {
            assert!(!valid_key(bad), "{bad}");
        }
        for bad in ["../etc", "req_", "req_12/..", "req_zz"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
