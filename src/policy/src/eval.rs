//! Evaluation of a compiled policy: attributes in, decision out. This is what runs on every request, in the
//! Worker and natively, so it depends on nothing but serde, sha2 and regex-lite.

use std::collections::{HashMap, HashSet};

use regex_lite::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::artifact::*;
use crate::prices::{PriceBook, Tokens};
use crate::scheme::{AttrValue, Attrs, FieldId};

/// A loaded, ready-to-evaluate policy: the artifact plus its compiled regular expressions.
#[derive(Debug)]
pub struct Policy {
    pub artifact: Artifact,
    /// The artifact's price table, ready to price requests (`cheapest(…)`, and the gateway's cost of each one).
    prices: std::sync::Arc<PriceBook>,
    regexes: Vec<(String, Regex)>,
    index: Bitsets,
    /// Every attribute some condition tests: an attribute nobody tests need not be computed.
    tested: HashSet<FieldId>,
}

/// The artifact's index as bitsets over rule positions: one AND per indexed attribute narrows the candidates.
#[derive(Debug, Default)]
struct Bitsets {
    words: usize,
    fields: Vec<FieldBits>,
}

#[derive(Debug)]
enum FieldBits {
    Text {
        field: FieldId,
        values: HashMap<String, Vec<u64>>,
        other: Vec<u64>,
    },
    Range {
        field: FieldId,
        bounds: Vec<i64>,
        slots: Vec<Vec<u64>>,
    },
}

impl Bitsets {
    fn build(index: &Index, rules: usize) -> Result<Self, LoadError> {
        let words = rules.div_ceil(64);
        let bits = |lists: &[&Vec<u32>]| -> Result<Vec<u64>, LoadError> {
            let mut set = vec![0u64; words];
            for list in lists {
                for &r in *list {
                    let r = r as usize;
                    if r >= rules {
                        return Err(LoadError(format!(
                            "index names rule {r}, but there are {rules}"
                        )));
                    }
                    set[r / 64] |= 1 << (r % 64);
                }
            }
            Ok(set)
        };
        let mut fields = Vec::new();
        for f in &index.fields {
            fields.push(match f {
                FieldIndex::Text {
                    field,
                    values,
                    other,
                    any,
                } => {
                    let mut map = HashMap::new();
                    for (v, list) in values {
                        map.insert(v.clone(), bits(&[list, any])?);
                    }
                    FieldBits::Text {
                        field: field.clone(),
                        values: map,
                        other: bits(&[other, any])?,
                    }
                }
                FieldIndex::Range {
                    field,
                    bounds,
                    slots,
                    any,
                } => {
                    if slots.len() != bounds.len() + 1 || !bounds.windows(2).all(|w| w[0] < w[1]) {
                        return Err(LoadError(format!("index of `{field}` is malformed")));
                    }
                    let slots = slots
                        .iter()
                        .map(|s| bits(&[s, any]))
                        .collect::<Result<_, _>>()?;
                    FieldBits::Range {
                        field: field.clone(),
                        bounds: bounds.clone(),
                        slots,
                    }
                }
            });
        }
        Ok(Self { words, fields })
    }
}

/// What the policy decided for one request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The id of the deciding rule (`default` when no rule matched).
    pub rule: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Deny {
        status: u16,
        message: String,
    },
    /// The ordered attempt plan: try each target in turn, with the rule's options.
    Route {
        attempts: Vec<Target>,
        #[serde(skip_serializing_if = "Options::is_empty")]
        options: Options,
    },
}

impl Decision {
    /// The plan as `provider:model` strings (`requested` resolved when the request named a provider).
    pub fn chain(&self) -> Vec<String> {
        match &self.outcome {
            Outcome::Route { attempts, .. } => attempts.iter().map(ToString::to_string).collect(),
            Outcome::Deny { .. } => Vec::new(),
        }
    }
}

