//! The request pipeline. [`Gateway::handle`] passes a request through the stages in `gateway/`, in the order
//! [`Gateway::serve`] lists them; each stage returns a typed result, and `record` assembles the log row from
//! those results. Hosts call `handle` and send what it returns.
//!
//! | stage | file | returns |
//! |---|---|---|
//! | keep the policy fresh | `state.rs` | a background refresh, if one is due |
//! | route | `gateway/route.rs` | the [`Endpoint`](route::Endpoint) |
//! | authenticate | `gateway/authenticate.rs` | the key's record (cached) |
//! | read the request | `gateway/request.rs` | a validated [`ApiCall`](request::ApiCall) |
//! | resolve | `gateway/resolve.rs` | the provider and model asked for |
//! | plan | `gateway/plan.rs` | the [`AttemptPlan`](plan::AttemptPlan): targets in order, skipped ones and why |
//! | archive | `gateway/archive.rs` | whether the bodies are archived (written after the response) |
//! | cache | `gateway/cache.rs` | a cached answer, or whether to store this one |
//! | dispatch | `gateway/dispatch.rs` | every attempt, and the answer or the last error |
//! | upstream I/O | `gateway/upstream.rs` | one attempt's answer, or its failure |
//! | relay | `gateway/relay.rs` | the client's stream, and the log row when it ends |
//! | respond | `gateway/respond.rs` | the response and its headers |

mod admin;
mod archive;
mod authenticate;
mod cache;
mod cost;
mod dispatch;
mod inline;
mod limit;
mod media;
mod plan;
mod policy_admin;
mod record;
mod records;
mod relay;
mod request;
mod resolve;
mod respond;
mod route;
mod upstream;

use std::rc::Rc;
use std::sync::Arc;

use futures::future::{FutureExt, LocalBoxFuture};

use crate::config::GatewayConfig;
use crate::error::{ApiError, ErrorCode};
use crate::http::{GatewayRequest, GatewayResponse};
use crate::log::LogRecord;
use crate::ports::Host;
use crate::providers::Providers;
use crate::state::{Freshness, Shared};
use gateway_policy::Policy;
use record::Trace;
use route::Endpoint;

/// The response to send now, the log row, which resolves once the response (or stream) is over, and work to
/// run after the response (a background policy refresh), which hosts hand to `waitUntil` or spawn.
pub struct Handled {
    pub response: GatewayResponse,
    pub record: LocalBoxFuture<'static, LogRecord>,
    pub background: Option<LocalBoxFuture<'static, ()>>,
}

/// What the pipeline answers with.
enum Reply {
    /// Answered by the gateway itself (health, models, admin).
    Local {
        status: u16,
        body: Vec<u8>,
        /// `None`: JSON.
        content_type: Option<&'static str>,
        /// More headers (a console session's `set-cookie`).
        headers: Vec<(String, String)>,
    },
    /// An upstream's JSON answer, in OpenAI's shape.
    Json(Vec<u8>),
    /// An upstream stream whose first content token has arrived.
    Stream(Box<relay::Source>),
    /// An answer from the response cache: JSON, or the stream replayed from it.
    Cached { body: Vec<u8>, stream: bool },
    /// An upstream's answer that is not chat JSON: audio, or a transcript in the format asked for.
    Media { body: Vec<u8>, content_type: String },
}

/// A request that ends in an error response, and the `Allow` header a 405 carries.
struct Refused {
    err: ApiError,
    allow: Option<&'static str>,
}

impl From<ApiError> for Refused {
    fn from(err: ApiError) -> Self {
        Self { err, allow: None }
    }
}

pub struct Gateway<H: Host> {
    host: H,
    config: Rc<GatewayConfig>,
    /// The active policy, health and cooldowns: kept by the host across requests (per isolate or thread).
    shared: Rc<Shared>,
}

impl<H: Host> Gateway<H> {
    pub fn new(host: H, config: Rc<GatewayConfig>) -> Self {
        Self {
            host,
            config,
            shared: Shared::new(),
        }
    }

    /// Uses state that outlives this gateway value (Workers build one gateway per request).
    pub fn with_shared(mut self, shared: Rc<Shared>) -> Self {
        self.shared = shared;
        self
    }

    /// Starts with this policy (until the policy store publishes another).
    pub fn with_policy(self, policy: Option<Rc<Policy>>) -> Self {
        if let Some(p) = policy {
            self.shared.install(p, self.host.now_ms());
        }
        self
    }

    pub fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Handles one request. Never panics on client or upstream input; every outcome has a log row.
    pub async fn handle(&self, req: GatewayRequest) -> Handled {
        self.handle_traced(req, None).await
    }

