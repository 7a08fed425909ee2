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
use crate::log::LogRecord;
use crate::ports::{ByteStream, Host, UpstreamRequest, UpstreamResponse};
use crate::providers::{self, StreamTranslator};
use gateway_policy::{Outcome, Policy, Target};

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

/// The response to send now, and the log row, which resolves once the response (or stream) is over.
pub struct Handled {
    pub response: GatewayResponse,
    pub record: LocalBoxFuture<'static, LogRecord>,
}

enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Stream {
        headers: Vec<(String, String)>,
        upstream: ByteStream,
        translator: StreamTranslator,
        client_wants_usage: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Health,
    Models,
    Chat,
    Embeddings,
}

const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("/healthz", "GET", Endpoint::Health),
    ("/v1/models", "GET", Endpoint::Models),
    ("/v1/chat/completions", "POST", Endpoint::Chat),
    ("/v1/embeddings", "POST", Endpoint::Embeddings),
];

const JSON: &str = "application/json";
/// Upstream error bodies are read up to this size for the message; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A successful non-streaming upstream body larger than this is refused rather than held in memory.
const MAX_UPSTREAM_BODY: usize = 32 * 1024 * 1024;

pub struct Gateway<H: Host> {
    host: H,
    config: Rc<GatewayConfig>,
    /// The compiled routing policy; without one, every request goes to what it asked for.
    policy: Option<Rc<Policy>>,
}

impl<H: Host> Gateway<H> {
    pub fn new(host: H, config: Rc<GatewayConfig>) -> Self {
        Self {
            host,
            config,
            policy: None,
        }
    }

