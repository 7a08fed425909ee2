use std::rc::Rc;
use std::time::Duration;

use futures::future::{FutureExt, LocalBoxFuture};
use futures::StreamExt;
use gateway_core::health::SNAPSHOT_KV_KEY;
use gateway_core::policy_store::Entry;
use gateway_core::{
    ApiError, Body, Clock, Gateway, GatewayConfig, GatewayRequest, Handled, KeyRecord, KeyStore,
    LogRecord, PolicyStore, RequestBody, Shared, SqlValue, StoreError, Upstream, UpstreamError,
    UpstreamRequest, UpstreamResponse,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{
    event, Context, D1Database, Date, Delay, Env, Headers, KvStore, Response, ScheduleContext,
    ScheduledEvent,
};

thread_local! {
    /// The isolate's configuration and bindings, read by its first request.
    static ISOLATE: std::cell::RefCell<Option<Rc<Isolate>>> = const { std::cell::RefCell::new(None) };
    /// The isolate's policy, health and cooldowns: they outlive the request that loaded them.
    static SHARED: Rc<Shared> = Shared::new();
    /// Limit counters of this isolate, for a Worker without the `LIMITER` Durable Object binding.
    static LEDGER: gateway_core::limits::Ledger = gateway_core::limits::Ledger::default();
}

#[derive(Clone)]
struct WorkerHost {
    keys: Rc<KvStore>,
    /// `None` when the Worker has no `POLICY` binding: the built-in policy applies.
    policies: Option<Rc<KvStore>>,
    env: Env,
    /// `None` without the `DB` binding.
    db: Option<Rc<D1Database>>,
    /// The `Limiter` Durable Objects (`None` without the `LIMITER` binding).
    limiter: Option<Rc<worker::ObjectNamespace>>,
    /// `CLOCK_OFFSET_MS` (tests only).
    clock_offset_ms: f64,
}

impl Upstream for WorkerHost {
    async fn send(&self, r: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        if let Some(rest) = r.url.strip_prefix(gateway_core::BINDING_SCHEME) {
            return run_binding(&self.env, rest, &r.body).await;
        }
        let connect = |e: JsValue| UpstreamError::Connect(js_message(&e, "fetch failed"));
        // One `fetch(url, init)` on web-sys types: a `Request` object built first would be copied again by
        // `fetch(request, {signal})`.
        let headers = web_sys::Headers::new().map_err(connect)?;
        for (k, v) in &r.headers {
            headers.set(k, v).map_err(connect)?;
        }
        let init = web_sys::RequestInit::new();
        init.set_headers(&headers);
        // A provider's redirect is an upstream error (the core says so): following it would send the
        // provider's key and extra headers wherever the provider points.
        init.set_redirect(web_sys::RequestRedirect::Manual);
        if r.method == "GET" {
            init.set_method("GET");
        } else {
            init.set_method("POST");
            init.set_body(&js_sys::Uint8Array::from(r.body.as_slice()));
        }
        // Dropping a fetch future does not cancel the subrequest: abort it when the core gives up on it.
        let guard = AbortOnDrop::new().map_err(connect)?;
        init.set_signal(Some(&guard.signal()));
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let resp: web_sys::Response = JsFuture::from(global.fetch_with_str_and_init(&r.url, &init))
            .await
            .map_err(connect)?
            .unchecked_into();
        let status = resp.status();
        let headers: Vec<(String, String)> = Headers(resp.headers())
            .entries()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let body = body_stream(resp, &headers, guard);
        Ok(UpstreamResponse {
            status,
            headers,
            body,
        })
    }
}

/// Bodies up to this size that declare their length (JSON answers, error bodies) are read with one
/// `arrayBuffer()`; streams and bodies of unknown length are read chunk by chunk.
const WHOLE_BODY_MAX: usize = 1 << 20;

/// The upstream body as the core reads it. Reading it to the end disarms the abort (aborting a finished fetch,
/// like releasing a finished reader, costs an exception object); dropping it early aborts the subrequest.
fn body_stream(
    resp: web_sys::Response,
    headers: &[(String, String)],
    guard: AbortOnDrop,
) -> gateway_core::ByteStream {
    let body_error = |e: JsValue| UpstreamError::Body(js_message(&e, "body read failed"));
    let declared =
        gateway_core::find_header(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    let event_stream = gateway_core::find_header(headers, "content-type")
        .is_some_and(|v| v.contains("text/event-stream"));
    if declared.is_some_and(|n| n <= WHOLE_BODY_MAX) && !event_stream {
        return futures::stream::once(async move {
            let promise = resp.array_buffer().map_err(body_error)?;
            let buffer = JsFuture::from(promise).await.map_err(body_error)?;
            guard.disarm();
            Ok(js_sys::Uint8Array::new(&buffer).to_vec())
        })
        .boxed_local();
    }
    let Some(stream) = resp.body() else {
        guard.disarm();
        return futures::stream::empty().boxed_local();
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    futures::stream::unfold(Some((reader, guard)), move |state| async move {
        let (reader, guard) = state?;
        match next_chunk(&reader).await {
            Ok(Some(chunk)) => Some((Ok(chunk.to_vec()), Some((reader, guard)))),
            Ok(None) => {
                guard.disarm();
                None
            }
            Err(e) => Some((Err(body_error(e)), None)),
        }
    })
    .boxed_local()
}

/// The next chunk of a stream (`None` at its end). A finished reader is not released: in workerd that costs an
/// exception object.
async fn next_chunk(
    reader: &web_sys::ReadableStreamDefaultReader,
) -> Result<Option<js_sys::Uint8Array>, JsValue> {
    let read: web_sys::ReadableStreamReadResult =
        JsFuture::from(reader.read()).await?.unchecked_into();
    if read.get_done().unwrap_or(true) {
        return Ok(None);
    }
    Ok(Some(js_sys::Uint8Array::new(&read.get_value())))
}

struct AbortOnDrop(Option<web_sys::AbortController>);

impl AbortOnDrop {
    fn new() -> Result<Self, JsValue> {
        Ok(Self(Some(web_sys::AbortController::new()?)))
    }

    fn signal(&self) -> web_sys::AbortSignal {
        match &self.0 {
            Some(c) => c.signal(),
            None => web_sys::AbortSignal::abort(),
        }
    }

    /// The subrequest is over: nothing left to abort.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.abort();
        }
    }
}

/// Resolves when the client hangs up: workerd aborts the incoming request's signal then (the
/// `enable_request_signal` compatibility flag; without it, never). Unregisters itself when dropped.
struct HangUp {
    signal: web_sys::AbortSignal,
    _on_abort: wasm_bindgen::closure::Closure<dyn FnMut()>,
    gone: futures::channel::oneshot::Receiver<()>,
}

impl HangUp {
    fn new(signal: web_sys::AbortSignal) -> Self {
        let (tx, gone) = futures::channel::oneshot::channel();
        let mut tx = Some(tx);
        if signal.aborted() {
            tx.take().map(|tx| tx.send(()));
        }
        let on_abort = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
            tx.take().map(|tx| tx.send(()));
        });
        signal.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
        Self {
            signal,
            _on_abort: on_abort,
            gone,
        }
    }
}

