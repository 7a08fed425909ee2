//! Resolve: which provider and upstream model the client asked for (design.md §4 model selection):
//! `provider/model`, a bare id for the default provider, `auto`, or the `provider` field.

use serde_json::Value;

use super::request::ApiCall;
use crate::error::{ApiError, ErrorCode};
use crate::providers::{ProviderConfig, Providers};

/// A provider model to try.
#[derive(Clone)]
pub(super) struct Target<'c> {
    pub provider: &'c ProviderConfig,
    pub model: String,
}

impl Target<'_> {
    /// `provider:model`, as cooldowns, plans and error messages name it.
    pub(super) fn name(&self) -> String {
        format!("{}:{}", self.provider.name, self.model)
    }
}

/// What the request asked for: the target, or why it cannot be served as asked (a policy may still route it),
/// and the provider and model it names, which the policy sees (`""` provider when it names none).
pub(super) struct Requested<'c> {
    pub target: Result<Target<'c>, ApiError>,
    pub provider: String,
    pub model: String,
}

pub(super) fn resolve<'c>(providers: &'c Providers, call: &ApiCall) -> Requested<'c> {
    let model = call.model();
    let target = target(providers, call);
    let (provider, upstream) = match &target {
        Ok(t) => (t.provider.name.to_owned(), t.model.clone()),
        Err(_) => match model.split_once('/') {
            Some((p, m)) if providers.declared(p) => (p.to_owned(), m.to_owned()),
            _ => (String::new(), model.to_owned()),
        },
    };
    Requested {
        target,
        provider,
        model: upstream,
    }
}

fn target<'c>(providers: &'c Providers, call: &ApiCall) -> Result<Target<'c>, ApiError> {
    let model = call.model();
    let explicit = match call.body().get("provider") {
        Some(Value::String(p)) => Some(p.as_str()),
        // An object is OpenRouter's own `provider` routing preferences, not a choice of provider.
        _ => None,
    };
    let (name, upstream_model) = match (explicit, model.split_once('/')) {
        (Some(p), Some((prefix, rest))) if prefix == p => (p, rest),
        (Some(p), _) => (p, model),
        (None, Some((prefix, rest))) if providers.declared(prefix) => (prefix, rest),
        (None, _) => match providers.default.as_deref() {
            Some(p) => (p, model),
            None => return Err(ApiError::new(
                ErrorCode::NoProviderConfigured,
                "no provider is configured on this gateway: set OPENAI_API_KEY or OPENAI_BASE_URL",
            )),
        },
    };
    if !providers.declared(name) {
        return Err(
            ApiError::invalid_request(format!("unknown provider `{name}`")).with_param("provider"),
        );
    }
    let Some(provider) = providers.get(name) else {
        return Err(ApiError::model_not_found(format!(
            "provider `{name}` is not configured on this gateway, so model `{model}` is not available"
        )));
    };
    let model = if upstream_model == "auto" || upstream_model.is_empty() {
        provider.default_model.clone()
    } else {
        upstream_model.to_owned()
    };
    Ok(Target { provider, model })
}
