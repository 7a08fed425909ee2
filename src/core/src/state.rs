//! State that outlives a request, kept per isolate on Workers and per worker thread natively: the active
//! policy, the latest health snapshot, and the cooldowns of provider models that keep failing.
//!
//! The policy is re-read in the background: a request that finds the last check older than
//! `policy_refresh_ms` starts one refresh (only one runs at a time) and goes on with the policy it has. Only
//! the first request of a fresh isolate waits for the store. A pointer to an artifact that is missing, does
//! not parse, or does not hash to its name never replaces the policy in use.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

use gateway_policy::{HealthAttrs, Policy};

use crate::auth::KeyRecord;
use crate::error::StoreError;
use crate::health::Snapshot;
use crate::ports::{Clock, PolicyStore};
use crate::providers::Providers;

/// The policy hash in headers and log rows when no policy has been published: route to what was requested.
pub const BUILTIN_POLICY: &str = "builtin";

/// Consecutive provider failures of one model before it cools down.
pub const FAILURES_TO_COOL_DOWN: u32 = 3;
/// The longest cooldown a `Retry-After` can ask for.
pub const MAX_RETRY_AFTER_COOLDOWN_MS: f64 = 300_000.0;
/// How long an unknown key is remembered as unknown (a key created since is found after this at the latest).
pub const UNKNOWN_KEY_CACHE_MS: f64 = 5_000.0;
/// The key cache is cleared when it grows past this many entries.
const MAX_CACHED_KEYS: usize = 10_000;

#[derive(Default)]
pub struct Shared {
    policy: RefCell<PolicySlot>,
    health: RefCell<HealthSlot>,
    /// Shared by every worker thread natively ([`Shared::across_threads`]); per isolate on Workers.
    cooldowns: Cooldowns,
    /// Key records by key hash, as read from the key store.
    keys: RecordCache<KeyRecord>,
    /// Team records by name, likewise.
    teams: RecordCache<crate::auth::TeamRecord>,
    /// Bumped whenever a key or team record changes (shared by every thread natively): the caches above are
    /// dropped when it moves, so a revocation or a new limit applies to the next request.
    records: Records,
    records_seen: Cell<u64>,
    /// The latest key (by id) and team (by name) records from the changes feed: they win over an older record
    /// read from the key store (Workers' KV can serve a stale one for up to a minute).
    latest_keys: RefCell<HashMap<String, KeyRecord>>,
    latest_teams: RefCell<HashMap<String, crate::auth::TeamRecord>>,
    /// The feed's version this isolate has applied, and when it last asked (`None`: never).
    feed_version: Cell<u64>,
    feed_checked_at: Cell<Option<f64>>,
    checked_at_ms: Cell<Option<f64>>,
    refreshing: Cell<bool>,
    /// The host's log writer's counters, when it keeps them (the native host), shown by `/admin/status`.
    log_stats: Option<std::sync::Arc<LogStats>>,
    /// The provider table of the policy in use (by its hash), built from its catalog when it was first needed
    /// after the last refresh.
    providers: RefCell<Option<(String, Arc<Providers>)>>,
}

/// What a host's log writer did with the rows it was given: written, write attempts retried (the database was
/// busy or locked), and rows lost after the last retry. Shared across threads.
#[derive(Debug, Default)]
pub struct LogStats {
    pub written: std::sync::atomic::AtomicU64,
    pub retried: std::sync::atomic::AtomicU64,
    pub lost: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct PolicySlot {
    /// `None`: the built-in default (route to what was requested) until a policy is loaded.
    policy: Option<Rc<Policy>>,
    loaded_at_ms: Option<f64>,
    /// Why the last refresh could not load the published policy (the policy in use stays).
    last_error: Option<PolicyLoadError>,
}

#[derive(Default)]
struct HealthSlot {
    snapshot: Option<Snapshot>,
    attrs: Rc<BTreeMap<String, HealthAttrs>>,
}

/// Records read from a store, by what they were looked up with, and when (`None`: known not to exist). Cleared
/// when it grows past [`MAX_CACHED_KEYS`].
struct RecordCache<T>(RefCell<HashMap<String, (Option<T>, f64)>>);

impl<T> Default for RecordCache<T> {
    fn default() -> Self {
        Self(RefCell::default())
    }
}

impl<T: Clone> RecordCache<T> {
    /// A record read less than `ttl_ms` ago (a missing one for at most [`UNKNOWN_KEY_CACHE_MS`]).
    fn get(&self, key: &str, now_ms: f64, ttl_ms: u64) -> Option<Option<T>> {
        let map = self.0.borrow();
        let (record, at) = map.get(key)?;
        let ttl = match record {
            Some(_) => ttl_ms as f64,
            None => UNKNOWN_KEY_CACHE_MS.min(ttl_ms as f64),
        };
        (now_ms - at < ttl).then(|| record.clone())
    }

