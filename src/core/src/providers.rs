//! Provider connectors: pure translation between the OpenAI wire format and each provider's.
//! A connector builds upstream requests and reads upstream responses; it does not route, retry or log.

pub mod openai;

/// Static facts about a provider: where it lives, how it is configured, what it serves by default.
#[derive(Debug)]
pub struct ProviderSpec {
    pub name: &'static str,
    /// Prefix of its settings: `<PREFIX>_API_KEY`, `<PREFIX>_BASE_URL`, `<PREFIX>_DEFAULT_MODEL`.
    pub env_prefix: &'static str,
    pub base_url: &'static str,
    pub default_model: &'static str,
    /// Chat and embedding models listed by `/v1/models` (providers.md).
    pub models: &'static [&'static str],
}

/// Every provider the gateway can talk to. Adding a provider is a connector module plus an entry here.
pub const CATALOG: &[ProviderSpec] = &[ProviderSpec {
    name: "openai",
    env_prefix: "OPENAI",
    base_url: "https://api.openai.com/v1",
    default_model: "gpt-6-luna",
    models: &[
        "gpt-6.2-sol",
        "gpt-6-sol",
        "gpt-6-luna",
        "gpt-5.5",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.4-nano",
        "gpt-4.1",
        "gpt-4o-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ],
}];

pub fn spec(name: &str) -> Option<&'static ProviderSpec> {
    CATALOG.iter().find(|p| p.name == name)
}