/// Why a compiled policy could not be loaded. A gateway keeps its current policy when this happens.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits on a `matches` pattern, enforced when checking and again when loading.
pub const MAX_REGEX_LEN: usize = 1_000;
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Why a `matches` pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    #[error("the pattern is {0} characters long; the limit is {MAX_REGEX_LEN}")]
    TooLong(usize),
    #[error("{0}")]
    Invalid(String),
}

pub fn compile_regex(pattern: &str) -> Result<Regex, RegexError> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(RegexError::TooLong(pattern.len()));
    }
    regex_lite::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| RegexError::Invalid(e.to_string()))
}

/// The SHA-256 (hex) of the artifact's canonical JSON with an empty `hash`.
pub fn content_hash(artifact: &Artifact) -> String {
    let mut body = artifact.clone();
    body.hash = String::new();
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    crate::hex(&Sha256::digest(&bytes))
}

impl Policy {
    /// Parses and verifies a compiled policy (format, hash, regexes).
    pub fn from_json(json: &str) -> Result<Self, LoadError> {
        let artifact: Artifact = serde_json::from_str(json)
            .map_err(|e| LoadError(format!("not a compiled policy: {e}")))?;
        Self::new(artifact)
    }

    pub fn new(artifact: Artifact) -> Result<Self, LoadError> {
        if artifact.format != FORMAT {
            return Err(LoadError(format!(
                "compiled policy format {} is not supported (expected {FORMAT})",
                artifact.format
            )));
        }
        let expected = content_hash(&artifact);
        if artifact.hash != expected {
            return Err(LoadError(format!(
                "hash mismatch: the artifact says {}, its content hashes to {expected}",
                artifact.hash
            )));
        }
        let mut regexes = Vec::new();
        let mut seen = HashSet::new();
        let mut tested = HashSet::new();
        let all = artifact
            .deny
            .iter()
            .chain(&artifact.rules)
            .chain(std::iter::once(&artifact.default));
        for rule in all {
            fields(&rule.when, &mut tested);
            for pattern in patterns(&rule.when) {
                if seen.insert(pattern.to_owned()) {
                    let re = compile_regex(pattern)
                        .map_err(|e| LoadError(format!("rule `{}`: {e}", rule.id)))?;
                    regexes.push((pattern.to_owned(), re));
                }
            }
        }
        let index = Bitsets::build(&artifact.index, artifact.rules.len())?;
        Ok(Self {
            prices: std::sync::Arc::new(PriceBook::new(&artifact.catalog.prices)),
            artifact,
            regexes,
            index,
            tested,
        })
    }

    /// Whether some condition of the policy tests `field`.
    pub fn tests(&self, field: &FieldId) -> bool {
        self.tested.contains(field)
    }

    pub fn hash(&self) -> &str {
        &self.artifact.hash
    }

