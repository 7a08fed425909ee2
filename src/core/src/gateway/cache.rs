//! Cache: the response cache stage, between the plan and admission. When the deciding rule caches (`cache`,
//! `team_cache`, `shared_cache`) and the client allows it, an entry for the request's key answers at once — as
//! JSON, or replayed as an OpenAI stream — without limits, dispatch or cost; otherwise the answer is stored once
//! its row is complete (crate::cache has the key, the entry and the replay).

use super::limit::Holder;
use super::plan::AttemptPlan;
use super::record::Trace;
use super::request::ApiCall;
use super::{Gateway, Reply};
use crate::cache::{self, Ask, Entry};
use crate::http::GatewayRequest;
use crate::ports::Host;
use gateway_policy::artifact::CacheScope;

impl<H: Host> Gateway<H> {
    /// The cached answer, when there is one to give; notes in the trace what the cache does with this request.
    pub(super) async fn cached_answer(
        &self,
        req: &GatewayRequest,
        (call, plan, holder): (&ApiCall, &AttemptPlan<'_>, &Holder<'_>),
        trace: &mut Trace,
    ) -> Option<Reply> {
        let (Some(ttl_ms), Some(scope)) = (plan.options.cache_ms, plan.options.cache_scope) else {
            return None;
        };
        if !call.cacheable() {
            return None;
        }
        let target = plan.targets.first()?.name();
        let key_scope = || format!("key:{}", holder.key.id);
        let scope = match scope {
            CacheScope::Key => key_scope(),
            // A key without a team shares with no one.
            CacheScope::Team => holder
                .team
                .as_ref()
                .map_or_else(key_scope, |t| format!("team:{}", t.name)),
            CacheScope::Shared => "shared".into(),
        };
        let key = cache::key(&scope, &target, call.body());
        let ask = Ask::of(&req.headers);
        let state = match ask {
            Ask::Use => "miss",
            Ask::Refresh => "refresh",
            Ask::Bypass => "bypass",
        };
        trace.cache_planned(state, key.clone(), ttl_ms);
        if ask != Ask::Use {
            return None;
        }
        // A store that cannot be read is a miss.
        let bytes = self.host.cached(&key).await.ok().flatten()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        trace.cache_hit(&entry);
        let body = if call.stream() {
            let include_usage =
                call.body()["stream_options"]["include_usage"].as_bool() == Some(true);
            cache::as_stream(&entry.body, include_usage)
        } else {
            serde_json::to_vec(&entry.body).unwrap_or_default()
        };
        Some(Reply::Cached {
            body,
            stream: call.stream(),
        })
    }
}

/// Stores an answer its row marked for the cache (after the response; a failure only costs a later miss).
pub(super) async fn store<H: Host>(host: &H, row: &mut crate::log::LogRecord) {
    if let Some(w) = row.cache_write.take() {
        if let Ok(bytes) = serde_json::to_vec(&w.entry) {
            let _ = host.cache(&w.key, bytes, w.ttl_ms).await;
        }
    }
}
