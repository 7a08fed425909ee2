//! The provider table: the catalog's declarations (the published policy's, or the built-in one while none is
//! published) with this deployment's settings and secrets. Built-in and custom providers are read alike.

use gateway_policy::catalog::{Catalog, ProviderEntry};

use super::{Dialect, ProviderConfig, Quirks};
use crate::error::ConfigError;

/// The providers a request can be sent to, and those declared but not usable here (and why).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Providers {
    /// Declared and configured, in catalog order.
    pub configured: Vec<ProviderConfig>,
    /// Declared, but without what they need on this deployment.
    pub unconfigured: Vec<Unconfigured>,
    /// For bare model ids (`gpt-4o-mini`) and `auto`.
    pub default: Option<String>,
}

/// A declared provider this deployment cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfigured {
    pub name: String,
    pub why: Unusable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// Its key's secret is not set (the usual case: a provider this deployment does not use).
    NoKey { secret: String },
    /// Its settings are wrong (a bad `<NAME>_BASE_URL`, a missing account id…).
    Misconfigured(ConfigError),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::NoKey { secret } => write!(f, "no key: the secret `{secret}` is not set"),
            Unusable::Misconfigured(e) => write!(f, "{e}"),
        }
    }
}

impl Providers {
    /// The table for `catalog` with the settings `lookup` finds. `DEFAULT_PROVIDER` (a setting) picks the
    /// provider for bare model ids; otherwise the catalog's `default_provider`, otherwise the first configured.
    pub fn from_catalog(catalog: &Catalog, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let builtin = std::cell::OnceCell::new();
        let mut table = Providers::default();
        for (name, entry) in &catalog.providers {
            // An artifact compiled before providers were declared names them only: the built-in declaration
            // of that name applies.
            let entry = if entry.dialect.is_some() {
                entry.clone()
            } else {
                let builtin: &Catalog = builtin.get_or_init(Catalog::builtin_json);
                match builtin.providers.get(name) {
                    Some(b) => ProviderEntry {
                        models: entry.models.clone(),
                        default_model: entry.default_model.clone(),
                        ..b.clone()
                    },
                    None => entry.clone(),
                }
            };
            match configure(name, &entry, &get) {
                Ok(Some(p)) => table.configured.push(p),
                Ok(None) => table.unconfigured.push(Unconfigured {
                    name: name.clone(),
                    why: Unusable::NoKey {
                        secret: entry.key.clone().unwrap_or_default(),
                    },
                }),
                Err(e) => table.unconfigured.push(Unconfigured {
                    name: name.clone(),
                    why: Unusable::Misconfigured(e),
                }),
            }
        }
        let wanted = get("DEFAULT_PROVIDER").or_else(|| catalog.default_provider.clone());
        table.default = wanted
            .filter(|w| table.get(w).is_some())
            .or_else(|| table.configured.first().map(|p| p.name.clone()));
        table
    }

    /// A configured provider.
    pub fn get(&self, name: &str) -> Option<&ProviderConfig> {
        self.configured.iter().find(|p| p.name == name)
    }

    /// Whether the catalog declares `name` (configured here or not).
    pub fn declared(&self, name: &str) -> bool {
        self.get(name).is_some() || self.unconfigured.iter().any(|u| u.name == name)
    }

    /// The first misconfiguration: what a host refuses to start with.
    pub fn misconfigured(&self) -> Option<&ConfigError> {
        self.unconfigured.iter().find_map(|u| match &u.why {
            Unusable::Misconfigured(e) => Some(e),
            Unusable::NoKey { .. } => None,
        })
    }
}

