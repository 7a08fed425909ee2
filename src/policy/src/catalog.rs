//! The catalog of providers and models (`policies/catalog.toml`): which providers exist and how to reach them
//! (dialect, base URL, the secret holding the key, extra headers, quirks), their default models, capabilities and
//! prices. The checker resolves targets against it; compiled policies carry it, so the gateway's provider table
//! is the published catalog's: an engine is added or removed by editing the catalog and publishing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::prices::PriceTable;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The provider for bare model ids (`gpt-4o-mini`) when the `DEFAULT_PROVIDER` setting names none; the
    /// first configured one when this is not configured either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_provider: Option<String>,
    pub providers: BTreeMap<String, ProviderEntry>,
    /// What each model costs (`prices.toml` beside the catalog).
    #[serde(default, skip_serializing_if = "PriceTable::is_empty")]
    pub prices: PriceTable,
}

/// One provider: how the gateway reaches it, and what it serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    /// Which wire protocol it speaks (one of [`DIALECTS`]). Required in a catalog file; absent only in artifacts
    /// compiled before providers were declared, where the built-in catalog's entry of the same name applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// Where its API lives (`https://…/v1`); `{account}` is filled from `<NAME>_ACCOUNT_ID`. A
    /// `<NAME>_BASE_URL` setting overrides it on one deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The name of the secret (a Worker secret, or an environment variable natively) that holds its API key;
    /// none for a server that takes no key (a private vLLM or Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Extra request headers sent with every call (not secret: the artifact is readable by whoever can read
    /// the policy store).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Where an OpenAI-compatible service differs from OpenAI (the `openai` dialect only).
    #[serde(default, skip_serializing_if = "Quirks::is_empty")]
    pub quirks: Quirks,
    pub default_model: String,
    #[serde(default)]
    pub models: BTreeMap<String, ModelEntry>,
}

/// Declared differences of an OpenAI-compatible service. Values are checked by the compiler; kept as strings so
/// the Worker does not link serde's enum code for them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quirks {
    /// The field that bounds the answer's length: `max_tokens` (most compatible servers) or
    /// `max_completion_tokens` (OpenAI's current name). The client's value is sent under this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<String>,
    /// How a stream reports usage: `request` (asked with `stream_options.include_usage`, OpenAI's way),
    /// `always` (sent unasked; `stream_options` is not sent) or `never` (the service rejects `stream_options`
    /// and sends no usage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_usage: Option<String>,
    /// Top-level request fields the service rejects, removed before sending (`user`, `logit_bias`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strip: Vec<String>,
    /// Prepended to the model id upstream (`accounts/fireworks/models/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_prefix: Option<String>,
    /// The header the key goes in: `bearer` (`Authorization: Bearer`, the default) or `x-api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

impl Quirks {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The wire protocols a provider can speak; each is a connector in the gateway's core.
pub const DIALECTS: &[&str] = &[
    "openai",
    "deepseek",
    "siliconflow",
    "openrouter",
    "gemini",
    "workers_ai",
    "anthropic",
    "azure_openai",
];

/// Words of the policy language: a provider cannot be named like one (`-> fallback` would not parse).
pub const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "matches", "contains", "when", "rule", "deny", "default", "target",
    "group", "list", "fallback", "split", "cheapest", "fastest", "with", "true", "false",
];

/// The values each quirk takes.
pub const MAX_TOKENS_FIELDS: &[&str] = &["max_tokens", "max_completion_tokens"];
pub const STREAM_USAGE: &[&str] = &["request", "always", "never"];
pub const AUTH_HEADERS: &[&str] = &["bearer", "x-api-key"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub vision: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tools: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub json: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub embeddings: bool,
    /// Makes images (`POST /v1/images/generations`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub image_output: bool,
    /// Transcribes audio (`POST /v1/audio/transcriptions`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub audio_in: bool,
    /// Speaks text (`POST /v1/audio/speech`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub audio_out: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The repository's catalog, built in: used when a policy directory has no `catalog.toml` of its own.
#[cfg(feature = "compiler")]
pub const BUILTIN: &str = include_str!("../../../policies/catalog.toml");

/// The repository's price table, built in with the catalog.
#[cfg(feature = "compiler")]
pub const BUILTIN_PRICES: &str = include_str!("../../../policies/prices.toml");

/// The same catalog and price table as JSON (converted by the build script): the gateway's provider table while no policy is
/// published, read without a TOML parser.
pub const BUILTIN_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/catalog.json"));

/// Why a `catalog.toml` cannot be used.
#[cfg(feature = "compiler")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Toml(String),
    #[error("provider `{provider}`: default_model `{model}` is not one of its models")]
    UnknownDefaultModel { provider: String, model: String },
    #[error("provider `{provider}`: {what}")]
    BadProvider { provider: String, what: String },
    #[error("prices.toml: {0}")]
    PricesToml(String),
    #[error("prices.toml:\n  {}", .0.join("\n  "))]
    Prices(Vec<String>),
}