    /// [`Gateway::handle`] for hosts that drop a request's future when its client leaves. The second future is
    /// the request's log row, whatever happens to the first: the row of the answer once it is over, or, if the
    /// first is dropped before it answered, a 499 `client_closed` row with the attempts made so far. A host
    /// spawns it before awaiting the first, whose [`Handled::record`] then never resolves.
    pub fn begin(
        &self,
        req: GatewayRequest,
    ) -> (
        LocalBoxFuture<'_, Handled>,
        LocalBoxFuture<'static, Option<LogRecord>>,
    ) {
        use futures::channel::oneshot;
        let (abandoned_tx, abandoned) = oneshot::channel();
        let (record_tx, record) = oneshot::channel::<LocalBoxFuture<'static, LogRecord>>();
        let (host, redactor) = (self.host.clone(), self.config.archive.redactor.clone());
        let row = async move {
            match abandoned.await {
                Ok(mut row) => {
                    limit::settle(&host, &mut row).await;
                    archive::store(&host, &mut row, &redactor).await;
                    Some(row)
                }
                // Finished normally: the row comes with the answer.
                Err(_) => Some(record.await.ok()?.await),
            }
        };
        let work = async move {
            let mut handled = self.handle_traced(req, Some(abandoned_tx)).await;
            let record = std::mem::replace(
                &mut handled.record,
                futures::future::pending().boxed_local(),
            );
            let _ = record_tx.send(record);
            handled
        };
        (work.boxed_local(), row.boxed_local())
    }

