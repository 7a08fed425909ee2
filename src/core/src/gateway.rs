//! The request pipeline: route, authenticate, validate, resolve the target, dispatch through a connector,
//! and describe the outcome in a log row. Hosts call [`Gateway::handle`] and send what it returns.

mod relay;

use std::rc::Rc;

use futures::future::{self, Either, FutureExt, LocalBoxFuture};
use futures::stream::{LocalBoxStream, StreamExt};
use serde_json::{Map, Value};

use crate::auth::{self, KeyRecord};
use crate::config::{GatewayConfig, ProviderConfig};
use crate::error::ApiError;
use crate::log::{Attempt, LogRecord};
use crate::ports::{ByteStream, Host, UpstreamRequest, UpstreamResponse};
use crate::providers;
use crate::state::{Freshness, Shared};
use gateway_policy::artifact::Options;
use gateway_policy::catalog::Catalog;
use gateway_policy::{Attrs, Outcome, Policy, Target};
use relay::Source;

/// A request as the host received it. Header names are lower case; `path` has no query string.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
}

#[derive(Debug, Clone)]
pub enum RequestBody {
    Bytes(Vec<u8>),
    /// The host stopped reading at the configured limit (`GatewayConfig::max_body_bytes`).
    TooLarge,
}

pub struct GatewayResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

pub enum Body {
    Full(Vec<u8>),
    /// Sent chunk by chunk as produced; never buffered by the core.
    Stream(LocalBoxStream<'static, Vec<u8>>),
}

/// The response to send now, the log row, which resolves once the response (or stream) is over, and work to
/// run after the response (a background policy refresh), which hosts hand to `waitUntil` or spawn.
pub struct Handled {
    pub response: GatewayResponse,
    pub record: LocalBoxFuture<'static, LogRecord>,
    pub background: Option<LocalBoxFuture<'static, ()>>,
}

enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Stream {
        headers: Vec<(String, String)>,
        source: Box<Source>,
    },
}

#[derive(Clone, Copy)]
enum Call {
    Chat {
        stream: bool,
        client_wants_usage: bool,
    },
    Embeddings,
}

/// The targets to try, in order, and the deciding rule's options.
struct Plan<'c> {
    targets: Vec<(&'c ProviderConfig, String)>,
    options: Options,
}

/// A failed attempt: the error the client would see, the status to log (the upstream's when it answered),
/// and the failure's class (`429`, `5xx`, `4xx`, `auth`, `timeout`, `connect`, `stream`, `invalid`).
struct Failure {
    err: ApiError,
    status: u16,
    class: &'static str,
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        let class = match err.code.as_deref() {
            Some("upstream_timeout") => "timeout",
            Some("upstream_unreachable") => "connect",
            Some("upstream_truncated" | "upstream_error" | "upstream_stream_error") => "stream",
            Some("upstream_invalid_response") => "invalid",
            _ => status_class(err.status),
        };
        Self {
            status: err.status,
            class,
            err,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Health,
    Models,
    Chat,
    Embeddings,
    Admin,
}

const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("/healthz", "GET", Endpoint::Health),
    ("/v1/models", "GET", Endpoint::Models),
    ("/v1/chat/completions", "POST", Endpoint::Chat),
    ("/v1/embeddings", "POST", Endpoint::Embeddings),
    ("/admin/status", "GET", Endpoint::Admin),
];

/// The policy hash in headers and log rows when no policy has been published: route to what was requested.
pub const BUILTIN_POLICY: &str = "builtin";
/// A retry waits at most this long; a longer `Retry-After` moves on to the next target instead.
const MAX_RETRY_WAIT_MS: f64 = 5_000.0;
const BASE_BACKOFF_MS: u64 = 200;

