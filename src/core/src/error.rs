//! Errors as the client sees them: an HTTP status plus an OpenAI error object
//! (`{"error":{"message","type","param","code"}}`, providers.md §1.5), and the typed errors of configuration
//! and the ports.
//!
//! [`ErrorCode`] is the one place that knows, for each error, its HTTP status, its OpenAI `type`, its `code`,
//! the failure class an attempt that ended with it is logged under, and whether another attempt may succeed.

use serde::{Deserialize, Serialize};

/// What went wrong. The variant decides the status, `type` and `code` the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// A malformed or invalid request (400, `code: null`).
    InvalidRequest,
    /// A missing, unknown, revoked or expired gateway key (401).
    InvalidApiKey,
    /// No such route (404).
    NotFound,
    ModelNotFound,
    MethodNotAllowed,
    /// A request body over the gateway's (or the provider's) limit (413).
    RequestTooLarge,
    /// The request body did not arrive in time (408).
    RequestTimeout,
    /// A path longer than the gateway stores (414).
    UriTooLong,
    /// Gateway headers (`x-gateway-meta-*`, `x-gateway-tags`) over their limits, or a request head over the
    /// host's HTTP buffer (431).
    HeadersTooLarge,
    /// Not an HTTP request the host could parse (400): refused by its HTTP layer, logged, never routed.
    MalformedRequest,
    ContextLengthExceeded,
    /// A policy rule refused the request with this status.
    PolicyDenied(u16),
    /// The key store could not be read (503).
    KeyStoreUnavailable,
    /// No configured provider can serve the request (503).
    NoProviderConfigured,
    Internal,
    /// A provider's own client error for this request, passed on with its status and its code.
    UpstreamRejected {
        status: u16,
        code: Option<String>,
    },
    /// The provider rejected the gateway's own credentials: not the client's fault, so a 502.
    UpstreamAuthFailed,
    /// The account at the provider has no money left; `status` as the provider said it (402, or OpenAI's 429).
    InsufficientQuota {
        status: u16,
    },
    /// A rate limit (429); `code` is the provider's more specific one, `rate_limit_exceeded` without one.
    RateLimited {
        code: Option<String>,
    },
    PermissionDenied,
    UpstreamUnavailable,
    /// The provider stopped for lack of capacity (DeepSeek's `insufficient_system_resource`).
    UpstreamOverloaded,
    UpstreamTimeout,
    /// The provider failed (5xx), or its body broke off while being read.
    UpstreamFailed,
    UpstreamUnreachable,
    /// The upstream closed a stream before it was complete.
    UpstreamTruncated,
    /// The upstream reported an error inside a stream.
    UpstreamStreamError,
    /// The upstream's answer could not be read (not JSON).
    UpstreamInvalidResponse,
    /// The client closed the connection before the stream ended (logged as 499, never sent).
    ClientClosed,
    /// The host stopped serving and its drain time ran out while the stream was still going (503).
    ShuttingDown,
}

/// How an attempt failed, as the log row's `attempt_log` records it and `retry_on` and health read it.
/// Serialized as its name (`429`, `5xx`, `4xx`, `auth`, `timeout`, `connect`, `stream`, `invalid`), by hand:
/// serde's derived enum code costs the Worker bundle about 2 KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    RateLimited,
    Server,
    Client,
    Auth,
    Timeout,
    Connect,
    /// A stream failed or was cut, before its first token or after it.
    Stream,
    /// An answer that could not be read.
    Invalid,
}

const FAILURE_CLASSES: [FailureClass; 8] = [
    FailureClass::RateLimited,
    FailureClass::Server,
    FailureClass::Client,
    FailureClass::Auth,
    FailureClass::Timeout,
    FailureClass::Connect,
    FailureClass::Stream,
    FailureClass::Invalid,
];

impl Serialize for FailureClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureClass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        FailureClass::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown failure class `{name}`")))
    }
}

impl FailureClass {
    /// The class named `name` in `attempt_log`.
    pub fn from_name(name: &str) -> Option<Self> {
        FAILURE_CLASSES.into_iter().find(|c| c.as_str() == name)
    }