impl std::future::Future for HangUp {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match self.gone.poll_unpin(cx) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(()),
            // The closure (and its sender) lives as long as this future: never cancelled while it is polled.
            _ => std::task::Poll::Pending,
        }
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        // A later abort must not call the closure freed with this value.
        self.signal.set_onabort(None);
    }
}

impl gateway_core::ports::UsageStore for WorkerHost {
    async fn usage_rows(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        let Some(db) = &self.db else {
            return Err(StoreError::new("the Worker has no D1 binding `DB`"));
        };
        let rows: Vec<Vec<serde_json::Value>> = db
            .prepare(sql)
            .bind(&js_params(params))
            .map_err(StoreError::new)?
            .raw()
            .await
            .map_err(StoreError::new)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        serde_json::Value::Null => SqlValue::Null,
                        serde_json::Value::Number(n) => n.as_i64().map_or_else(
                            || SqlValue::Real(n.as_f64().unwrap_or(0.0)),
                            SqlValue::Integer,
                        ),
                        serde_json::Value::String(s) => SqlValue::Text(s),
                        other => SqlValue::Text(other.to_string()),
                    })
                    .collect()
            })
            .collect())
    }
}

impl KeyStore for WorkerHost {
    async fn find_key(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.keys
            .get(&format!("key/{key_hash}"))
            .json::<KeyRecord>()
            .await
            .map_err(StoreError::new)
    }
}

/// Keys in KV (`key/<hash>`) with D1's `api_keys` as the index the admin API lists and finds them by id; teams
/// in KV (`team/<name>`) and D1's `teams`.
impl gateway_core::RecordStore for WorkerHost {
    fn secret_bytes(&self) -> Result<[u8; 32], StoreError> {
        let mut out = [0u8; 32];
        js_sys::global()
            .unchecked_into::<web_sys::WorkerGlobalScope>()
            .crypto()
            .and_then(|c| c.get_random_values_with_u8_array(&mut out))
            .map_err(|e| StoreError::new(js_message(&e, "crypto.getRandomValues failed")))?;
        Ok(out)
    }

