//! Errors as the client sees them: an HTTP status plus an OpenAI error object
//! (`{"error":{"message","type","param","code"}}`, providers.md §1.5).

use serde::Serialize;

/// A gateway-generated or upstream-mapped error, rendered as an OpenAI error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<String>,
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
    pub fn new(
        status: u16,
        kind: &'static str,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            code: code.map(str::to_owned),
            param: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", None, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            message,
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "invalid_request_error", Some("not_found"), message)
    }

    pub fn model_not_found(message: impl Into<String>) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            message,
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "invalid_request_error",
            Some("method_not_allowed"),
            format!("method `{method}` is not allowed on `{path}`"),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "invalid_request_error",
            Some("request_too_large"),
            format!("request body is larger than the gateway's limit of {limit} bytes"),
        )
    }

    /// The provider rejected the gateway's own credentials: not the client's fault, so a 502.
    pub fn upstream_auth(provider: &str, said: String) -> Self {
        Self::new(
            502,
            "server_error",
            Some("upstream_authentication_failed"),
            format!("{said} (the gateway's credentials for `{provider}` were rejected)"),
        )
    }

    /// The account at the provider has no money left (not retryable).
    pub fn quota(said: String) -> Self {
        Self::new(402, "insufficient_quota", Some("insufficient_quota"), said)
    }

    pub fn rate_limited(said: String) -> Self {
        Self::new(429, "rate_limit_error", Some("rate_limit_exceeded"), said)
    }

    pub fn context_length(said: String) -> Self {
        Self::new(
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
            said,
        )
    }

    pub fn permission(said: String) -> Self {
        Self::new(403, "permission_error", Some("permission_denied"), said)
    }

    pub fn upstream_unavailable(said: String) -> Self {
        Self::new(503, "server_error", Some("upstream_unavailable"), said)
    }

    pub fn upstream_timeout(said: String) -> Self {
        Self::new(504, "server_error", Some("upstream_timeout"), said)
    }

    pub fn upstream_failed(said: String) -> Self {
        Self::new(502, "server_error", Some("upstream_error"), said)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "server_error", Some("internal_error"), message)
    }

    /// Whether another attempt (a retry, or the next provider) may succeed: rate limits and upstream or gateway
    /// failures, but not a client's mistake, a refusal, or an exhausted balance (providers.md §7.3).
    pub fn retryable(&self) -> bool {
        let exhausted =
            self.kind == "insufficient_quota" || self.code.as_deref() == Some("insufficient_quota");
        matches!(self.status, 408 | 429 | 500..=599) && !exhausted
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
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
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
        assert!(
            ApiError::new(429, "rate_limit_error", Some("rate_limit_exceeded"), "").retryable()
        );
        assert!(ApiError::new(503, "server_error", Some("upstream_unavailable"), "").retryable());
        assert!(ApiError::new(504, "server_error", Some("upstream_timeout"), "").retryable());
        assert!(
            !ApiError::new(429, "insufficient_quota", Some("insufficient_quota"), "").retryable()
        );
        assert!(
            !ApiError::new(402, "insufficient_quota", Some("insufficient_quota"), "").retryable()
        );
        assert!(!ApiError::invalid_request("bad").retryable());
        assert!(!ApiError::model_not_found("no").retryable());
    }

    #[test]
    fn sse_event_is_one_data_line_and_a_blank_line() {
        let e = ApiError::new(502, "server_error", Some("upstream_truncated"), "cut");
        let text = String::from_utf8(e.sse_event()).unwrap();
        assert!(text.starts_with("data: {\"error\":"));
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 2);
    }
}
