//! The Cloudflare Workers host: adapts the Worker's request, KV, D1 and `fetch` to the core's ports.
//!
//! Bindings (wrangler.toml): `API_KEYS` (KV: `key/<sha256hex>` → key record JSON, `team/<name>` → team record),
//! `DB` (D1: request logs), `LIMITER` (Durable Objects: the limit counters of each key and team), `ARCHIVE` (R2:
//! the payload archive).
//! Settings are Worker vars or secrets with the names in `gateway_core::config`.

#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod limiter;
