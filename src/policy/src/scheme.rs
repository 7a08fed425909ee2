//! The declared scheme: every request attribute a policy can test, with its type and range.
//! Literals are checked against the field they are compared with (wirefilter's idea), so `tokens == "x"`
//! is a compile error with a span, not a silent false at runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ty {
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    /// Free text.
    Str,
    /// Prompt text: tested with `contains` and `matches` only (never stored in the decision log).
    Text,
    /// Text from a known vocabulary.
    Sym(Vocab),
    /// A set of strings, tested with `contains`.
    StrSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vocab {
    /// ISO 639-1 code, or `und`.
    Lang,
    Endpoint,
    /// A provider name from the catalog.
    Provider,
    Weekday,
    /// What a request asks for ([`TASKS`]).
    Task,
}

/// The tasks the gateway tells apart (`task == code`); docs/policy-language.md says how each is recognised.
pub const TASKS: &[&str] = &[
    "code",
    "math",
    "translation",
    "summarization",
    "extraction",
    "creative",
    "chat",
];

/// The APIs a request can arrive on: Chat Completions, the Anthropic Messages API and the Responses API (all
/// three chat), embeddings, image generation, audio transcriptions and speech.
pub const ENDPOINTS: &[&str] = &[
    "chat",
    "messages",
    "responses",
    "embeddings",
    "images",
    "transcriptions",
    "speech",
];
pub const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Ty {
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Int { .. } => "a whole number",
            Ty::Float { .. } => "a number",
            Ty::Bool => "a boolean",
            Ty::Str => "a string",
            Ty::Text => "prompt text (tested with `contains` or `matches`)",
            Ty::Sym(Vocab::Lang) => "a language code",
            Ty::Sym(Vocab::Endpoint) => "an endpoint (`chat`, `messages`, `responses`, `embeddings`, `images`, `transcriptions` or `speech`)",
            Ty::Sym(Vocab::Provider) => "a provider name",
            Ty::Sym(Vocab::Weekday) => "a weekday (`mon` … `sun`)",
            Ty::Sym(Vocab::Task) => "a task (`code`, `math`, `translation`, `summarization`, `extraction`, `creative`, `chat`)",
            Ty::StrSet => "a set of strings",
        }
    }
}

/// An attribute of a request. Displayed (and stored in compiled policies) in its source form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldId {
    Tokens,
    MaxTokens,
    Temperature,
    Messages,
    Lang,
    Model,
    Provider,
    Endpoint,
    Stream,
    HasImages,
    HasTools,
    JsonMode,
    Reasoning,
    Task,
    HasCode,
    Prompt,
    System,
    KeyId,
    KeyName,
    KeyTeam,
    KeyTier,
    KeyBudgetRemainingPct,
    KeySpendDay,
    KeySpendMonth,
    TeamBudgetRemainingPct,
    TeamSpendDay,
    TeamSpendMonth,
    Tags,
    Hour,
    Weekday,
    Sample,
    Meta(String),
    Health(String, HealthMetric),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthMetric {
    ErrorRate,
    P50Ms,
    Up,
}

const MAX: i64 = i64::MAX;