const JSON: &str = "application/json";
/// Upstream error bodies are read up to this size for the message; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A successful non-streaming upstream body larger than this is refused rather than held in memory.
const MAX_UPSTREAM_BODY: usize = 32 * 1024 * 1024;

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
        let start = self.host.now_ms();
        let background = match self.shared.freshness(start, self.config.policy_refresh_ms) {
            Freshness::Cold => {
                self.shared.refresh(&self.host).await;
                None
            }
            Freshness::Stale => {
                let (shared, host) = (self.shared.clone(), self.host.clone());
                Some(async move { shared.refresh(&host).await }.boxed_local())
            }
            Freshness::Fresh => None,
        };
        let mut rec = LogRecord {
            id: request_id(start, self.host.random_u64(), self.host.random_u64()),
            ts_ms: start as i64,
            method: req.method.clone(),
            path: req.path.clone(),
            ..LogRecord::default()
        };
        let reply = self.route(&req, &mut rec).await;
        let request_id = rec.id.clone();
        let mut response = match reply {
            Ok(Reply::Full {
                status,
                headers,
                body,
            }) => {
                rec.status = status;
                rec.latency_ms = self.host.now_ms() - start;
                GatewayResponse {
                    status,
                    headers,
                    body: Body::Full(body),
                }
            }
            Err(err) => {
                rec.status = err.status;
                rec.error_code = err.code.clone().or_else(|| Some(err.kind.to_owned()));
                rec.latency_ms = self.host.now_ms() - start;
                let mut response = error_response(&err);
                // A denied request, or one whose every attempt failed, still says which rule decided.
                self.policy_headers(&mut response.headers, &rec);
                if !rec.attempt_log.is_empty() {
                    response
                        .headers
                        .push(("x-gateway-attempts".into(), rec.attempts.to_string()));
                }
                response
            }
            Ok(Reply::Stream { headers, source }) => {
                rec.status = 200;
                let idle = self.config.stream_idle_timeout_ms;
                let (body, record) = relay::relay(self.host.clone(), *source, rec, start, idle);
                let mut headers = headers;
                headers.push((
                    "content-type".into(),
                    "text/event-stream; charset=utf-8".into(),
                ));
                headers.push(("cache-control".into(), "no-cache".into()));
                let mut response = GatewayResponse {
                    status: 200,
                    headers,
                    body: Body::Stream(body),
                };
                response.headers.push(("x-request-id".into(), request_id));
                return Handled {
                    response,
                    record,
                    background,
                };
            }
        };
        response.headers.push(("x-request-id".into(), request_id));
        Handled {
            response,
            record: future::ready(rec).boxed_local(),
            background,
        }
    }

    async fn route(&self, req: &GatewayRequest, rec: &mut LogRecord) -> Result<Reply, ApiError> {
        let path = req.path.as_str();
        let Some(&(_, method, endpoint)) = ROUTES.iter().find(|(p, _, _)| *p == path) else {
            return Err(ApiError::not_found(format!(
                "no route for `{} {path}`",
                req.method
            )));
        };
        if req.method != method {
            let err = ApiError::method_not_allowed(&req.method, path);
            rec.error_code = err.code.clone();
            let mut headers = with_json(Vec::new());
            headers.push(("allow".into(), method.into()));
            return Ok(Reply::Full {
                status: err.status,
                headers,
                body: err.body(),
            });
        }
        if endpoint == Endpoint::Health {
            return Ok(json_reply(200, br#"{"status":"ok"}"#.to_vec()));
        }
        if endpoint == Endpoint::Admin {
            return self.admin(req);
        }
        rec.endpoint = Some(match endpoint {
            Endpoint::Chat => "chat",
            Endpoint::Embeddings => "embeddings",
            _ => "models",
        });
        let key = self.authenticate(req, rec).await?;
        match endpoint {
            Endpoint::Models => Ok(self.models()),
            Endpoint::Chat => self.chat(req, &key, rec).await,
            _ => self.embeddings(req, &key, rec).await,
        }
    }

    async fn authenticate(
        &self,
        req: &GatewayRequest,
        rec: &mut LogRecord,
    ) -> Result<KeyRecord, ApiError> {
        let Some(key) = auth::presented_key(&req.headers) else {
            return Err(ApiError::unauthorized(
                "missing API key: send `Authorization: Bearer <gateway key>` or `x-api-key: <gateway key>`",
            ));
        };
        let hash = auth::hash_key(key);
        let now = self.host.now_ms();
        let record = match self.shared.cached_key(&hash, now, self.config.key_cache_ms) {
            Some(cached) => cached,
            None => {
                let found = self.host.find_key(&hash).await.map_err(|e| {
                    ApiError::new(
                        503,
                        "server_error",
                        Some("key_store_unavailable"),
                        format!("key store: {e}"),
                    )
                })?;
                self.shared.cache_key(&hash, found.clone(), now);
                found
            }
        };
        let Some(record) = record else {
            return Err(ApiError::unauthorized("incorrect API key provided"));
        };
        rec.key_id = Some(record.id.clone());
        if let Some(why) = record.refusal(self.host.now_ms()) {
            return Err(ApiError::unauthorized(why));
        }
        Ok(record)
    }

    /// `GET /admin/status`: the active policy, health snapshot and cooldowns of this isolate or thread,
    /// behind its own token (`GATEWAY_ADMIN_TOKEN`); 404 when no token is configured.
    fn admin(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        let Some(token) = &self.config.admin_token else {
            return Err(ApiError::not_found(format!(
                "no route for `{} {}`",
                req.method, req.path
            )));
        };
        // Compared as hashes: the comparison's timing says nothing about the token.
        let presented = auth::presented_key(&req.headers).map(auth::hash_key);
        if presented.as_deref() != Some(auth::hash_key(token).as_str()) {
            return Err(ApiError::unauthorized(
                "the admin endpoints need `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>`",
            ));
        }
        let status = self.shared.status(self.host.now_ms());
        Ok(json_reply(
            200,
            serde_json::to_vec(&status).unwrap_or_default(),
        ))
    }

    fn models(&self) -> Reply {
        let mut data = Vec::new();
        for p in &self.config.providers {
            for m in p.models {
                data.push(serde_json::json!({"id": format!("{}/{m}", p.name), "object": "model", "created": 0, "owned_by": p.name}));
            }
        }
        let body = serde_json::json!({"object": "list", "data": data});
        json_reply(200, serde_json::to_vec(&body).unwrap_or_default())
    }

    async fn chat(
        &self,
        req: &GatewayRequest,
        key: &KeyRecord,
        rec: &mut LogRecord,
    ) -> Result<Reply, ApiError> {
        let body = json_body(&req.body, self.config.max_body_bytes)?;
        let model = required_string(&body, "model")?;
        match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {}
            Some(Value::Array(_)) => {
                return Err(ApiError::invalid_request(
                    "`messages` must contain at least one message",
                )
                .with_param("messages"))
            }
            Some(_) => {
                return Err(
                    ApiError::invalid_request("`messages` must be an array").with_param("messages")
                )
            }
            None => {
                return Err(
                    ApiError::invalid_request("`messages` is required").with_param("messages")
                )
            }
        }
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(
                    ApiError::invalid_request("`stream` must be a boolean").with_param("stream")
                )
            }
        };
        let client_wants_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        rec.stream = stream;
        let requested = self.resolve(&body, &model, rec);
        let plan = self.plan(&body, &req.headers, key, "chat", &model, requested, rec)?;
        let call = Call::Chat {
            stream,
            client_wants_usage,
        };
        self.dispatch(call, &body, plan, rec).await
    }

    async fn embeddings(
        &self,
        req: &GatewayRequest,
        key: &KeyRecord,
        rec: &mut LogRecord,
    ) -> Result<Reply, ApiError> {
        let body = json_body(&req.body, self.config.max_body_bytes)?;
        let model = required_string(&body, "model")?;
        if body.get("input").is_none_or(Value::is_null) {
            return Err(ApiError::invalid_request("`input` is required").with_param("input"));
        }
        let requested = self.resolve(&body, &model, rec);
        let plan = self.plan(
            &body,
            &req.headers,
            key,
            "embeddings",
            &model,
            requested,
            rec,
        )?;
        self.dispatch(Call::Embeddings, &body, plan, rec).await
    }

    /// Carries out a plan: each target in order, retried with backoff as the rule's options allow, falling
    /// back on failures the rule (or, without `retry_on`, the gateway) counts as retryable. Nothing has reached
    /// the client while this runs; a stream is handed over once its first content token has arrived.
    async fn dispatch(
        &self,
        call: Call,
        body: &Map<String, Value>,
        plan: Plan<'_>,
        rec: &mut LogRecord,
    ) -> Result<Reply, ApiError> {
        let options = &plan.options;
        let retries = options.retries.unwrap_or(0);
        let mut tried: Vec<String> = Vec::new();
        let mut last: Option<ApiError> = None;
        for (provider, model) in &plan.targets {
            let target = format!("{}:{model}", provider.name);
            let mut retry = 0;
            loop {
                rec.provider = Some(provider.name.to_owned());
                rec.model = Some(model.clone());
                let started = self.host.now_ms();
                let result = self
                    .attempt(call, provider, model, body, options, rec)
                    .await;
                let now = self.host.now_ms();
                rec.attempts = rec.attempt_log.len() as u32 + 1;
                let mut attempt = Attempt {
                    provider: provider.name.to_owned(),
                    model: model.clone(),
                    status: 200,
                    ms: ((now - started) * 1000.0).round() / 1000.0,
                    error: None,
                };
                match result {
                    Ok(mut reply) => {
                        rec.attempt_log.push(attempt);
                        self.shared.record_attempt(
                            &target,
                            false,
                            None,
                            now,
                            self.config.cooldown_ms,
                        );
                        let (Reply::Full { headers, .. } | Reply::Stream { headers, .. }) =
                            &mut reply;
                        set_header(headers, "x-gateway-attempts", rec.attempts.to_string());
                        self.policy_headers(headers, rec);
                        return Ok(reply);
                    }
                    Err(f) => {
                        attempt.status = f.status;
                        attempt.error = Some(f.class.to_owned());
                        let fault = attempt.provider_fault();
                        rec.attempt_log.push(attempt);
                        let retry_after_ms = f.err.retry_after.as_deref().and_then(retry_after_ms);
                        self.shared.record_attempt(
                            &target,
                            fault,
                            retry_after_ms,
                            now,
                            self.config.cooldown_ms,
                        );
                        if !falls_back(&f, options) {
                            return Err(with_tried(f.err, &tried));
                        }
                        tried.push(format!(
                            "{target} ({} {})",
                            f.err.status,
                            f.err.code.as_deref().unwrap_or(f.err.kind)
                        ));
                        if retry < retries {
                            let jitter = self.host.random_u64();
                            if let Some(wait) = backoff_ms(retry, retry_after_ms, jitter) {
                                retry += 1;
                                self.host.sleep(wait).await;
                                continue;
                            }
                        }
                        last = Some(f.err);
                        break;
                    }
                }
            }
        }
        tried.pop();
        let err = last.unwrap_or_else(|| ApiError::internal("no attempt was made"));
        Err(with_tried(err, &tried))
    }

    /// One attempt on one provider: the JSON answer, or the stream once its first content token arrived.
    async fn attempt(
        &self,
        call: Call,
        provider: &ProviderConfig,
        model: &str,
        body: &Map<String, Value>,
        options: &Options,
        rec: &mut LogRecord,
    ) -> Result<Reply, Failure> {
        let connector = provider.connector;
        let started = self.host.now_ms();
        let timeout_ms = options
            .timeout_ms
            .unwrap_or(self.config.upstream_timeout_ms);
        let deadline = started + timeout_ms as f64;
        let headers = route_headers(provider.name, model);
        let now_s = (started / 1000.0) as u64;
        let (stream, client_wants_usage) = match call {
            Call::Embeddings => {
                let req = connector.embeddings_request(provider, body.clone(), model)?;
                let resp = self.send(req, provider, deadline, timeout_ms).await?;
                let (mut parsed, bytes) = self
                    .read_json(resp.body, deadline, timeout_ms, provider.name)
                    .await?;
                rec.usage = connector.usage(&parsed);
                let bytes = if connector.normalize_embeddings(&mut parsed, model) {
                    serde_json::to_vec(&parsed).unwrap_or(bytes)
                } else {
                    bytes
                };
                return Ok(Reply::Full {
                    status: 200,
                    headers: with_json(headers),
                    body: bytes,
                });
            }
            Call::Chat {
                stream,
                client_wants_usage,
            } => (stream, client_wants_usage),
        };
        let req = connector.chat_request(provider, body.clone(), model, stream)?;
        let resp = self.send(req, provider, deadline, timeout_ms).await?;
        if stream {
            let mut source = Source::new(
                resp.body,
                connector.stream_translator(now_s),
                client_wants_usage,
            );
            let first_token_ms = options
                .first_token_timeout_ms
                .unwrap_or(timeout_ms)
                .min(timeout_ms);
            source
                .preroll(&self.host, started + first_token_ms as f64, first_token_ms)
                .await?;
            rec.ttft_ms = Some(self.host.now_ms() - rec.ts_ms as f64);
            return Ok(Reply::Stream {
                headers,
                source: Box::new(source),
            });
        }
        let (mut parsed, bytes) = self
            .read_json(resp.body, deadline, timeout_ms, provider.name)
            .await?;
        rec.usage = connector.usage(&parsed);
        let bytes = if connector.normalize_answer(&mut parsed, now_s)? {
            serde_json::to_vec(&parsed).unwrap_or(bytes)
        } else {
            bytes
        };
        Ok(Reply::Full {
            status: 200,
            headers: with_json(headers),
            body: bytes,
        })
    }

    /// Reads and parses a whole JSON answer (without the blank lines some providers send first).
    async fn read_json(
        &self,
        body: ByteStream,
        deadline: f64,
        timeout_ms: u64,
        provider: &str,
    ) -> Result<(Value, Vec<u8>), ApiError> {
        let bytes = json_answer(
            self.read_body(body, MAX_UPSTREAM_BODY, deadline, timeout_ms, provider)
                .await?,
        );
        let parsed = serde_json::from_slice(&bytes).map_err(|_| invalid_upstream_json(provider))?;
        Ok((parsed, bytes))
    }

    /// The targets to try, in order: the policy's decision for this request's attributes, or, without a
    /// published policy, the built-in default (what was requested). Targets whose provider has no settings,
    /// or whose model cannot take the request (catalog capabilities), are left out; models cooling down go last.
    #[allow(clippy::too_many_arguments)]
    fn plan<'c>(
        &'c self,
        body: &Map<String, Value>,
        headers: &[(String, String)],
        key: &KeyRecord,
        endpoint: &'static str,
        model: &str,
        requested: Result<(&'c ProviderConfig, String), ApiError>,
        rec: &mut LogRecord,
    ) -> Result<Plan<'c>, ApiError> {
        let Some(policy) = self.shared.policy() else {
            rec.policy_hash = Some(BUILTIN_POLICY.into());
            rec.rule_id = Some("default".into());
            return requested.map(|r| Plan {
                targets: vec![r],
                options: Options::default(),
            });
        };
        let (req_provider, req_model) = match &requested {
            Ok((p, m)) => (p.name.to_owned(), m.clone()),
            Err(_) => match model.split_once('/') {
                Some((p, m)) if providers::spec(p).is_some() => (p.to_owned(), m.to_owned()),
                _ => (String::new(), model.to_owned()),
            },
        };
        let mut attrs = crate::attributes::request_attrs(&crate::attributes::RequestFacts {
            body,
            headers,
            key: Some(key),
            endpoint,
            provider: &req_provider,
            model: &req_model,
            now_ms: self.host.now_ms(),
            id_hash: fnv1a(rec.id.as_bytes()),
        });
        attrs.health = (*self.shared.health()).clone();
        let decision = policy.decide(&attrs);
        rec.policy_hash = Some(policy.hash().to_owned());
        rec.rule_id = Some(decision.rule.clone());
        let (attempts, options) = match decision.outcome {
            Outcome::Deny { status, message } => {
                rec.decision_attrs = Some(decision_json(&attrs, &[], &[]));
                let kind = match status {
                    401 => "authentication_error",
                    403 => "permission_error",
                    429 => "rate_limit_error",
                    500..=599 => "server_error",
                    _ => "invalid_request_error",
                };
                return Err(ApiError::new(status, kind, Some("policy_denied"), message));
            }
            Outcome::Route { attempts, options } => (attempts, options),
        };
        let mut out: Vec<(&'c ProviderConfig, String)> = Vec::new();
        for target in attempts {
            let next = match target {
                Target::Requested => requested.as_ref().ok().map(|(p, m)| (*p, m.clone())),
                // A target whose provider this gateway has no settings for is skipped.
                Target::Model { provider, model } => {
                    self.config.provider(&provider).map(|p| (p, model))
                }
            };
            if let Some(n) =
                next.filter(|n| !out.iter().any(|(p, m)| p.name == n.0.name && *m == n.1))
            {
                out.push(n);
            }
        }
        let catalog = &policy.artifact().catalog;
        let mut skipped: Vec<String> = Vec::new();
        let capable: Vec<_> = out
            .iter()
            .filter(|(p, m)| match incapable(catalog, p.name, m, &attrs) {
                Some(why) => {
                    skipped.push(format!("{}:{m} ({why})", p.name));
                    false
                }
                None => true,
            })
            .cloned()
            .collect();
        // When no target can take the request by the catalog, the providers say so themselves.
        if capable.is_empty() {
            skipped.clear();
        } else {
            out = capable;
        }
        let now = self.host.now_ms();
        let (mut warm, cooling): (Vec<_>, Vec<_>) = out
            .into_iter()
            .partition(|(p, m)| !self.shared.cooling(&format!("{}:{m}", p.name), now));
        skipped.extend(
            cooling
                .iter()
                .map(|(p, m)| format!("{}:{m} (cooling down, tried last)", p.name)),
        );
        warm.extend(cooling);
        let chain: Vec<String> = warm
            .iter()
            .map(|(p, m)| format!("{}:{m}", p.name))
            .collect();
        rec.decision_attrs = Some(decision_json(&attrs, &chain, &skipped));
        if warm.is_empty() {
            return Err(requested.err().unwrap_or_else(|| {
                ApiError::new(
                    503,
                    "server_error",
                    Some("no_provider_configured"),
                    format!(
                        "rule `{}` routes only to providers this gateway has no settings for",
                        decision.rule
                    ),
                )
            }));
        }
        Ok(Plan {
            targets: warm,
            options,
        })
    }

    /// Which rule of which policy decided.
    fn policy_headers(&self, headers: &mut Vec<(String, String)>, rec: &LogRecord) {
        if let (Some(hash), Some(rule)) = (&rec.policy_hash, &rec.rule_id) {
            headers.push(("x-gateway-policy".into(), hash.clone()));
            headers.push(("x-gateway-rule".into(), rule.clone()));
        }
    }

    /// Which provider and upstream model serve this request (design.md §4 model selection).
    fn resolve<'c>(
        &'c self,
        body: &Map<String, Value>,
        model: &str,
        rec: &mut LogRecord,
    ) -> Result<(&'c ProviderConfig, String), ApiError> {
        rec.requested_model = Some(model.to_owned());
        let explicit = match body.get("provider") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.as_str()),
            // An object is OpenRouter's own `provider` routing preferences, not a choice of provider.
            Some(_) => None,
        };
        let (name, upstream_model) = match (explicit, model.split_once('/')) {
            (Some(p), Some((prefix, rest))) if prefix == p => (p, rest.to_owned()),
            (Some(p), _) => (p, model.to_owned()),
            (None, Some((prefix, rest))) if providers::spec(prefix).is_some() => (prefix, rest.to_owned()),
            (None, _) => match self.config.default_provider {
                Some(p) => (p, model.to_owned()),
                None => {
                    return Err(ApiError::new(503, "server_error", Some("no_provider_configured"),
                        "no provider is configured on this gateway: set OPENAI_API_KEY or OPENAI_BASE_URL"))
                }
            },
        };
        if providers::spec(name).is_none() {
            return Err(
                ApiError::invalid_request(format!("unknown provider `{name}`"))
                    .with_param("provider"),
            );
        }
        let Some(provider) = self.config.provider(name) else {
            return Err(ApiError::model_not_found(format!(
                "provider `{name}` is not configured on this gateway, so model `{model}` is not available"
            )));
        };
        let upstream_model = if upstream_model == "auto" || upstream_model.is_empty() {
            provider.default_model.clone()
        } else {
            upstream_model
        };
        rec.provider = Some(provider.name.to_owned());
        rec.model = Some(upstream_model.clone());
        rec.attempts = 1;
        Ok((provider, upstream_model))
    }

    /// Sends one upstream request; maps connection failures, timeouts and error statuses to client errors.
    async fn send(
        &self,
        req: UpstreamRequest,
        p: &ProviderConfig,
        deadline: f64,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse, Failure> {
        let provider = p.name;
        let send = self.host.send(req);
        let resp = match self.within(deadline, send).await {
            None => return Err(upstream_timeout(provider, timeout_ms).into()),
            Some(Err(e)) => {
                return Err(ApiError::new(
                    502,
                    "server_error",
                    Some("upstream_unreachable"),
                    format!("upstream `{provider}`: {e}"),
                )
                .into())
            }
            Some(Ok(resp)) => resp,
        };
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        let status = resp.status;
        let headers = resp.headers.clone();
        let body = self
            .read_body(resp.body, MAX_ERROR_BODY, deadline, timeout_ms, provider)
            .await
            .unwrap_or_default();
        Err(Failure {
            err: p
                .connector
                .upstream_error(provider, status, &headers, &body),
            status,
            class: status_class(status),
        })
    }

    /// Reads a whole upstream body, up to `limit` bytes (an error body is truncated there; a success body over
    /// the limit fails), before `deadline`.
    async fn read_body(
        &self,
        mut body: ByteStream,
        limit: usize,
        deadline: f64,
        timeout_ms: u64,
        provider: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let collect = async move {
            let mut out = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                if out.len() + chunk.len() > limit {
                    if limit == MAX_ERROR_BODY {
                        out.extend_from_slice(&chunk[..limit - out.len()]);
                        return Ok(out);
                    }
                    return Err(format!("response larger than {limit} bytes"));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        };
        match self.within(deadline, collect).await {
            None => Err(upstream_timeout(provider, timeout_ms)),
            Some(Err(e)) => Err(ApiError::new(
                502,
                "server_error",
                Some("upstream_error"),
                format!("upstream `{provider}`: {e}"),
            )),
            Some(Ok(bytes)) => Ok(bytes),
        }
    }

    /// Runs `fut` until `deadline` (Unix ms); `None` if the deadline came first (and `fut` is dropped).
    async fn within<T>(
        &self,
        deadline: f64,
        fut: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let left = (deadline - self.host.now_ms()).max(0.0) as u64;
        let fut = std::pin::pin!(fut);
        match future::select(fut, self.host.sleep(left)).await {
            Either::Left((v, _)) => Some(v),
            Either::Right(_) => None,
        }
    }
}

/// An upstream JSON answer without the blank lines some providers send while a request waits in their queue
/// (DeepSeek, providers.md §2.6).
fn json_answer(mut bytes: Vec<u8>) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.drain(..start);
    bytes
}

