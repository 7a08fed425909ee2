//! What the client must not learn from a provider's own words: the provider's key and secret header values
//! (a provider may echo what it was sent), and where the provider is (its base URL and host). Masked in every
//! provider-written text the client or the log sees: error messages and mid-stream error events. Runs on error
//! paths only.

use crate::providers::ProviderConfig;

/// Secrets shorter than this are not masked: they would match ordinary words (and are not real keys).
const MIN_SECRET_LEN: usize = 8;

/// `text` with `p`'s secrets replaced by `[redacted]` and its location by `<name>` (not copied when it holds
/// neither).
pub(crate) fn redact(p: &ProviderConfig, text: &str) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    collect_secrets(p, &mut secrets);
    let base = p.base_url.trim_end_matches('/');
    let authority = base
        .split_once("://")
        .map_or(base, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let mut out = std::borrow::Cow::Borrowed(text);
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, "[redacted]").into();
        }
    }
    for l in [base, authority] {
        if !l.is_empty() && out.contains(l) {
            out = out.replace(l, &format!("<{}>", p.name)).into();
        }
    }
    out.into_owned()
}

/// Adds `p`'s key and secret header values to `secrets`, longest first, so that a whole value is masked before
/// a token inside it (also used by the payload archive's redaction).
pub(crate) fn collect_secrets<'a>(p: &'a ProviderConfig, secrets: &mut Vec<&'a str>) {
    for v in p.api_key.iter().chain(p.headers.iter().map(|(_, v)| v)) {
        // `Bearer <token>`: the token alone may be echoed too.
        let token = v.split_once(' ').map(|(_, t)| t.trim());
        for s in std::iter::once(v.as_str()).chain(token) {
            if s.len() >= MIN_SECRET_LEN && !secrets.contains(&s) {
                // The longest first (inserted in place: a sort would link a few KB into the Worker for a
                // handful of items).
                let at = secrets.iter().position(|x| x.len() < s.len());
                secrets.insert(at.unwrap_or(secrets.len()), s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Dialect;

    fn provider() -> ProviderConfig {
        ProviderConfig {
            name: "openai".into(),
            base_url: "http://10.1.2.3:8080/v1".into(),
            api_key: Some("sk-live-0123456789".into()),
            default_model: "gpt-4o-mini".into(),
            models: Vec::new(),
            dialect: Dialect::OpenAi,
            quirks: Default::default(),
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
        let said = "Incorrect API key provided: sk-live-0123456789 (sent Bearer aig-secret-token, \
                    token aig-secret-token) to http://10.1.2.3:8080/v1/chat/completions; connect 10.1.2.3:8080 \
                    refused; abc";
        assert_eq!(
            redact(&provider(), said),
            "Incorrect API key provided: [redacted] (sent [redacted], token [redacted]) to \
             <openai>/chat/completions; connect <openai> refused; abc"
        );
    }

    #[test]
    fn a_text_without_secrets_is_unchanged() {
        assert_eq!(
            redact(&provider(), "Rate limit reached"),
            "Rate limit reached"
        );
    }
}
