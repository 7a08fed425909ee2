//! The gateway's own endpoints: `GET /v1/models` (the configured providers' models) and
//! `GET /admin/status` (the active policy, health snapshot and cooldowns of this isolate or thread).

use super::route::no_route;
use super::{Gateway, Reply};
use crate::auth;
use crate::error::ApiError;
use crate::http::GatewayRequest;
use crate::ports::Host;
use crate::providers::Providers;

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
    pub(super) fn admit_admin(&self, req: &GatewayRequest) -> Result<(), ApiError> {
        let Some(token) = &self.config.admin_token else {
            return Err(no_route(&req.method, &req.path));
        };
        // Compared as hashes: the comparison's timing says nothing about the token.
        let presented = auth::presented_key(&req.headers).map(auth::hash_key);
        if presented.as_deref() != Some(auth::hash_key(token).as_str()) {
            return Err(ApiError::unauthorized(
                "the admin endpoints need `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>`",
            ));
        }
        Ok(())
    }
}

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