fn json_body(body: &RequestBody, limit: usize) -> Result<Map<String, Value>, ApiError> {
    let bytes = match body {
        RequestBody::TooLarge => return Err(ApiError::payload_too_large(limit)),
        RequestBody::Bytes(b) if b.len() > limit => return Err(ApiError::payload_too_large(limit)),
        RequestBody::Bytes(b) => b,
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::invalid_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn required_string(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ApiError::invalid_request(format!("`{field}` is required")).with_param(field))
        }
        Some(_) => {
            Err(ApiError::invalid_request(format!("`{field}` must be a string")).with_param(field))
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        401 | 403 => "auth",
        429 => "429",
        500..=599 => "5xx",
        _ => "4xx",
    }
}

/// Whether a failed attempt moves on (a retry, then the next target): as the rule's `retry_on` says, or,
/// without one, when the failure is retryable (rate limits, upstream failures, timeouts, unreachable).
/// Timeouts count as 504 and unreachable upstreams as 502 for status patterns.
fn falls_back(f: &Failure, options: &Options) -> bool {
    if options.retry_on.is_empty() {
        return f.err.retryable();
    }
    options.retry_on.iter().any(|p| match p.as_str() {
        "timeout" | "connect" => f.class == p,
        p if p.len() == 3 && p.ends_with("xx") => {
            u16::from(p.as_bytes()[0].wrapping_sub(b'0')) == f.status / 100
        }
        p => p.parse::<u16>().ok() == Some(f.status),
    })
}

