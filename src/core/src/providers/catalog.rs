//! The built-in providers: where each lives, how it is configured, what it serves by default.

use super::Dialect;

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
    pub dialect: Dialect,
}

/// Every provider the gateway can talk to. Adding a provider is a connector module plus an entry here.
pub const CATALOG: &[ProviderSpec] = &[
    ProviderSpec {
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
        dialect: Dialect::OpenAi,
    },
    ProviderSpec {
        name: "deepseek",
        env_prefix: "DEEPSEEK",
        base_url: "https://api.deepseek.com",
        default_model: "deepseek-flash",
        models: &["deepseek-flash", "deepseek-v4-pro"],
        dialect: Dialect::DeepSeek,
    },
    ProviderSpec {
        name: "openrouter",
        env_prefix: "OPENROUTER",
        base_url: "https://openrouter.ai/api/v1",
        default_model: "deepseek/deepseek-v4-flash",
        models: &[
            "deepseek/deepseek-v4-flash",
            "openai/gpt-5.2",
            "google/gemini-2.5-flash",
            "openai/text-embedding-3-small",
        ],
        dialect: Dialect::OpenRouter,
    },
    ProviderSpec {
        name: "siliconflow",
        env_prefix: "SILICONFLOW",
        base_url: "https://api.siliconflow.cn/v1",
        default_model: "deepseek-ai/DeepSeek-V3.2",
        models: &[
            "deepseek-ai/DeepSeek-V3.2",
            "Pro/deepseek-ai/DeepSeek-V3.2",
            "deepseek-ai/DeepSeek-V4-Flash",
            "Qwen/Qwen3-8B",
            "BAAI/bge-m3",
        ],
        dialect: Dialect::SiliconFlow,
    },
    ProviderSpec {
        name: "gemini",
        env_prefix: "GEMINI",
        base_url: "https://generativelanguage.googleapis.com/v1beta",
        default_model: "gemini-3.8-flash",
        models: &[
            "gemini-3.8-flash",
            "gemini-3.5-flash",
            "gemini-3.5-flash-lite",
            "gemini-3.1-pro-preview",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
            "gemini-embedding-001",
        ],
        dialect: Dialect::Gemini,
    },
    ProviderSpec {
        name: "workers_ai",
        env_prefix: "WORKERS_AI",
        // `{account}` is filled from WORKERS_AI_ACCOUNT_ID (or set WORKERS_AI_BASE_URL).
        base_url: "https://api.cloudflare.com/client/v4/accounts/{account}/ai",
        default_model: "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        models: &[
            "@cf/meta/llama-3.1-8b-instruct",
            "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
            "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
            "@cf/openai/gpt-oss-120b",
            "@cf/openai/gpt-oss-20b",
            "@cf/google/gemma-4-26b-a4b-it",
            "@cf/baai/bge-base-en-v1.5",
            "@cf/baai/bge-m3",
        ],
        dialect: Dialect::WorkersAi,
    },
];

pub fn spec(name: &str) -> Option<&'static ProviderSpec> {
    CATALOG.iter().find(|p| p.name == name)
}
