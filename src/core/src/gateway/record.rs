//! Record: the log row, assembled from what each stage returned. Nothing else writes a [`LogRecord`].

use super::cost::{self, Pricing};
use super::dispatch::Dispatched;
use super::plan::AttemptPlan;
use super::request::ApiCall;
use super::resolve::Requested;
use super::route::Endpoint;
use super::upstream::Answer;
use crate::auth::KeyRecord;
use crate::error::{ApiError, ErrorCode, FailureClass};
use crate::http::GatewayRequest;
use crate::log::{LogRecord, Usage};

/// The log row of one request, as far as the pipeline has got.
pub(super) struct Trace {
    rec: LogRecord,
    start: f64,
    /// What the request is priced with, once the policy is known.
    pricing: Option<Pricing>,
    /// The gateway's estimates, for an answer the provider reported no usage for (a stream cut before its usage
    /// chunk, a JSON answer without `usage`): the prompt's tokens (from the plan's attributes) and the bytes of
    /// text relayed.
    prompt_estimate: u64,
    relayed_bytes: usize,
    /// A whole JSON answer came without usage: it is priced from the estimate.
    unreported: bool,
    /// The `x-ratelimit-*` headers of the key's and team's limits.
    limit_headers: Vec<(String, String)>,
    /// Where the row goes if the request is dropped before it is finished (the client left while the gateway was
    /// still waiting for a provider): see [`super::Gateway::begin`].
    abandoned: Option<Abandoned>,
    /// The response cache's key and time to live when the deciding rule caches.
    cache: Option<(String, u64)>,
    /// The payload archive's retention, the request body and its provider table, when the request is archived.
    archive: Option<Archive>,
    /// The answer as the client got it, kept for the cache and the archive; whether it is whole (a stream that
    /// finished every choice).
    answer: Option<(serde_json::Value, bool)>,
    /// The API the client speaks: its answer and errors are given in it.
    front: crate::front::Front,
}

struct Archive {
    retention_ms: u64,
    request: serde_json::Value,
    providers: std::sync::Arc<crate::providers::Providers>,
}

/// A row not finished when its request was dropped: sent with status 499 and what is known so far.
struct Abandoned {
    tx: futures::channel::oneshot::Sender<LogRecord>,
    clock: Box<dyn Fn() -> f64>,
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Some(Abandoned { tx, clock }) = self.abandoned.take() {
            self.client_closed();
            self.rec.latency_ms = clock() - self.start;
            self.price();
            self.pend_archive();
            let _ = tx.send(std::mem::take(&mut self.rec));
        }
    }
}

