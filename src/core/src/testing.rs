//! A host in memory, for the pipeline tests and the benchmarks (feature `testing`): scripted upstream
//! answers, keys, a published policy and health snapshot, and a clock the test moves.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use futures::executor::block_on;
use futures::future::{self, FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt};

use crate::auth::{hash_key, KeyRecord};
use crate::error::StoreError;
use crate::http::{Body, GatewayRequest, RequestBody};
use crate::log::LogRecord;
use crate::ports::{
    Clock, KeyStore, PolicyStore, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse,
};
use crate::{Gateway, GatewayConfig, Handled};

/// The key [`FakeHost::new`] knows (`key_test`, no team or tier); `gw-revoked` is known and revoked.
pub const KEY: &str = "gw-test-key";

/// How an upstream answers.
#[derive(Clone)]
pub enum Script {
    /// Status, headers, body chunks, then end of body.
    Reply(u16, Vec<(String, String)>, Vec<Vec<u8>>),
    /// Body chunks, then the body never ends (a stalled upstream).
    Stall(Vec<Vec<u8>>),
    Unreachable,
}

/// When the host's timers fire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timers {
    /// At once: whatever the upstream has ready wins the race, anything it does not have is a stall.
    Immediate,
    /// Never: nothing times out (benchmarks).
    Never,
}

/// A response cache entry of the in-memory host, and when it expires (the host's clock, ms).
pub type Cached = (Vec<u8>, f64);

#[derive(Clone)]
pub struct FakeHost {
    pub keys: Rc<RefCell<HashMap<String, KeyRecord>>>,
    pub script: Rc<RefCell<Script>>,
    /// Scripts for upstream URLs starting with a prefix (the first match wins); `script` otherwise.
    pub routes: Rc<RefCell<Vec<(String, Script)>>>,
    /// Every upstream request sent, in order.
    pub sent: Rc<RefCell<Vec<UpstreamRequest>>>,
    /// The published policy: `policy/active`'s hash and the artifact it names.
    pub published: Rc<RefCell<Option<(String, String)>>>,
    /// Artifacts published before the current one (by hash), and the store's other entries by KV key
    /// (`policy/history`, `policy/log`).
    pub earlier: Rc<RefCell<BTreeMap<String, String>>>,
    pub entries: Rc<RefCell<BTreeMap<String, String>>>,
    /// The response cache: entries with the time they expire.
    pub cache: Rc<RefCell<HashMap<String, Cached>>>,
    /// The payload archive: documents by key.
    pub archive: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    pub health: Rc<RefCell<Option<String>>>,
    pub now: Rc<Cell<f64>>,
    pub timers: Timers,
    /// Keep the requests in `sent` (off in benchmarks, where they would pile up).
    pub record_sent: bool,
    /// Settings and secrets beyond [`setting`]'s (a custom provider's key).
    pub settings: Rc<RefCell<HashMap<String, String>>>,
    pub teams: Rc<RefCell<HashMap<String, crate::auth::TeamRecord>>>,
    /// The counters of keys and teams.
    pub ledger: crate::limits::Ledger,
    /// Keep a changes feed of key and team records, as the Workers host does.
    pub has_feed: bool,
    /// The changes feed (when `has_feed`): every record the admin API wrote, in order.
    pub feed: Rc<RefCell<crate::auth::RecordFeed>>,
    secrets: Rc<Cell<u64>>,
}

/// A plain key record: not revoked, never expires.
pub fn key_record(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        name: "test".into(),
        team: None,
        tier: None,
        tags: vec![],
        revoked: false,
        expires_at_ms: None,
        created_at_ms: 0,
        ..KeyRecord::default()
    }
}