    /// The class of an upstream's HTTP error status.
    pub fn of_status(status: u16) -> Self {
        match status {
            401 | 403 => Self::Auth,
            429 => Self::RateLimited,
            500..=599 => Self::Server,
            _ => Self::Client,
        }
    }

    /// A failure that says something about the provider's health (not a client's mistake or credentials).
    pub fn provider_fault(self) -> bool {
        !matches!(self, Self::Client | Self::Auth)
    }

    /// The name in `attempt_log` and in `retry_on` (`timeout`, `connect`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "429",
            Self::Server => "5xx",
            Self::Client => "4xx",
            Self::Auth => "auth",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Stream => "stream",
            Self::Invalid => "invalid",
        }
    }
}

impl ErrorCode {
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest | Self::ContextLengthExceeded | Self::MalformedRequest => 400,
            Self::InvalidApiKey => 401,
            Self::NotFound | Self::ModelNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTooLarge => 413,
            Self::UriTooLong => 414,
            Self::RequestTimeout => 408,
            Self::HeadersTooLarge => 431,
            Self::PolicyDenied(status)
            | Self::UpstreamRejected { status, .. }
            | Self::InsufficientQuota { status } => *status,
            Self::KeyStoreUnavailable
            | Self::NoProviderConfigured
            | Self::UpstreamUnavailable
            | Self::UpstreamOverloaded
            | Self::ShuttingDown => 503,
            Self::Internal => 500,
            Self::UpstreamAuthFailed
            | Self::UpstreamFailed
            | Self::UpstreamUnreachable
            | Self::UpstreamTruncated
            | Self::UpstreamStreamError
            | Self::UpstreamInvalidResponse => 502,
            Self::RateLimited { .. } => 429,
            Self::PermissionDenied => 403,
            Self::UpstreamTimeout => 504,
            Self::ClientClosed => 499,
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest
            | Self::InvalidApiKey
            | Self::NotFound
            | Self::ModelNotFound
            | Self::MethodNotAllowed
            | Self::RequestTooLarge
            | Self::UriTooLong
            | Self::RequestTimeout
            | Self::HeadersTooLarge
            | Self::MalformedRequest
            | Self::ContextLengthExceeded
            | Self::UpstreamRejected { .. }
            | Self::ClientClosed => "invalid_request_error",
            Self::PolicyDenied(status) => match status {
                401 => "authentication_error",
                403 => "permission_error",
                429 => "rate_limit_error",
                500..=599 => "server_error",
                _ => "invalid_request_error",
            },
            Self::InsufficientQuota { .. } => "insufficient_quota",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::PermissionDenied => "permission_error",
            Self::KeyStoreUnavailable
            | Self::NoProviderConfigured
            | Self::Internal
            | Self::UpstreamAuthFailed
            | Self::UpstreamUnavailable
            | Self::UpstreamOverloaded
            | Self::UpstreamTimeout
            | Self::UpstreamFailed
            | Self::UpstreamUnreachable
            | Self::UpstreamTruncated
            | Self::UpstreamStreamError
            | Self::UpstreamInvalidResponse
            | Self::ShuttingDown => "server_error",
        }
    }

    /// The OpenAI error `code` (`null` for a plain invalid request, or a provider's error without one).
    pub fn code(&self) -> Option<&str> {
        Some(match self {
            Self::InvalidRequest => return None,
            Self::UpstreamRejected { code, .. } => return code.as_deref(),
            Self::RateLimited { code } => code.as_deref().unwrap_or("rate_limit_exceeded"),
            Self::InvalidApiKey => "invalid_api_key",
            Self::NotFound => "not_found",
            Self::ModelNotFound => "model_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTooLarge => "request_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::RequestTimeout => "request_timeout",
            Self::HeadersTooLarge => "request_header_fields_too_large",
            Self::MalformedRequest => "malformed_request",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::PolicyDenied(_) => "policy_denied",
            Self::KeyStoreUnavailable => "key_store_unavailable",
            Self::NoProviderConfigured => "no_provider_configured",
            Self::Internal => "internal_error",
            Self::UpstreamAuthFailed => "upstream_authentication_failed",
            Self::InsufficientQuota { .. } => "insufficient_quota",
            Self::PermissionDenied => "permission_denied",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamOverloaded => "upstream_overloaded",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamFailed => "upstream_error",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTruncated => "upstream_truncated",
            Self::UpstreamStreamError => "upstream_stream_error",
            Self::UpstreamInvalidResponse => "upstream_invalid_response",
            Self::ClientClosed => "client_closed",
            Self::ShuttingDown => "gateway_shutting_down",
        })
    }

    /// What the log row's `error_code` says: the code, or the type when there is none.
    pub fn log_code(&self) -> String {
        self.code().unwrap_or(self.kind()).to_owned()
    }

    /// The class of an attempt that ended with this error.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::UpstreamTimeout => FailureClass::Timeout,
            Self::UpstreamUnreachable => FailureClass::Connect,
            Self::UpstreamTruncated | Self::UpstreamFailed | Self::UpstreamStreamError => {
                FailureClass::Stream
            }
            Self::UpstreamInvalidResponse => FailureClass::Invalid,
            other => FailureClass::of_status(other.status()),
        }
    }

    /// Whether another attempt (a retry, or the next provider) may succeed: rate limits and upstream or gateway
    /// failures, but not a client's mistake, a refusal, or an exhausted balance (providers.md §7.3).
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::InsufficientQuota { .. })
            && matches!(self.status(), 408 | 429 | 500..=599)
    }
}

