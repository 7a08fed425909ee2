//! Gateway configuration, read from named settings: Worker vars and secrets, or environment variables natively.
//! Both hosts pass a lookup function, so the names and defaults are defined once, here.

use std::sync::Arc;

use gateway_policy::prices::PriceBook;

use crate::error::ConfigError;
use crate::providers::Providers;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The built-in catalog's providers with this deployment's settings: the table while no policy is
    /// published (a published policy carries its own catalog, read with the same settings).
    pub providers: Arc<Providers>,
    /// The built-in price table, while no policy is published (a published policy carries its own).
    pub prices: Arc<PriceBook>,
    /// The currency every cost is also logged in (`REPORTING_CURRENCY`, USD unless set), at the price table's
    /// exchange rate.
    pub reporting_currency: String,
    pub max_body_bytes: usize,
    /// The largest audio upload (`MAX_AUDIO_BYTES`, 25 MiB unless set: OpenAI's limit), the body limit of
    /// `/v1/audio/transcriptions` instead of `max_body_bytes`.
    pub max_audio_bytes: usize,
    /// Time allowed for an upstream's response headers (and, for JSON, its whole body).
    pub upstream_timeout_ms: u64,
    /// Longest silence allowed between two chunks of an upstream stream.
    pub stream_idle_timeout_ms: u64,
    /// How often the active policy pointer and the health snapshot are re-read (in the background).
    pub policy_refresh_ms: u64,
    /// How long a provider model that keeps failing is tried only as a last resort.
    pub cooldown_ms: u64,
    /// How long a key record read from the key store is reused (a revocation takes effect within this).
    pub key_cache_ms: u64,
    /// The bearer token of the admin endpoints (`/admin/…`); without one they answer 404.
    pub admin_token: Option<String>,
    /// Added to the host's clock (`CLOCK_OFFSET_MS`, signed; 0 unless set): lets a test run the gateway at
    /// another date (a price change) or hour (DeepSeek's peak). Leave it unset in production.
    pub clock_offset_ms: i64,
    /// Where days and months of budgets begin (`LIMIT_TIMEZONE`: UTC unless set; `Asia/Shanghai`, `+08:00`).
    pub limit_zone: crate::limits::Zone,
    /// The completion tokens reserved for a request that sets no `max_tokens` (`LIMIT_MAX_TOKENS`).
    pub limit_max_tokens: u64,
    /// The payload archive: every request or only the rules that say `archive` (`ARCHIVE`), and what is redacted
    /// (`ARCHIVE_REDACT`).
    pub archive: crate::archive::Archiving,
    /// Images given by URL to providers that take them only inline (Gemini, Workers AI): fetched from public
    /// `https` addresses (`public`, the default), from anywhere (`any`), or refused (`off`) — `IMAGE_FETCH`.
    pub image_fetch: ImageFetch,
    /// The largest image fetched (`IMAGE_FETCH_MAX_BYTES`, 10 MiB unless set).
    pub image_fetch_max_bytes: usize,
}

/// Whether and where the gateway fetches images given by URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFetch {
    /// `https` URLs whose host is a public address (names that resolve to private ones are refused natively).
    Public,
    /// Refused: such images must come as `data:` URLs.
    Off,
    /// `http` or `https`, any address (images on an internal server of a private deployment).
    Any,
}

pub const DEFAULT_IMAGE_FETCH_MAX_BYTES: usize = 10 * 1024 * 1024;

pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_MAX_AUDIO_BYTES: usize = 25 * 1024 * 1024;
/// The path whose body is an audio upload (read up to `max_audio_bytes`).
pub const AUDIO_UPLOAD_PATH: &str = "/v1/audio/transcriptions";
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 120_000;
pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_POLICY_REFRESH_MS: u64 = 10_000;
pub const DEFAULT_COOLDOWN_MS: u64 = 30_000;
pub const DEFAULT_KEY_CACHE_MS: u64 = 30_000;
pub const DEFAULT_LIMIT_MAX_TOKENS: u64 = 4_096;

impl GatewayConfig {
    /// How much of a request's body the host reads for `path`: audio uploads have their own limit.
    pub fn body_limit(&self, path: &str) -> usize {
        if path == AUDIO_UPLOAD_PATH {
            self.max_audio_bytes
        } else {
            self.max_body_bytes
        }
    }