/// The fixed fields: name, id, type, and what it means (docs/policy-language.md lists the same).
pub const FIELDS: &[(&str, FieldId, Ty, &str)] = &[
    (
        "tokens",
        FieldId::Tokens,
        Ty::Int { min: 0, max: MAX },
        "estimated prompt tokens",
    ),
    (
        "max_tokens",
        FieldId::MaxTokens,
        Ty::Int { min: 0, max: MAX },
        "the request's max_tokens (0 when unset)",
    ),
    (
        "temperature",
        FieldId::Temperature,
        Ty::Float { min: 0.0, max: 2.0 },
        "the request's sampling temperature (1 when unset, OpenAI's default)",
    ),
    (
        "messages",
        FieldId::Messages,
        Ty::Int { min: 0, max: MAX },
        "number of messages",
    ),
    (
        "lang",
        FieldId::Lang,
        Ty::Sym(Vocab::Lang),
        "detected language of the user text (ISO 639-1, `und`)",
    ),
    (
        "model",
        FieldId::Model,
        Ty::Str,
        "the model the client asked for",
    ),
    (
        "provider",
        FieldId::Provider,
        Ty::Sym(Vocab::Provider),
        "the provider the client asked for (`\"\"` for none)",
    ),
    (
        "endpoint",
        FieldId::Endpoint,
        Ty::Sym(Vocab::Endpoint),
        "`chat`, `messages` (the Anthropic Messages API), `responses` (the Responses API), `embeddings`, `images`, `transcriptions` or `speech`",
    ),
    (
        "stream",
        FieldId::Stream,
        Ty::Bool,
        "the client asked for a stream",
    ),
    (
        "has_images",
        FieldId::HasImages,
        Ty::Bool,
        "a message has an image part",
    ),
    (
        "has_tools",
        FieldId::HasTools,
        Ty::Bool,
        "the request declares tools",
    ),
    (
        "json_mode",
        FieldId::JsonMode,
        Ty::Bool,
        "response_format asks for JSON",
    ),
    (
        "reasoning",
        FieldId::Reasoning,
        Ty::Bool,
        "the client asked for reasoning: `reasoning_effort` other than `none`, or `thinking` enabled",
    ),
    (
        "task",
        FieldId::Task,
        Ty::Sym(Vocab::Task),
        "what the request asks for: code, math, translation, summarization, extraction, creative or chat",
    ),
    (
        "has_code",
        FieldId::HasCode,
        Ty::Bool,
        "the last user turn or the system prompt contains code (a fenced block or code-like lines)",
    ),
    (
        "prompt",
        FieldId::Prompt,
        Ty::Text,
        "the last user message's text (its first 16 KiB), with `contains` / `matches` only",
    ),
    (
        "system",
        FieldId::System,
        Ty::Text,
        "the system and developer messages' text (the first 16 KiB), with `contains` / `matches` only",
    ),
    ("key.id", FieldId::KeyId, Ty::Str, "the API key's id"),
    ("key.name", FieldId::KeyName, Ty::Str, "the API key's name"),
    ("key.team", FieldId::KeyTeam, Ty::Str, "the API key's team"),
    ("key.tier", FieldId::KeyTier, Ty::Str, "the API key's tier"),
    (
        "key.budget.remaining_pct",
        FieldId::KeyBudgetRemainingPct,
        Ty::Float {
            min: 0.0,
            max: 100.0,
        },
        "share of the key's budget left, 0–100: the smaller of the day's and the month's (100 without a budget)",
    ),
    (
        "key.spend.day",
        FieldId::KeySpendDay,
        Ty::Float {
            min: 0.0,
            max: f64::MAX,
        },
        "what the key spent today, requests in flight included, in the reporting currency (0 without a budget)",
    ),
    (
        "key.spend.month",
        FieldId::KeySpendMonth,
        Ty::Float {
            min: 0.0,
            max: f64::MAX,
        },
        "what the key spent this month, likewise",
    ),
    (
        "team.budget.remaining_pct",
        FieldId::TeamBudgetRemainingPct,
        Ty::Float {
            min: 0.0,
            max: 100.0,
        },
        "share of the key's team's budget left, 0–100 (100 without a team budget)",
    ),
    (
        "team.spend.day",
        FieldId::TeamSpendDay,
        Ty::Float {
            min: 0.0,
            max: f64::MAX,
        },
        "what the key's team spent today, in the reporting currency (0 without a team budget)",
    ),
    (
        "team.spend.month",
        FieldId::TeamSpendMonth,
        Ty::Float {
            min: 0.0,
            max: f64::MAX,
        },
        "what the key's team spent this month, likewise",
    ),
    (
        "tags",
        FieldId::Tags,
        Ty::StrSet,
        "the key's tags plus the x-gateway-tags header",
    ),
    (
        "time.hour",
        FieldId::Hour,
        Ty::Int { min: 0, max: 23 },
        "hour of the day, UTC",
    ),
    (
        "time.weekday",
        FieldId::Weekday,
        Ty::Sym(Vocab::Weekday),
        "day of the week, UTC",
    ),
    (
        "sample",
        FieldId::Sample,
        Ty::Int { min: 0, max: 99 },
        "0–99, stable per request id",
    ),
];