impl Catalog {
    #[cfg(feature = "compiler")]
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|e| CatalogError::Toml(e.to_string()))?;
        if let Some(d) = &catalog.default_provider {
            if !catalog.providers.contains_key(d) {
                return Err(CatalogError::BadProvider {
                    provider: d.clone(),
                    what: "is the default_provider but is not declared".into(),
                });
            }
        }
        for (name, p) in &catalog.providers {
            let bad = |what: String| CatalogError::BadProvider {
                provider: name.clone(),
                what,
            };
            p.declaration_problem(name).map_err(bad)?;
            if !p.models.contains_key(&p.default_model) {
                return Err(CatalogError::UnknownDefaultModel {
                    provider: name.clone(),
                    model: p.default_model.clone(),
                });
            }
        }
        Ok(catalog)
    }

    /// Adds the price table (`prices.toml`'s text), checked against this catalog.
    #[cfg(feature = "compiler")]
    pub fn with_prices(mut self, text: &str) -> Result<Self, CatalogError> {
        let prices: PriceTable =
            toml::from_str(text).map_err(|e| CatalogError::PricesToml(e.to_string()))?;
        let problems = prices.problems(|p, m| self.model(p, m).is_some());
        if !problems.is_empty() {
            return Err(CatalogError::Prices(problems));
        }
        self.prices = prices;
        Ok(self)
    }

    #[cfg(feature = "compiler")]
    pub fn builtin() -> Self {
        Self::from_toml(BUILTIN)
            .and_then(|c| c.with_prices(BUILTIN_PRICES))
            .unwrap_or_default()
    }

    /// The built-in catalog, from its JSON form (no TOML parser needed).
    pub fn builtin_json() -> Self {
        serde_json::from_str(BUILTIN_JSON).unwrap_or_default()
    }

    pub fn model(&self, provider: &str, model: &str) -> Option<&ModelEntry> {
        self.providers.get(provider)?.models.get(model)
    }
}

