//! The HTTP exchange between a host and the core: the request as the host received it and the response the
//! core builds. Header names are lower case throughout.

use futures::stream::LocalBoxStream;

/// A request as the host received it. Header names are lower case; `path` has no query string.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub method: String,
    pub path: String,
    /// What follows `?` in the request target (`""` without one).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
}

#[derive(Debug, Clone)]
pub enum RequestBody {
    Bytes(Vec<u8>),
    /// The host stopped reading at the configured limit (`GatewayConfig::max_body_bytes`).
    TooLarge,
    /// The body did not arrive within the host's body read timeout (a client sending slowly or not at all).
    TimedOut,
}

pub struct GatewayResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

pub enum Body {
    Full(Vec<u8>),
    /// Sent chunk by chunk as produced; never buffered by the core.
    Stream(LocalBoxStream<'static, Vec<u8>>),
}

/// Looks up a header by lower-case name in a list whose names are lower case.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) const JSON: &str = "application/json";