    async fn insert_key(&self, key_hash: &str, record: &KeyRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(StoreError::new)?;
        self.d1_run(
            "INSERT INTO api_keys (key_hash, id, name, record, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vec![
                SqlValue::Text(key_hash.to_owned()),
                SqlValue::Text(record.id.clone()),
                SqlValue::Text(record.name.clone()),
                SqlValue::Text(json.clone()),
                SqlValue::Integer(record.created_at_ms),
                SqlValue::Integer(record.updated_at_ms),
            ],
        )
        .await?;
        self.kv_put(&format!("key/{key_hash}"), json).await
    }

    async fn update_key(&self, record: &KeyRecord) -> Result<bool, StoreError> {
        use gateway_core::ports::UsageStore;
        let found = self
            .usage_rows(
                "SELECT key_hash FROM api_keys WHERE id = ?1",
                vec![SqlValue::Text(record.id.clone())],
            )
            .await?;
        let Some(SqlValue::Text(hash)) =
            found.into_iter().next().and_then(|r| r.into_iter().next())
        else {
            return Ok(false);
        };
        let json = serde_json::to_string(record).map_err(StoreError::new)?;
        self.d1_run(
            "UPDATE api_keys SET record = ?1, name = ?2, updated_at_ms = ?3 WHERE id = ?4",
            vec![
                SqlValue::Text(json.clone()),
                SqlValue::Text(record.name.clone()),
                SqlValue::Integer(record.updated_at_ms),
                SqlValue::Text(record.id.clone()),
            ],
        )
        .await?;
        self.kv_put(&format!("key/{hash}"), json).await?;
        Ok(true)
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let found = self
            .d1_records(
                "SELECT record FROM api_keys WHERE id = ?1",
                vec![SqlValue::Text(id.to_owned())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.d1_records(
            "SELECT record FROM api_keys ORDER BY created_at_ms, id",
            Vec::new(),
        )
        .await
    }

    async fn put_team(&self, record: &gateway_core::TeamRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(StoreError::new)?;
        self.d1_run(
            "INSERT INTO teams (name, record, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at_ms = excluded.updated_at_ms",
            vec![
                SqlValue::Text(record.name.clone()),
                SqlValue::Text(json.clone()),
                SqlValue::Integer(record.created_at_ms),
                SqlValue::Integer(record.updated_at_ms),
            ],
        )
        .await?;
        self.kv_put(&format!("team/{}", record.name), json).await
    }

    async fn teams(&self) -> Result<Vec<gateway_core::TeamRecord>, StoreError> {
        self.d1_records("SELECT record FROM teams ORDER BY name", Vec::new())
            .await
    }

    /// The changes feed is the `Limiter` object named `records` (crate::limiter): without the binding, none.
    async fn announce(&self, change: gateway_core::auth::RecordChange) -> Result<(), StoreError> {
        let Some(ns) = &self.limiter else {
            return Ok(());
        };
        limiter_call::<serde_json::Value>(ns, crate::limiter::FEED, "announce", &change)
            .await
            .map(|_| ())
    }

    async fn changes(
        &self,
        since: u64,
    ) -> Result<Option<gateway_core::auth::RecordChanges>, StoreError> {
        let Some(ns) = &self.limiter else {
            return Ok(None);
        };
        limiter_call(ns, crate::limiter::FEED, "changes", &since)
            .await
            .map(Some)
    }
}

impl WorkerHost {
    async fn d1_run(&self, sql: &str, params: Vec<SqlValue>) -> Result<(), StoreError> {
        let Some(db) = &self.db else {
            return Err(StoreError::new("the Worker has no D1 binding `DB`"));
        };
        db.prepare(sql)
            .bind(&js_params(params))
            .map_err(StoreError::new)?
            .run()
            .await
            .map(|_| ())
            .map_err(StoreError::new)
    }

    async fn d1_records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<T>, StoreError> {
        use gateway_core::ports::UsageStore;
        self.usage_rows(sql, params)
            .await?
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(SqlValue::Text(json)) => {
                    Some(serde_json::from_str(&json).map_err(StoreError::new))
                }
                _ => None,
            })
            .collect()
    }

    async fn kv_put(&self, key: &str, value: String) -> Result<(), StoreError> {
        self.keys
            .put(key, value)
            .map_err(StoreError::new)?
            .execute()
            .await
            .map_err(StoreError::new)
    }
}

impl gateway_core::TeamStore for WorkerHost {
    async fn find_team(&self, name: &str) -> Result<Option<gateway_core::TeamRecord>, StoreError> {
        self.keys
            .get(&format!("team/{name}"))
            .json::<gateway_core::TeamRecord>()
            .await
            .map_err(StoreError::new)
    }
}

