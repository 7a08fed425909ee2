//! The runtime-agnostic core of the AI gateway.
//!
//! Everything that decides lives here: the OpenAI wire contract, the request pipeline (`gateway/`, one file
//! per stage), connectors (`providers/`, one per dialect), SSE handling, key hashing and the log row. Hosts
//! (`gateway-workers` on Cloudflare Workers, `gateway-native` on tokio + SQLite) implement the [`ports`] and
//! adapt their platform's request and response types; they make no decisions of their own. What they use is
//! re-exported here.

pub mod archive;
mod attributes;
pub mod auth;
pub mod base64;
pub mod cache;
mod config;
mod error;
mod fixed_map;
mod front;
mod gateway;
pub mod health;
mod http;
pub mod limits;
mod log;
pub mod logs;
mod multipart;
pub mod net;
pub mod ports;
pub mod providers;
mod redact;
pub mod rollup;
pub mod session;
pub mod sse;
mod state;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;
pub mod usage;

pub use attributes::{detect_language, estimate_tokens, request_attrs, RequestFacts};
pub use auth::{KeyRecord, TeamRecord};
pub use config::{GatewayConfig, ImageFetch};
pub use error::{ApiError, ConfigError, ErrorCode, FailureClass, StoreError};
pub use gateway::{Gateway, Handled};
/// Where published policies live (one layout for the CLI and both hosts).
pub use gateway_policy::store as policy_store;
pub use http::{find_header, Body, GatewayRequest, GatewayResponse, RequestBody};
pub use log::{id_floor, Attempt, CostRecord, LogRecord, SqlValue, Usage, INSERT_SQL};
pub use ports::{
    ArchiveStore, ByteStream, CacheStore, Clock, Host, KeyStore, LimitStore, PolicyStore,
    RecordStore, Settings, TeamStore, Upstream, UpstreamError, UpstreamRequest, UpstreamResponse,
};
pub use providers::{ProviderConfig, Providers, Unconfigured, Unusable, BINDING_SCHEME};
pub use state::{Cooldowns, LogStats, PolicyLoadError, Records, Shared, BUILTIN_POLICY};
