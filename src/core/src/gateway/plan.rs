//! Plan: the targets to try, in order. [`plan`] is a pure function of the request's attributes, the policy
//! (or the built-in default: what was requested), its catalog, the configured providers and the cooldowns; it
//! records every target it left out or moved last, and why.

use gateway_policy::artifact::Options;
use gateway_policy::catalog::Catalog;
use gateway_policy::scheme::FieldId;
use gateway_policy::{Attrs, Outcome, Policy, Target as PolicyTarget};

use super::request::ApiCall;
use super::resolve::{Requested, Target};
use super::Gateway;
use crate::attributes::{request_attrs, RequestFacts};
use crate::auth::KeyRecord;
use crate::error::{ApiError, ErrorCode};
use crate::http::GatewayRequest;
use crate::limits::Standing;
use crate::ports::Host;
use crate::providers::Providers;
use crate::state::BUILTIN_POLICY;

/// What the plan stage decided: which policy and rule, what the policy saw, and the attempts to make.
pub(super) struct AttemptPlan<'c> {
    /// The deciding policy's hash ([`BUILTIN_POLICY`] without a published policy) and rule.
    pub policy: String,
    pub rule: String,
    /// The attributes the policy decided on (`None` with the built-in default).
    pub attrs: Option<Attrs>,
    pub targets: Vec<Target<'c>>,
    pub skipped: Vec<Skipped>,
    pub options: Options,
    /// Why nothing is tried: the rule denies the request, or no target can be served.
    pub refusal: Option<ApiError>,
}

/// A target the plan left out, or moved last.
pub(super) struct Skipped {
    pub target: String,
    pub why: Why,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Why {
    NotEmbeddings,
    NoImageOutput,
    NoAudioInput,
    NoAudioOutput,
    NoImageInput,
    NoToolCalls,
    NoJsonMode,
    ContextWindow {
        needed: i64,
        window: u64,
    },
    /// Failing lately: tried only after the others.
    CoolingDown,
    /// Outside the key's or its team's allow-list.
    NotAllowed,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::NotEmbeddings => f.write_str("not an embeddings model"),
            Why::NoImageOutput => f.write_str("makes no images"),
            Why::NoAudioInput => f.write_str("transcribes no audio"),
            Why::NoAudioOutput => f.write_str("speaks no audio"),
            Why::NoImageInput => f.write_str("no image input"),
            Why::NoToolCalls => f.write_str("no tool calls"),
            Why::NoJsonMode => f.write_str("no JSON mode"),
            Why::ContextWindow { needed, window } => write!(
                f,
                "~{needed} tokens exceed its {window}-token context window"
            ),
            Why::CoolingDown => f.write_str("cooling down, tried last"),
            Why::NotAllowed => f.write_str("not allowed for this key"),
        }
    }
}

impl<'c> AttemptPlan<'c> {
    /// The plan, or why nothing can be tried.
    pub(super) fn ready(self) -> Result<Self, ApiError> {
        match self.refusal {
            Some(err) => Err(err),
            None => Ok(self),
        }
    }

    /// The log row's `decision_attrs`: what the decision saw (never prompt text) and the plan it made.
    pub(super) fn decision_json(&self) -> Option<String> {
        let attrs = self.attrs.as_ref()?;
        let plan: Vec<String> = self.targets.iter().map(Target::name).collect();
        let skipped: Vec<String> = self
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.target, s.why))
            .collect();
        Some(serde_json::json!({"attrs": attrs, "plan": plan, "skipped": skipped}).to_string())
    }
}

impl<H: Host> Gateway<H> {
    /// Gathers what the plan depends on (the request's attributes with the latest health, the cooldowns) and
    /// plans with the request's policy and provider table.
    pub(super) fn plan<'c>(
        &self,
        req: &GatewayRequest,
        (key, call, standings): (&KeyRecord, &ApiCall, Standings),
        requested: Requested<'c>,
        request_id: &str,
        (policy, providers): (Option<&Policy>, &'c Providers),
    ) -> AttemptPlan<'c> {
        let attrs = policy.map(|p| {
            let mut attrs = request_attrs(&RequestFacts {
                classify: p.tests(&FieldId::Task) || p.tests(&FieldId::HasCode),
                body: call.body(),
                headers: &req.headers,
                key: Some(key),
                endpoint: call.endpoint(),
                provider: &requested.provider,
                model: &requested.model,
                now_ms: self.host.now_ms(),
                id_hash: fnv1a(request_id.as_bytes()),
            });
            attrs.health = (*self.shared.health()).clone();
            let (key, team) = standings;
            if let Some(s) = key {
                attrs.key.budget.remaining_pct = s.budget_remaining_pct();
                attrs.key.spend = spend(&s);
            }
            if let Some(s) = team {
                attrs.team.budget.remaining_pct = s.budget_remaining_pct();
                attrs.team.spend = spend(&s);
            }
            attrs
        });
        let now = self.host.now_ms();
        let cooling = |t: &Target<'_>| self.shared.cooling(&t.name(), now);
        plan(policy, attrs, requested, providers, cooling)
    }
}

/// Where the key and its team stand on their limits (read only when the policy tests their budgets).
pub(super) type Standings = (Option<Standing>, Option<Standing>);

/// The budget attributes' spend: pico-units of the reporting currency as a number of its units.
fn spend(s: &Standing) -> gateway_policy::scheme::SpendAttrs {
    gateway_policy::scheme::SpendAttrs {
        day: s.day_pico as f64 / 1e12,
        month: s.month_pico as f64 / 1e12,
    }
}