impl ProviderEntry {
    /// What is wrong with this declaration of provider `name`, if anything: the checks `gateway-policy check`
    /// makes before a catalog can be compiled (the gateway trusts a compiled artifact's).
    #[cfg(feature = "compiler")]
    fn declaration_problem(&self, name: &str) -> Result<(), String> {
        let ident = |s: &str| {
            s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !ident(name) {
            return Err(
                "a provider name is lower-case letters, digits and `_`, starting with a letter"
                    .into(),
            );
        }
        if KEYWORDS.contains(&name) || name == "requested" {
            return Err(format!(
                "`{name}` is a word of the policy language; choose another name"
            ));
        }
        let dialect = self.dialect.as_deref().ok_or(
            "no `dialect`: say which protocol it speaks (`openai` for any OpenAI-compatible service)",
        )?;
        if !DIALECTS.contains(&dialect) {
            return Err(format!(
                "unknown dialect `{dialect}` (one of: {})",
                DIALECTS.join(", ")
            ));
        }
        let url = self.base_url.as_deref().ok_or("no `base_url`")?;
        let scheme_ok = url.starts_with("https://")
            || url.starts_with("http://")
            || (dialect == "workers_ai" && url.starts_with("binding://"));
        if !scheme_ok || url.contains(char::is_whitespace) {
            return Err(format!(
                "base_url `{url}` must be an http:// or https:// URL"
            ));
        }
        if let Some(key) = &self.key {
            let env_name = key
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
                && key
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !env_name {
                return Err(format!(
                    "key `{key}` must name a secret (upper-case letters, digits and `_`, such as `MOONSHOT_API_KEY`)"
                ));
            }
        }
        for (header, value) in &self.headers {
            let token = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !token || value.contains(['\r', '\n', '\0']) {
                return Err(format!("header `{header}` is not a valid header"));
            }
        }
        let q = &self.quirks;
        if !q.is_empty() && dialect != "openai" {
            return Err(format!(
                "`quirks` apply to the `openai` dialect, not `{dialect}`"
            ));
        }
        let one_of = |what: &str, v: &Option<String>, allowed: &[&str]| match v {
            Some(v) if !allowed.contains(&v.as_str()) => Err(format!(
                "quirks.{what} `{v}` is not one of: {}",
                allowed.join(", ")
            )),
            _ => Ok(()),
        };
        one_of("max_tokens", &q.max_tokens, MAX_TOKENS_FIELDS)?;
        one_of("stream_usage", &q.stream_usage, STREAM_USAGE)?;
        one_of("auth", &q.auth, AUTH_HEADERS)?;
        if let Some(f) = q
            .strip
            .iter()
            .find(|f| ["model", "messages", "input", "stream"].contains(&f.as_str()))
        {
            return Err(format!(
                "quirks.strip cannot remove `{f}`: the request needs it"
            ));
        }
        if self.models.is_empty() {
            return Err("no models: list the models it serves under `models`".into());
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_loads_and_has_every_provider() {
        let c = Catalog::from_toml(BUILTIN).unwrap();
        for p in [
            "openai",
            "deepseek",
            "gemini",
            "openrouter",
            "siliconflow",
            "workers_ai",
        ] {
            assert!(c.providers.contains_key(p), "{p}");
        }
        assert!(c.model("siliconflow", "Qwen/Qwen3-8B").is_some());
        assert!(c.model("deepseek", "deepseek-flash").unwrap().vision);
    }

    const LOCAL: &str =
        "[providers.local]\ndialect = \"openai\"\nbase_url = \"http://10.0.0.5:8000/v1\"\n\
                         default_model = \"m\"\n[providers.local.models.m]\n";

    fn problem(extra: &str) -> String {
        let text = LOCAL.replace("default_model", &format!("{extra}\ndefault_model"));
        match Catalog::from_toml(&text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn a_default_model_must_exist() {
        let e = Catalog::from_toml(
            &LOCAL.replace("[providers.local.models.m]", "[providers.local.models.n]"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("default_model `m`"), "{e}");
    }

    #[test]
    fn a_keyless_private_server_is_a_valid_declaration() {
        let c = Catalog::from_toml(LOCAL).unwrap();
        let p = &c.providers["local"];
        assert_eq!(
            (p.dialect.as_deref(), p.key.as_deref()),
            (Some("openai"), None)
        );
    }

    #[test]
    fn declarations_are_checked() {
        let e = Catalog::from_toml(&LOCAL.replace("\"openai\"", "\"cohere\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown dialect `cohere`"), "{e}");
        let e = Catalog::from_toml(&LOCAL.replace("http://10.0.0.5:8000/v1", "ftp://x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("http:// or https://"), "{e}");
        assert!(problem("key = \"moonshot key\"").contains("must name a secret"));
        assert!(
            problem("quirks = { max_tokens = \"limit\" }").contains("quirks.max_tokens `limit`")
        );
        assert!(problem("quirks = { strip = [\"messages\"] }").contains("cannot remove `messages`"));
        assert!(problem("headers = { \"X Bad\" = \"v\" }").contains("not a valid header"));
        let e = Catalog::from_toml(&LOCAL.replace("providers.local", "providers.fallback"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("word of the policy language"), "{e}");
        let e = Catalog::from_toml(&LOCAL.replace("dialect = \"openai\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `dialect`"), "{e}");
        let deepseek = LOCAL.replace("\"openai\"", "\"deepseek\"");
        let e = Catalog::from_toml(&deepseek.replace(
            "default_model",
            "quirks = { strip = [\"user\"] }\ndefault_model",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("apply to the `openai` dialect"), "{e}");
    }

    #[test]
    fn the_keywords_are_the_grammars() {
        let grammar = include_str!("../../../grammar/policy.pest");
        let start = grammar.find("keyword    = _{").unwrap();
        let body = &grammar[start..start + grammar[start..].find('}').unwrap()];
        let words: Vec<&str> = body.split('"').skip(1).step_by(2).collect();
        assert_eq!(words, KEYWORDS);
    }

    #[test]
    fn the_builtin_json_is_the_builtin_toml() {
        assert_eq!(Catalog::builtin_json(), Catalog::builtin());
        assert!(!Catalog::builtin_json().providers.is_empty());
    }
}
