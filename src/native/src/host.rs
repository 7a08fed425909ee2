//! The native implementation of the core's ports: reqwest for upstreams, SQLite for keys, tokio for time.

use std::path::{Path, PathBuf};

use crate::policy_source::PolicySource;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::{FutureExt, LocalBoxFuture};
use futures::StreamExt;
use gateway_core::limits::{Admission, ScopeAsk};
use gateway_core::{
    Clock, KeyRecord, KeyStore, PolicyStore, Settings, StoreError, Upstream, UpstreamError,
    UpstreamRequest, UpstreamResponse,
};
use rusqlite::Connection;

/// One per worker thread: its own HTTP client (connections stay on the thread's runtime) and SQLite handle.
#[derive(Clone)]
pub struct NativeHost {
    client: reqwest::Client,
    /// For URLs clients give (images to inline): connects only to public addresses, whatever a name resolves to.
    public_client: reqwest::Client,
    db: Rc<Connection>,
    seed: u64,
    counter: Rc<AtomicU64>,
    policy: Option<Rc<PolicySource>>,
    health: Arc<RwLock<Option<String>>>,
    secrets: crate::secrets::Secrets,
    /// The limit counters, shared by every thread.
    ledger: gateway_core::limits::Ledger,
    /// The response cache, shared by every thread.
    cache: crate::cache::ResponseCache,
    /// The payload archive's directory.
    archive: crate::archive::Archive,
    shutdown: crate::shutdown::Shutdown,
    /// `CLOCK_OFFSET_MS` (tests only).
    clock_offset_ms: f64,
}

/// Settings and secrets are the process's environment variables, then the secrets file.
impl Settings for NativeHost {
    fn setting(&self, name: &str) -> Option<String> {
        self.secrets.get(name)
    }
}

impl NativeHost {
    /// `policy`: a compiled policy file, or a directory as `gateway-policy publish --dir` writes it
    /// (`active` naming `<hash>.json`); re-read on every refresh. `health`: the latest snapshot.
    pub fn new(
        db_path: &Path,
        policy: Option<PathBuf>,
        (health, secrets, ledger, cache, archive): (
            Arc<RwLock<Option<String>>>,
            crate::secrets::Secrets,
            gateway_core::limits::Ledger,
            crate::cache::ResponseCache,
            crate::archive::Archive,
        ),
        (shutdown, clock_offset_ms): (crate::shutdown::Shutdown, i64),
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            // A provider's redirect is an upstream error (the core says so): following it would send the
            // provider's key and extra headers wherever the provider points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let public_client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PublicOnly))
            .build()
            .map_err(|e| e.to_string())?;
        let db = crate::db::open(db_path).map_err(|e| format!("{}: {e}", db_path.display()))?;
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            public_client,
            db: Rc::new(db),
            seed: u64::from_le_bytes(seed),
            counter: Rc::default(),
            policy: policy.map(|p| Rc::new(PolicySource::new(p))),
            health,
            secrets,
            ledger,
            cache,
            archive,
            shutdown,
            clock_offset_ms: clock_offset_ms as f64,
        })
    }
}

/// A resolver that answers only with public addresses (`gateway_core::net::is_public_ip`): a name pointing at
/// loopback, a private range or a cloud metadata address cannot make the gateway fetch from its own network.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = found
                .filter(|a| gateway_core::net::is_public_ip(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("`{host}` resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Upstream for NativeHost {
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        send_with(&self.client, request).await
    }

    async fn send_public(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        send_with(&self.public_client, request).await
    }
}

async fn send_with(
    client: &reqwest::Client,
    request: UpstreamRequest,
) -> Result<UpstreamResponse, UpstreamError> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| UpstreamError::Connect(e.to_string()))?;
    let mut builder = client.request(method, &request.url).body(request.body);
    for (k, v) in &request.headers {
        builder = builder.header(k, v);
    }
    let resp = builder
        .send()
        .await
        .map_err(|e| UpstreamError::Connect(error_chain(&e.without_url())))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = resp
        .bytes_stream()
        .map(|chunk| {
            chunk
                .map(|b| b.to_vec())
                .map_err(|e| UpstreamError::Body(error_chain(&e.without_url())))
        })
        .boxed_local();
    Ok(UpstreamResponse {
        status,
        headers,
        body,
    })
}

/// reqwest's top-level message is generic ("error sending request"); the cause says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

impl gateway_core::CacheStore for NativeHost {
    async fn cached(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.cache.get(key, self.now_ms()))
    }

    async fn cache(&self, key: &str, entry: Vec<u8>, ttl_ms: u64) -> Result<(), StoreError> {
        self.cache.put(key, entry, self.now_ms() + ttl_ms as f64);
        Ok(())
    }
}

impl gateway_core::ArchiveStore for NativeHost {
    async fn archive(&self, key: &str, document: Vec<u8>) -> Result<(), StoreError> {
        self.archive.put(key, document).await
    }

    async fn archived(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.archive.get(key).await
    }
}

impl gateway_core::ports::UsageStore for NativeHost {
    async fn usage_rows(
        &self,
        sql: &str,
        params: Vec<gateway_core::SqlValue>,
    ) -> Result<Vec<Vec<gateway_core::SqlValue>>, StoreError> {
        crate::db::query(&self.db, sql, params).map_err(StoreError::new)
    }
}