impl FieldId {
    pub fn ty(&self) -> Ty {
        match self {
            FieldId::Meta(_) => Ty::Str,
            FieldId::Health(_, HealthMetric::ErrorRate) => Ty::Float { min: 0.0, max: 1.0 },
            FieldId::Health(_, HealthMetric::P50Ms) => Ty::Int { min: 0, max: MAX },
            FieldId::Health(_, HealthMetric::Up) => Ty::Bool,
            fixed => FIELDS
                .iter()
                .find(|(_, id, _, _)| id == fixed)
                .map_or(Ty::Str, |(_, _, ty, _)| *ty),
        }
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldId::Meta(k) => write!(f, "meta[{}]", crate::syntax::ast::quote(k)),
            FieldId::Health(p, m) => {
                let m = match m {
                    HealthMetric::ErrorRate => "error_rate",
                    HealthMetric::P50Ms => "p50_ms",
                    HealthMetric::Up => "up",
                };
                write!(f, "health.{p}.{m}")
            }
            fixed => {
                let name = FIELDS
                    .iter()
                    .find(|(_, id, _, _)| id == fixed)
                    .map_or("?", |(n, _, _, _)| *n);
                f.write_str(name)
            }
        }
    }
}

/// Why a field name does not resolve.
#[derive(Debug, PartialEq, Eq)]
pub enum FieldError {
    Unknown,
    /// `meta` needs a key: `meta["x-app"]`.
    MetaWithoutKey,
    /// `health.<provider>.<metric>` with a bad metric.
    UnknownMetric,
}

/// Resolves a field written as `path` (dot-separated parts) and an optional `["key"]`.
pub fn resolve(path: &[String], key: Option<&str>) -> Result<FieldId, FieldError> {
    let joined = path.join(".");
    if joined == "meta" {
        return key
            .map(|k| FieldId::Meta(k.to_owned()))
            .ok_or(FieldError::MetaWithoutKey);
    }
    if key.is_some() {
        return Err(FieldError::Unknown);
    }
    if let [h, provider, metric] = path {
        if h == "health" {
            let m = match metric.as_str() {
                "error_rate" => HealthMetric::ErrorRate,
                "p50_ms" => HealthMetric::P50Ms,
                "up" => HealthMetric::Up,
                _ => return Err(FieldError::UnknownMetric),
            };
            return Ok(FieldId::Health(provider.clone(), m));
        }
    }
    FIELDS
        .iter()
        .find(|(n, _, _, _)| *n == joined)
        .map(|(_, id, _, _)| id.clone())
        .ok_or(FieldError::Unknown)
}

impl FromStr for FieldId {
    type Err = FieldError;

    /// The inverse of `Display`.
    fn from_str(s: &str) -> Result<Self, FieldError> {
        if let Some(rest) = s
            .strip_prefix("meta[\"")
            .and_then(|r| r.strip_suffix("\"]"))
        {
            return Ok(FieldId::Meta(crate::syntax::ast::unquote(rest)));
        }
        let path: Vec<String> = s.split('.').map(str::to_owned).collect();
        resolve(&path, None)
    }
}

impl Serialize for FieldId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown field `{s}`")))
    }
}