    pub fn prices(&self) -> &std::sync::Arc<PriceBook> {
        &self.prices
    }

    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// Decides, testing only the rules the index leaves as candidates.
    pub fn decide(&self, attrs: &Attrs) -> Decision {
        let a = &self.artifact;
        for rule in &a.deny {
            if self.test(&rule.when, attrs) {
                return self.outcome(rule, attrs);
            }
        }
        let n = a.rules.len();
        let words = self.index.words;
        // Up to 256 rules the candidate set lives on the stack.
        let mut small = [0u64; 4];
        let mut large = Vec::new();
        let mask: &mut [u64] = if words <= small.len() {
            &mut small[..words]
        } else {
            large.resize(words, 0);
            &mut large
        };
        for (w, m) in mask.iter_mut().enumerate() {
            *m = if (w + 1) * 64 <= n {
                !0
            } else {
                (1u64 << (n % 64)) - 1
            };
        }
        for f in &self.index.fields {
            let allowed = match f {
                FieldBits::Text {
                    field,
                    values,
                    other,
                } => match attrs.get(field) {
                    AttrValue::Str(s) => values.get(s).unwrap_or(other),
                    _ => other,
                },
                FieldBits::Range {
                    field,
                    bounds,
                    slots,
                } => {
                    let v = match attrs.get(field) {
                        AttrValue::Int(i) => i,
                        _ => 0,
                    };
                    match slots.get(bounds.partition_point(|b| *b <= v)) {
                        Some(s) => s,
                        None => continue,
                    }
                }
            };
            for (m, a) in mask.iter_mut().zip(allowed) {
                *m &= a;
            }
        }
        for (w, word) in mask.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(rule) = a.rules.get(i) {
                    if self.test(&rule.when, attrs) {
                        return self.outcome(rule, attrs);
                    }
                }
            }
        }
        self.outcome(&a.default, attrs)
    }

    /// Decides by testing every rule in order: the reference the index must agree with.
    pub fn decide_linear(&self, attrs: &Attrs) -> Decision {
        let a = &self.artifact;
        let rule = a
            .deny
            .iter()
            .find(|r| self.test(&r.when, attrs))
            .or_else(|| a.rules.iter().find(|r| self.test(&r.when, attrs)))
            .unwrap_or(&a.default);
        self.outcome(rule, attrs)
    }

    /// Decides and records, for every rule tested, each condition's value and result.
    pub fn explain(&self, attrs: &Attrs) -> (Decision, Vec<RuleTrace>) {
        let a = &self.artifact;
        let mut trace = Vec::new();
        for (kind, rules) in [("deny", &a.deny), ("rule", &a.rules)] {
            for rule in rules {
                let mut checks = Vec::new();
                let matched = self.test_traced(&rule.when, attrs, &mut checks);
                trace.push(RuleTrace {
                    id: rule.id.clone(),
                    kind,
                    loc: rule.loc.clone(),
                    matched,
                    checks,
                });
                if matched {
                    return (self.outcome(rule, attrs), trace);
                }
            }
        }
        trace.push(RuleTrace {
            id: a.default.id.clone(),
            kind: "default",
            loc: a.default.loc.clone(),
            matched: true,
            checks: vec![],
        });
        (self.outcome(&a.default, attrs), trace)
    }

    fn outcome(&self, rule: &CompiledRule, attrs: &Attrs) -> Decision {
        let outcome = match &rule.action {
            Action::Deny { status, message } => Outcome::Deny {
                status: *status,
                message: message.clone(),
            },
            Action::Route { steps } => Outcome::Route {
                attempts: plan(steps, attrs, &self.prices),
                options: rule.options.clone(),
            },
        };
        Decision {
            rule: rule.id.clone(),
            outcome,
        }
    }

    fn regex(&self, pattern: &str) -> Option<&Regex> {
        self.regexes
            .iter()
            .find(|(p, _)| p == pattern)
            .map(|(_, r)| r)
    }

    pub fn test(&self, cond: &Cond, attrs: &Attrs) -> bool {
        match cond {
            Cond::True => true,
            Cond::Not { cond } => !self.test(cond, attrs),
            Cond::And { all } => all.iter().all(|c| self.test(c, attrs)),
            Cond::Or { any } => any.iter().any(|c| self.test(c, attrs)),
            leaf => self.leaf(leaf, attrs),
        }
    }

    fn test_traced(&self, cond: &Cond, attrs: &Attrs, checks: &mut Vec<Check>) -> bool {
        match cond {
            Cond::True => true,
            Cond::Not { cond } => !self.test_traced(cond, attrs, checks),
            // Every operand is traced (no short-circuit), so the trace shows each condition's value.
            Cond::And { all } => {
                let results: Vec<bool> = all
                    .iter()
                    .map(|c| self.test_traced(c, attrs, checks))
                    .collect();
                results.into_iter().all(|b| b)
            }
            Cond::Or { any } => {
                let results: Vec<bool> = any
                    .iter()
                    .map(|c| self.test_traced(c, attrs, checks))
                    .collect();
                results.into_iter().any(|b| b)
            }
            leaf => {
                let result = self.leaf(leaf, attrs);
                let (field, src) = match leaf {
                    Cond::Cmp { field, src, .. }
                    | Cond::In { field, src, .. }
                    | Cond::Matches { field, src, .. }
                    | Cond::Contains { field, src, .. } => (field, src),
                    _ => return result,
                };
                checks.push(Check {
                    condition: src.clone(),
                    value: attrs.get(field).to_string(),
                    result,
                });
                result
            }
        }
    }

    fn leaf(&self, cond: &Cond, attrs: &Attrs) -> bool {
        match cond {
            Cond::Cmp {
                field, cmp, value, ..
            } => compare(attrs.get(field), *cmp, value),
            Cond::In {
                field,
                values,
                negated,
                ..
            } => {
                let v = attrs.get(field);
                values.iter().any(|x| compare(v, Cmp::Eq, x)) != *negated
            }
            Cond::Matches { field, pattern, .. } => match (attrs.get(field), self.regex(pattern)) {
                (AttrValue::Str(s), Some(re)) => re.is_match(s),
                _ => false,
            },
            Cond::Contains { field, value, .. } => match attrs.get(field) {
                AttrValue::Str(s) => s.contains(value.as_str()),
                AttrValue::Set(items) => items.iter().any(|i| i == value),
                _ => false,
            },
            _ => self.test(cond, attrs),
        }
    }
}