impl Trace {
    pub(super) fn begin(id: String, start: f64, req: &GatewayRequest) -> Self {
        Self {
            abandoned: None,
            pricing: None,
            prompt_estimate: 0,
            relayed_bytes: 0,
            unreported: false,
            limit_headers: Vec::new(),
            cache: None,
            archive: None,
            answer: None,
            front: crate::front::Front::Chat,
            rec: LogRecord {
                id,
                ts_ms: start as i64,
                method: clip(&req.method, 16),
                path: clip(&req.path, super::route::MAX_PATH_BYTES),
                ..LogRecord::default()
            },
            start,
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.rec.id
    }

    /// When the request arrived (Unix ms).
    pub(super) fn start(&self) -> f64 {
        self.start
    }

    pub(super) fn endpoint(&mut self, endpoint: Endpoint) {
        self.rec.endpoint = endpoint.logged();
        if matches!(endpoint, Endpoint::Messages | Endpoint::CountTokens) {
            // Errors before the body is read (a bad key) are already Anthropic's.
            self.front = crate::front::Front::Messages;
        }
    }

    /// The API the answer is given in, and what its translation needs to know.
    pub(super) fn front(&self) -> (crate::front::Front, crate::front::Ctx) {
        let ctx = crate::front::Ctx {
            id: self.rec.id.clone(),
            created: (self.start / 1000.0) as u64,
        };
        (self.front.clone(), ctx)
    }

    /// The key was found (it may still be refused as revoked or expired).
    pub(super) fn authenticated(&mut self, key: &KeyRecord) {
        self.rec.key_id = Some(key.id.clone());
        self.rec.team = key.team.clone();
    }

    pub(super) fn requested(&mut self, call: &ApiCall) {
        self.front = call.front();
        self.rec.stream = call.stream();
        self.rec.requested_model = Some(call.model().to_owned());
    }

    pub(super) fn resolved(&mut self, requested: &Requested<'_>) {
        if let Ok(t) = &requested.target {
            self.rec.provider = Some(t.provider.name.to_owned());
            self.rec.model = Some(t.model.clone());
            self.rec.attempts = 1;
        }
    }

    /// Every row names the reporting currency, priced or not: rollups group by it.
    pub(super) fn report_in(&mut self, currency: &str) {
        self.rec.reporting_currency = Some(currency.to_owned());
    }

    pub(super) fn priced_with(&mut self, pricing: Pricing) {
        self.pricing = Some(pricing);
    }

    /// The gateway's estimate of the prompt's tokens (known once the request is planned).
    pub(super) fn prompt_estimate(&self) -> u64 {
        self.prompt_estimate
    }

    /// The deciding rule caches: `state` is `miss`, `refresh` or `bypass` until a hit says otherwise; the key is
    /// kept for storing the answer (not for `bypass`).
    pub(super) fn cache_planned(&mut self, state: &'static str, key: String, ttl_ms: u64) {
        self.rec.cache = Some(state);
        if state != "bypass" {
            self.cache = Some((key, ttl_ms));
        }
    }

    /// The answer came from the cache: it costs nothing here and saves what it cost when it was made.
    pub(super) fn cache_hit(&mut self, entry: &crate::cache::Entry) {
        self.rec.cache = Some("hit");
        self.cache = None;
        if self.archive.is_some() {
            self.answer = Some((entry.body.clone(), true));
        }
        self.rec.provider = Some(entry.provider.clone());
        self.rec.model = Some(entry.model.clone());
        self.rec.attempts = 0;
        self.rec.cache_saved_pico = entry.cost_pico;
        self.rec.cost = Some(crate::log::CostRecord {
            pico: 0,
            currency: self
                .rec
                .reporting_currency
                .clone()
                .unwrap_or_else(|| "USD".into()),
            reporting_pico: Some(0),
            estimated: false,
            price_version: self
                .pricing
                .as_ref()
                .map(|p| p.book.version().to_owned())
                .unwrap_or_default(),
        });
    }

    /// The response's `x-gateway-cache` (none when the rule does not cache).
    pub(super) fn cache_state(&self) -> Option<&'static str> {
        self.rec.cache
    }

    /// Whether the answer is to be kept for the cache or the archive (JSON as sent, a stream as assembled).
    pub(super) fn keeps_answer(&self) -> bool {
        self.cache.is_some() || self.archive.is_some()
    }

    /// The answer the client got, and whether it is whole (only a whole one is cached).
    pub(super) fn answer(&mut self, answer: serde_json::Value, whole: bool) {
        if self.keeps_answer() {
            self.answer = Some((answer, whole));
        }
    }

    /// The request's bodies go to the payload archive, kept `retention_ms`; `providers` say whose keys to redact.
    pub(super) fn archive_planned(
        &mut self,
        retention_ms: u64,
        request: serde_json::Value,
        providers: std::sync::Arc<crate::providers::Providers>,
    ) {
        self.archive = Some(Archive {
            retention_ms,
            request,
            providers,
        });
    }

    /// The complete row carries the bodies to the archive (with the answer, if there was one).
    fn pend_archive(&mut self) {
        if let Some(a) = self.archive.take() {
            self.rec.archive_pending = Some(crate::archive::Pending {
                retention_ms: a.retention_ms,
                request: a.request,
                response: self.answer.take().map(|(v, _)| v),
                providers: a.providers,
            });
        }
    }

