//! Ports: what the core needs from a host. Each host (Workers, native) implements these and nothing else.
//!
//! The traits use `async fn` without `Send` bounds on purpose: wasm futures are `!Send`, and the native host
//! runs the pipeline on a current-thread runtime per worker thread.

use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;

use crate::auth::KeyRecord;
use crate::error::StoreError;
use crate::http::find_header;
use gateway_policy::store::Entry;

/// A response body arriving from an upstream, chunk by chunk as the network delivers it.
pub type ByteStream = LocalBoxStream<'static, Result<Vec<u8>, UpstreamError>>;

/// An HTTP request to a provider, fully built by a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct UpstreamResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: ByteStream,
}

impl UpstreamResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No response: DNS, connect, TLS, or the request could not be sent.
    #[error("could not reach upstream: {0}")]
    Connect(String),
    /// The response body failed after the headers arrived.
    #[error("upstream body failed: {0}")]
    Body(String),
}

/// Sends requests to providers. Dropping the returned future or body stream must cancel the request.
#[allow(async_fn_in_trait)]
pub trait Upstream {
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError>;

    /// A request to a URL a client gave (an image to inline), which must reach only public addresses. The core
    /// refuses private and loopback address literals itself; a host whose resolver could answer a name with a
    /// private address checks what it connects to (natively). Without an override, [`Upstream::send`]
    /// (Workers: a Worker's `fetch` reaches only the public internet).
    async fn send_public(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send(request).await
    }
}

/// Finds API keys by the SHA-256 hex of the presented key. Keys are never stored in clear.
#[allow(async_fn_in_trait)]
pub trait KeyStore {
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError>;
}

