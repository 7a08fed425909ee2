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
        let providers = self.providers(self.shared.policy().as_deref());
        let status = self.shared.status(self.host.now_ms(), &providers);
        Ok(Reply::local(
            serde_json::to_vec(&status).unwrap_or_default(),
        ))
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