/// `Retry-After` in milliseconds (seconds; an HTTP date is not honoured).
fn retry_after_ms(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s * 1000.0)
}

/// How long to wait before retry number `retry` (0-based) of the same target: what `Retry-After` asked for,
/// or exponential backoff from 200 ms with jitter. `None` when the upstream asks for longer than a retry may
/// wait: the next target is tried instead.
fn backoff_ms(retry: u32, retry_after_ms: Option<f64>, jitter: u64) -> Option<u64> {
    match retry_after_ms {
        Some(ms) if ms > MAX_RETRY_WAIT_MS => None,
        Some(ms) => Some(ms.ceil() as u64),
        None => {
            let base = BASE_BACKOFF_MS << retry.min(4);
            Some(base / 2 + jitter % (base / 2 + 1))
        }
    }
}

fn with_tried(mut err: ApiError, tried: &[String]) -> ApiError {
    if !tried.is_empty() {
        err.message = format!("{} (also tried: {})", err.message, tried.join(", "));
    }
    err
}

/// Why a model cannot take this request by the catalog (`None` when it can, or the catalog does not know it).
fn incapable(catalog: &Catalog, provider: &str, model: &str, attrs: &Attrs) -> Option<String> {
    let m = catalog.model(provider, model)?;
    if attrs.endpoint == "embeddings" {
        return (!m.embeddings).then(|| "not an embeddings model".into());
    }
    if attrs.has_images && !m.vision {
        return Some("no image input".into());
    }
    if attrs.has_tools && !m.tools {
        return Some("no tool calls".into());
    }
    if attrs.json_mode && !m.json {
        return Some("no JSON mode".into());
    }
    let needed = attrs.tokens.max(0) + attrs.max_tokens.max(0);
    match m.context {
        Some(window) if needed as u64 > window => Some(format!(
            "~{needed} tokens exceed its {window}-token context window"
        )),
        _ => None,
    }
}