/// Where the published policy and the provider health snapshot live: KV on Workers (`policy/active`,
/// `policy/<hash>`, `health/snapshot`), a directory or file and the SQLite log natively.
#[allow(async_fn_in_trait)]
pub trait PolicyStore {
    /// The hash the `policy/active` pointer names; `None` when nothing was published.
    async fn active_policy(&self) -> Result<Option<String>, StoreError>;
    /// The compiled artifact `policy/<hash>` (canonical JSON); `None` when it is missing.
    async fn policy_artifact(&self, hash: &str) -> Result<Option<String>, StoreError>;
    /// The latest health snapshot ([`crate::health::Snapshot`] as JSON); `None` before the first one.
    async fn health_snapshot(&self) -> Result<Option<String>, StoreError>;
    /// A store entry as text (`policy/history`, `policy/log`; [`gateway_policy::store`]); `None` when absent.
    async fn policy_entry(&self, entry: Entry<'_>) -> Result<Option<String>, StoreError>;
    /// Writes a store entry: the console's rollback writes `history`, `log`, then `active`, as
    /// `gateway-policy publish` and `rollback` do.
    async fn put_policy_entry(&self, entry: Entry<'_>, value: &str) -> Result<(), StoreError>;
}

/// The response cache's storage (natively an in-process LRU with a size cap; on Workers the Cache API): an
/// entry is [`crate::cache::Entry`] as JSON bytes under its key. Failures only mean a miss.
#[allow(async_fn_in_trait)]
pub trait CacheStore {
    async fn cached(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn cache(&self, key: &str, entry: Vec<u8>, ttl_ms: u64) -> Result<(), StoreError>;
}

/// The payload archive's storage (R2 on Workers, a directory natively): one redacted document per archived
/// request under its key, `YYYY-MM-DD/<request id>.json` ([`crate::archive::object_key`]).
#[allow(async_fn_in_trait)]
pub trait ArchiveStore {
    async fn archive(&self, key: &str, document: Vec<u8>) -> Result<(), StoreError>;
    async fn archived(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Time and randomness, which differ between wasm32 and native.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> f64;
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;
    /// Not for secrets: request ids and sampling only.
    fn random_u64(&self) -> u64;
    /// Resolves when the host stops serving and its drain time is over: streams still running end with an error
    /// event and a logged row. A host that never drains (Workers) keeps the default, which never resolves.
    fn shutdown(&self) -> LocalBoxFuture<'static, ()> {
        Box::pin(futures::future::pending())
    }
}

/// Everything the request path needs from its host. Cheap to clone (handles, not data).
/// The deployment's settings and secrets by name (Worker vars and secrets, or environment variables natively):
/// a published catalog names the secrets of its providers' keys, read when the policy is loaded.
pub trait Settings {
    fn setting(&self, name: &str) -> Option<String>;
}

/// Reads the usage rollups (`usage_rollups`): D1 on Workers, SQLite natively.
#[allow(async_fn_in_trait)]
pub trait UsageStore {
    /// The rows of a read-only query, each as its columns' values in order.
    async fn usage_rows(
        &self,
        sql: &str,
        params: Vec<crate::log::SqlValue>,
    ) -> Result<Vec<Vec<crate::log::SqlValue>>, StoreError>;
}

/// Teams by name: KV `team/<name>` on Workers, SQLite `teams` natively.
#[allow(async_fn_in_trait)]
pub trait TeamStore {
    async fn find_team(&self, name: &str) -> Result<Option<crate::auth::TeamRecord>, StoreError>;
}

/// Where the counters of keys and teams live ([`crate::limits`]): in process natively (a [`Ledger`] shared by
/// every thread, spend seeded from the log after a restart), a Durable Object per key and per team on Workers.
///
/// [`Ledger`]: crate::limits::Ledger
#[allow(async_fn_in_trait)]
pub trait LimitStore {
    /// Admits a request in every scope or in none.
    async fn reserve(
        &self,
        asks: Vec<crate::limits::ScopeAsk>,
    ) -> Result<crate::limits::Admission, StoreError>;
    /// Replaces the reservations with what the request used.
    async fn settle(&self, held: Vec<crate::limits::Held>, used: crate::limits::Used);
    /// Where each scope stands now (the policy's budget attributes), reserving nothing.
    async fn standing(
        &self,
        asks: Vec<crate::limits::ScopeAsk>,
    ) -> Result<Vec<crate::limits::Standing>, StoreError>;
}

/// Writes key and team records: the key administration API. Keys are stored under their hash only.
#[allow(async_fn_in_trait)]
pub trait RecordStore {
    /// 32 bytes from the platform's secure random source, for a new key.
    fn secret_bytes(&self) -> Result<[u8; 32], StoreError>;
    async fn insert_key(
        &self,
        key_hash: &str,
        record: &crate::auth::KeyRecord,
    ) -> Result<(), StoreError>;
    /// Replaces the record of the key with `record.id`; `false` when there is none.
    async fn update_key(&self, record: &crate::auth::KeyRecord) -> Result<bool, StoreError>;
    /// Every key's record, oldest first.
    async fn keys(&self) -> Result<Vec<crate::auth::KeyRecord>, StoreError>;
    async fn key_by_id(&self, id: &str) -> Result<Option<crate::auth::KeyRecord>, StoreError>;
    async fn put_team(&self, record: &crate::auth::TeamRecord) -> Result<(), StoreError>;
    async fn teams(&self) -> Result<Vec<crate::auth::TeamRecord>, StoreError>;
    /// Adds a changed record to the changes feed, on hosts whose key store readers can lag (Workers: KV reads
    /// are cached at the edge and propagate within a minute).
    async fn announce(&self, _change: crate::auth::RecordChange) -> Result<(), StoreError> {
        Ok(())
    }
    /// The records changed since `version` of the feed; `None` on a host without one (natively every thread
    /// shares one signal instead).
    async fn changes(&self, _since: u64) -> Result<Option<crate::auth::RecordChanges>, StoreError> {
        Ok(None)
    }
}

pub trait Host:
    Upstream
    + KeyStore
    + TeamStore
    + LimitStore
    + RecordStore
    + PolicyStore
    + UsageStore
    + CacheStore
    + ArchiveStore
    + Clock
    + Settings
    + Clone
    + 'static
{
}

impl<
        T: Upstream
            + KeyStore
            + TeamStore
            + LimitStore
            + RecordStore
            + PolicyStore
            + UsageStore
            + CacheStore
            + ArchiveStore
            + Clock
            + Settings
            + Clone
            + 'static,
    > Host for T
{
}