/// The settings prefix of a provider: its name in upper case (`local_vllm` → `LOCAL_VLLM`).
pub fn settings_prefix(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// One declared provider with its settings: `None` when it declares a key whose secret is not set (and no
/// `<NAME>_BASE_URL` points it elsewhere, as for a local server that takes any key).
fn configure(
    name: &str,
    entry: &ProviderEntry,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ProviderConfig>, ConfigError> {
    let prefix = settings_prefix(name);
    let setting = |what: &str| get(&format!("{prefix}_{what}"));
    let dialect = entry
        .dialect
        .as_deref()
        .and_then(Dialect::from_name)
        .ok_or_else(|| ConfigError::UnknownDialect {
            provider: name.to_owned(),
            dialect: entry.dialect.clone().unwrap_or_default(),
        })?;
    let api_key = entry.key.as_deref().and_then(get);
    // On Workers, Workers AI is reached through its binding rather than the REST API.
    let binding = (dialect == Dialect::WorkersAi)
        .then(|| setting("BINDING"))
        .flatten()
        .map(|b| format!("{BINDING_SCHEME}{b}"));
    let overridden = binding.or_else(|| setting("BASE_URL"));
    if entry.key.is_some() && api_key.is_none() && overridden.is_none() {
        return Ok(None);
    }
    let base_url = match overridden.or_else(|| entry.base_url.clone()) {
        Some(url) if url.contains("{account}") => match setting("ACCOUNT_ID") {
            Some(account) => url.replace("{account}", &account),
            None => {
                return Err(ConfigError::NoAccount {
                    prefix,
                    provider: name.to_owned(),
                })
            }
        },
        Some(url) => url,
        None => {
            return Err(ConfigError::BadBaseUrl {
                prefix,
                url: String::new(),
            })
        }
    };
    if !(base_url.starts_with("https://")
        || base_url.starts_with("http://")
        || base_url.starts_with(BINDING_SCHEME))
    {
        return Err(ConfigError::BadBaseUrl {
            prefix,
            url: base_url,
        });
    }
    let mut headers: Vec<(String, String)> = entry
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    if let Some(h) = setting("HEADERS") {
        let extra = parse_headers(&h).map_err(|(pair, why)| ConfigError::BadHeader {
            prefix: prefix.clone(),
            pair,
            why,
        })?;
        headers.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        headers.extend(extra);
    }
    Ok(Some(ProviderConfig {
        name: name.to_owned(),
        base_url: base_url.trim_end_matches('/').to_owned(),
        api_key,
        default_model: setting("DEFAULT_MODEL").unwrap_or_else(|| entry.default_model.clone()),
        models: entry.models.keys().cloned().collect(),
        dialect,
        headers,
        quirks: Quirks::from_entry(&entry.quirks),
    }))
}

/// A base URL with this scheme names a Worker binding (`binding://AI`): the Workers host calls the binding
/// instead of fetching.
pub const BINDING_SCHEME: &str = "binding://";

/// `Name: value; Name2: value2`; an unusable pair is returned with what is wrong with it.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, (String, &'static str)> {
    text.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once(':')
                .ok_or_else(|| (pair.to_owned(), "`Name: value`"))?;
            let name = name.trim().to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid || value.contains(['\r', '\n']) {
                return Err((pair.to_owned(), "a valid header"));
            }
            Ok((name, value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(catalog: &str, settings: &[(&str, &str)]) -> Providers {
        let map: HashMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let catalog: Catalog = serde_json::from_str(catalog).unwrap();
        Providers::from_catalog(&catalog, |k| map.get(k).cloned())
    }

    const CUSTOM: &str = r#"{"providers": {
        "moonshot": {"dialect": "openai", "base_url": "https://api.moonshot.cn/v1", "key": "MOONSHOT_API_KEY",
                     "headers": {"X-Team": "ai"}, "quirks": {"max_tokens": "max_tokens"},
                     "default_model": "kimi-k2", "models": {"kimi-k2": {}}},
        "local": {"dialect": "openai", "base_url": "http://10.0.0.5:8000/v1/", "default_model": "qwen3",
                  "models": {"qwen3": {}}}
    }}"#;

    #[test]
    fn a_keyless_server_is_configured_by_its_declaration_and_a_keyed_one_by_its_secret() {
        let t = table(CUSTOM, &[]);
        assert_eq!(t.configured.len(), 1);
        let local = t.get("local").unwrap();
        assert_eq!(
            (local.base_url.as_str(), local.api_key.as_deref()),
            ("http://10.0.0.5:8000/v1", None)
        );
        assert!(t.declared("moonshot") && t.get("moonshot").is_none());
        assert_eq!(
            t.unconfigured[0].why.to_string(),
            "no key: the secret `MOONSHOT_API_KEY` is not set"
        );
        assert_eq!(t.default.as_deref(), Some("local"));

        let t = table(
            CUSTOM,
            &[
                ("MOONSHOT_API_KEY", "sk-1"),
                ("MOONSHOT_HEADERS", "X-Team: ops"),
            ],
        );
        let m = t.get("moonshot").unwrap();
        assert_eq!(m.api_key.as_deref(), Some("sk-1"));
        assert_eq!(m.headers, vec![("x-team".to_owned(), "ops".to_owned())]);
        assert_eq!(
            m.quirks.max_tokens,
            Some(super::super::MaxTokens::MaxTokens)
        );
    }

    #[test]
    fn settings_override_the_declaration_and_bad_ones_are_named() {
        let t = table(
            CUSTOM,
            &[
                ("LOCAL_BASE_URL", "ftp://nowhere"),
                ("LOCAL_DEFAULT_MODEL", "qwen3-32b"),
            ],
        );
        assert!(t.get("local").is_none());
        let e = t.misconfigured().unwrap().to_string();
        assert!(e.contains("LOCAL_BASE_URL"), "{e}");
        let t = table(
            CUSTOM,
            &[("DEFAULT_PROVIDER", "moonshot"), ("MOONSHOT_API_KEY", "k")],
        );
        assert_eq!(t.default.as_deref(), Some("moonshot"));
    }

    #[test]
    fn the_builtin_catalog_declares_its_providers_and_only_keyed_ones_are_configured() {
        let t = Providers::from_catalog(&Catalog::builtin_json(), |k| {
            (k == "OPENAI_API_KEY" || k == "DEEPSEEK_API_KEY").then(|| "k".to_owned())
        });
        let names: Vec<&str> = t.configured.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["deepseek", "openai"]);
        assert_eq!(t.default.as_deref(), Some("openai"));
        assert_eq!(
            t.get("openai").unwrap().base_url,
            "https://api.openai.com/v1"
        );
        assert_eq!(t.unconfigured.len(), 5);
    }

    #[test]
    fn an_artifact_without_declarations_takes_the_builtin_ones() {
        let old = r#"{"providers": {"deepseek": {"default_model": "deepseek-flash",
                      "models": {"deepseek-flash": {}}}}}"#;
        let t = table(old, &[("DEEPSEEK_API_KEY", "k")]);
        let d = t.get("deepseek").unwrap();
        assert_eq!(
            (d.dialect, d.base_url.as_str()),
            (Dialect::DeepSeek, "https://api.deepseek.com")
        );
    }
}