impl FakeHost {
    pub fn new(script: Script) -> Self {
        let mut revoked = key_record("key_revoked");
        revoked.revoked = true;
        let keys = HashMap::from([
            (hash_key(KEY), key_record("key_test")),
            (hash_key("gw-revoked"), revoked),
        ]);
        Self {
            keys: Rc::new(RefCell::new(keys)),
            script: Rc::new(RefCell::new(script)),
            routes: Rc::default(),
            sent: Rc::default(),
            published: Rc::default(),
            earlier: Rc::default(),
            entries: Rc::default(),
            cache: Rc::default(),
            archive: Rc::default(),
            health: Rc::default(),
            now: Rc::new(Cell::new(1_700_000_000_000.0)),
            timers: Timers::Immediate,
            record_sent: true,
            settings: Rc::default(),
            teams: Rc::default(),
            ledger: crate::limits::Ledger::default(),
            has_feed: false,
            feed: Rc::default(),
            secrets: Rc::default(),
        }
    }

    /// Sets a setting or secret, as `wrangler secret put` or an environment variable would.
    pub fn set(&self, name: &str, value: &str) {
        self.settings.borrow_mut().insert(name.into(), value.into());
    }

    /// Knows `key` as `record` too.
    pub fn with_key(self, key: &str, record: KeyRecord) -> Self {
        self.keys.borrow_mut().insert(hash_key(key), record);
        self
    }

    /// Answers upstream URLs starting with `prefix` with `script`.
    pub fn route(&self, prefix: &str, script: Script) {
        self.routes.borrow_mut().push((prefix.into(), script));
    }

    /// The body of the first upstream request, as JSON.
    pub fn sent_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.sent.borrow()[0].body).unwrap()
    }

    pub fn advance(&self, ms: f64) {
        self.now.set(self.now.get() + ms);
    }
}

impl Upstream for FakeHost {
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let routed = self
            .routes
            .borrow()
            .iter()
            .find(|(prefix, _)| request.url.starts_with(prefix.as_str()))
            .map(|(_, s)| s.clone());
        if self.record_sent {
            self.sent.borrow_mut().push(request);
        }
        let script = routed.unwrap_or_else(|| self.script.borrow().clone());
        match script {
            Script::Reply(status, headers, chunks) => Ok(UpstreamResponse {
                status,
                headers,
                body: stream::iter(chunks.into_iter().map(Ok)).boxed_local(),
            }),
            Script::Stall(chunks) => Ok(UpstreamResponse {
                status: 200,
                headers: vec![],
                body: stream::iter(chunks.into_iter().map(Ok))
                    .chain(stream::pending())
                    .boxed_local(),
            }),
            Script::Unreachable => Err(UpstreamError::Connect("connection refused".into())),
        }
    }
}

impl KeyStore for FakeHost {
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.keys.borrow().get(key_hash).cloned())
    }
}

impl crate::ports::TeamStore for FakeHost {
    async fn find_team(&self, name: &str) -> Result<Option<crate::auth::TeamRecord>, StoreError> {
        Ok(self.teams.borrow().get(name).cloned())
    }
}

impl crate::ports::LimitStore for FakeHost {
    async fn reserve(
        &self,
        asks: Vec<crate::limits::ScopeAsk>,
    ) -> Result<crate::limits::Admission, StoreError> {
        Ok(self.ledger.reserve(&asks))
    }

    async fn settle(&self, held: Vec<crate::limits::Held>, used: crate::limits::Used) {
        self.ledger.settle(&held, used);
    }

    async fn standing(
        &self,
        asks: Vec<crate::limits::ScopeAsk>,
    ) -> Result<Vec<crate::limits::Standing>, StoreError> {
        Ok(self.ledger.standing(&asks))
    }
}