/// Whether `code` can be a language code: two lower-case letters (ISO 639-1), or `und`.
pub fn is_lang_code(code: &str) -> bool {
    code == "und" || (code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The attributes of one request, as the gateway computes them and as `gateway-policy explain --attrs` reads
/// them (nested JSON: `{"tokens":120,"lang":"zh","key":{"team":"research"}}`). Absent values are 0, `""`,
/// false or empty; an absent provider's health is up, with no errors and 0 ms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attrs {
    pub tokens: i64,
    pub max_tokens: i64,
    /// 1 when the request does not set it (what the providers then sample at).
    #[serde(default = "unset_temperature")]
    pub temperature: f64,
    pub messages: i64,
    pub lang: String,
    pub model: String,
    pub provider: String,
    pub endpoint: String,
    pub stream: bool,
    pub has_images: bool,
    pub has_tools: bool,
    pub json_mode: bool,
    pub reasoning: bool,
    pub task: String,
    pub has_code: bool,
    /// The last user message's text: read by `contains` / `matches`, never written out (the decision log keeps
    /// the attributes, not the prompt).
    #[serde(skip_serializing)]
    pub prompt: String,
    /// The system and developer messages' text; never written out either.
    #[serde(skip_serializing)]
    pub system: String,
    pub key: KeyAttrs,
    pub team: TeamAttrs,
    pub tags: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub time: TimeAttrs,
    /// The request's arrival, milliseconds since the epoch: what `cheapest(…)` prices at (the price in force that
    /// day, the window that hour). Not an attribute rules test, and not logged (the row has its own time). Where
    /// it is 0 (a `test` case or `explain` that does not give it), a Monday in January 2026 at `time.weekday` and
    /// `time.hour` stands in.
    #[serde(skip_serializing)]
    pub now_ms: i64,
    pub sample: i64,
    /// 0–99, stable per request and independent of `sample`: picks the arm of a `split`, so a rule can
    /// test `sample < 10` and still split the traffic it takes.
    pub split_sample: i64,
    pub health: BTreeMap<String, HealthAttrs>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyAttrs {
    pub id: String,
    pub name: String,
    pub team: String,
    pub tier: String,
    pub budget: BudgetAttrs,
    pub spend: SpendAttrs,
}

/// A key's or team's budget as the policy sees it: without one, 100% is left.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetAttrs {
    pub remaining_pct: f64,
}

impl Default for BudgetAttrs {
    fn default() -> Self {
        Self {
            remaining_pct: 100.0,
        }
    }
}

/// What a key or team spent today and this month, in the reporting currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpendAttrs {
    pub day: f64,
    pub month: f64,
}

/// The key's team's budget and spend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamAttrs {
    pub budget: BudgetAttrs,
    pub spend: SpendAttrs,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeAttrs {
    pub hour: i64,
    pub weekday: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthAttrs {
    pub error_rate: f64,
    pub p50_ms: i64,
    pub up: bool,
}

impl Default for HealthAttrs {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            p50_ms: 0,
            up: true,
        }
    }
}

/// A runtime value of an attribute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrValue<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'a str),
    Set(&'a [String]),
}

impl fmt::Display for AttrValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => write!(f, "{x}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Str(s) => write!(f, "{}", crate::syntax::ast::quote(s)),
            AttrValue::Set(items) => {
                let items: Vec<String> =
                    items.iter().map(|s| crate::syntax::ast::quote(s)).collect();
                write!(f, "{{{}}}", items.join(", "))
            }
        }
    }
}

fn unset_temperature() -> f64 {
    1.0
}

const DEFAULT_HEALTH: HealthAttrs = HealthAttrs {
    error_rate: 0.0,
    p50_ms: 0,
    up: true,
};