/// A Durable Object per key and per team (`LIMITER`, [`crate::limiter::Limiter`]); without the binding, counters
/// of this isolate only (exact within one isolate, not across them).
impl gateway_core::LimitStore for WorkerHost {
    async fn reserve(
        &self,
        asks: Vec<gateway_core::limits::ScopeAsk>,
    ) -> Result<gateway_core::limits::Admission, StoreError> {
        use gateway_core::limits::{Admission, Held};
        let Some(ns) = &self.limiter else {
            return Ok(LEDGER.with(|l| l.reserve(&asks)));
        };
        // Every scope at once; a refusal by one gives the others' reservations back.
        let answers = futures::future::join_all(
            asks.iter()
                .map(|a| limiter_call::<crate::limiter::Reserved>(ns, &a.scope, "reserve", a)),
        )
        .await;
        let mut granted = Vec::new();
        let mut refused = None;
        let mut failed = None;
        for (a, answer) in asks.iter().zip(answers) {
            match answer {
                Ok(crate::limiter::Reserved::Granted {
                    reservation,
                    standing,
                }) => granted.push((
                    Held {
                        scope: a.scope.clone(),
                        reservation,
                    },
                    standing,
                )),
                Ok(crate::limiter::Reserved::Refused { refusal, standing }) => {
                    refused.get_or_insert(Admission::Refused {
                        scope: a.scope.clone(),
                        refusal,
                        standing,
                    });
                }
                Err(e) => failed = Some(e),
            }
        }
        if refused.is_some() || failed.is_some() {
            futures::future::join_all(granted.iter().map(|(h, _)| {
                limiter_call::<serde_json::Value>(ns, &h.scope, "cancel", &h.reservation)
            }))
            .await;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(refused.unwrap_or(Admission::Admitted(granted)))
    }

    async fn settle(
        &self,
        held: Vec<gateway_core::limits::Held>,
        used: gateway_core::limits::Used,
    ) {
        let Some(ns) = &self.limiter else {
            LEDGER.with(|l| l.settle(&held, used));
            return;
        };
        let settled = futures::future::join_all(held.iter().map(|h| {
            let s = crate::limiter::Settlement {
                reservation: h.reservation,
                used,
            };
            async move { limiter_call::<serde_json::Value>(ns, &h.scope, "settle", &s).await }
        }))
        .await;
        for e in settled.into_iter().filter_map(Result::err) {
            worker::console_error!("limits: a reservation was not settled: {e}");
        }
    }

    async fn standing(
        &self,
        asks: Vec<gateway_core::limits::ScopeAsk>,
    ) -> Result<Vec<gateway_core::limits::Standing>, StoreError> {
        let Some(ns) = &self.limiter else {
            return Ok(LEDGER.with(|l| l.standing(&asks)));
        };
        futures::future::join_all(
            asks.iter()
                .map(|a| limiter_call(ns, &a.scope, "standing", a)),
        )
        .await
        .into_iter()
        .collect()
    }
}

/// One operation on the `Limiter` object of `scope`: its JSON answer (`null` for an empty one).
async fn limiter_call<T: serde::de::DeserializeOwned>(
    ns: &worker::ObjectNamespace,
    scope: &str,
    op: &str,
    body: &impl serde::Serialize,
) -> Result<T, StoreError> {
    let stub = ns
        .id_from_name(scope)
        .and_then(|id| id.get_stub())
        .map_err(StoreError::new)?;
    let body = serde_json::to_string(body).map_err(StoreError::new)?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let req = worker::Request::new_with_init(&format!("https://limiter/{op}"), &init)
        .map_err(StoreError::new)?;
    let mut resp = stub
        .fetch_with_request(req)
        .await
        .map_err(StoreError::new)?;
    let text = resp.text().await.map_err(StoreError::new)?;
    if resp.status_code() != 200 {
        return Err(StoreError::new(format!(
            "limiter {op} for {scope}: {} {text}",
            resp.status_code()
        )));
    }
    serde_json::from_str(if text.is_empty() { "null" } else { &text }).map_err(StoreError::new)
}

impl WorkerHost {
    /// A text value of the POLICY namespace (`None` without the binding), cached at the edge for `ttl` seconds.
    async fn policy_kv(&self, key: &str, ttl: Option<u64>) -> Result<Option<String>, StoreError> {
        let Some(kv) = &self.policies else {
            return Ok(None);
        };
        let get = kv.get(key);
        let get = match ttl {
            Some(t) => get.cache_ttl(t),
            None => get,
        };
        get.text().await.map_err(StoreError::new)
    }
}

impl PolicyStore for WorkerHost {
    async fn active_policy(&self) -> Result<Option<String>, StoreError> {
        self.policy_kv(&Entry::Active.kv_key(), None).await
    }

    async fn policy_artifact(&self, hash: &str) -> Result<Option<String>, StoreError> {
        // Artifacts never change under their hash: the edge may cache them for long.
        self.policy_kv(&Entry::Artifact(hash).kv_key(), Some(3600))
            .await
    }

    async fn health_snapshot(&self) -> Result<Option<String>, StoreError> {
        self.policy_kv(SNAPSHOT_KV_KEY, None).await
    }

    async fn policy_entry(&self, entry: Entry<'_>) -> Result<Option<String>, StoreError> {
        self.policy_kv(&entry.kv_key(), None).await
    }

