//! API keys: how clients present them, how they are hashed, and what a stored key record holds.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::find_header;
use crate::limits::Limits;

/// Prefix of every gateway key, so a leaked key is recognisable in logs and secret scanners.
pub const KEY_PREFIX: &str = "gw-";

/// What the gateway knows about a key. Stored under its hash: KV `key/<sha256hex>` or SQLite `api_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
    /// Unix milliseconds after which the key stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
    /// `provider/model` patterns the key may use (`deepseek/*`, `openai/gpt-5*`, `*`); empty: every model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// When the record last changed (limits, allow-list, revocation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated_at_ms: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A team: limits and an allow-list shared by its keys (a key's own apply too). Stored by name: KV
/// `team/<name>` or SQLite `teams`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    #[serde(default)]
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated_at_ms: i64,
}

/// A key or team record as the key admin API last wrote it: what a changes feed carries to every isolate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordChange {
    Key(KeyRecord),
    Team(TeamRecord),
}

/// The records changed since a version of the feed. `complete` is false when the feed no longer reaches back
/// that far: whatever was cached may be stale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChanges {
    pub version: u64,
    pub changes: Vec<RecordChange>,
    pub complete: bool,
}

/// The changes feed itself: numbered records, kept for at least [`RecordFeed::KEEP_MS`] (longer than KV takes to
/// propagate a write) and at most [`RecordFeed::MAX`] of them. A host that has a feed stores one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFeed {
    /// The number of the last change.
    pub version: u64,
    /// (number, when, the record), oldest first.
    pub entries: std::collections::VecDeque<(u64, i64, RecordChange)>,
}

impl RecordFeed {
    pub const KEEP_MS: i64 = 10 * 60_000;
    pub const MAX: usize = 10_000;

    /// Adds a change written at `now_ms`, dropping what is both old and not the last.
    pub fn announce(&mut self, change: RecordChange, now_ms: i64) {
        self.version += 1;
        self.entries.push_back((self.version, now_ms, change));
        while self.entries.len() > Self::MAX
            || (self.entries.len() > 1
                && self
                    .entries
                    .front()
                    .is_some_and(|(_, at, _)| now_ms - at > Self::KEEP_MS))
        {
            self.entries.pop_front();
        }
    }

    /// The changes after version `since`; not complete when some of them were dropped already.
    pub fn since(&self, since: u64) -> RecordChanges {
        let oldest = self
            .entries
            .front()
            .map_or(self.version + 1, |(n, _, _)| *n);
        RecordChanges {
            version: self.version,
            complete: since >= self.version || since + 1 >= oldest,
            changes: self
                .entries
                .iter()
                .filter(|(n, _, _)| *n > since)
                .map(|(_, _, c)| c.clone())
                .collect(),
        }
    }
}

/// Whether `provider/model` is allowed by `patterns` (empty: everything). A pattern is `provider/model` with `*`
/// standing for any run of characters: `deepseek/*`, `openai/gpt-5*`, `*/gpt-4o-mini`, `*`.
pub fn allowed(patterns: &[String], provider: &str, model: &str) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| glob(p.as_bytes(), format!("{provider}/{model}").as_bytes()))
}

/// `*`-only glob matching, linear in practice (no backtracking beyond the last `*`).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// What is wrong with an allow-list, if anything.
pub fn allow_problem(patterns: &[String]) -> Option<String> {
    patterns.iter().find_map(|p| {
        (p != "*" && !p.contains('/') || p.len() > 200 || p.chars().any(char::is_whitespace)).then(
            || {
                format!(
                    "allow pattern `{p}`: write provider/model, with * for any part (`deepseek/*`)"
                )
            },
        )
    })
}

impl KeyRecord {
    /// Why the key may not be used now, if it may not.
    pub fn refusal(&self, now_ms: f64) -> Option<&'static str> {
        if self.revoked {
            return Some("this API key has been revoked");
        }
        match self.expires_at_ms {
            Some(t) if (t as f64) <= now_ms => Some("this API key has expired"),
            _ => None,
        }
    }
}

