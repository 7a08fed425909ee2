//! Authenticate: the gateway key a client presents (`Authorization: Bearer` or `x-api-key`), found by its hash
//! in the key store, with records cached per isolate or thread for `KEY_CACHE_MS`.

use super::Gateway;
use crate::auth::{self, KeyRecord};
use crate::error::{ApiError, ErrorCode};
use crate::ports::Host;

impl<H: Host> Gateway<H> {
    /// The record of the presented key, from the cache or the key store: 401 when there is none, 503 when the
    /// store cannot be read. Whether the key may be used now is [`admit`]'s question.
    pub(super) async fn find_key(
        &self,
        headers: &[(String, String)],
    ) -> Result<KeyRecord, ApiError> {
        let Some(key) = auth::presented_key(headers) else {
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
                    ApiError::new(ErrorCode::KeyStoreUnavailable, format!("key store: {e}"))
                })?;
                self.shared.cache_key(&hash, found.clone(), now);
                found
            }
        };
        record.ok_or_else(|| ApiError::unauthorized("incorrect API key provided"))
    }
}

/// A revoked or expired key is refused (after its id is in the log row).
pub(super) fn admit(key: &KeyRecord, now_ms: f64) -> Result<(), ApiError> {
    match key.refusal(now_ms) {
        Some(why) => Err(ApiError::unauthorized(why)),
        None => Ok(()),
    }
}
