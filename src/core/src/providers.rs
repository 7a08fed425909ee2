//! Provider connectors: pure translation between the OpenAI wire format and each provider's.
//! A connector builds upstream requests and reads upstream responses; it does not route, retry or log.

pub mod deepseek;
pub mod gemini;
pub mod openai;
pub mod openrouter;
pub mod siliconflow;
pub mod workers_ai;

use serde_json::{Map, Value};

use crate::config::ProviderConfig;
use crate::error::ApiError;
use crate::log::Usage;
use crate::ports::UpstreamRequest;

/// How a provider's wire format is translated. Each variant's functions live in its module and have the same
/// names and order as the others'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    OpenAi,
    DeepSeek,
    OpenRouter,
    SiliconFlow,
    Gemini,
    WorkersAi,
}

/// Turns an upstream stream's `data:` payloads into OpenAI events. Most providers need no memory between
/// events; Gemini's translation does (ids, the role chunk, tool-call indexes).
#[derive(Debug)]
pub enum StreamTranslator {
    Stateless(Connector),
    Gemini(gemini::StreamState),
    WorkersAi(workers_ai::StreamState),
}

impl StreamEvent {
    /// The terminal OpenAI error event for a failure found mid-stream.
    pub(crate) fn error(err: &ApiError) -> Self {
        StreamEvent::Error(String::from_utf8_lossy(&err.body()).into_owned())
    }
}

/// A provider's settings for connector tests: `base_url`, key `sk-test`, no extra headers.
#[cfg(test)]
pub(crate) fn test_provider(
    name: &'static str,
    base_url: &str,
    default_model: &str,
    connector: Connector,
) -> ProviderConfig {
    ProviderConfig {
        name,
        base_url: base_url.into(),
        api_key: Some("sk-test".into()),
        default_model: default_model.into(),
        models: &[],
        connector,
        headers: vec![],
    }
}

impl StreamTranslator {
    pub fn events(&mut self, data: &str) -> Vec<StreamEvent> {
        match self {
            StreamTranslator::Stateless(Connector::OpenAi) => vec![openai::stream_event(data)],
            StreamTranslator::Stateless(Connector::DeepSeek) => deepseek::stream_events(data),
            StreamTranslator::Stateless(Connector::OpenRouter) => openrouter::stream_events(data),
            StreamTranslator::Stateless(Connector::SiliconFlow) => siliconflow::stream_events(data),
            StreamTranslator::Stateless(c @ (Connector::Gemini | Connector::WorkersAi)) => {
                *self = c.stream_translator(0);
                self.events(data)
            }
            StreamTranslator::Gemini(state) => state.events(data),
            StreamTranslator::WorkersAi(state) => state.events(data),
        }
    }
}

/// One translated event of an upstream stream, carrying the OpenAI `data:` payload to send.
#[derive(Debug, PartialEq)]
pub enum StreamEvent {
    Done,
    /// The upstream failed mid-stream; the payload is an OpenAI error object.
    Error(String),
    /// A `choices: []` chunk that carries only usage.
    UsageOnly(Usage, String),
    /// A normal chunk, possibly with usage attached.
    Chunk(Option<Usage>, String),
    /// Not JSON; forwarded as is.
    Opaque(String),
}

/// A chunk that carries usage next to its choices (DeepSeek, SiliconFlow, some OpenRouter upstreams) becomes
/// the chunk without usage, then an OpenAI `choices: []` usage chunk. Other chunks pass unchanged.
pub(crate) fn move_usage_off_chunk(
    mut v: Value,
    data: &str,
    usage: Option<Usage>,
) -> Vec<StreamEvent> {
    let has_choices = v
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty());
    let Some(u) = usage.filter(|_| has_choices) else {
        return vec![openai::classify(&v, data.to_owned(), usage)];
    };
    let usage_value = v.get("usage").cloned().unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.remove("usage");
    }
    let mut usage_chunk = Map::new();
    for key in ["id", "object", "created", "model", "system_fingerprint"] {
        if let Some(x) = v.get(key) {
            usage_chunk.insert(key.into(), x.clone());
        }
    }
    usage_chunk.insert("choices".into(), Value::Array(Vec::new()));
    usage_chunk.insert("usage".into(), usage_value);
    vec![
        StreamEvent::Chunk(None, v.to_string()),
        StreamEvent::UsageOnly(u, Value::Object(usage_chunk).to_string()),
    ]
}

impl Connector {
    pub fn chat_request(
        self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
        stream: bool,
    ) -> Result<UpstreamRequest, ApiError> {
        Ok(match self {
            Connector::OpenAi => openai::chat_request(p, body, model, stream),
            Connector::DeepSeek => deepseek::chat_request(p, body, model, stream),
            Connector::OpenRouter => openrouter::chat_request(p, body, model, stream),
            Connector::SiliconFlow => siliconflow::chat_request(p, body, model, stream),
            Connector::Gemini => return gemini::chat_request(p, body, model, stream),
            Connector::WorkersAi => return workers_ai::chat_request(p, body, model, stream),
        })
    }