/// The key presented by the client: `Authorization: Bearer <key>` (what OpenAI SDKs send) or `x-api-key`.
pub fn presented_key(headers: &[(String, String)]) -> Option<&str> {
    if let Some(auth) = find_header(headers, "authorization") {
        let auth = auth.trim();
        if auth.len() > 7 && auth[..7].eq_ignore_ascii_case("bearer ") {
            let key = auth[7..].trim();
            if !key.is_empty() {
                return Some(key);
            }
        }
    }
    find_header(headers, "x-api-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Lower-case hex SHA-256 of the key: the only form in which keys are stored.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Builds a new key from 32 bytes of OS randomness supplied by the caller.
pub fn key_from_random(random: &[u8; 32]) -> String {
    format!("{KEY_PREFIX}{}", hex(random))
}

pub use gateway_policy::hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bearer_and_x_api_key_are_both_accepted() {
        assert_eq!(
            presented_key(&h(&[("authorization", "Bearer gw-1")])),
            Some("gw-1")
        );
        assert_eq!(
            presented_key(&h(&[("authorization", "bearer  gw-2 ")])),
            Some("gw-2")
        );
        assert_eq!(presented_key(&h(&[("x-api-key", "gw-3")])), Some("gw-3"));
        assert_eq!(presented_key(&h(&[("authorization", "Basic abc")])), None);
        assert_eq!(presented_key(&h(&[("authorization", "Bearer ")])), None);
        assert_eq!(presented_key(&h(&[])), None);
    }

    #[test]
    fn allow_lists_match_provider_and_model_patterns() {
        let list = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(allowed(&[], "openai", "gpt-5"));
        let l = list(&["deepseek/*", "openai/gpt-5*", "*/@cf/meta/*"]);
        assert!(allowed(&l, "deepseek", "deepseek-v4-pro"));
        assert!(allowed(&l, "openai", "gpt-5.4-mini"));
        assert!(!allowed(&l, "openai", "gpt-4o"));
        assert!(allowed(&l, "workers_ai", "@cf/meta/llama-3.1-8b-instruct"));
        assert!(!allowed(&l, "gemini", "gemini-3.8-flash"));
        assert!(allowed(&list(&["*"]), "gemini", "x"));
        assert!(!allowed(&list(&["openai/gpt-5"]), "openai", "gpt-5.4"));
        assert_eq!(allow_problem(&list(&["deepseek/*", "*"])), None);
        assert!(allow_problem(&list(&["deepseek"])).is_some());
    }

    #[test]
    fn the_feed_answers_what_came_since_and_says_when_it_no_longer_reaches_back() {
        let mut feed = RecordFeed::default();
        let key = |id: &str| RecordChange::Key(crate::testing::key_record(id));
        feed.announce(key("a"), 0);
        feed.announce(key("b"), 1);
        let since = feed.since(1);
        assert_eq!(
            (since.version, since.complete, since.changes),
            (2, true, vec![key("b")])
        );
        // Ten minutes later the old entries go, and an isolate that last saw version 0 is told it missed some.
        feed.announce(key("c"), RecordFeed::KEEP_MS + 2);
        assert_eq!(feed.entries.len(), 1);
        assert!(!feed.since(0).complete && feed.since(2).complete);
        assert!(feed.since(3).changes.is_empty());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn revoked_and_expired_keys_are_refused() {
        let mut k = crate::testing::key_record("key_1");
        k.expires_at_ms = Some(1_000);
        assert_eq!(k.refusal(999.0), None);
        assert_eq!(k.refusal(1_000.0), Some("this API key has expired"));
        k.expires_at_ms = None;
        k.revoked = true;
        assert_eq!(k.refusal(0.0), Some("this API key has been revoked"));
    }
}