/// The log row's `decision_attrs`: what the decision saw (never prompt text) and the plan it made.
fn decision_json(attrs: &Attrs, plan: &[String], skipped: &[String]) -> String {
    serde_json::json!({"attrs": attrs, "plan": plan, "skipped": skipped}).to_string()
}

fn route_headers(provider: &str, model: &str) -> Vec<(String, String)> {
    vec![
        ("x-gateway-provider".into(), provider.to_owned()),
        ("x-gateway-model".into(), model.to_owned()),
        ("x-gateway-attempts".into(), "1".into()),
    ]
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(k, _)| k != name);
    headers.push((name.to_owned(), value));
}

/// `req_` + 32 hex digits: the arrival time in milliseconds (12 digits), then 80 random bits. Ids sort by time,
/// so log rows are appended to the primary-key index rather than inserted at random places in it.
fn request_id(now_ms: f64, r1: u64, r2: u64) -> String {
    format!(
        "req_{:012x}{r1:016x}{:04x}",
        (now_ms as u64) & 0xffff_ffff_ffff,
        r2 & 0xffff
    )
}

/// FNV-1a: a stable 64-bit hash (request ids to `sample`), the same on every host.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn with_json(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.push(("content-type".into(), JSON.into()));
    headers
}

fn json_reply(status: u16, body: Vec<u8>) -> Reply {
    Reply::Full {
        status,
        headers: with_json(Vec::new()),
        body,
    }
}