/// Whether a policy tests a key's or team's budget or spend (then admission's standing is read first).
pub(super) fn tests_budgets(policy: &Policy) -> bool {
    [
        FieldId::KeyBudgetRemainingPct,
        FieldId::KeySpendDay,
        FieldId::KeySpendMonth,
        FieldId::TeamBudgetRemainingPct,
        FieldId::TeamSpendDay,
        FieldId::TeamSpendMonth,
    ]
    .iter()
    .any(|f| policy.tests(f))
}

/// The targets to try: the policy's decision for `attrs`, or, without a policy, what was requested. Targets
/// whose provider has no settings here are left out, and so are those the catalog says cannot take the request
/// (unless none can: then the providers say so themselves); targets cooling down go last.
pub(super) fn plan<'c>(
    policy: Option<&Policy>,
    attrs: Option<Attrs>,
    requested: Requested<'c>,
    providers: &'c Providers,
    cooling: impl Fn(&Target<'c>) -> bool,
) -> AttemptPlan<'c> {
    let (Some(policy), Some(attrs)) = (policy, attrs) else {
        let (targets, refusal) = match requested.target {
            Ok(t) => (vec![t], None),
            Err(e) => (Vec::new(), Some(e)),
        };
        return AttemptPlan {
            policy: BUILTIN_POLICY.into(),
            rule: "default".into(),
            attrs: None,
            targets,
            skipped: Vec::new(),
            options: Options::default(),
            refusal,
        };
    };
    let decision = policy.decide(&attrs);
    let mut plan = AttemptPlan {
        policy: policy.hash().to_owned(),
        rule: decision.rule,
        attrs: None,
        targets: Vec::new(),
        skipped: Vec::new(),
        options: Options::default(),
        refusal: None,
    };
    let attempts = match decision.outcome {
        Outcome::Deny { status, message } => {
            plan.refusal = Some(ApiError::new(ErrorCode::PolicyDenied(status), message));
            plan.attrs = Some(attrs);
            return plan;
        }
        Outcome::Route { attempts, options } => {
            plan.options = options;
            attempts
        }
    };
    let mut targets: Vec<Target<'c>> = Vec::new();
    for target in attempts {
        let next = match target {
            PolicyTarget::Requested => requested.target.as_ref().ok().cloned(),
            // A target whose provider this gateway has no settings for is skipped.
            PolicyTarget::Model { provider, model } => providers
                .get(&provider)
                .map(|provider| Target { provider, model }),
        };
        if let Some(n) = next.filter(|n| {
            !targets
                .iter()
                .any(|t| t.provider.name == n.provider.name && t.model == n.model)
        }) {
            targets.push(n);
        }
    }
    let catalog = &policy.artifact().catalog;
    let (capable, incapable): (Vec<_>, Vec<_>) = targets
        .into_iter()
        .map(|t| {
            let why = incapable(catalog, &t, &attrs);
            (t, why)
        })
        .partition(|(_, why)| why.is_none());
    // When no target can take the request by the catalog, the providers say so themselves.
    let targets: Vec<Target<'c>> = if capable.is_empty() {
        incapable.into_iter().map(|(t, _)| t).collect()
    } else {
        for (t, why) in incapable {
            if let Some(why) = why {
                plan.skipped.push(Skipped {
                    target: t.name(),
                    why,
                });
            }
        }
        capable.into_iter().map(|(t, _)| t).collect()
    };
    let (mut warm, cold): (Vec<_>, Vec<_>) = targets.into_iter().partition(|t| !cooling(t));
    plan.skipped.extend(cold.iter().map(|t| Skipped {
        target: t.name(),
        why: Why::CoolingDown,
    }));
    warm.extend(cold);
    if warm.is_empty() {
        plan.refusal = Some(requested.target.err().unwrap_or_else(|| {
            ApiError::new(
                ErrorCode::NoProviderConfigured,
                format!(
                    "rule `{}` routes only to providers this gateway has no settings for",
                    plan.rule
                ),
            )
        }));
    }
    plan.targets = warm;
    plan.attrs = Some(attrs);
    plan
}

/// Why a model cannot take this request by the catalog (`None` when it can, or the catalog does not know it).
fn incapable(catalog: &Catalog, target: &Target<'_>, attrs: &Attrs) -> Option<Why> {
    let m = catalog.model(&target.provider.name, &target.model)?;
    match attrs.endpoint.as_str() {
        "embeddings" => return (!m.embeddings).then_some(Why::NotEmbeddings),
        "images" => return (!m.image_output).then_some(Why::NoImageOutput),
        "transcriptions" => return (!m.audio_in).then_some(Why::NoAudioInput),
        "speech" => return (!m.audio_out).then_some(Why::NoAudioOutput),
        _ => {}
    }
    if attrs.has_images && !m.vision {
        return Some(Why::NoImageInput);
    }
    if attrs.has_tools && !m.tools {
        return Some(Why::NoToolCalls);
    }
    if attrs.json_mode && !m.json {
        return Some(Why::NoJsonMode);
    }
    let needed = attrs.tokens.max(0) + attrs.max_tokens.max(0);
    match m.context {
        Some(window) if needed as u64 > window => Some(Why::ContextWindow { needed, window }),
        _ => None,
    }
}

/// FNV-1a: a stable 64-bit hash (request ids to `sample`), the same on every host.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