    async fn put_policy_entry(&self, entry: Entry<'_>, value: &str) -> Result<(), StoreError> {
        let kv = self
            .policies
            .as_ref()
            .ok_or_else(|| StoreError::new("no POLICY binding"))?;
        kv.put(&entry.kv_key(), value)
            .map_err(StoreError::new)?
            .execute()
            .await
            .map_err(StoreError::new)
    }
}

/// The response cache in the Cache API of the data center that serves the request (`caches.default`, under
/// `https://response-cache.gateway.internal/<key>`), its time to live as the entry's `Cache-Control: max-age`.
/// Chosen over KV: entries are written on every miss, and the Cache API takes writes for free and at once
/// where they are read again, while KV bills each write, allows one write a second per key and takes up to a
/// minute to show it elsewhere; an answer cached in one location and missed in another costs one more upstream
/// call. (The Cache API stores nothing on `*.workers.dev` hosts: deploy on a custom domain to cache.)
impl gateway_core::CacheStore for WorkerHost {
    async fn cached(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let cache = worker::Cache::default();
        match cache
            .get(cache_url(key), false)
            .await
            .map_err(StoreError::new)?
        {
            Some(mut r) => r.bytes().await.map(Some).map_err(StoreError::new),
            None => Ok(None),
        }
    }

    async fn cache(&self, key: &str, entry: Vec<u8>, ttl_ms: u64) -> Result<(), StoreError> {
        let headers = worker::Headers::new();
        headers
            .set(
                "cache-control",
                &format!("max-age={}", ttl_ms.div_ceil(1000)),
            )
            .map_err(StoreError::new)?;
        headers
            .set("content-type", "application/json")
            .map_err(StoreError::new)?;
        let response = worker::Response::from_bytes(entry)
            .map_err(StoreError::new)?
            .with_headers(headers);
        worker::Cache::default()
            .put(cache_url(key), response)
            .await
            .map_err(StoreError::new)
    }
}

/// The payload archive in R2 (the `ARCHIVE` binding), one object per archived request under its key
/// (`YYYY-MM-DD/<id>.json`, the day its retention ends); the hourly Cron Trigger deletes the days gone by. A
/// Worker without the binding archives nothing (the row says so, and the failure is logged). The binding is
/// called directly ([`r2`]): the `worker` crate's R2 wrappers cost 9 KiB gzip of the bundle for four calls.
impl gateway_core::ArchiveStore for WorkerHost {
    async fn archive(&self, key: &str, document: Vec<u8>) -> Result<(), StoreError> {
        let options = js_sys::JSON::parse(r#"{"httpMetadata":{"contentType":"application/json"}}"#)
            .unwrap_or(JsValue::UNDEFINED);
        let body = js_sys::Uint8Array::from(document.as_slice());
        r2(
            &self.env,
            "put",
            &[JsValue::from_str(key), body.into(), options],
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            worker::console_error!("payload not archived: {e}");
            StoreError::new(e)
        })
    }

    async fn archived(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let object = r2(&self.env, "get", &[JsValue::from_str(key)])
            .await
            .map_err(StoreError::new)?;
        if object.is_null() || object.is_undefined() {
            return Ok(None);
        }
        let bytes = call_method(&object, "arrayBuffer", &[])
            .await
            .map_err(StoreError::new)?;
        Ok(Some(js_sys::Uint8Array::new(&bytes).to_vec()))
    }
}

/// Calls a method of the `ARCHIVE` R2 binding and awaits its promise.
async fn r2(env: &Env, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let bucket = archive_binding(env).ok_or("the Worker has no R2 binding ARCHIVE")?;
    call_method(&bucket, method, args).await
}

fn archive_binding(env: &Env) -> Option<JsValue> {
    js_sys::Reflect::get(env.as_ref(), &JsValue::from_str("ARCHIVE"))
        .ok()
        .filter(|b| !b.is_undefined())
}

async fn call_method(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let f: js_sys::Function = js_sys::Reflect::get(target, &JsValue::from_str(method))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("no {method}()"))?;
    let args: js_sys::Array = args.iter().collect();
    let promise = f.apply(target, &args).map_err(|e| js_message(&e, method))?;
    JsFuture::from(js_sys::Promise::resolve(&promise))
        .await
        .map_err(|e| js_message(&e, method))
}

/// What the sweep reads of an R2 listing.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct R2Listing {
    #[serde(default)]
    objects: Vec<R2Key>,
    #[serde(default)]
    delimited_prefixes: Vec<String>,
    #[serde(default)]
    truncated: bool,
    cursor: Option<String>,
}

#[derive(serde::Deserialize)]
struct R2Key {
    key: String,
}