impl Attrs {
    pub fn get(&self, field: &FieldId) -> AttrValue<'_> {
        match field {
            FieldId::Tokens => AttrValue::Int(self.tokens),
            FieldId::MaxTokens => AttrValue::Int(self.max_tokens),
            FieldId::Temperature => AttrValue::Float(self.temperature),
            FieldId::Messages => AttrValue::Int(self.messages),
            FieldId::Lang => AttrValue::Str(&self.lang),
            FieldId::Model => AttrValue::Str(&self.model),
            FieldId::Provider => AttrValue::Str(&self.provider),
            FieldId::Endpoint => AttrValue::Str(&self.endpoint),
            FieldId::Stream => AttrValue::Bool(self.stream),
            FieldId::HasImages => AttrValue::Bool(self.has_images),
            FieldId::HasTools => AttrValue::Bool(self.has_tools),
            FieldId::JsonMode => AttrValue::Bool(self.json_mode),
            FieldId::Reasoning => AttrValue::Bool(self.reasoning),
            FieldId::Task => AttrValue::Str(&self.task),
            FieldId::HasCode => AttrValue::Bool(self.has_code),
            FieldId::Prompt => AttrValue::Str(&self.prompt),
            FieldId::System => AttrValue::Str(&self.system),
            FieldId::KeyId => AttrValue::Str(&self.key.id),
            FieldId::KeyName => AttrValue::Str(&self.key.name),
            FieldId::KeyTeam => AttrValue::Str(&self.key.team),
            FieldId::KeyTier => AttrValue::Str(&self.key.tier),
            FieldId::KeyBudgetRemainingPct => AttrValue::Float(self.key.budget.remaining_pct),
            FieldId::KeySpendDay => AttrValue::Float(self.key.spend.day),
            FieldId::KeySpendMonth => AttrValue::Float(self.key.spend.month),
            FieldId::TeamBudgetRemainingPct => AttrValue::Float(self.team.budget.remaining_pct),
            FieldId::TeamSpendDay => AttrValue::Float(self.team.spend.day),
            FieldId::TeamSpendMonth => AttrValue::Float(self.team.spend.month),
            FieldId::Tags => AttrValue::Set(&self.tags),
            FieldId::Hour => AttrValue::Int(self.time.hour),
            FieldId::Weekday => AttrValue::Str(&self.time.weekday),
            FieldId::Sample => AttrValue::Int(self.sample),
            FieldId::Meta(k) => AttrValue::Str(self.meta.get(k).map_or("", String::as_str)),
            FieldId::Health(p, m) => {
                let h = self.health.get(p).unwrap_or(&DEFAULT_HEALTH);
                match m {
                    HealthMetric::ErrorRate => AttrValue::Float(h.error_rate),
                    HealthMetric::P50Ms => AttrValue::Int(h.p50_ms),
                    HealthMetric::Up => AttrValue::Bool(h.up),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_their_source_form() {
        for f in [
            FieldId::KeyTeam,
            FieldId::Meta("x-app".into()),
            FieldId::Health("deepseek".into(), HealthMetric::P50Ms),
            FieldId::Weekday,
        ] {
            assert_eq!(f.to_string().parse::<FieldId>(), Ok(f));
        }
        assert_eq!("tokenz".parse::<FieldId>(), Err(FieldError::Unknown));
        assert_eq!(
            resolve(&["meta".into()], None),
            Err(FieldError::MetaWithoutKey)
        );
    }

    #[test]
    fn nested_attribute_json_reads() {
        let a: Attrs = serde_json::from_str(
            r#"{"tokens":120,"lang":"zh","key":{"team":"research"},"meta":{"x":"y"}}"#,
        )
        .unwrap();
        assert_eq!(a.get(&FieldId::KeyTeam), AttrValue::Str("research"));
        assert_eq!(a.get(&FieldId::Meta("x".into())), AttrValue::Str("y"));
        assert_eq!(
            a.get(&FieldId::Health("openai".into(), HealthMetric::Up)),
            AttrValue::Bool(true)
        );
        assert!(serde_json::from_str::<Attrs>(r#"{"tokenz":1}"#).is_err());
    }
}
