//! What a provider must not learn the client from the gateway, and the client must not learn from a provider:
//! the provider's key and secret header values, and where the provider is (its base URL and host), masked in
//! every provider-written text the client sees (error messages, error events mid-stream).

use crate::providers::ProviderConfig;

/// Secrets shorter than this are not masked: they would match ordinary words (and are not real keys).
const MIN_SECRET_LEN: usize = 8;

/// The texts to mask for one provider.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redaction {
    /// Replaced by `[redacted]`.
    secrets: Vec<String>,
    /// The base URL and its authority, replaced by the provider's name.
    locations: Vec<String>,
    provider: &'static str,
}

impl Redaction {
    pub(crate) fn for_provider(p: &ProviderConfig) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        for v in p.api_key.iter().chain(p.headers.iter().map(|(_, v)| v)) {
            // `Bearer <token>`: the token alone may be echoed too.
            let token = v.split_once(' ').map(|(_, t)| t.trim());
            for s in std::iter::once(v.as_str()).chain(token) {
                if s.len() >= MIN_SECRET_LEN && !secrets.iter().any(|x| x == s) {
                    // The longest first, so a whole header value is masked before the token inside it
                    // (inserted in place: a sort would link a few KB into the Worker for a handful of items).
                    let at = secrets.iter().position(|x| x.len() < s.len());
                    secrets.insert(at.unwrap_or(secrets.len()), s.to_owned());
                }
            }
        }
        let base = p.base_url.trim_end_matches('/');
        let authority = base
            .split_once("://")
            .map_or(base, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        let locations = [base, authority]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            secrets,
            locations,
            provider: p.name,
        }
    }

    /// `text` with every secret and location masked (unchanged, and not copied, when it holds none).
    pub(crate) fn apply(&self, text: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]").into();
            }
        }
        for l in &self.locations {
            if out.contains(l.as_str()) {
                out = out
                    .replace(l.as_str(), &format!("<{}>", self.provider))
                    .into();
            }
        }
        out.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    fn provider() -> ProviderConfig {
        ProviderConfig {
            name: "openai",
            base_url: "http://10.1.2.3:8080/v1".into(),
            api_key: Some("sk-live-0123456789".into()),
            default_model: "gpt-4o-mini".into(),
            models: &[],
            dialect: Dialect::OpenAi,
            headers: vec![
                ("x-short".into(), "abc".into()),
                (
                    "cf-aig-authorization".into(),
                    "Bearer aig-secret-token".into(),
                ),
            ],
        }
    }

    #[test]
    fn keys_secret_headers_and_the_upstream_location_are_masked() {
        let r = Redaction::for_provider(&provider());
        let said = "Incorrect API key provided: sk-live-0123456789 (sent Bearer aig-secret-token, \
                    token aig-secret-token) to http://10.1.2.3:8080/v1/chat/completions; connect 10.1.2.3:8080 \
                    refused; abc";
        assert_eq!(
            r.apply(said),
            "Incorrect API key provided: [redacted] (sent [redacted], token [redacted]) to \
             <openai>/chat/completions; connect <openai> refused; abc"
        );
    }

    #[test]
    fn a_text_without_secrets_is_unchanged() {
        let r = Redaction::for_provider(&provider());
        assert_eq!(r.apply("Rate limit reached"), "Rate limit reached");
    }
}