/// A gateway-generated or upstream-mapped error, rendered as an OpenAI error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    /// Seconds the client should wait before retrying (forwarded as `Retry-After`).
    pub retry_after: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn kind(&self) -> &'static str {
        self.code.kind()
    }

    pub fn retryable(&self) -> bool {
        self.code.retryable()
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidApiKey, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn model_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ModelNotFound, message)
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            format!("method `{method}` is not allowed on `{path}`"),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::RequestTooLarge,
            format!("request body is larger than the gateway's limit of {limit} bytes"),
        )
    }

    /// The provider rejected the gateway's own credentials.
    pub fn upstream_auth(provider: &str, said: String) -> Self {
        Self::new(
            ErrorCode::UpstreamAuthFailed,
            format!("{said} (the gateway's credentials for `{provider}` were rejected)"),
        )
    }

    /// The account at the provider has no money left (402; not retryable).
    pub fn quota(said: String) -> Self {
        Self::new(ErrorCode::InsufficientQuota { status: 402 }, said)
    }

    pub fn rate_limited(said: String) -> Self {
        Self::new(ErrorCode::RateLimited { code: None }, said)
    }

    pub fn context_length(said: String) -> Self {
        Self::new(ErrorCode::ContextLengthExceeded, said)
    }

    pub fn permission(said: String) -> Self {
        Self::new(ErrorCode::PermissionDenied, said)
    }

    pub fn upstream_unavailable(said: String) -> Self {
        Self::new(ErrorCode::UpstreamUnavailable, said)
    }

    pub fn upstream_timeout(said: String) -> Self {
        Self::new(ErrorCode::UpstreamTimeout, said)
    }

    pub fn upstream_failed(said: String) -> Self {
        Self::new(ErrorCode::UpstreamFailed, said)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The JSON body, as sent before the first byte of a response.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.object()).unwrap_or_else(|_| b"{\"error\":{}}".to_vec())
    }

    /// The terminal SSE event sent when a stream fails after its first byte.
    pub fn sse_event(&self) -> Vec<u8> {
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(&self.body());
        out.extend_from_slice(b"\n\n");
        out
    }

    fn object(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorObject {
                message: &self.message,
                kind: self.code.kind(),
                param: self.param.as_deref(),
                code: self.code.code(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.kind(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// A port's store (keys, policies, the health snapshot) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A setting that cannot be used, named as the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be a positive whole number, got `{value}`")]
    NotANumber { name: String, value: String },
    #[error("{prefix}_BASE_URL must start with http:// or https://, got `{url}`")]
    BadBaseUrl { prefix: String, url: String },
    #[error("{prefix}_ACCOUNT_ID (or {prefix}_BASE_URL) is required for `{provider}`")]
    NoAccount { prefix: String, provider: String },
    #[error("{prefix}_HEADERS: `{pair}` is not {why}")]
    BadHeader {
        prefix: String,
        pair: String,
        why: &'static str,
    },
    #[error("provider `{provider}`: unknown dialect `{dialect}`")]
    UnknownDialect { provider: String, dialect: String },
    #[error("DEFAULT_PROVIDER `{0}` is not a configured provider")]
    UnknownDefaultProvider(String),
    #[error("REPORTING_CURRENCY must be an ISO 4217 code such as USD or CNY, got `{0}`")]
    BadCurrency(String),
    #[error("LIMIT_TIMEZONE: {0}")]
    BadTimeZone(String),
    /// `ARCHIVE` or `ARCHIVE_REDACT`.
    #[error("{0}")]
    Archive(String),
    #[error("IMAGE_FETCH must be `public`, `off` or `any`, got `{0}`")]
    BadImageFetch(String),
}

/// A client-supplied name as an error message shows it: at most 64 characters, control characters as `?`
/// (`char::escape_debug` would link Unicode tables into the Worker).
pub(crate) fn shown(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_four_keys_even_when_null() {
        let e = ApiError::invalid_request("`messages` is required").with_param("messages");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {
                "message": "`messages` is required",
                "type": "invalid_request_error",
                "param": "messages",
                "code": null
            }})
        );
    }

    #[test]
    fn retryable_failures_are_rate_limits_and_upstream_errors_but_not_quota() {
        assert!(ErrorCode::RateLimited { code: None }.retryable());
        assert!(ErrorCode::UpstreamUnavailable.retryable());
        assert!(ErrorCode::UpstreamTimeout.retryable());
        assert!(!ErrorCode::InsufficientQuota { status: 429 }.retryable());
        assert!(!ErrorCode::InsufficientQuota { status: 402 }.retryable());
        assert!(!ErrorCode::InvalidRequest.retryable());
        assert!(!ErrorCode::ModelNotFound.retryable());
        assert!(ErrorCode::UpstreamRejected {
            status: 408,
            code: None
        }
        .retryable());
    }

    #[test]
    fn each_code_knows_its_status_type_and_class() {
        let cases = [
            (
                ErrorCode::InvalidApiKey,
                401,
                "invalid_request_error",
                "auth",
            ),
            (ErrorCode::PolicyDenied(429), 429, "rate_limit_error", "429"),
            (
                ErrorCode::PolicyDenied(451),
                451,
                "invalid_request_error",
                "4xx",
            ),
            (ErrorCode::UpstreamAuthFailed, 502, "server_error", "5xx"),
            (ErrorCode::UpstreamTimeout, 504, "server_error", "timeout"),
            (
                ErrorCode::UpstreamUnreachable,
                502,
                "server_error",
                "connect",
            ),
            (ErrorCode::UpstreamTruncated, 502, "server_error", "stream"),
            (
                ErrorCode::UpstreamInvalidResponse,
                502,
                "server_error",
                "invalid",
            ),
            (
                ErrorCode::InsufficientQuota { status: 429 },
                429,
                "insufficient_quota",
                "429",
            ),
        ];
        for (code, status, kind, class) in cases {
            assert_eq!(
                (code.status(), code.kind(), code.class().as_str()),
                (status, kind, class),
                "{code:?}"
            );
        }
        assert_eq!(
            ErrorCode::InvalidRequest.log_code(),
            "invalid_request_error"
        );
        assert_eq!(
            ErrorCode::RateLimited { code: None }.code(),
            Some("rate_limit_exceeded")
        );
    }

    #[test]
    fn failure_classes_keep_their_log_names() {
        for class in FAILURE_CLASSES {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            assert_eq!(serde_json::from_str::<FailureClass>(&json).unwrap(), class);
        }
        assert!(serde_json::from_str::<FailureClass>("\"boom\"").is_err());
    }

    #[test]
    fn sse_event_is_one_data_line_and_a_blank_line() {
        let e = ApiError::new(ErrorCode::UpstreamTruncated, "cut");
        let text = String::from_utf8(e.sse_event()).unwrap();
        assert!(text.starts_with("data: {\"error\":"));
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 2);
    }
}
