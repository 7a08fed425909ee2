//! The Cloudflare Workers host: adapts the Worker's request, KV, D1 and `fetch` to the core's ports.
//!
//! Bindings (wrangler.toml): `API_KEYS` (KV: `key/<sha256hex>` → key record JSON), `DB` (D1: request logs).
//! Settings are Worker vars or secrets with the names in `gateway_core::config`.

#[cfg(target_arch = "wasm32")]
mod host;