async fn r2_list(env: &Env, options: serde_json::Value) -> Result<R2Listing, String> {
    let options = js_sys::JSON::parse(&options.to_string()).map_err(|e| js_message(&e, "list"))?;
    let listing = r2(env, "list", &[options]).await?;
    let text: String = js_sys::JSON::stringify(&listing)
        .map_err(|e| js_message(&e, "list"))?
        .into();
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn cache_url(key: &str) -> String {
    format!("https://response-cache.gateway.internal/{key}")
}

/// Settings and secrets are the Worker's secrets, then its vars: a catalog's provider key is one
/// `wrangler secret put <NAME>` away.
impl gateway_core::Settings for WorkerHost {
    fn setting(&self, name: &str) -> Option<String> {
        setting(&self.env, name)
    }
}

impl Clock for WorkerHost {
    fn now_ms(&self) -> f64 {
        Date::now().as_millis() as f64 + self.clock_offset_ms
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        Delay::from(Duration::from_millis(ms)).boxed_local()
    }

    fn random_u64(&self) -> u64 {
        let hi = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        let lo = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        (hi << 32) | lo
    }
}

/// Reads a setting from the Worker's secrets, then its vars.
fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
}

/// What an isolate reads from `env` once: vars and secrets do not change while it lives, and its bindings are
/// the same objects for every request (each `env.kv()` costs six lookups across the wasm boundary).
struct Isolate {
    config: Rc<GatewayConfig>,
    keys: Rc<KvStore>,
    /// `None` when the Worker has no `POLICY` binding: the built-in policy applies.
    policies: Option<Rc<KvStore>>,
    /// `None` when the Worker has no `DB` binding: log rows cannot be written (and each says so).
    db: Option<Rc<D1Database>>,
    limiter: Option<Rc<worker::ObjectNamespace>>,
}

/// The isolate's settings and bindings, read from `env` by its first request (a bad configuration is read again
/// next time, so a fixed secret takes effect without a restart).
fn isolate(env: &Env) -> Result<Rc<Isolate>, ApiError> {
    if let Some(i) = ISOLATE.with(|i| i.borrow().clone()) {
        return Ok(i);
    }
    let config = GatewayConfig::from_lookup(|k| setting(env, k))
        .map_err(|e| ApiError::internal(format!("gateway configuration: {e}")))?;
    let keys = env
        .kv("API_KEYS")
        .map_err(|e| ApiError::internal(format!("KV binding API_KEYS: {e}")))?;
    let isolate = Rc::new(Isolate {
        config: Rc::new(config),
        keys: Rc::new(keys),
        policies: env.kv("POLICY").ok().map(Rc::new),
        db: env.d1("DB").ok().map(Rc::new),
        limiter: env.durable_object("LIMITER").ok().map(Rc::new),
    });
    ISOLATE.with(|i| *i.borrow_mut() = Some(isolate.clone()));
    Ok(isolate)
}

#[event(fetch)]
pub async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let isolate = match isolate(&env) {
        Ok(i) => i,
        Err(e) => return respond_error(&e),
    };
    let signal = req.signal();
    let limit = isolate.config.body_limit(url_path(&req.url()));
    let request = read_request(req, limit).await;
    let gateway = Gateway::new(
        WorkerHost {
            keys: isolate.keys.clone(),
            policies: isolate.policies.clone(),
            env,
            db: isolate.db.clone(),
            limiter: isolate.limiter.clone(),
            clock_offset_ms: isolate.config.clock_offset_ms as f64,
        },
        isolate.config.clone(),
    )
    .with_shared(SHARED.with(Rc::clone));
    // The row is written whatever happens: the answer's row, or a 499 row if the client hangs up first.
    let (work, row) = gateway.begin(request);
    match isolate.db.clone() {
        Some(db) => ctx.wait_until(async move {
            if let Some(row) = row.await {
                write_log(&db, row).await;
            }
        }),
        None => worker::console_error!("D1 binding DB missing, log row lost"),
    }
    let Handled {
        response,
        background,
        ..
    } = match futures::future::select(work, HangUp::new(signal)).await {
        futures::future::Either::Left((handled, _)) => handled,
        // workerd runs the handler on after its client left: dropping the work cancels the upstream call
        // (`AbortOnDrop`) and sends the 499 row. Nobody reads this answer.
        futures::future::Either::Right(((), _work)) => {
            return Ok(Response::empty()?.with_status(499))
        }
    };
    if let Some(work) = background {
        ctx.wait_until(work);
    }
    let mut out = match response.body {
        Body::Full(bytes) => Response::from_bytes(bytes)?,
        Body::Stream(stream) => Response::from_stream(stream.map(Ok::<Vec<u8>, worker::Error>))?,
    }
    .with_status(response.status);
    let headers = out.headers_mut();
    for (k, v) in &response.headers {
        headers.set(k, v)?;
    }
    Ok(out)
}

/// The Cron Triggers: every minute, the last minutes of attempts in the log (D1) aggregated into the health
/// snapshot in KV, which every isolate reads with its policy refresh; every hour ([`ARCHIVE_SWEEP_CRON`]), the
/// payload archive's days gone by deleted from R2.
#[event(scheduled)]
pub async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if event.cron() == ARCHIVE_SWEEP_CRON {
        match sweep_archive(&env).await {
            Ok(0) => {}
            Ok(n) => worker::console_log!("archive: {n} expired payload(s) deleted"),
            Err(e) => worker::console_error!("archive sweep failed: {e}"),
        }
    } else if let Err(e) = write_health(&env).await {
        worker::console_error!("health snapshot not written: {e}");
    }
}