impl KeyStore for NativeHost {
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        crate::db::find_key(&self.db, key_hash).map_err(StoreError::new)
    }
}

impl gateway_core::RecordStore for NativeHost {
    fn secret_bytes(&self) -> Result<[u8; 32], StoreError> {
        let mut out = [0u8; 32];
        getrandom::fill(&mut out).map_err(StoreError::new)?;
        Ok(out)
    }

    async fn insert_key(&self, key_hash: &str, record: &KeyRecord) -> Result<(), StoreError> {
        crate::db::insert_key(&self.db, key_hash, record).map_err(StoreError::new)
    }

    async fn update_key(&self, record: &KeyRecord) -> Result<bool, StoreError> {
        crate::db::update_key(&self.db, record).map_err(StoreError::new)
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        crate::db::key_by_id(&self.db, id).map_err(StoreError::new)
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        crate::db::keys(&self.db).map_err(StoreError::new)
    }

    async fn put_team(&self, record: &gateway_core::TeamRecord) -> Result<(), StoreError> {
        crate::db::put_team(&self.db, record).map_err(StoreError::new)
    }

    async fn teams(&self) -> Result<Vec<gateway_core::TeamRecord>, StoreError> {
        crate::db::teams(&self.db).map_err(StoreError::new)
    }
}

impl gateway_core::TeamStore for NativeHost {
    async fn find_team(&self, name: &str) -> Result<Option<gateway_core::TeamRecord>, StoreError> {
        crate::db::find_team(&self.db, name).map_err(StoreError::new)
    }
}

/// Counters in process for every thread; a scope's spend today and this month is read from the log the first time
/// it is needed, so a restart does not reset a budget.
impl gateway_core::LimitStore for NativeHost {
    async fn reserve(&self, asks: Vec<ScopeAsk>) -> Result<Admission, StoreError> {
        self.seed(&asks)?;
        Ok(self.ledger.reserve(&asks))
    }

    async fn settle(
        &self,
        held: Vec<gateway_core::limits::Held>,
        used: gateway_core::limits::Used,
    ) {
        self.ledger.settle(&held, used);
    }

    async fn standing(
        &self,
        asks: Vec<ScopeAsk>,
    ) -> Result<Vec<gateway_core::limits::Standing>, StoreError> {
        self.seed(&asks)?;
        Ok(self.ledger.standing(&asks))
    }
}

impl NativeHost {
    fn seed(&self, asks: &[ScopeAsk]) -> Result<(), StoreError> {
        for a in asks {
            if self.ledger.knows(&a.scope) {
                continue;
            }
            let (day, month) =
                crate::db::spend(&self.db, (&a.scope, &a.currency), a.zone, a.ask.now_ms)
                    .map_err(StoreError::new)?;
            self.ledger.seed(&a.scope, a.ask.now_ms, a.zone, day, month);
        }
        Ok(())
    }
}

impl PolicyStore for NativeHost {
    async fn active_policy(&self) -> Result<Option<String>, StoreError> {
        self.policy
            .as_ref()
            .map_or(Ok(None), |p| p.active())
            .map_err(StoreError::new)
    }

    async fn policy_artifact(&self, hash: &str) -> Result<Option<String>, StoreError> {
        self.policy
            .as_ref()
            .map_or(Ok(None), |p| p.artifact(hash))
            .map_err(StoreError::new)
    }

    async fn health_snapshot(&self) -> Result<Option<String>, StoreError> {
        self.health
            .read()
            .map(|h| h.clone())
            .map_err(|_| StoreError::new("health snapshot lock poisoned"))
    }

    async fn policy_entry(
        &self,
        entry: gateway_core::policy_store::Entry<'_>,
    ) -> Result<Option<String>, StoreError> {
        self.policy
            .as_ref()
            .map_or(Ok(None), |p| p.entry(entry))
            .map_err(StoreError::new)
    }

    async fn put_policy_entry(
        &self,
        entry: gateway_core::policy_store::Entry<'_>,
        value: &str,
    ) -> Result<(), StoreError> {
        self.policy
            .as_ref()
            .ok_or_else(|| StoreError::new("no --policy is configured"))?
            .put_entry(entry, value)
            .map_err(StoreError::new)
    }
}

impl Clock for NativeHost {
    fn now_ms(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0 + self.clock_offset_ms)
            .unwrap_or(0.0)
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        tokio::time::sleep(Duration::from_millis(ms)).boxed_local()
    }

    fn shutdown(&self) -> LocalBoxFuture<'static, ()> {
        self.shutdown.cut()
    }

    /// SplitMix64 over a per-thread random seed and a counter: unique and unpredictable enough for request ids.
    fn random_u64(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut z = self
            .seed
            .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    #[tokio::test]
    async fn a_name_for_this_machine_resolves_to_nothing_for_client_urls() {
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = PublicOnly.resolve(name).await.err().unwrap();
        assert!(err.to_string().contains("no public address"), "{err}");
        // And a fetch through the client that uses it never reaches a local server.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicOnly))
            .build()
            .unwrap();
        let sent = client
            .get(format!("http://localhost:{port}/image.png"))
            .send()
            .await;
        assert!(sent.is_err());
    }
}