    pub(super) fn limit_headers(&mut self, headers: Vec<(String, String)>) {
        self.limit_headers = headers;
    }

    pub(super) fn rate_limit_headers(&self) -> &[(String, String)] {
        &self.limit_headers
    }

    /// What admission reserved, settled when the row is complete.
    pub(super) fn hold(&mut self, held: Vec<crate::limits::Held>) {
        self.rec.held = held;
    }

    /// A limit of `scope` (`key:<id>`, `team:<name>`) refused the request.
    pub(super) fn limited(&mut self, scope: &str, limit: crate::limits::Limit) {
        let kind = scope.split(':').next().unwrap_or(scope);
        self.rec.limited_by = Some(format!("{kind}:{}", limit.name()));
    }

    pub(super) fn planned(&mut self, plan: &AttemptPlan<'_>, call: &ApiCall) {
        self.prompt_estimate = match &plan.attrs {
            Some(attrs) => attrs.tokens.max(0) as u64,
            // Without a policy nothing has counted the prompt yet.
            None => crate::attributes::prompt_tokens(call.body()),
        };
        self.rec.policy_hash = Some(plan.policy.clone());
        self.rec.rule_id = Some(plan.rule.clone());
        self.rec.decision_attrs = plan.decision_json();
    }

    /// Takes the attempts into the row and hands back the answer (or the error).
    pub(super) fn dispatched(&mut self, d: Dispatched) -> Result<Answer, ApiError> {
        if let Some(last) = d.attempts.last() {
            self.rec.provider = Some(last.provider.clone());
            self.rec.model = Some(last.model.clone());
        }
        self.rec.attempts = d.attempts.len() as u32;
        self.rec.attempt_log = d.attempts;
        if let Ok(answer) = &d.result {
            self.rec.usage = answer.usage;
            self.rec.ttft_ms = answer.first_token_at_ms;
            if let (None, super::Reply::Json(body)) = (answer.usage, &answer.reply) {
                self.unreported = true;
                self.relayed_bytes = cost::answer_text_bytes(body);
            }
        }
        d.result
    }

    /// Which rule of which policy decided (none before the plan stage).
    pub(super) fn policy(&self) -> Option<(&str, &str)> {
        Some((
            self.rec.policy_hash.as_deref()?,
            self.rec.rule_id.as_deref()?,
        ))
    }

    /// The provider and model that answered (or were tried last).
    pub(super) fn target(&self) -> (&str, &str) {
        (
            self.rec.provider.as_deref().unwrap_or_default(),
            self.rec.model.as_deref().unwrap_or_default(),
        )
    }

    pub(super) fn attempts(&self) -> u32 {
        self.rec.attempts
    }

    /// Whether any upstream attempt was made.
    pub(super) fn attempted(&self) -> bool {
        !self.rec.attempt_log.is_empty()
    }

    /// The row of a request answered at once.
    pub(super) fn answered(mut self, status: u16, now: f64) -> LogRecord {
        self.rec.status = status;
        self.finish(now)
    }

    /// The row of a request that ended in an error response.
    pub(super) fn refused(mut self, err: &ApiError, now: f64) -> LogRecord {
        if self.archive.is_some() {
            // The body as sent, parsed back (rare: `serde_json::to_value` would link another serializer into the
            // Worker for it).
            self.answer = serde_json::from_slice(&err.body()).ok().map(|v| (v, false));
        }
        self.rec.status = err.status();
        self.rec.error_code = Some(err.code.log_code());
        self.finish(now)
    }

    /// A stream has started: 200 unless it fails.
    pub(super) fn streaming(&mut self) {
        self.rec.status = 200;
    }

    pub(super) fn stream_usage(&mut self, usage: Usage) {
        self.rec.usage = Some(usage);
    }