    fn put(&self, key: &str, record: Option<T>, now_ms: f64) {
        let mut map = self.0.borrow_mut();
        if map.len() >= MAX_CACHED_KEYS {
            map.clear();
        }
        map.insert(key.to_owned(), (record, now_ms));
    }

    fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

/// Inserts into a map that is cleared when it grows past [`MAX_CACHED_KEYS`].
fn bounded_insert<T>(map: &RefCell<HashMap<String, T>>, key: String, value: T) {
    let mut map = map.borrow_mut();
    if map.len() >= MAX_CACHED_KEYS {
        map.clear();
    }
    map.insert(key, value);
}

/// A counter of changes to key and team records, shared by every thread of a process. Cheap to clone.
#[derive(Default, Clone, Debug)]
pub struct Records(Arc<std::sync::atomic::AtomicU64>);

impl Records {
    /// Says that a record changed: every thread drops its cached records before its next request.
    pub fn changed(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Provider models' failure streaks and cooldowns, by `provider:model`. Cheap to clone (a handle).
#[derive(Default, Clone)]
pub struct Cooldowns(Arc<Mutex<HashMap<String, Cooldown>>>);

impl Cooldowns {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Cooldown>> {
        // A panic while holding the lock cannot leave the map inconsistent (every update is one statement).
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default, Clone, Copy)]
struct Cooldown {
    failures: u32,
    until_ms: f64,
}

/// Why the published policy could not replace the one in use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("reading policy/active: {0}")]
    Pointer(StoreError),
    #[error("reading policy/{hash}: {source}")]
    Artifact { hash: String, source: StoreError },
    #[error("policy/active names `{0}`, but policy/{0} is missing")]
    Missing(String),
    #[error("policy/{hash}: {reason}")]
    Invalid { hash: String, reason: String },
    #[error("policy/{named} holds the policy {holds}, not the one the pointer names")]
    WrongHash { named: String, holds: String },
}

/// What a request must do about the policy before it is decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Never checked in this isolate: wait for the store once.
    Cold,
    /// Checked too long ago: refresh in the background.
    Stale,
    Fresh,
}

impl Shared {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// State for one of several threads of one process: the cooldowns are shared with the other threads'
    /// `Shared` values, and `/admin/status` shows the host's log writer's counters.
    pub fn across_threads(
        cooldowns: Cooldowns,
        log_stats: std::sync::Arc<LogStats>,
        records: Records,
    ) -> Rc<Self> {
        Rc::new(Self {
            cooldowns,
            log_stats: Some(log_stats),
            records,
            ..Self::default()
        })
    }

    /// The handle that says key and team records changed.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The feed version to ask changes since, when the last check is `every_ms` old (or there was none).
    pub fn feed_due(&self, now_ms: f64, every_ms: f64) -> Option<u64> {
        match self.feed_checked_at.get() {
            Some(at) if now_ms - at < every_ms => None,
            _ => Some(self.feed_version.get()),
        }
    }

    /// Notes that the feed was asked at `now_ms` (whatever it answered), so it is asked again only when due.
    pub fn feed_checked(&self, now_ms: f64) {
        self.feed_checked_at.set(Some(now_ms));
    }

