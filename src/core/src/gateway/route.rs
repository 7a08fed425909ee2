//! Route: which endpoint a request is for, by path and method.

use super::Refused;
use crate::error::{ApiError, ErrorCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    Health,
    Models,
    Chat,
    /// `POST /v1/messages`: the Anthropic Messages API.
    Messages,
    /// `POST /v1/messages/count_tokens`: the gateway's estimate of a Messages request's input tokens.
    CountTokens,
    /// `POST /v1/responses`: the Responses API's stateless subset.
    Responses,
    /// `/v1/responses/{id}…`: a stored response, which this gateway does not keep (404).
    StoredResponse,
    Embeddings,
    /// `POST /v1/images/generations`.
    Images,
    /// `POST /v1/audio/transcriptions` (a multipart upload).
    Transcriptions,
    /// `POST /v1/audio/speech`.
    Speech,
    AdminStatus,
    AdminUsage,
    /// `/admin/keys…` and `/admin/teams…` (methods checked by the handler).
    AdminRecords,
    /// `/admin/logs`, `/admin/logs/{id}` and `/admin/logs/{id}/payload`.
    AdminLogs,
    /// `/admin/session`: the console's sign-in (methods checked by the handler).
    AdminSession,
    /// `/admin/policy`, `/admin/policy/rollback`, `/admin/explain`.
    AdminPolicy,
}

impl Endpoint {
    /// The log row's `endpoint` (`None` for the gateway's own endpoints).
    pub(super) fn logged(self) -> Option<&'static str> {
        match self {
            Endpoint::Chat => Some("chat"),
            Endpoint::Messages => Some("messages"),
            Endpoint::Responses | Endpoint::StoredResponse => Some("responses"),
            Endpoint::Embeddings => Some("embeddings"),
            Endpoint::Images => Some("images"),
            Endpoint::Transcriptions => Some("transcriptions"),
            Endpoint::Speech => Some("speech"),
            Endpoint::Models => Some("models"),
            // Counting calls no model: not usage, as the gateway's own endpoints are not.
            Endpoint::CountTokens
            | Endpoint::Health
            | Endpoint::AdminStatus
            | Endpoint::AdminUsage
            | Endpoint::AdminRecords
            | Endpoint::AdminLogs
            | Endpoint::AdminSession
            | Endpoint::AdminPolicy => None,
        }
    }
}

const ROUTES: &[(&str, &str, Endpoint)] = &[
    ("/healthz", "GET", Endpoint::Health),
    ("/v1/models", "GET", Endpoint::Models),
    ("/v1/chat/completions", "POST", Endpoint::Chat),
    ("/v1/messages", "POST", Endpoint::Messages),
    ("/v1/messages/count_tokens", "POST", Endpoint::CountTokens),
    ("/v1/responses", "POST", Endpoint::Responses),
    ("/v1/embeddings", "POST", Endpoint::Embeddings),
    ("/v1/images/generations", "POST", Endpoint::Images),
    (
        crate::config::AUDIO_UPLOAD_PATH,
        "POST",
        Endpoint::Transcriptions,
    ),
    ("/v1/audio/speech", "POST", Endpoint::Speech),
    ("/admin/status", "GET", Endpoint::AdminStatus),
    ("/admin/usage", "GET", Endpoint::AdminUsage),
];

/// The longest path served (and stored in the log row): the gateway's routes are short.
pub(super) const MAX_PATH_BYTES: usize = 2048;

/// The endpoint for `method` on `path`: 414 for an overlong path, 404 for an unknown one, 405 (with `Allow`)
/// for another method.
pub(super) fn route(method: &str, path: &str) -> Result<Endpoint, Refused> {
    if path.len() > MAX_PATH_BYTES {
        return Err(ApiError::new(
            ErrorCode::UriTooLong,
            format!("the request path is longer than {MAX_PATH_BYTES} bytes"),
        )
        .into());
    }
    for prefix in ["/admin/keys", "/admin/teams"] {
        if path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('/'))
        {
            return Ok(Endpoint::AdminRecords);
        }
    }
    if path == "/admin/session" {
        return Ok(Endpoint::AdminSession);
    }
    if ["/admin/policy", "/admin/policy/rollback", "/admin/explain"].contains(&path) {
        return Ok(Endpoint::AdminPolicy);
    }
    if path.starts_with("/v1/responses/") {
        return Ok(Endpoint::StoredResponse);
    }
    if path == "/admin/logs" || path.starts_with("/admin/logs/") {
        return Ok(Endpoint::AdminLogs);
    }
    let Some(&(_, allowed, endpoint)) = ROUTES.iter().find(|(p, _, _)| *p == path) else {
        return Err(no_route(method, path).into());
    };
    if method != allowed {
        return Err(Refused {
            err: ApiError::method_not_allowed(method, path),
            allow: Some(allowed),
        });
    }
    Ok(endpoint)
}

/// The 404 for a path the gateway does not serve (also what the admin endpoints answer without a token).
pub(super) fn no_route(method: &str, path: &str) -> ApiError {
    ApiError::not_found(format!("no route for `{method} {path}`"))
}