impl crate::ports::RecordStore for FakeHost {
    /// Different bytes every call (`random_u64` is a constant): each new key is a new key.
    fn secret_bytes(&self) -> Result<[u8; 32], StoreError> {
        let n = self.secrets.get() + 1;
        self.secrets.set(n);
        let mut out = [0u8; 32];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            chunk
                .copy_from_slice(&(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64).to_le_bytes());
        }
        Ok(out)
    }

    async fn insert_key(&self, key_hash: &str, record: &KeyRecord) -> Result<(), StoreError> {
        self.keys
            .borrow_mut()
            .insert(key_hash.to_owned(), record.clone());
        Ok(())
    }

    async fn update_key(&self, record: &KeyRecord) -> Result<bool, StoreError> {
        let mut keys = self.keys.borrow_mut();
        let found = keys.values_mut().find(|k| k.id == record.id);
        Ok(found.map(|k| *k = record.clone()).is_some())
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.keys.borrow().values().find(|k| k.id == id).cloned())
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys: Vec<KeyRecord> = self.keys.borrow().values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(keys)
    }

    async fn put_team(&self, record: &crate::auth::TeamRecord) -> Result<(), StoreError> {
        self.teams
            .borrow_mut()
            .insert(record.name.clone(), record.clone());
        Ok(())
    }

    async fn teams(&self) -> Result<Vec<crate::auth::TeamRecord>, StoreError> {
        let mut teams: Vec<_> = self.teams.borrow().values().cloned().collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(teams)
    }

    async fn announce(&self, change: crate::auth::RecordChange) -> Result<(), StoreError> {
        if self.has_feed {
            self.feed
                .borrow_mut()
                .announce(change, self.now.get() as i64);
        }
        Ok(())
    }

    async fn changes(&self, since: u64) -> Result<Option<crate::auth::RecordChanges>, StoreError> {
        Ok(self.has_feed.then(|| self.feed.borrow().since(since)))
    }
}

impl PolicyStore for FakeHost {
    async fn active_policy(&self) -> Result<Option<String>, StoreError> {
        Ok(self.published.borrow().as_ref().map(|(h, _)| h.clone()))
    }
    async fn policy_artifact(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let current = self
            .published
            .borrow()
            .as_ref()
            .filter(|(h, _)| h == hash)
            .map(|(_, json)| json.clone());
        Ok(current.or_else(|| self.earlier.borrow().get(hash).cloned()))
    }
    async fn health_snapshot(&self) -> Result<Option<String>, StoreError> {
        Ok(self.health.borrow().clone())
    }
    async fn policy_entry(
        &self,
        entry: gateway_policy::store::Entry<'_>,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.entries.borrow().get(&entry.kv_key()).cloned())
    }
    async fn put_policy_entry(
        &self,
        entry: gateway_policy::store::Entry<'_>,
        value: &str,
    ) -> Result<(), StoreError> {
        if entry == gateway_policy::store::Entry::Active {
            let json = self
                .policy_artifact(value)
                .await?
                .ok_or_else(|| StoreError::new(format!("no artifact {value}")))?;
            if let Some((h, j)) = self
                .published
                .borrow_mut()
                .replace((value.to_owned(), json))
            {
                self.earlier.borrow_mut().insert(h, j);
            }
        } else {
            self.entries
                .borrow_mut()
                .insert(entry.kv_key(), value.to_owned());
        }
        Ok(())
    }
}

impl crate::ports::ArchiveStore for FakeHost {
    async fn archive(&self, key: &str, document: Vec<u8>) -> Result<(), StoreError> {
        self.archive.borrow_mut().insert(key.to_owned(), document);
        Ok(())
    }
    async fn archived(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.archive.borrow().get(key).cloned())
    }
}

impl crate::ports::CacheStore for FakeHost {
    async fn cached(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now.get();
        Ok(self
            .cache
            .borrow()
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(entry, _)| entry.clone()))
    }
    async fn cache(&self, key: &str, entry: Vec<u8>, ttl_ms: u64) -> Result<(), StoreError> {
        let until = self.now.get() + ttl_ms as f64;
        self.cache
            .borrow_mut()
            .insert(key.to_owned(), (entry, until));
        Ok(())
    }
}

impl crate::ports::UsageStore for FakeHost {
    async fn usage_rows(
        &self,
        _sql: &str,
        _params: Vec<crate::log::SqlValue>,
    ) -> Result<Vec<Vec<crate::log::SqlValue>>, StoreError> {
        Ok(Vec::new())
    }
}