fn error_response(err: &ApiError) -> GatewayResponse {
    let mut headers = with_json(Vec::new());
    if let Some(r) = &err.retry_after {
        headers.push(("retry-after".into(), r.clone()));
    }
    GatewayResponse {
        status: err.status,
        headers,
        body: Body::Full(err.body()),
    }
}

fn upstream_timeout(provider: &str, ms: u64) -> ApiError {
    ApiError::new(
        504,
        "server_error",
        Some("upstream_timeout"),
        format!("upstream `{provider}` did not answer within {ms} ms"),
    )
}

fn invalid_upstream_json(provider: &str) -> ApiError {
    ApiError::new(
        502,
        "server_error",
        Some("upstream_invalid_response"),
        format!("upstream `{provider}` returned a body that is not JSON"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> Failure {
        let kind = if status == 429 {
            "rate_limit_error"
        } else {
            "server_error"
        };
        Failure::from(ApiError::new(status, kind, Some(code), "x"))
    }

    fn retry_on(items: &[&str]) -> Options {
        Options {
            retry_on: items.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        }
    }

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

    #[test]
    fn retry_on_matches_statuses_classes_and_patterns() {
        let timeout = failure(504, "upstream_timeout");
        let unreachable = failure(502, "upstream_unreachable");
        let limited = failure(429, "rate_limit_exceeded");
        assert_eq!((timeout.class, unreachable.class), ("timeout", "connect"));
        let opts = retry_on(&["429", "timeout"]);
        assert!(falls_back(&limited, &opts));
        assert!(falls_back(&timeout, &opts));
        assert!(!falls_back(&unreachable, &opts));
        // Status patterns see a timeout as 504 and an unreachable upstream as 502.
        let opts = retry_on(&["5xx"]);
        assert!(falls_back(&timeout, &opts) && falls_back(&unreachable, &opts));
        assert!(!falls_back(&limited, &opts));
        let bad = Failure::from(ApiError::invalid_request("no"));
        assert!(!falls_back(&bad, &Options::default()));
        assert!(falls_back(&bad, &retry_on(&["4xx"])));
        assert!(falls_back(&limited, &Options::default()));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_short_retry_after_only() {
        for retry in 0..4 {
            let base = 200u64 << retry;
            for jitter in [0, 7, 1_000_003, u64::MAX] {
                let wait = backoff_ms(retry, None, jitter).unwrap();
                assert!((base / 2..=base).contains(&wait), "{retry} {wait}");
            }
        }
        assert_eq!(backoff_ms(0, Some(1_000.0), 5), Some(1_000));
        assert_eq!(backoff_ms(0, Some(30_000.0), 5), None);
        assert_eq!(retry_after_ms("2"), Some(2_000.0));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_ms("-1"), None);
    }
}