    /// How many bytes of text the stream has relayed so far.
    pub(super) fn relayed(&mut self, bytes: usize) {
        self.relayed_bytes = bytes;
    }

    /// The cost, once the row is complete: of the usage the provider reported, else (a stream that was cut before
    /// its usage after sending something, a JSON answer without usage) of the gateway's estimate.
    fn price(&mut self) {
        let Some(pricing) = &self.pricing else {
            return;
        };
        let (usage, estimated) = match self.rec.usage {
            Some(u) => (u, false),
            None if self.unreported || (self.rec.stream && self.relayed_bytes > 0) => {
                let completion = cost::tokens_of_bytes(self.relayed_bytes);
                let usage = Usage {
                    prompt_tokens: self.prompt_estimate,
                    completion_tokens: completion,
                    total_tokens: self.prompt_estimate.saturating_add(completion),
                    ..Usage::default()
                };
                (usage, true)
            }
            None => return,
        };
        let target = (
            self.rec.provider.as_deref().unwrap_or_default(),
            self.rec.model.as_deref().unwrap_or_default(),
        );
        let reporting = self.rec.reporting_currency.as_deref().unwrap_or("USD");
        self.rec.cost = cost::price(
            pricing,
            reporting,
            target,
            self.rec.ts_ms,
            &usage,
            estimated,
        );
        if estimated && self.rec.cost.is_some() {
            // The row's tokens are what it was priced on (its `cost_estimated` says they are estimates).
            self.rec.usage = Some(usage);
        }
    }

    /// A stream failed after its first token: that is the provider's fault too.
    pub(super) fn stream_failed(&mut self, e: &ApiError) {
        self.rec.status = e.status();
        self.rec.error_code = e.code.code().map(str::to_owned);
        self.rec.truncated = true;
        if let Some(last) = self.rec.attempt_log.last_mut() {
            last.error = Some(FailureClass::Stream);
            last.status = e.status();
        }
    }

    /// The client closed the connection before the stream ended: 499 (nginx's convention).
    pub(super) fn client_closed(&mut self) {
        let closed = ErrorCode::ClientClosed;
        self.rec.status = closed.status();
        self.rec.error_code = closed.code().map(str::to_owned);
        self.rec.truncated = true;
    }

    /// Sends the row to `tx` if this trace is dropped before it is finished.
    pub(super) fn on_abandon(
        &mut self,
        tx: futures::channel::oneshot::Sender<LogRecord>,
        clock: Box<dyn Fn() -> f64>,
    ) {
        self.abandoned = Some(Abandoned { tx, clock });
    }

    pub(super) fn finish(mut self, now: f64) -> LogRecord {
        self.abandoned = None;
        self.rec.latency_ms = now - self.start;
        self.price();
        // A whole, successful answer goes into the cache, with what it cost.
        let whole = matches!(self.answer, Some((_, true)));
        if let Some((key, ttl_ms)) = self.cache.take() {
            if whole && self.rec.status == 200 && !self.rec.truncated {
                // The archive keeps the answer too.
                let body = match self.archive {
                    Some(_) => self.answer.as_ref().map(|(b, _)| b.clone()),
                    None => self.answer.take().map(|(b, _)| b),
                }
                .unwrap_or_default();
                self.rec.cache_write = Some(crate::cache::Write {
                    key,
                    ttl_ms,
                    entry: crate::cache::Entry {
                        provider: self.rec.provider.clone().unwrap_or_default(),
                        model: self.rec.model.clone().unwrap_or_default(),
                        body,
                        cost_pico: self.rec.cost.as_ref().and_then(|c| c.reporting_pico),
                    },
                });
            }
        }
        self.pend_archive();
        std::mem::take(&mut self.rec)
    }
}

/// At most `max` bytes of `s` (cut at a character boundary): what a refused request's method or path is logged as.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
