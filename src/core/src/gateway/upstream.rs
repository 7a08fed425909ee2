//! Upstream I/O for one attempt: the connector builds the request, it is sent within the rule's `timeout`,
//! and the answer is read whole (JSON) or read until its first content token (streams, see `relay`).
//! Connection failures, timeouts and error statuses become the attempt's [`Failure`].

use std::future::Future;
use std::sync::Arc;

use futures::future::{self, Either};
use futures::stream::StreamExt;
use gateway_policy::artifact::Options;
use serde_json::Value;

use super::relay::Source;
use super::request::ApiCall;
use super::resolve::Target;
use super::{Gateway, Reply};
use crate::error::{ApiError, ErrorCode, FailureClass};
use crate::log::Usage;
use crate::ports::{ByteStream, Host, UpstreamRequest, UpstreamResponse};
use crate::providers::{Answer as Normalized, Dialect, ErrorResponse, ProviderConfig, Providers};
use crate::redact::redact;

/// Upstream error bodies are read up to this size for the message; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A successful non-streaming upstream body larger than this is refused rather than held in memory.
pub(super) const MAX_UPSTREAM_BODY: usize = 32 * 1024 * 1024;

/// A successful attempt: the reply (a JSON body in OpenAI's shape, or a stream past its first content token),
/// the usage of a JSON answer, and when the first token arrived (streams).
pub(super) struct Answer {
    pub reply: Reply,
    pub usage: Option<Usage>,
    pub first_token_at_ms: Option<f64>,
}

/// A failed attempt: the error the client would see, the status to log (the upstream's when it answered),
/// and the failure's class.
pub(super) struct Failure {
    pub err: ApiError,
    pub status: u16,
    pub class: FailureClass,
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self {
            status: err.status(),
            class: err.code.class(),
            err,
        }
    }
}

impl<H: Host> Gateway<H> {
    /// One attempt on one target: the JSON answer, or the stream once its first content token arrived.
    pub(super) async fn attempt(
        &self,
        call: &ApiCall,
        target: &Target<'_>,
        options: &Options,
        (request_start, providers): (f64, &Arc<Providers>),
    ) -> Result<Answer, Failure> {
        let (p, model) = (target.provider, target.model.as_str());
        let dialect = p.dialect;
        let started = self.host.now_ms();
        let timeout_ms = options
            .timeout_ms
            .unwrap_or(self.config.upstream_timeout_ms);
        let deadline = started + timeout_ms as f64;
        let now_s = (started / 1000.0) as u64;
        let on = || super::media::On {
            p,
            model,
            deadline,
            timeout_ms,
            now_s,
        };
        let chat = match call {
            ApiCall::Embeddings(e) => {
                let req = dialect.embeddings_request(p, e.body.clone(), model)?;
                let resp = self.send(req, p, deadline, timeout_ms).await?;
                let answer = self.read_json(resp.body, deadline, timeout_ms, p).await?;
                return Ok(
                    answer.normalized(dialect, |a| Ok(dialect.normalize_embeddings(a, model)))?
                );
            }
            ApiCall::Images(i) => return self.images_attempt(i, on()).await,
            ApiCall::Transcription(t) => return self.transcription_attempt(t, on()).await,
            ApiCall::Speech(s) => return self.speech_attempt(s, on()).await,
            ApiCall::Chat(c) => c,
        };
        let mut body = chat.body.clone();
        if dialect.inline_images() {
            self.inline_images(&mut body, deadline).await?;
        }
        let req = dialect.chat_request(p, body, model, chat.stream)?;
        let resp = self.send(req, p, deadline, timeout_ms).await?;
        if chat.stream {
            let translator = dialect.stream_translator(now_s);
            let mut source = Source::new(
                resp.body,
                translator,
                chat.include_usage,
                (providers.clone(), p.name.clone()),
            );
            let first_token_ms = options
                .first_token_timeout_ms
                .unwrap_or(timeout_ms)
                .min(timeout_ms);
            source
                .preroll(&self.host, started + first_token_ms as f64, first_token_ms)
                .await?;
            return Ok(Answer {
                reply: Reply::Stream(Box::new(source)),
                usage: None,
                first_token_at_ms: Some(self.host.now_ms() - request_start),
            });
        }
        let answer = self.read_json(resp.body, deadline, timeout_ms, p).await?;
        Ok(answer.normalized(dialect, |a| dialect.normalize_answer(a, now_s))?)
    }