    pub fn with_policy(mut self, policy: Option<Rc<Policy>>) -> Self {
        self.policy = policy;
        self
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Handles one request. Never panics on client or upstream input; every outcome has a log row.
    pub async fn handle(&self, req: GatewayRequest) -> Handled {
        let start = self.host.now_ms();
        let mut rec = LogRecord {
            id: format!(
                "req_{:016x}{:016x}",
                self.host.random_u64(),
                self.host.random_u64()
            ),
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
                error_response(&err)
            }
            Ok(Reply::Stream {
                headers,
                upstream,
                translator,
                client_wants_usage,
            }) => {
                rec.status = 200;
                let idle = self.config.stream_idle_timeout_ms;
                let (body, record) = relay::relay(
                    self.host.clone(),
                    upstream,
                    translator,
                    rec,
                    start,
                    idle,
                    client_wants_usage,
                );
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
                return Handled { response, record };
            }
        };
        response.headers.push(("x-request-id".into(), request_id));
        Handled {
            response,
            record: future::ready(rec).boxed_local(),
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
        rec.endpoint = Some(match endpoint {
            Endpoint::Chat => "chat",
            Endpoint::Embeddings => "embeddings",
            _ => "models",
        });
        let key = self.authenticate(req, rec).await?;
        match endpoint {
            Endpoint::Models => Ok(self.models()),
            Endpoint::Chat => self.chat(req, &key, rec).await,
            _ => self.embeddings(req, rec).await,
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
        let record = self
            .host
            .find_key(&auth::hash_key(key))
            .await
            .map_err(|e| {
                ApiError::new(
                    503,
                    "server_error",
                    Some("key_store_unavailable"),
                    format!("key store: {e}"),
                )
            })?;
        let Some(record) = record else {
            return Err(ApiError::unauthorized("incorrect API key provided"));
        };
        rec.key_id = Some(record.id.clone());
        if let Some(why) = record.refusal(self.host.now_ms()) {
            return Err(ApiError::unauthorized(why));
        }
        Ok(record)
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
        let attempts = self.plan(&body, &req.headers, key, "chat", &model, requested, rec)?;
        let mut failed: Vec<String> = Vec::new();
        for (i, (provider, upstream_model)) in attempts.iter().enumerate() {
            rec.provider = Some(provider.name.to_owned());
            rec.model = Some(upstream_model.clone());
            rec.attempts = i as u32 + 1;
            let last = i + 1 == attempts.len();
            match self
                .attempt_chat(
                    provider,
                    upstream_model,
                    &body,
                    stream,
                    client_wants_usage,
                    rec,
                )
                .await
            {
                Ok(mut reply) => {
                    let (Reply::Full { headers, .. } | Reply::Stream { headers, .. }) = &mut reply;
                    set_header(headers, "x-gateway-attempts", (i + 1).to_string());
                    self.policy_headers(headers, rec);
                    return Ok(reply);
                }
                // Nothing has reached the client yet: a failure that another provider may not have falls back.
                Err(e) if e.retryable() && !last => failed.push(format!(
                    "{}:{} ({} {})",
                    provider.name,
                    upstream_model,
                    e.status,
                    e.code.as_deref().unwrap_or(e.kind)
                )),
                Err(mut e) => {
                    if !failed.is_empty() {
                        e.message = format!("{} (also tried: {})", e.message, failed.join(", "));
                    }
                    return Err(e);
                }
            }
        }
        Err(ApiError::internal("no attempt was made"))
    }

    /// One attempt at a chat completion on one provider: the answer, or the stream once its headers arrived.
    async fn attempt_chat(
        &self,
        provider: &ProviderConfig,
        upstream_model: &str,
        body: &Map<String, Value>,
        stream: bool,
        client_wants_usage: bool,
        rec: &mut LogRecord,
    ) -> Result<Reply, ApiError> {
        let connector = provider.connector;
        let upstream_req =
            connector.chat_request(provider, body.clone(), upstream_model, stream)?;
        let deadline = self.host.now_ms() + self.config.upstream_timeout_ms as f64;
        let resp = self.send(upstream_req, provider, deadline).await?;
        let headers = route_headers(provider.name, upstream_model);
        if stream {
            return Ok(Reply::Stream {
                headers,
                upstream: resp.body,
                translator: connector.stream_translator((self.host.now_ms() / 1000.0) as u64),
                client_wants_usage,
            });
        }
        let mut bytes = json_answer(
            self.read_body(resp.body, MAX_UPSTREAM_BODY, deadline, provider.name)
                .await?,
        );
        let mut parsed: Value =
            serde_json::from_slice(&bytes).map_err(|_| invalid_upstream_json(provider.name))?;
        rec.usage = connector.usage(&parsed);
        if connector.normalize_answer(&mut parsed, (self.host.now_ms() / 1000.0) as u64)? {
            bytes = serde_json::to_vec(&parsed).unwrap_or(bytes);
        }
        Ok(Reply::Full {
            status: 200,
            headers: with_json(headers),
            body: bytes,
        })
    }

    /// The providers to try, in order: the policy's decision, or just what was requested without a policy.
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
    ) -> Result<Vec<(&'c ProviderConfig, String)>, ApiError> {
        let Some(policy) = &self.policy else {
            return requested.map(|r| vec![r]);
        };
        let (req_provider, req_model) = match &requested {
            Ok((p, m)) => (p.name.to_owned(), m.clone()),
            Err(_) => match model.split_once('/') {
                Some((p, m)) if providers::spec(p).is_some() => (p.to_owned(), m.to_owned()),
                _ => (String::new(), model.to_owned()),
            },
        };
        let attrs = crate::attributes::request_attrs(&crate::attributes::RequestFacts {
            body,
            headers,
            key: Some(key),
            endpoint,
            provider: &req_provider,
            model: &req_model,
            now_ms: self.host.now_ms(),
            id_hash: fnv1a(rec.id.as_bytes()),
        });
        let decision = policy.decide(&attrs);
        rec.policy_hash = Some(policy.hash().to_owned());
        rec.rule_id = Some(decision.rule.clone());
        let attempts = match decision.outcome {
            Outcome::Deny { status, message } => {
                let kind = match status {
                    401 => "authentication_error",
                    403 => "permission_error",
                    429 => "rate_limit_error",
                    500..=599 => "server_error",
                    _ => "invalid_request_error",
                };
                return Err(ApiError::new(status, kind, Some("policy_denied"), message));
            }
            Outcome::Route { attempts, .. } => attempts,
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
        if out.is_empty() {
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
        Ok(out)
    }

    /// Which rule of which policy decided (when a policy is loaded).
    fn policy_headers(&self, headers: &mut Vec<(String, String)>, rec: &LogRecord) {
        if let (Some(hash), Some(rule)) = (&rec.policy_hash, &rec.rule_id) {
            headers.push(("x-gateway-policy".into(), hash.clone()));
            headers.push(("x-gateway-rule".into(), rule.clone()));
        }
    }

    async fn embeddings(
        &self,
        req: &GatewayRequest,
        rec: &mut LogRecord,
    ) -> Result<Reply, ApiError> {
        let body = json_body(&req.body, self.config.max_body_bytes)?;
        let model = required_string(&body, "model")?;
        if body.get("input").is_none_or(Value::is_null) {
            return Err(ApiError::invalid_request("`input` is required").with_param("input"));
        }
        let (provider, upstream_model) = self.resolve(&body, &model, rec)?;
        let upstream_req =
            provider
                .connector
                .embeddings_request(provider, body, &upstream_model)?;
        let deadline = self.host.now_ms() + self.config.upstream_timeout_ms as f64;
        let resp = self.send(upstream_req, provider, deadline).await?;
        let mut bytes = json_answer(
            self.read_body(resp.body, MAX_UPSTREAM_BODY, deadline, provider.name)
                .await?,
        );
        let mut parsed: Value =
            serde_json::from_slice(&bytes).map_err(|_| invalid_upstream_json(provider.name))?;
        rec.usage = provider.connector.usage(&parsed);
        if provider
            .connector
            .normalize_embeddings(&mut parsed, &upstream_model)
        {
            bytes = serde_json::to_vec(&parsed).unwrap_or(bytes);
        }
        Ok(Reply::Full {
            status: 200,
            headers: with_json(route_headers(provider.name, &upstream_model)),
            body: bytes,
        })
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
    ) -> Result<UpstreamResponse, ApiError> {
        let provider = p.name;
        let send = self.host.send(req);
        let resp = match self.within(deadline, send).await {
            None => return Err(upstream_timeout(provider, self.config.upstream_timeout_ms)),
            Some(Err(e)) => {
                return Err(ApiError::new(
                    502,
                    "server_error",
                    Some("upstream_unreachable"),
                    format!("upstream `{provider}`: {e}"),
                ))
            }
            Some(Ok(resp)) => resp,
        };
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        let status = resp.status;
        let headers = resp.headers.clone();
        let body = self
            .read_body(resp.body, MAX_ERROR_BODY, deadline, provider)
            .await
            .unwrap_or_default();
        Err(p
            .connector
            .upstream_error(provider, status, &headers, &body))
    }

    /// Reads a whole upstream body, up to `limit` bytes (an error body is truncated there; a success body over
    /// the limit fails), before `deadline`.
    async fn read_body(
        &self,
        mut body: ByteStream,
        limit: usize,
        deadline: f64,
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
            None => Err(upstream_timeout(provider, self.config.upstream_timeout_ms)),
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