    /// Applies the records changed since the last version: from now on they win over older ones, cached or
    /// read ([`Self::latest_key`], [`Self::latest_team`]). A feed that no longer reaches back that far drops the
    /// caches.
    pub fn apply_changes(&self, feed: crate::auth::RecordChanges) {
        use crate::auth::RecordChange;
        if !feed.complete {
            self.keys.clear();
            self.teams.clear();
        }
        for change in feed.changes {
            match change {
                RecordChange::Key(k) => bounded_insert(&self.latest_keys, k.id.clone(), k),
                RecordChange::Team(t) => bounded_insert(&self.latest_teams, t.name.clone(), t),
            }
        }
        self.feed_version.set(feed.version);
    }

    /// `record`, or the feed's newer one for the same key.
    pub fn latest_key(&self, record: KeyRecord) -> KeyRecord {
        match self.latest_keys.borrow().get(&record.id) {
            Some(l) if l.updated_at_ms >= record.updated_at_ms => l.clone(),
            _ => record,
        }
    }

    /// `record` (or none), or the feed's newer one for the team.
    pub fn latest_team(
        &self,
        name: &str,
        record: Option<crate::auth::TeamRecord>,
    ) -> Option<crate::auth::TeamRecord> {
        let latest = self.latest_teams.borrow();
        match (latest.get(name), record) {
            (Some(l), Some(r)) if l.updated_at_ms < r.updated_at_ms => Some(r),
            (Some(l), _) => Some(l.clone()),
            (None, r) => r,
        }
    }

    /// Drops cached key and team records if any changed since they were read.
    fn forget_changed_records(&self) {
        let now = self.records.generation();
        if self.records_seen.get() != now {
            self.records_seen.set(now);
            self.keys.clear();
            self.teams.clear();
        }
    }

    pub fn cached_team(
        &self,
        name: &str,
        now_ms: f64,
        ttl_ms: u64,
    ) -> Option<Option<crate::auth::TeamRecord>> {
        self.forget_changed_records();
        self.teams.get(name, now_ms, ttl_ms)
    }

    pub fn cache_team(&self, name: &str, record: Option<crate::auth::TeamRecord>, now_ms: f64) {
        self.teams.put(name, record, now_ms);
    }

    /// A policy given at start (tests, `gateway serve --policy` before its first refresh).
    pub fn install(&self, policy: Rc<Policy>, now_ms: f64) {
        let mut slot = self.policy.borrow_mut();
        slot.policy = Some(policy);
        slot.loaded_at_ms = Some(now_ms);
    }

    pub fn policy(&self) -> Option<Rc<Policy>> {
        self.policy.borrow().policy.clone()
    }

    /// The provider table of `policy`'s catalog with the settings `setting` reads: built once per policy.
    pub fn providers_of(
        &self,
        policy: &Policy,
        setting: impl Fn(&str) -> Option<String>,
    ) -> Arc<Providers> {
        if let Some((hash, table)) = &*self.providers.borrow() {
            if hash == policy.hash() {
                return table.clone();
            }
        }
        let table = Arc::new(Providers::from_catalog(&policy.artifact().catalog, setting));
        *self.providers.borrow_mut() = Some((policy.hash().to_owned(), table.clone()));
        table
    }

    pub fn health(&self) -> Rc<BTreeMap<String, HealthAttrs>> {
        self.health.borrow().attrs.clone()
    }

    pub fn freshness(&self, now_ms: f64, refresh_ms: u64) -> Freshness {
        match self.checked_at_ms.get() {
            None => Freshness::Cold,
            Some(_) if self.refreshing.get() => Freshness::Fresh,
            Some(t) if now_ms - t >= refresh_ms as f64 => Freshness::Stale,
            Some(_) => Freshness::Fresh,
        }
    }