    /// The row of a request that the host's HTTP layer refused before it was one (a head over its buffer, a
    /// URI over its limit, bytes that are not HTTP): the host answered it itself with `code`'s status, and only
    /// when it arrived is known.
    pub fn unreadable(&self, code: ErrorCode) -> LogRecord {
        let now = self.host.now_ms();
        let id = request_id(now, self.host.random_u64(), self.host.random_u64());
        let nothing = GatewayRequest {
            method: String::new(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            body: crate::http::RequestBody::Bytes(Vec::new()),
        };
        let why = ApiError::new(code, "refused by the HTTP layer");
        let mut trace = Trace::begin(id, now, &nothing);
        trace.report_in(&self.config.reporting_currency);
        trace.refused(&why, now)
    }

    async fn handle_traced(
        &self,
        req: GatewayRequest,
        abandon: Option<futures::channel::oneshot::Sender<LogRecord>>,
    ) -> Handled {
        let start = self.host.now_ms();
        let background = self.keep_policy_fresh(start).await;
        let id = request_id(start, self.host.random_u64(), self.host.random_u64());
        let mut trace = Trace::begin(id, start, &req);
        trace.report_in(&self.config.reporting_currency);
        if let Some(tx) = abandon {
            let host = self.host.clone();
            trace.on_abandon(tx, Box::new(move || host.now_ms()));
        }
        let outcome = self.serve(&req, &mut trace).await;
        let (response, record) = respond::respond(outcome, trace, &self.host, &self.config);
        // A whole answer is settled before it is sent: the client's next request sees what this one cost. A
        // stream is settled when it ends.
        let host = self.host.clone();
        let mut settled = async move {
            let mut row = record.await;
            limit::settle(&host, &mut row).await;
            row
        }
        .boxed_local();
        if matches!(response.body, crate::http::Body::Full(_)) {
            settled = futures::future::ready(settled.await).boxed_local();
        }
        // The answer goes into the response cache and the bodies to the archive when the host completes the
        // row, after the response.
        let (host, redactor) = (self.host.clone(), self.config.archive.redactor.clone());
        let record = async move {
            let mut row = settled.await;
            cache::store(&host, &mut row).await;
            archive::store(&host, &mut row, &redactor).await;
            row
        }
        .boxed_local();
        Handled {
            response,
            record,
            background,
        }
    }

    /// The stages a request passes through, in order; `trace` collects what each found for the log row.
    async fn serve(&self, req: &GatewayRequest, trace: &mut Trace) -> Result<Reply, Refused> {
        let endpoint = route::route(&req.method, &req.path)?;
        match endpoint {
            Endpoint::Health => return Ok(Reply::local(br#"{"status":"ok"}"#.to_vec())),
            Endpoint::AdminStatus => return Ok(self.admin_status(req)?),
            Endpoint::AdminUsage => return Ok(self.admin_usage(req).await?),
            Endpoint::AdminRecords => return Ok(self.admin_records(req).await?),
            Endpoint::AdminLogs => return Ok(self.admin_logs(req).await?),
            Endpoint::AdminSession => return Ok(self.admin_session(req)?),
            Endpoint::AdminPolicy => return Ok(self.admin_policy(req).await?),
            Endpoint::Models
            | Endpoint::Chat
            | Endpoint::Messages
            | Endpoint::Responses
            | Endpoint::StoredResponse
            | Endpoint::CountTokens
            | Endpoint::Embeddings
            | Endpoint::Images
            | Endpoint::Transcriptions
            | Endpoint::Speech => {}
        }
        trace.endpoint(endpoint);
        request::gateway_headers(&req.headers)?;
        let key = self.find_key(&req.headers).await?;
        trace.authenticated(&key);
        authenticate::admit(&key, self.host.now_ms())?;
        let holder = limit::Holder {
            team: self.find_team(&key).await?,
            key: &key,
        };
        // One policy and its provider table for the whole request, whatever a refresh installs meanwhile.
        let policy = self.shared.policy();
        let providers = self.providers(policy.as_deref());
        let pricing = self.pricing(policy.as_deref());
        trace.priced_with(pricing.clone());
        let limit = self.config.max_body_bytes;
        let call = match endpoint {
            Endpoint::Chat => request::chat(&req.body, limit)?,
            Endpoint::Messages => request::messages(&req.body, limit)?,
            Endpoint::Responses => request::responses(&req.body, limit)?,
            Endpoint::Embeddings => request::embeddings(&req.body, limit)?,
            Endpoint::Images => request::images(&req.body, limit)?,
            Endpoint::Transcriptions => {
                request::transcription(&req.headers, &req.body, self.config.max_audio_bytes)?
            }
            Endpoint::Speech => request::speech(&req.body, limit)?,
            Endpoint::StoredResponse => return Err(request::stored_response().into()),
            Endpoint::CountTokens => return Ok(request::count_tokens(&req.body, limit)?),
            _ => return Ok(admin::models(&providers)),
        };
        request::known_provider(&call, &providers)?;
        trace.requested(&call);
        let requested = resolve::resolve(&providers, &call);
        trace.resolved(&requested);
        self.check_allowed(&holder, (&requested, &call, policy.is_some()))?;
        let standings = match policy.as_deref() {
            Some(p) if plan::tests_budgets(p) => limit::standing(self, &holder, &pricing).await?,
            _ => (None, None),
        };
        let mut plan = self.plan(
            req,
            (&key, &call, standings),
            requested,
            trace.id(),
            (policy.as_deref(), &providers),
        );
        limit::restrict(&mut plan, &holder);
        trace.planned(&plan, &call);
        let plan = plan.ready()?;
        self.plan_archive((&call, &plan, &providers), trace);
        if let Some(hit) = self
            .cached_answer(req, (&call, &plan, &holder), trace)
            .await
        {
            return Ok(hit);
        }
        self.reserve(&holder, (&call, &plan, &pricing), trace)
            .await?;
        let dispatched = self.dispatch(&call, &plan, trace.start(), &providers).await;
        Ok(trace.dispatched(dispatched)?.reply)
    }

    /// What requests are priced with: the policy's price table, or the built-in one while none is published.
    fn pricing(&self, policy: Option<&Policy>) -> cost::Pricing {
        cost::Pricing {
            book: policy.map_or_else(|| self.config.prices.clone(), |p| p.prices().clone()),
        }
    }

    /// The providers requests can go to: the policy's catalog with this deployment's settings, or the built-in
    /// catalog's while no policy is published.
    fn providers(&self, policy: Option<&Policy>) -> Arc<Providers> {
        match policy {
            Some(p) => self.shared.providers_of(p, |name| self.host.setting(name)),
            None => self.config.providers.clone(),
        }
    }

    /// The policy in use, checked against the store: the first request of an isolate waits for it once; later a
    /// check older than `policy_refresh_ms` is refreshed in the background (returned for the host to run).
    async fn keep_policy_fresh(&self, now: f64) -> Option<LocalBoxFuture<'static, ()>> {
        match self.shared.freshness(now, self.config.policy_refresh_ms) {
            Freshness::Cold => {
                self.shared.refresh(&self.host).await;
                None
            }
            Freshness::Stale => {
                let (shared, host) = (self.shared.clone(), self.host.clone());
                Some(async move { shared.refresh(&host).await }.boxed_local())
            }
            Freshness::Fresh => None,
        }
    }
}

impl Reply {
    fn local(body: Vec<u8>) -> Self {
        Reply::Local {
            status: 200,
            body,
            content_type: None,
            headers: Vec::new(),
        }
    }
}

/// `req_` + 32 hex digits: the arrival time in milliseconds (12 digits), then 80 random bits. Ids sort by time,
/// so log rows are appended to the primary-key index rather than inserted at random places in it.
fn request_id(now_ms: f64, r1: u64, r2: u64) -> String {
    format!(
        "{}{r1:016x}{:04x}",
        crate::log::id_floor(now_ms as i64),
        r2 & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_sort_by_time_and_keep_their_shape() {
        let a = request_id(1_800_000_000_000.0, u64::MAX, 0xabcdef);
        let b = request_id(1_800_000_000_001.0, 0, 0);
        assert!(a < b, "{a} {b}");
        for id in [&a, &b] {
            assert_eq!(id.len(), 36);
            assert!(id[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        }
    }
}
