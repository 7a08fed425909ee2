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
        self.follow_changes(now).await;
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
        record
            .map(|r| self.shared.latest_key(r))
            .ok_or_else(|| ApiError::unauthorized("incorrect API key provided"))
    }

    /// Applies the key and team records changed since this isolate last asked (at most once per
    /// [`FEED_EVERY_MS`], on the request that finds it due): a revocation reaches every isolate within about a
    /// second, whatever its caches or the key store's edge caches still say. A feed that cannot be read is asked
    /// again when next due.
    async fn follow_changes(&self, now: f64) {
        let Some(since) = self.shared.feed_due(now, FEED_EVERY_MS) else {
            return;
        };
        self.shared.feed_checked(now);
        if let Ok(Some(feed)) = self.host.changes(since).await {
            self.shared.apply_changes(feed);
        }
    }
}

/// How often an isolate asks the changes feed (a revocation takes effect within this, plus one round trip).
pub const FEED_EVERY_MS: f64 = 1_000.0;

/// A revoked or expired key is refused (after its id is in the log row).
pub(super) fn admit(key: &KeyRecord, now_ms: f64) -> Result<(), ApiError> {
    match key.refusal(now_ms) {
        Some(why) => Err(ApiError::unauthorized(why)),
        None => Ok(()),
    }
}