    pub fn embeddings_request(
        self,
        p: &ProviderConfig,
        body: Map<String, Value>,
        model: &str,
    ) -> Result<UpstreamRequest, ApiError> {
        match self {
            // The three are OpenAI-shaped at `/embeddings`.
            Connector::OpenAi | Connector::OpenRouter | Connector::SiliconFlow => {
                Ok(openai::embeddings_request(p, body, model))
            }
            Connector::Gemini => gemini::embeddings_request(p, body, model),
            Connector::WorkersAi => workers_ai::embeddings_request(p, body, model),
            Connector::DeepSeek => Err(ApiError::invalid_request(format!(
                "provider `{}` has no embeddings endpoint; route embeddings to another provider",
                p.name
            ))
            .with_param("model")),
        }
    }

    pub fn usage(self, response: &Value) -> Option<Usage> {
        match self {
            Connector::OpenAi => openai::usage(response),
            Connector::DeepSeek => deepseek::usage(response),
            Connector::OpenRouter => openrouter::usage(response),
            Connector::SiliconFlow => siliconflow::usage(response),
            Connector::Gemini => gemini::usage(response),
            Connector::WorkersAi => workers_ai::usage(response),
        }
    }

    /// Brings a non-streamed answer to the OpenAI shape in place; `true` when it changed anything.
    /// `created` (Unix seconds) is used where the provider gives no timestamp.
    pub fn normalize_answer(self, answer: &mut Value, created: u64) -> Result<bool, ApiError> {
        Ok(match self {
            Connector::SiliconFlow => {
                let before = answer.clone();
                siliconflow::normalize_answer(answer);
                *answer != before
            }
            Connector::Gemini => {
                gemini::normalize_answer(answer, created);
                true
            }
            Connector::WorkersAi => {
                if let Some(e) = workers_ai::envelope_error(answer, "workers_ai") {
                    return Err(e);
                }
                workers_ai::normalize_answer(answer, created);
                true
            }
            Connector::OpenAi | Connector::DeepSeek | Connector::OpenRouter => false,
        })
    }

    /// Brings an embeddings answer to the OpenAI shape in place; `true` when it changed anything.
    pub fn normalize_embeddings(self, answer: &mut Value, model: &str) -> bool {
        match self {
            Connector::Gemini => {
                gemini::normalize_embeddings(answer, model);
                true
            }
            Connector::WorkersAi => {
                workers_ai::normalize_embeddings(answer, model);
                true
            }
            _ => false,
        }
    }

    /// A translator for one stream; `created` (Unix seconds) stamps providers' chunks that carry no time.
    pub fn stream_translator(self, created: u64) -> StreamTranslator {
        match self {
            Connector::Gemini => StreamTranslator::Gemini(gemini::StreamState::new(created)),
            Connector::WorkersAi => {
                StreamTranslator::WorkersAi(workers_ai::StreamState::new(created))
            }
            c => StreamTranslator::Stateless(c),
        }
    }

    /// Translates one upstream `data:` payload of a stateless connector (see [`StreamTranslator`]).
    pub fn stream_events(self, data: &str) -> Vec<StreamEvent> {
        self.stream_translator(0).events(data)
    }

    pub fn upstream_error(
        self,
        provider: &str,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> ApiError {
        let mut err = match self {
            Connector::OpenAi => openai::upstream_error(provider, status, headers, body),
            Connector::DeepSeek => deepseek::upstream_error(provider, status, headers, body),
            Connector::OpenRouter => openrouter::upstream_error(provider, status, headers, body),
            Connector::SiliconFlow => siliconflow::upstream_error(provider, status, headers, body),
            Connector::Gemini => gemini::upstream_error(provider, status, headers, body),
            Connector::WorkersAi => workers_ai::upstream_error(provider, status, headers, body),
        };
        // Every provider's `Retry-After` reaches the client (and the dispatcher's backoff), unless the connector
        // found the delay elsewhere (Gemini's RetryInfo).
        if err.retry_after.is_none() {
            err.retry_after = crate::ports::find_header(headers, "retry-after").map(str::to_owned);
        }
        err
    }
}

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
    pub connector: Connector,
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
        connector: Connector::OpenAi,
    },
    ProviderSpec {
        name: "deepseek",
        env_prefix: "DEEPSEEK",
        base_url: "https://api.deepseek.com",
        default_model: "deepseek-flash",
        models: &["deepseek-flash", "deepseek-v4-pro"],
        connector: Connector::DeepSeek,
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
        connector: Connector::OpenRouter,
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
        connector: Connector::SiliconFlow,
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
        connector: Connector::Gemini,
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
        connector: Connector::WorkersAi,
    },
];

pub fn spec(name: &str) -> Option<&'static ProviderSpec> {
    CATALOG.iter().find(|p| p.name == name)
}
