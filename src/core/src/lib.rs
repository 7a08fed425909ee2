//! The runtime-agnostic core of the AI gateway.
//!
//! Everything that decides lives here: the OpenAI wire contract, the request pipeline, connectors,
//! SSE handling, key hashing and the log row. Hosts (`gateway-workers` on Cloudflare Workers,
//! `gateway-native` on tokio + SQLite) implement the [`ports`] and adapt their platform's request and
//! response types; they make no decisions of their own.

pub mod attributes;
pub mod auth;
pub mod config;
pub mod error;
pub mod gateway;
pub mod health;
pub mod log;
pub mod ports;
pub mod providers;
pub mod sse;
pub mod state;

pub use auth::KeyRecord;
pub use config::GatewayConfig;
pub use error::ApiError;
pub use gateway::{Body, Gateway, GatewayRequest, GatewayResponse, Handled, RequestBody};
pub use log::{LogRecord, SqlValue, Usage};
pub use ports::{
    ByteStream, Clock, Host, KeyStore, LogSink, PolicyStore, Upstream, UpstreamError,
    UpstreamRequest, UpstreamResponse,
};
