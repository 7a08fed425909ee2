//! The gateway's own endpoints: `GET /v1/models` (the configured providers' models) and
//! `GET /admin/status` (the active policy, health snapshot and cooldowns of this isolate or thread).

use super::route::no_route;
use super::{Gateway, Reply};
use crate::auth;
use crate::error::{ApiError, ErrorCode};
use crate::http::{find_header, GatewayRequest};
use crate::ports::Host;
use crate::providers::Providers;
use crate::session;

impl<H: Host> Gateway<H> {
    /// `GET /admin/status`, behind its own token (`GATEWAY_ADMIN_TOKEN`); 404 when no token is configured.
    pub(super) fn admin_status(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        self.admit_admin(req)?;
        let providers = self.providers(self.shared.policy().as_deref());
        let status = self.shared.status(self.host.now_ms(), &providers);
        Ok(Reply::local(
            serde_json::to_vec(&status).unwrap_or_default(),
        ))
    }

    /// `GET /admin/usage?from=…&to=…&group_by=…&format=json|csv`: sums of the usage rollups (crate::usage).
    pub(super) async fn admin_usage(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        self.admit_admin(req)?;
        let query = crate::usage::UsageQuery::parse(&req.query, self.host.now_ms() as i64)?;
        let (sql, params) = query.sql();
        let rows = self
            .host
            .usage_rows(&sql, params)
            .await
            .map_err(|e| ApiError::internal(format!("usage rollups: {e}")))?;
        let (content_type, body) = crate::usage::render(&query, &rows);
        Ok(Reply::Local {
            status: 200,
            body,
            content_type: Some(content_type),
            headers: Vec::new(),
        })
    }

    /// `GET /admin/logs?…` (crate::logs): newest first, filtered, a page at a time; `GET /admin/logs/{id}`.
    pub(super) async fn admin_logs(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        self.admit_admin(req)?;
        if req.method != "GET" {
            return Err(ApiError::method_not_allowed(&req.method, &req.path));
        }
        let read = |e: crate::error::StoreError| ApiError::internal(format!("request log: {e}"));
        let body = match req.path.strip_prefix("/admin/logs/") {
            Some(rest) if rest.ends_with("/payload") => {
                return self
                    .archived_payload(rest.trim_end_matches("/payload"))
                    .await
            }
            Some(id) => {
                let (sql, params) = crate::logs::detail_sql(id);
                let rows = self.host.usage_rows(&sql, params).await.map_err(read)?;
                crate::logs::render_detail(rows)
                    .ok_or_else(|| ApiError::not_found(format!("no request `{id}` in the log")))?
            }
            None => {
                let query = crate::logs::LogQuery::parse(&req.query)?;
                let (sql, params) = query.sql();
                let rows = self.host.usage_rows(&sql, params).await.map_err(read)?;
                crate::logs::render_list(&query, rows)
            }
        };
        Ok(Reply::local(serde_json::to_vec(&body).unwrap_or_default()))
    }

    /// The admin endpoints' token (`GATEWAY_ADMIN_TOKEN`): without one configured they do not exist (404).
    /// Admitted with the token as a bearer, or with a console session's cookie (crate::session), whose writes
    /// must also carry the session's CSRF token.
    pub(super) fn admit_admin(&self, req: &GatewayRequest) -> Result<(), ApiError> {
        let token = self.admin_token(req)?;
        if auth::presented_key(&req.headers).is_some() {
            return admit_token(token, auth::presented_key(&req.headers));
        }
        let Some(s) = self.console_session(token, req) else {
            return admit_token(token, None);
        };
        let writes = !matches!(req.method.as_str(), "GET" | "HEAD");
        let presented = find_header(&req.headers, session::CSRF_HEADER).unwrap_or_default();
        if writes && !session::csrf_matches(token, &s, presented) {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "a console session's writes need the `{}` header it was given at sign-in",
                    session::CSRF_HEADER
                ),
            ));
        }
        Ok(())
    }

    fn admin_token(&self, req: &GatewayRequest) -> Result<&str, ApiError> {
        self.config
            .admin_token
            .as_deref()
            .ok_or_else(|| no_route(&req.method, &req.path))
    }

    fn console_session(&self, token: &str, req: &GatewayRequest) -> Option<session::Session> {
        session::verify(
            token,
            session::cookie_of(&req.headers)?,
            self.host.now_ms() as i64,
        )
    }

    /// `/admin/session`: `POST {"token": …}` signs the console in (the cookie and the CSRF token), `GET` says
    /// whether the cookie is a live session (and its CSRF token, for a page loaded again), `DELETE` signs out.
    pub(super) fn admin_session(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        let token = self.admin_token(req)?;
        let now = self.host.now_ms() as i64;
        let secure = session::over_tls(&req.headers);
        // `set`: the session's cookie is set (sign-in) or cleared (sign-out); a page resuming keeps it.
        let answer = |s: Option<&session::Session>, set: bool| {
            let body = match s {
                Some(s) => {
                    serde_json::json!({"signed_in": true, "csrf": s.csrf, "expires_at_ms": s.expires_at_ms})
                }
                None => serde_json::json!({"signed_in": false}),
            };
            Reply::Local {
                status: 200,
                body: serde_json::to_vec(&body).unwrap_or_default(),
                content_type: None,
                headers: std::iter::once(("cache-control".into(), "no-store".into()))
                    .chain(set.then(|| ("set-cookie".into(), session::set_cookie(s, now, secure))))
                    .collect(),
            }
        };
        match req.method.as_str() {
            "POST" => {
                let body = super::request::json_body(&req.body, 4096)?;
                admit_token(token, body.get("token").and_then(|t| t.as_str()))?;
                Ok(answer(Some(&session::issue(token, now)), true))
            }
            "GET" => {
                let s = self.console_session(token, req).ok_or_else(|| {
                    ApiError::unauthorized("not signed in: POST /admin/session with {\"token\": <GATEWAY_ADMIN_TOKEN>}")
                })?;
                Ok(answer(Some(&s), false))
            }
            "DELETE" => {
                self.admit_admin(req)?;
                Ok(answer(None, true))
            }
            _ => Err(ApiError::method_not_allowed(&req.method, &req.path)),
        }
    }
}

/// `presented` is the admin token (compared as hashes: the comparison's timing says nothing about the token).
fn admit_token(token: &str, presented: Option<&str>) -> Result<(), ApiError> {
    if presented.map(auth::hash_key).as_deref() != Some(auth::hash_key(token).as_str()) {
        return Err(ApiError::unauthorized(
            "the admin endpoints need `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>` (or a console session)",
        ));
    }
    Ok(())
}

impl<H: Host> Gateway<H> {}

/// `GET /v1/models`: every model of every configured provider, as `provider/model`.
pub(super) fn models(providers: &Providers) -> Reply {
    let mut data = Vec::new();
    for p in &providers.configured {
        for m in &p.models {
            data.push(serde_json::json!({"id": format!("{}/{m}", p.name), "object": "model", "created": 0, "owned_by": p.name}));
        }
    }
    let body = serde_json::json!({"object": "list", "data": data});
    Reply::local(serde_json::to_vec(&body).unwrap_or_default())
}