/// The hourly trigger in wrangler.toml.
const ARCHIVE_SWEEP_CRON: &str = "0 * * * *";

/// Deletes the objects under every expired day prefix; returns how many.
async fn sweep_archive(env: &Env) -> Result<u64, String> {
    if archive_binding(env).is_none() {
        return Ok(0);
    }
    let now = Date::now().as_millis() as i64;
    let mut days = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut options = serde_json::json!({"delimiter": "/"});
        if let Some(c) = cursor.take() {
            options["cursor"] = c.into();
        }
        let page = r2_list(env, options).await?;
        days.extend(
            page.delimited_prefixes
                .into_iter()
                .filter(|p| gateway_core::archive::expired(p.trim_end_matches('/'), now)),
        );
        match page.cursor.filter(|_| page.truncated) {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut removed = 0;
    for day in days {
        loop {
            let page = r2_list(env, serde_json::json!({"prefix": day, "limit": 1000})).await?;
            if page.objects.is_empty() {
                break;
            }
            removed += page.objects.len() as u64;
            let keys: js_sys::Array = page
                .objects
                .iter()
                .map(|o| JsValue::from_str(&o.key))
                .collect();
            r2(env, "delete", &[keys.into()]).await?;
            if !page.truncated {
                break;
            }
        }
    }
    Ok(removed)
}

#[derive(serde::Deserialize)]
struct AttemptRow {
    attempt_log: String,
}

async fn write_health(env: &Env) -> worker::Result<()> {
    use gateway_core::health::{Snapshot, MAX_ROWS, RECENT_ATTEMPTS_SQL, WINDOW_MS};
    let db = env.d1("DB")?;
    let kv = env.kv("POLICY")?;
    let now = Date::now().as_millis() as f64;
    let rows = db
        .prepare(RECENT_ATTEMPTS_SQL)
        .bind(&[
            JsValue::from_f64(now - WINDOW_MS as f64),
            JsValue::from_f64(f64::from(MAX_ROWS)),
        ])?
        .all()
        .await?
        .results::<AttemptRow>()?;
    let snapshot = Snapshot::aggregate(rows.iter().map(|r| r.attempt_log.as_str()), now, WINDOW_MS);
    let json =
        serde_json::to_string(&snapshot).map_err(|e| worker::Error::RustError(e.to_string()))?;
    // As bytes: `put` with a value would convert it through serde_wasm_bindgen, which links float formatting.
    kv.put_bytes(SNAPSHOT_KV_KEY, json.as_bytes())?
        .execute()
        .await?;
    Ok(())
}

/// The client's request as the core reads it. Taken as the runtime's own `Request`: the `worker` wrapper would
/// also fetch its `cf` object and parse its URL, which the gateway does not use.
async fn read_request(req: web_sys::Request, limit: usize) -> GatewayRequest {
    let headers: Vec<(String, String)> = Headers(req.headers())
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let declared =
        gateway_core::find_header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    let method = req.method();
    let body = if declared.is_some_and(|n| n > limit) {
        RequestBody::TooLarge
    } else if method == "GET" || method == "HEAD" {
        RequestBody::Bytes(Vec::new())
    } else if declared.is_some() {
        let read = match req.array_buffer() {
            Ok(promise) => JsFuture::from(promise).await,
            Err(e) => Err(e),
        };
        match read.map(|b| js_sys::Uint8Array::new(&b)) {
            Ok(b) if b.length() as usize > limit => RequestBody::TooLarge,
            Ok(b) => RequestBody::Bytes(b.to_vec()),
            Err(_) => RequestBody::Bytes(Vec::new()),
        }
    } else {
        read_chunked(&req, limit).await
    };
    let url = req.url();
    GatewayRequest {
        path: url_path(&url).to_owned(),
        query: url_query(&url).to_owned(),
        method,
        headers,
        body,
    }
}

/// A body without a declared length, read up to `limit`: one byte more and the rest is cancelled, not read
/// (`arrayBuffer()` would hold all of it in memory before the 413).
async fn read_chunked(req: &web_sys::Request, limit: usize) -> RequestBody {
    let Some(stream) = req.body() else {
        return RequestBody::Bytes(Vec::new());
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut body = Vec::new();
    // A read error ends the body where it broke (the JSON parse then says it is incomplete).
    while let Ok(Some(chunk)) = next_chunk(&reader).await {
        let at = body.len();
        if at + chunk.length() as usize > limit {
            let _ = reader.cancel();
            return RequestBody::TooLarge;
        }
        body.resize(at + chunk.length() as usize, 0);
        chunk.copy_to(&mut body[at..]);
    }
    RequestBody::Bytes(body)
}

/// The path of a serialized absolute URL (`https://host/v1/chat?x` → `/v1/chat`), without its query or fragment.
fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let Some(start) = rest.find('/') else {
        return "/";
    };
    let path = &rest[start..];
    path.find(['?', '#']).map_or(path, |end| &path[..end])
}

/// What follows `?` in a URL, without the fragment.
fn url_query(url: &str) -> &str {
    let Some((_, rest)) = url.split_once('?') else {
        return "";
    };
    rest.split('#').next().unwrap_or_default()
}

fn respond_error(err: &ApiError) -> worker::Result<Response> {
    let mut r = Response::from_bytes(err.body())?.with_status(err.status());
    r.headers_mut().set("content-type", "application/json")?;
    Ok(r)
}

/// Parameters as D1 binds them.
fn js_params(params: Vec<SqlValue>) -> Vec<JsValue> {
    params
        .into_iter()
        .map(|v| match v {
            SqlValue::Null => JsValue::NULL,
            // D1 rejects BigInt: integers go as f64, exact up to 2^53 (the SQL casts them back).
            SqlValue::Integer(i) => JsValue::from_f64(i as f64),
            SqlValue::Real(f) => JsValue::from_f64(f),
            SqlValue::Text(s) => JsValue::from_str(&s),
        })
        .collect()
}

/// The row and its hour's and day's rollups, in one D1 batch (one round trip, one transaction).
async fn write_log(db: &D1Database, record: LogRecord) {
    let statements = gateway_core::rollup::write_statements(std::slice::from_ref(&record))
        .into_iter()
        .map(|(sql, params)| db.prepare(&sql).bind(&js_params(params)))
        .collect::<worker::Result<Vec<_>>>();
    let result = match statements {
        Ok(statements) => db.batch(statements).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        worker::console_error!("log row {} not written: {e}", record.id);
    }
}

/// Calls a Workers AI binding (`binding://AI/run/{model}`) with the connector's JSON body, and presents the
/// answer as the REST API would: an envelope around a JSON result, the raw SSE stream as it is, or an error
/// envelope (the code taken from the thrown `AiError` message), so the same connector reads both.
async fn run_binding(
    env: &Env,
    rest: &str,
    body: &[u8],
) -> Result<UpstreamResponse, UpstreamError> {
    let connect = UpstreamError::Connect;
    let (binding, model) = rest
        .split_once("/run/")
        .ok_or_else(|| connect(format!("bad binding target `{rest}`")))?;
    let ai = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(binding))
        .map_err(|_| connect(format!("no binding `{binding}`")))?;
    if ai.is_undefined() {
        return Err(connect(format!(
            "the Worker has no `{binding}` binding; configure [ai] in wrangler.toml"
        )));
    }
    let run: js_sys::Function = js_sys::Reflect::get(&ai, &JsValue::from_str("run"))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| connect(format!("binding `{binding}` has no run()")))?;
    let text = std::str::from_utf8(body).map_err(|e| connect(e.to_string()))?;
    // A plain JS object (serde_wasm_bindgen would make maps, which the binding does not read).
    let input =
        js_sys::JSON::parse(text).map_err(|_| connect("request body is not JSON".into()))?;
    let promise = run
        .call2(&ai, &JsValue::from_str(model), &input)
        .map_err(|e| connect(js_message(&e, "Workers AI binding failed")))?;
    let answer = JsFuture::from(js_sys::Promise::resolve(&promise)).await;
    let json = |status: u16, text: String| UpstreamResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: futures::stream::once(async move { Ok(text.into_bytes()) }).boxed_local(),
    };
    match answer {
        Ok(out) if out.is_instance_of::<web_sys::ReadableStream>() => {
            let stream = worker::ByteStream::from(web_sys::ReadableStream::unchecked_from_js(out));
            Ok(UpstreamResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/event-stream".into())],
                body: stream
                    .map(|c| c.map_err(|e| UpstreamError::Body(e.to_string())))
                    .boxed_local(),
            })
        }
        Ok(out) => {
            let result = js_sys::JSON::stringify(&out)
                .map(String::from)
                .unwrap_or_else(|_| "null".into());
            Ok(json(
                200,
                format!(r#"{{"result":{result},"success":true,"errors":[],"messages":[]}}"#),
            ))
        }
        Err(e) => {
            let message = js_message(&e, "Workers AI binding failed");
            let code = ai_error_code(&message);
            let envelope = serde_json::json!({"result": null, "success": false, "errors": [{"code": code, "message": message}], "messages": []});
            Ok(json(502, envelope.to_string()))
        }
    }
}

/// The message of a thrown JS value (`otherwise` when it has none).
fn js_message(e: &JsValue, otherwise: &str) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| otherwise.into())
}

/// The first four-digit number in an `AiError` message (`AiError: 3040: Capacity …`), 0 if none.
fn ai_error_code(message: &str) -> u32 {
    message
        .split(|c: char| !c.is_ascii_digit())
        .find(|d| d.len() == 4)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}