    /// Reads the built-in catalog's provider settings (`<NAME>_BASE_URL`, the declared key secrets…, see
    /// [`Providers::from_catalog`]), `DEFAULT_PROVIDER`, `MAX_BODY_BYTES`, `UPSTREAM_TIMEOUT_MS`,
    /// `STREAM_IDLE_TIMEOUT_MS`, `POLICY_REFRESH_MS`, `COOLDOWN_MS`, `KEY_CACHE_MS`, `GATEWAY_ADMIN_TOKEN`,
    /// `REPORTING_CURRENCY`, `CLOCK_OFFSET_MS`, `LIMIT_TIMEZONE`, `LIMIT_MAX_TOKENS`, `ARCHIVE`,
    /// `ARCHIVE_REDACT`, `MAX_AUDIO_BYTES`, `IMAGE_FETCH` and `IMAGE_FETCH_MAX_BYTES`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let catalog = gateway_policy::catalog::Catalog::builtin_json();
        let providers = Providers::from_catalog(&catalog, get);
        if let Some(e) = providers.misconfigured() {
            return Err(e.clone());
        }
        if let Some(name) = get("DEFAULT_PROVIDER") {
            if providers.get(&name).is_none() {
                return Err(ConfigError::UnknownDefaultProvider(name));
            }
        }
        let reporting_currency = get("REPORTING_CURRENCY").unwrap_or_else(|| "USD".into());
        if !gateway_policy::prices::is_currency(&reporting_currency) {
            return Err(ConfigError::BadCurrency(reporting_currency));
        }
        Ok(Self {
            providers: Arc::new(providers),
            prices: Arc::new(PriceBook::new(&catalog.prices)),
            reporting_currency,
            max_body_bytes: number(&get, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            max_audio_bytes: number(&get, "MAX_AUDIO_BYTES", DEFAULT_MAX_AUDIO_BYTES as u64)?
                as usize,
            upstream_timeout_ms: number(&get, "UPSTREAM_TIMEOUT_MS", DEFAULT_UPSTREAM_TIMEOUT_MS)?,
            stream_idle_timeout_ms: number(
                &get,
                "STREAM_IDLE_TIMEOUT_MS",
                DEFAULT_STREAM_IDLE_TIMEOUT_MS,
            )?,
            policy_refresh_ms: number(&get, "POLICY_REFRESH_MS", DEFAULT_POLICY_REFRESH_MS)?,
            cooldown_ms: number(&get, "COOLDOWN_MS", DEFAULT_COOLDOWN_MS)?,
            key_cache_ms: number(&get, "KEY_CACHE_MS", DEFAULT_KEY_CACHE_MS)?,
            admin_token: get("GATEWAY_ADMIN_TOKEN"),
            clock_offset_ms: match get("CLOCK_OFFSET_MS") {
                None => 0,
                Some(v) => v.parse().map_err(|_| ConfigError::NotANumber {
                    name: "CLOCK_OFFSET_MS".into(),
                    value: v,
                })?,
            },
            limit_zone: match get("LIMIT_TIMEZONE") {
                None => crate::limits::Zone::default(),
                Some(z) => crate::limits::Zone::parse(&z).map_err(ConfigError::BadTimeZone)?,
            },
            limit_max_tokens: number(&get, "LIMIT_MAX_TOKENS", DEFAULT_LIMIT_MAX_TOKENS)?,
            archive: crate::archive::Archiving::from_settings(
                get("ARCHIVE").as_deref(),
                get("ARCHIVE_REDACT").as_deref(),
            )?,
            image_fetch: match get("IMAGE_FETCH").as_deref() {
                None | Some("public") => ImageFetch::Public,
                Some("off") => ImageFetch::Off,
                Some("any") => ImageFetch::Any,
                Some(other) => return Err(ConfigError::BadImageFetch(other.to_owned())),
            },
            image_fetch_max_bytes: number(
                &get,
                "IMAGE_FETCH_MAX_BYTES",
                DEFAULT_IMAGE_FETCH_MAX_BYTES as u64,
            )? as usize,
        })
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::NotANumber {
                name: name.to_owned(),
                value: v,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<GatewayConfig, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GatewayConfig::from_lookup(|k| map.get(k).cloned()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_provider_is_configured_by_key_or_base_url() {
        let c = cfg(&[("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")]).unwrap();
        assert_eq!(c.providers.configured.len(), 1);
        assert_eq!(c.providers.configured[0].base_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.providers.default.as_deref(), Some("openai"));
        assert!(cfg(&[]).unwrap().providers.configured.is_empty());
    }

    #[test]
    fn bad_numbers_and_urls_are_reported_by_name() {
        let e = cfg(&[("MAX_BODY_BYTES", "lots")]).unwrap_err();
        assert!(e.contains("MAX_BODY_BYTES"), "{e}");
        let e = cfg(&[("OPENAI_BASE_URL", "ftp://x")]).unwrap_err();
        assert!(e.contains("OPENAI_BASE_URL"), "{e}");
        let e = cfg(&[("OPENAI_API_KEY", "k"), ("DEFAULT_PROVIDER", "nope")]).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let e = cfg(&[
            ("OPENROUTER_API_KEY", "k"),
            ("OPENROUTER_HEADERS", "X-Title"),
        ])
        .unwrap_err();
        assert_eq!(e, "OPENROUTER_HEADERS: `X-Title` is not `Name: value`");
    }
}