impl crate::ports::Settings for FakeHost {
    fn setting(&self, name: &str) -> Option<String> {
        self.settings
            .borrow()
            .get(name)
            .cloned()
            .or_else(|| setting(name))
    }
}

impl Clock for FakeHost {
    fn now_ms(&self) -> f64 {
        self.now.get()
    }
    fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
        match self.timers {
            Timers::Immediate => future::ready(()).boxed_local(),
            Timers::Never => future::pending().boxed_local(),
        }
    }
    fn random_u64(&self) -> u64 {
        42
    }
}

/// Every provider configured, each at its own fake base URL (`http://mock/v1` for OpenAI, `http://ds` for
/// DeepSeek, `http://sf/v1`, `http://or/api/v1`, `http://gm/v1beta`, `http://cf/…`); 1,000-byte bodies.
pub fn config() -> GatewayConfig {
    GatewayConfig::from_lookup(setting).unwrap()
}

/// The settings of [`config`].
pub fn setting(name: &str) -> Option<String> {
    match name {
        "OPENAI_BASE_URL" => Some("http://mock/v1".into()),
        "OPENAI_API_KEY" => Some("sk-upstream".into()),
        "MAX_BODY_BYTES" => Some("1000".into()),
        "DEEPSEEK_BASE_URL" => Some("http://ds".into()),
        "SILICONFLOW_BASE_URL" => Some("http://sf/v1".into()),
        "OPENROUTER_BASE_URL" => Some("http://or/api/v1".into()),
        "GEMINI_BASE_URL" => Some("http://gm/v1beta".into()),
        "WORKERS_AI_BASE_URL" => Some("http://cf/client/v4/accounts/acc/ai".into()),
        "GATEWAY_ADMIN_TOKEN" => Some("admin-secret".into()),
        "POLICY_REFRESH_MS" => Some("1000".into()),
        _ => None,
    }
}

pub fn gateway(host: &FakeHost) -> Gateway<FakeHost> {
    Gateway::new(host.clone(), Rc::new(config()))
}

/// A request with a JSON body, authorized by `key` when given.
pub fn request(method: &str, path: &str, key: Option<&str>, body: &str) -> GatewayRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(k) = key {
        headers.push(("authorization".into(), format!("Bearer {k}")));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    GatewayRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers,
        body: RequestBody::Bytes(body.as_bytes().to_vec()),
    }
}

/// What a client saw, and the log row.
pub struct Seen {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub record: LogRecord,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http::find_header(&self.headers, name)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Runs a request through a gateway: the whole response, then its log row.
pub fn run_with(gw: &Gateway<FakeHost>, req: GatewayRequest) -> Seen {
    run_inner(gw, req, false)
}

/// Runs a request and then the background work it left (a policy refresh), as the hosts do.
pub fn run_then_background(gw: &Gateway<FakeHost>, req: GatewayRequest) -> Seen {
    run_inner(gw, req, true)
}

/// Runs a request through a fresh gateway on `host`.
pub fn run(host: &FakeHost, req: GatewayRequest) -> Seen {
    run_with(&gateway(host), req)
}

fn run_inner(gw: &Gateway<FakeHost>, req: GatewayRequest, background: bool) -> Seen {
    block_on(async {
        let Handled {
            response,
            record,
            background: work,
        } = gw.handle(req).await;
        let body = match response.body {
            Body::Full(b) => b,
            Body::Stream(s) => s.collect::<Vec<_>>().await.concat(),
        };
        if let Some(w) = work.filter(|_| background) {
            w.await;
        }
        Seen {
            status: response.status,
            headers: response.headers,
            body: String::from_utf8(body).unwrap(),
            record: record.await,
        }
    })
}

/// `data: …` events, one chunk each.
pub fn sse(events: &[&str]) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|e| format!("data: {e}\n\n").into_bytes())
        .collect()
}