    /// Re-reads the policy pointer (loading a new artifact when it moved) and the health snapshot.
    pub async fn refresh<H: PolicyStore + Clock>(&self, host: &H) {
        if self.refreshing.replace(true) {
            return;
        }
        let _done = ResetOnDrop(&self.refreshing);
        match self.load_policy(host).await {
            Ok(()) => self.policy.borrow_mut().last_error = None,
            Err(e) => self.policy.borrow_mut().last_error = Some(e),
        }
        if let Ok(Some(json)) = host.health_snapshot().await {
            if let Ok(snapshot) = serde_json::from_str::<Snapshot>(&json) {
                let mut slot = self.health.borrow_mut();
                slot.attrs = Rc::new(snapshot.attrs());
                slot.snapshot = Some(snapshot);
            }
        }
        // Settings and secrets are read again with the next request: a key set since (a secrets file, a new
        // Worker secret) takes effect within the refresh interval, without a new policy.
        *self.providers.borrow_mut() = None;
        self.checked_at_ms.set(Some(host.now_ms()));
    }

    async fn load_policy<H: PolicyStore + Clock>(&self, host: &H) -> Result<(), PolicyLoadError> {
        let hash = host
            .active_policy()
            .await
            .map_err(PolicyLoadError::Pointer)?;
        let Some(hash) = hash.map(|h| h.trim().to_owned()) else {
            return Ok(());
        };
        if self.policy().is_some_and(|p| p.hash() == hash) {
            return Ok(());
        }
        let json = match host.policy_artifact(&hash).await {
            Ok(Some(json)) => json,
            Ok(None) => return Err(PolicyLoadError::Missing(hash)),
            Err(source) => return Err(PolicyLoadError::Artifact { hash, source }),
        };
        let policy = match Policy::from_json(&json) {
            Ok(p) => p,
            Err(e) => {
                return Err(PolicyLoadError::Invalid {
                    hash,
                    reason: e.to_string(),
                })
            }
        };
        if policy.hash() != hash {
            return Err(PolicyLoadError::WrongHash {
                named: hash,
                holds: policy.hash().to_owned(),
            });
        }
        self.install(Rc::new(policy), host.now_ms());
        Ok(())
    }

    /// A key record read from the key store less than `ttl_ms` ago (`Some(None)`: known not to exist, for
    /// up to [`UNKNOWN_KEY_CACHE_MS`]); `None` when the store must be asked.
    pub fn cached_key(&self, hash: &str, now_ms: f64, ttl_ms: u64) -> Option<Option<KeyRecord>> {
        self.forget_changed_records();
        self.keys.get(hash, now_ms, ttl_ms)
    }

    pub fn cache_key(&self, hash: &str, record: Option<KeyRecord>, now_ms: f64) {
        self.keys.put(hash, record, now_ms);
    }

    /// Whether a provider model is cooling down (tried only when nothing else is left).
    pub fn cooling(&self, target: &str, now_ms: f64) -> bool {
        self.cooldowns
            .lock()
            .get(target)
            .is_some_and(|c| c.until_ms > now_ms)
    }

    /// Records how an attempt on a provider model ended. `FAILURES_TO_COOL_DOWN` provider failures in a row
    /// cool it down for `cooldown_ms`; a `Retry-After` cools it down for as long as it asks.
    pub fn record_attempt(
        &self,
        target: &str,
        provider_fault: bool,
        retry_after_ms: Option<f64>,
        now_ms: f64,
        cooldown_ms: u64,
    ) {
        let mut all = self.cooldowns.lock();
        if !provider_fault {
            all.remove(target);
            return;
        }
        let c = all.entry(target.to_owned()).or_default();
        c.failures += 1;
        if c.failures >= FAILURES_TO_COOL_DOWN {
            c.until_ms = c.until_ms.max(now_ms + cooldown_ms as f64);
        }
        if let Some(ms) = retry_after_ms {
            c.until_ms = c.until_ms.max(now_ms + ms.min(MAX_RETRY_AFTER_COOLDOWN_MS));
        }
    }

