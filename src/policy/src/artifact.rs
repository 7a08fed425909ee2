//! The compiled policy: canonical JSON that CI publishes to KV and the gateway loads. It holds the resolved
//! rules (conditions with typed values, targets with provider and model), a decision index, and the catalog.
//! `hash` is the SHA-256 of the canonical JSON with `hash` empty, so the same policy always hashes the same.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::scheme::FieldId;

/// Bumped when the artifact's shape changes incompatibly; the gateway refuses formats it does not know.
pub const FORMAT: u32 = 2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub format: u32,
    pub hash: String,
    pub sources: Vec<SourceInfo>,
    /// Checked first; any match denies.
    pub deny: Vec<CompiledRule>,
    /// In order; the first match decides.
    pub rules: Vec<CompiledRule>,
    pub default: CompiledRule,
    /// Which of `rules` can match, by attribute value, so evaluation skips the rest.
    pub index: Index,
    pub catalog: Catalog,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInfo {
    pub file: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompiledRule {
    /// The rule's name; `FILE:LINE` for an anonymous rule; `default`.
    pub id: String,
    pub loc: Loc,
    pub when: Cond,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Options::is_empty")]
    pub options: Options,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// A condition over request attributes. Leaves keep their source text for explain traces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Cond {
    True,
    Cmp {
        field: FieldId,
        cmp: Cmp,
        value: Val,
        src: String,
    },
    In {
        field: FieldId,
        values: Vec<Val>,
        negated: bool,
        src: String,
    },
    Matches {
        field: FieldId,
        pattern: String,
        src: String,
    },
    Contains {
        field: FieldId,
        value: String,
        src: String,
    },
    Not {
        cond: Box<Cond>,
    },
    And {
        all: Vec<Cond>,
    },
    Or {
        any: Vec<Cond>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

/// A typed literal (already checked against its field's type): a JSON boolean, integer, float or string.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Val {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// By the JSON value's own type (what `#[serde(untagged)]` would do, without buffering the value first: the
/// Worker links this, and serde's buffering code is large in wasm).
impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Val;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean, number or string")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
                Ok(Val::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
                Ok(Val::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Val, E> {
                i64::try_from(v)
                    .map(Val::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
                Ok(Val::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Val, E> {
                Ok(Val::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Val, E> {
                Ok(Val::Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Deny { status: u16, message: String },
    Route { steps: Vec<Step> },
}

/// One element of a fallback chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Target {
        target: Target,
    },
    /// One arm, chosen by the request's `split_sample` (0–99) against the cumulative weights.
    Split {
        arms: Vec<SplitArm>,
    },
    /// All targets, cheapest first for this request's size (catalog prices).
    Cheapest {
        targets: Vec<Target>,
    },
    /// All targets, lowest health p50 latency first; providers that are down go last.
    Fastest {
        targets: Vec<Target>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitArm {
    pub target: Target,
    pub weight: u32,
}

/// `requested` (what the client asked for) or a provider and model, written `provider:model`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Requested,
    Model { provider: String, model: String },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Requested => f.write_str("requested"),
            Target::Model { provider, model } => write!(f, "{provider}:{model}"),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "requested" {
            return Ok(Target::Requested);
        }
        match s.split_once(':') {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(Target::Model {
                provider: p.to_owned(),
                model: m.to_owned(),
            }),
            _ => Err(format!(
                "target `{s}` is not `requested` or `provider:model`"
            )),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `with …` options of a rule, passed to the dispatcher with every attempt of its plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Status patterns (`429`, `5xx`) and failure kinds (`timeout`, `connect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<String>,
    /// The rule's answers are cached this long (`cache`, `team_cache`, `shared_cache`)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ms: Option<u64>,
    /// …for each key, each team, or everyone: [`CacheScope`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
    /// The rule's request and response bodies are archived (redacted) and kept this long (`archive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_ms: Option<u64>,
}

/// Who shares a cached answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    Key,
    Team,
    Shared,
}

impl CacheScope {
    /// The option that sets it, as written in a policy.
    pub fn option(self) -> &'static str {
        match self {
            CacheScope::Key => "cache",
            CacheScope::Team => "team_cache",
            CacheScope::Shared => "shared_cache",
        }
    }
}

impl Options {
    pub fn is_empty(&self) -> bool {
        *self == Options::default()
    }
}

/// Which rules can match, attribute by attribute, so evaluation tests only the candidates: for each indexed
/// attribute, the rules that allow each value (plus `any`, the rules that do not test the attribute).
/// A request's candidates are the rules every indexed attribute allows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub fields: Vec<FieldIndex>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldIndex {
    /// A text attribute: `values[v]` are the rules (testing it) that allow `v`; `other` those that allow
    /// values not listed; `any` the rules that do not test it. Rule positions, ascending.
    Text {
        field: FieldId,
        values: BTreeMap<String, Vec<u32>>,
        other: Vec<u32>,
        any: Vec<u32>,
    },
    /// A whole-number attribute: `slots[i]` are the rules (testing it) that allow some `v` with
    /// `bounds[i-1] <= v < bounds[i]`; `any` the rules that do not test it.
    Range {
        field: FieldId,
        bounds: Vec<i64>,
        slots: Vec<Vec<u32>>,
        any: Vec<u32>,
    },
}

/// A rule as text again, from what the artifact keeps (each condition's source, the compiled steps, the
/// options), for the console and other readers: `rule cheap (30-routing.policy:6): when tokens < 500 and
/// lang == zh -> deepseek:deepseek-flash fallback siliconflow:Qwen/Qwen3-8B with timeout 8s`. Groups appear
/// expanded, as the rule runs them.
impl CompiledRule {
    pub fn text(&self, kind: &str) -> String {
        let when = match &self.when {
            Cond::True => String::new(),
            c => format!("when {} ", c.text()),
        };
        let action = match &self.action {
            Action::Deny { status, message } => format!("deny {status} {message:?}"),
            Action::Route { steps } => steps
                .iter()
                .map(Step::text)
                .collect::<Vec<_>>()
                .join(" fallback "),
        };
        let mut options = Vec::new();
        let o = &self.options;
        if let Some(ms) = o.timeout_ms {
            options.push(format!("timeout {}", duration(ms)));
        }
        if let Some(ms) = o.first_token_timeout_ms {
            options.push(format!("first_token_timeout {}", duration(ms)));
        }
        if let Some(n) = o.retries {
            options.push(format!("retries {n}"));
        }
        if !o.retry_on.is_empty() {
            options.push(format!("retry_on {{{}}}", o.retry_on.join(", ")));
        }
        if let (Some(ms), Some(scope)) = (o.cache_ms, o.cache_scope) {
            options.push(format!("{} {}", scope.option(), duration(ms)));
        }
        if let Some(ms) = o.archive_ms {
            options.push(format!("archive {}", duration(ms)));
        }
        let with = if options.is_empty() {
            String::new()
        } else {
            format!(" with {}", options.join(", "))
        };
        let loc = format!("{}:{}", self.loc.file, self.loc.line);
        match kind {
            "default" => format!("default ({loc}): -> {action}{with}"),
            _ => format!("{kind} {} ({loc}): {when}-> {action}{with}", self.id),
        }
    }
}

/// Milliseconds of a duration as a policy writes it (`30d`, `2h`, `10m`, `8s`, `250ms`); none when it is not one
/// or does not fit. Also read by the gateway's own settings that take durations (`ARCHIVE`).
pub fn parse_duration(text: &str) -> Option<u64> {
    let at = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(at);
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

/// A duration as a policy writes it (`2h`, `10m`, `8s`, `250ms`).
pub fn duration(ms: u64) -> String {
    match ms {
        m if m >= 86_400_000 && m.is_multiple_of(86_400_000) => format!("{}d", m / 86_400_000),
        m if m >= 3_600_000 && m.is_multiple_of(3_600_000) => format!("{}h", m / 3_600_000),
        m if m >= 60_000 && m.is_multiple_of(60_000) => format!("{}m", m / 60_000),
        m if m.is_multiple_of(1000) => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

impl Cond {
    /// The condition as written (each comparison's own source text).
    pub fn text(&self) -> String {
        let inner = |c: &Cond| match c {
            Cond::And { .. } | Cond::Or { .. } => format!("({})", c.text()),
            _ => c.text(),
        };
        match self {
            Cond::True => "true".into(),
            Cond::Cmp { src, .. }
            | Cond::In { src, .. }
            | Cond::Matches { src, .. }
            | Cond::Contains { src, .. } => src.clone(),
            Cond::Not { cond } => format!("not {}", inner(cond)),
            Cond::And { all } => all.iter().map(inner).collect::<Vec<_>>().join(" and "),
            Cond::Or { any } => any.iter().map(inner).collect::<Vec<_>>().join(" or "),
        }
    }
}

impl Step {
    fn text(&self) -> String {
        let list = |ts: &[Target]| {
            ts.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Step::Target { target } => target.to_string(),
            Step::Split { arms } => format!(
                "split {{ {} }}",
                arms.iter()
                    .map(|a| format!("{} {}", a.target, a.weight))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::Cheapest { targets } => format!("cheapest({})", list(targets)),
            Step::Fastest { targets } => format!("fastest({})", list(targets)),
        }
    }
}