/// Every attribute a condition tests, added to `out`.
fn fields(cond: &Cond, out: &mut HashSet<FieldId>) {
    match cond {
        Cond::Cmp { field, .. }
        | Cond::In { field, .. }
        | Cond::Matches { field, .. }
        | Cond::Contains { field, .. } => {
            out.insert(field.clone());
        }
        Cond::Not { cond } => fields(cond, out),
        Cond::And { all: cs } | Cond::Or { any: cs } => cs.iter().for_each(|c| fields(c, out)),
        _ => {}
    }
}

/// Every `matches` pattern in a condition.
pub fn patterns(cond: &Cond) -> Vec<&str> {
    let mut out = Vec::new();
    fn walk<'a>(c: &'a Cond, out: &mut Vec<&'a str>) {
        match c {
            Cond::Matches { pattern, .. } => out.push(pattern),
            Cond::Not { cond } => walk(cond, out),
            Cond::And { all: cs } | Cond::Or { any: cs } => cs.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(cond, &mut out);
    out
}

pub fn compare(v: AttrValue<'_>, cmp: Cmp, lit: &Val) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, lit) {
        (AttrValue::Int(a), Val::Int(b)) => a.cmp(b),
        (AttrValue::Int(a), Val::Float(b)) => match (a as f64).partial_cmp(b) {
            Some(o) => o,
            None => return false,
        },
        (AttrValue::Float(a), Val::Float(b)) => match a.partial_cmp(b) {
            Some(o) => o,
            None => return false,
        },
        (AttrValue::Float(a), Val::Int(b)) => match a.partial_cmp(&(*b as f64)) {
            Some(o) => o,
            None => return false,
        },
        (AttrValue::Bool(a), Val::Bool(b)) => a.cmp(b),
        (AttrValue::Str(a), Val::Str(b)) => a.cmp(b.as_str()),
        _ => return false,
    };
    match cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Ne => ord != Ordering::Equal,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
    }
}

