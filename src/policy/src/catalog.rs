//! The catalog of providers and models (`policies/catalog.toml`): default models, capabilities, prices.
//! The checker resolves targets against it; compiled policies carry it so the gateway can rank and filter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub providers: BTreeMap<String, ProviderEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub default_model: String,
    #[serde(default)]
    pub models: BTreeMap<String, ModelEntry>,
}

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
}

/// USD per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<f64>,
    pub output: f64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The repository's catalog, built in: used when a policy directory has no `catalog.toml` of its own.
#[cfg(feature = "compiler")]
pub const BUILTIN: &str = include_str!("../../../policies/catalog.toml");

/// Why a `catalog.toml` cannot be used.
#[cfg(feature = "compiler")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Toml(String),
    #[error("provider `{provider}`: default_model `{model}` is not one of its models")]
    UnknownDefaultModel { provider: String, model: String },
}

impl Catalog {
    #[cfg(feature = "compiler")]
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|e| CatalogError::Toml(e.to_string()))?;
        for (name, p) in &catalog.providers {
            if !p.models.contains_key(&p.default_model) {
                return Err(CatalogError::UnknownDefaultModel {
                    provider: name.clone(),
                    model: p.default_model.clone(),
                });
            }
        }
        Ok(catalog)
    }

    #[cfg(feature = "compiler")]
    pub fn builtin() -> Self {
        Self::from_toml(BUILTIN).unwrap_or_default()
    }

    pub fn model(&self, provider: &str, model: &str) -> Option<&ModelEntry> {
        self.providers.get(provider)?.models.get(model)
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

    #[test]
    fn a_default_model_must_exist() {
        let e = Catalog::from_toml("[providers.x]\ndefault_model = \"m\"\n").unwrap_err();
        assert!(e.to_string().contains("default_model `m`"), "{e}");
    }
}