    /// Sends one upstream request; maps connection failures, timeouts and error statuses to client errors.
    pub(super) async fn send(
        &self,
        req: UpstreamRequest,
        p: &ProviderConfig,
        deadline: f64,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse, Failure> {
        let provider = p.name.as_str();
        let resp = match self.within(deadline, self.host.send(req)).await {
            None => return Err(upstream_timeout(provider, timeout_ms).into()),
            Some(Err(e)) => {
                let said = redact(p, &e.to_string());
                return Err(ApiError::new(
                    ErrorCode::UpstreamUnreachable,
                    format!("upstream `{provider}`: {said}"),
                )
                .into());
            }
            Some(Ok(resp)) => resp,
        };
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        let status = resp.status;
        if (300..400).contains(&status) {
            // Not followed (both hosts ask their HTTP client not to): a redirect elsewhere would take the
            // provider's key with it. Where it points is not shown: it may be internal.
            return Err(Failure {
                err: ApiError::new(
                    ErrorCode::UpstreamInvalidResponse,
                    format!(
                        "upstream `{provider}` answered {status} with a redirect; the gateway does not follow \
                         redirects from providers"
                    ),
                ),
                status,
                class: FailureClass::Invalid,
            });
        }
        let headers = resp.headers;
        let body = self
            .read_body(
                resp.body,
                Limit::Truncate(MAX_ERROR_BODY),
                deadline,
                timeout_ms,
                provider,
            )
            .await
            .unwrap_or_default();
        // Parsed once here; the connector reads what it needs from it.
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let mut err = p.dialect.upstream_error(&ErrorResponse {
            provider,
            status,
            headers: &headers,
            body: &body,
            json: json.as_ref(),
        });
        // A provider may echo what it was sent (the key in `Authorization`) or say where it is.
        err.message = redact(p, &err.message);
        Err(Failure {
            err,
            status,
            class: FailureClass::of_status(status),
        })
    }

    /// Reads a whole upstream body before `deadline`, up to a limit.
    pub(super) async fn read_body(
        &self,
        mut body: ByteStream,
        limit: Limit,
        deadline: f64,
        timeout_ms: u64,
        provider: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let collect = async move {
            let mut out = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                let left = limit.bytes() - out.len();
                if chunk.len() > left {
                    return match limit {
                        Limit::Truncate(_) => {
                            out.extend_from_slice(&chunk[..left]);
                            Ok(out)
                        }
                        Limit::Refuse(n) => Err(format!("response larger than {n} bytes")),
                    };
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        };
        match self.within(deadline, collect).await {
            None => Err(upstream_timeout(provider, timeout_ms)),
            Some(Err(e)) => Err(ApiError::new(
                ErrorCode::UpstreamFailed,
                format!("upstream `{provider}`: {e}"),
            )),
            Some(Ok(bytes)) => Ok(bytes),
        }
    }

    /// Reads and parses a whole JSON answer (without the blank lines some providers send first).
    async fn read_json(
        &self,
        body: ByteStream,
        deadline: f64,
        timeout_ms: u64,
        p: &ProviderConfig,
    ) -> Result<JsonAnswer, ApiError> {
        let limit = Limit::Refuse(MAX_UPSTREAM_BODY);
        let bytes = json_answer(
            self.read_body(body, limit, deadline, timeout_ms, &p.name)
                .await?,
        );
        let parsed = serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::new(
                ErrorCode::UpstreamInvalidResponse,
                format!("upstream `{}` returned a body that is not JSON", p.name),
            )
        })?;
        Ok(JsonAnswer { parsed, bytes })
    }

    /// Runs `fut` until `deadline` (Unix ms); `None` if the deadline came first (and `fut` is dropped).
    pub(super) async fn within<T>(&self, deadline: f64, fut: impl Future<Output = T>) -> Option<T> {
        let left = (deadline - self.host.now_ms()).max(0.0) as u64;
        let fut = std::pin::pin!(fut);
        match future::select(fut, self.host.sleep(left)).await {
            Either::Left((v, _)) => Some(v),
            Either::Right(_) => None,
        }
    }
}

/// A whole JSON answer: parsed, and the bytes as the provider sent them.
struct JsonAnswer {
    parsed: Value,
    bytes: Vec<u8>,
}

impl JsonAnswer {
    /// The answer in OpenAI's shape, with its usage: serialised again only when `normalize` rewrote it.
    fn normalized(
        mut self,
        dialect: Dialect,
        normalize: impl FnOnce(&mut Value) -> Result<Normalized, ApiError>,
    ) -> Result<Answer, ApiError> {
        let usage = dialect.usage(&self.parsed);
        let bytes = match normalize(&mut self.parsed)? {
            Normalized::Rewritten => serde_json::to_vec(&self.parsed).unwrap_or(self.bytes),
            Normalized::AsSent => self.bytes,
        };
        Ok(Answer {
            reply: Reply::Json(bytes),
            usage,
            first_token_at_ms: None,
        })
    }
}

/// How much of a body is read: an error body is cut at its limit, a success body over its limit fails.
#[derive(Clone, Copy)]
pub(super) enum Limit {
    Truncate(usize),
    Refuse(usize),
}

impl Limit {
    fn bytes(self) -> usize {
        match self {
            Limit::Truncate(n) | Limit::Refuse(n) => n,
        }
    }
}

/// An upstream JSON answer without the blank lines some providers send while a request waits in their queue
/// (DeepSeek, providers.md §2.6).
pub(super) fn json_answer(mut bytes: Vec<u8>) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.drain(..start);
    bytes
}

fn upstream_timeout(provider: &str, ms: u64) -> ApiError {
    ApiError::upstream_timeout(format!(
        "upstream `{provider}` did not answer within {ms} ms"
    ))
}