/// Expands a chain into the ordered attempts for this request, without repeating a target.
pub fn plan(steps: &[Step], attrs: &Attrs, prices: &PriceBook) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    for step in steps {
        match step {
            Step::Target { target } => targets.push(target.clone()),
            Step::Split { arms } => {
                let sample = attrs.split_sample.clamp(0, 99) as u32;
                let mut acc = 0;
                let chosen = arms.iter().find(|arm| {
                    acc += arm.weight;
                    sample < acc
                });
                if let Some(arm) = chosen.or(arms.last()) {
                    targets.push(arm.target.clone());
                }
            }
            Step::Cheapest { targets: ts } => {
                // Unpriced targets last, in the order written (the sort is stable).
                let mut ranked: Vec<(Option<u128>, &Target)> =
                    ts.iter().map(|t| (cost(t, attrs, prices), t)).collect();
                ranked.sort_by_key(|(cost, _)| cost.unwrap_or(u128::MAX));
                targets.extend(ranked.into_iter().map(|(_, t)| t.clone()));
            }
            Step::Fastest { targets: ts } => {
                let mut ranked: Vec<((u8, i64), &Target)> =
                    ts.iter().map(|t| (speed(t, attrs), t)).collect();
                ranked.sort_by_key(|(k, _)| *k);
                targets.extend(ranked.into_iter().map(|(_, t)| t.clone()));
            }
        }
    }
    let mut plan: Vec<Target> = Vec::with_capacity(targets.len());
    for t in targets {
        let t = resolve_requested(t, attrs);
        if !plan.contains(&t) {
            plan.push(t);
        }
    }
    plan
}

/// `requested` becomes what the request named, when it named a provider.
fn resolve_requested(t: Target, attrs: &Attrs) -> Target {
    match t {
        Target::Requested if !attrs.provider.is_empty() && !attrs.model.is_empty() => {
            let model = attrs
                .model
                .strip_prefix(&format!("{}/", attrs.provider))
                .unwrap_or(&attrs.model);
            Target::Model {
                provider: attrs.provider.clone(),
                model: model.to_owned(),
            }
        }
        t => t,
    }
}

/// What this request would cost on a target, in pico-dollars, at the prices the gateway bills with: the price in
/// force when it arrived (its date, its hour's window, its prompt's tier), its prompt tokens at the input price and
/// `max_tokens` (500 when unset) at the output price, converted from the provider's currency at the table's rate.
/// `None` when the table has no price for it.
fn cost(t: &Target, attrs: &Attrs, prices: &PriceBook) -> Option<u128> {
    let Target::Model { provider, model } = t else {
        return None;
    };
    let prompt = attrs.tokens.max(0) as u64;
    let quote = prices.quote(provider, model, pricing_time(attrs), prompt)?;
    let completion = if attrs.max_tokens > 0 {
        attrs.max_tokens as u64
    } else {
        500
    };
    let cost = quote.cost(Tokens {
        prompt,
        completion,
        ..Tokens::default()
    });
    prices.convert(cost.pico, &cost.currency, "USD")
}

/// When the request is priced: its arrival, or (a `test` case, `explain`) Monday 2026-01-05 plus its weekday and
/// hour.
fn pricing_time(attrs: &Attrs) -> i64 {
    if attrs.now_ms != 0 {
        return attrs.now_ms;
    }
    const MONDAY_2026_01_05_MS: i64 = 1_767_571_200_000;
    let day = crate::scheme::WEEKDAYS
        .iter()
        .position(|d| *d == attrs.time.weekday)
        .unwrap_or(0) as i64;
    MONDAY_2026_01_05_MS + (day * 24 + attrs.time.hour.clamp(0, 23)) * 3_600_000
}

/// Sort key: providers that are up and measured first (by p50), then unmeasured, then down.
fn speed(t: &Target, attrs: &Attrs) -> (u8, i64) {
    let provider = match t {
        Target::Model { provider, .. } => provider.as_str(),
        Target::Requested => attrs.provider.as_str(),
    };
    match attrs.health.get(provider) {
        Some(h) if !h.up => (2, 0),
        Some(h) if h.p50_ms > 0 => (0, h.p50_ms),
        _ => (1, 0),
    }
}

/// One rule as `explain` saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleTrace {
    pub id: String,
    pub kind: &'static str,
    pub loc: Loc,
    pub matched: bool,
    pub checks: Vec<Check>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub condition: String,
    pub value: String,
    pub result: bool,
}