    /// What the admin endpoint shows.
    pub fn status(&self, now_ms: f64, providers: &Providers) -> serde_json::Value {
        let policy = self.policy.borrow();
        let rules = policy
            .policy
            .as_ref()
            .map(|p| p.artifact().rules.len() + p.artifact().deny.len() + 1);
        let cooling: BTreeMap<String, f64> = self
            .cooldowns
            .lock()
            .iter()
            .filter(|(_, c)| c.until_ms > now_ms)
            .map(|(k, c)| (k.clone(), ((c.until_ms - now_ms) / 1000.0).ceil()))
            .collect();
        serde_json::json!({
            "policy": {
                "hash": policy.policy.as_ref().map_or(BUILTIN_POLICY, |p| p.hash()),
                "rules": rules,
                "loaded_at_ms": policy.loaded_at_ms,
                "checked_at_ms": self.checked_at_ms.get(),
                "last_error": policy.last_error.as_ref().map(ToString::to_string),
            },
            "providers": {
                "configured": providers.configured.iter().map(|p| serde_json::json!({
                    "name": p.name, "dialect": p.dialect.name(), "models": p.models.len(),
                    "default": providers.default.as_deref() == Some(p.name.as_str()),
                })).collect::<Vec<_>>(),
                "unconfigured": providers.unconfigured.iter().map(|u| serde_json::json!({
                    "name": u.name, "why": u.why.to_string(),
                })).collect::<Vec<_>>(),
            },
            "health": self.health.borrow().snapshot,
            "cooling_down_seconds": cooling,
            "log_rows": self.log_stats.as_ref().map(|s| {
                let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
                serde_json::json!({"written": n(&s.written), "retried": n(&s.retried), "lost": n(&s.lost)})
            }),
        })
    }
}

struct ResetOnDrop<'a>(&'a Cell<bool>);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_failures_in_a_row_cool_a_model_down_and_a_success_resets() {
        let s = Shared::default();
        for _ in 0..2 {
            s.record_attempt("deepseek:m", true, None, 0.0, 30_000);
        }
        assert!(!s.cooling("deepseek:m", 1.0));
        s.record_attempt("deepseek:m", true, None, 0.0, 30_000);
        assert!(s.cooling("deepseek:m", 1.0));
        assert!(!s.cooling("deepseek:m", 30_001.0));
        s.record_attempt("deepseek:m", false, None, 2.0, 30_000);
        assert!(!s.cooling("deepseek:m", 3.0));
    }

    #[test]
    fn keys_are_cached_for_their_ttl_and_unknown_keys_for_less() {
        let s = Shared::default();
        s.cache_key("known", Some(crate::testing::key_record("key_1")), 0.0);
        s.cache_key("unknown", None, 0.0);
        assert!(matches!(
            s.cached_key("known", 29_999.0, 30_000),
            Some(Some(_))
        ));
        assert_eq!(s.cached_key("known", 30_000.0, 30_000), None);
        assert_eq!(s.cached_key("unknown", 4_999.0, 30_000), Some(None));
        assert_eq!(s.cached_key("unknown", 5_000.0, 30_000), None);
        assert_eq!(s.cached_key("never", 0.0, 30_000), None);
    }

    #[test]
    fn cooldowns_can_be_shared_between_threads_state() {
        let (table, stats) = (Cooldowns::default(), std::sync::Arc::default());
        let (a, b) = (
            Shared::across_threads(
                table.clone(),
                std::sync::Arc::clone(&stats),
                Records::default(),
            ),
            Shared::across_threads(table, stats, Records::default()),
        );
        a.record_attempt("gemini:m", true, None, 0.0, 30_000);
        b.record_attempt("gemini:m", true, None, 0.0, 30_000);
        a.record_attempt("gemini:m", true, None, 0.0, 30_000);
        assert!(b.cooling("gemini:m", 1.0));
        assert!(!Shared::default().cooling("gemini:m", 1.0));
    }

    #[test]
    fn retry_after_cools_down_at_once_for_as_long_as_it_asks() {
        let s = Shared::default();
        s.record_attempt("openai:x", true, Some(2_000.0), 0.0, 30_000);
        assert!(s.cooling("openai:x", 1_999.0));
        assert!(!s.cooling("openai:x", 2_000.0));
        assert!(!s.cooling("openai:y", 1.0));
    }
}
