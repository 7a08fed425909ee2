//! Limit: the key's and its team's allow-lists, limits and budgets ([`crate::limits`]). Before the policy runs, a
//! requested model outside an allow-list is refused (403); after it, targets outside one are skipped. Admission
//! then reserves what the request may use in every scope that has limits (the key's, its team's), all or none;
//! the log row's future settles the reservations with what the request used ([`settle`]).

use gateway_policy::prices::Tokens;

use super::cost::Pricing;
use super::plan::{AttemptPlan, Skipped, Why};
use super::record::Trace;
use super::request::ApiCall;
use super::resolve::Requested;
use super::Gateway;
use crate::auth::{self, KeyRecord, TeamRecord};
use crate::error::{ApiError, ErrorCode};
use crate::limits::{self, Admission, Ask, Limit, Refusal, ScopeAsk, Standing, Used};
use crate::log::LogRecord;
use crate::ports::{Host, LimitStore};

/// The key and its team, as admission sees them.
pub(super) struct Holder<'a> {
    pub key: &'a KeyRecord,
    pub team: Option<TeamRecord>,
}

impl Holder<'_> {
    /// Whether both allow-lists let the request use `provider/model`.
    pub(super) fn allows(&self, provider: &str, model: &str) -> bool {
        auth::allowed(&self.key.allow, provider, model)
            && self
                .team
                .as_ref()
                .is_none_or(|t| auth::allowed(&t.allow, provider, model))
    }

    fn has_limits(&self) -> bool {
        !self.key.limits.is_empty() || self.team.as_ref().is_some_and(|t| !t.limits.is_empty())
    }
}

/// The most output tokens one generated image is billed as (OpenAI's GPT image models: 6,240 for a high-quality
/// 1536x1024 picture; Gemini: 1,290), with room to spare: what an image request reserves against budgets
/// before its real usage settles it.
const IMAGE_OUTPUT_TOKENS: u64 = 8192;

/// The longest an upload of `bytes` can play, for reservations before the provider says how long it was: at
/// 16 kbit/s, below what speech codecs are used at (MP3 and AAC speech run from 32 kbit/s, WAV far above).
fn worst_audio_ms(bytes: usize) -> u64 {
    bytes as u64 / 2
}

impl<H: Host> Gateway<H> {
    /// The key's team record (cached like key records), when the key names one; a team that does not exist has
    /// no limits of its own.
    pub(super) async fn find_team(&self, key: &KeyRecord) -> Result<Option<TeamRecord>, ApiError> {
        let Some(name) = &key.team else {
            return Ok(None);
        };
        let now = self.host.now_ms();
        let record = match self.shared.cached_team(name, now, self.config.key_cache_ms) {
            Some(cached) => cached,
            None => {
                let found = self.host.find_team(name).await.map_err(|e| {
                    ApiError::new(ErrorCode::KeyStoreUnavailable, format!("team store: {e}"))
                })?;
                self.shared.cache_team(name, found.clone(), now);
                found
            }
        };
        Ok(self.shared.latest_team(name, record))
    }

    /// Reserves what the planned request may use in the key's and the team's scopes, or refuses it (429) saying
    /// which limit; the reservations travel with the log row. Puts the `x-ratelimit-*` headers in the trace.
    pub(super) async fn reserve(
        &self,
        holder: &Holder<'_>,
        (call, plan, pricing): (&ApiCall, &AttemptPlan<'_>, &Pricing),
        trace: &mut Trace,
    ) -> Result<(), ApiError> {
        if !holder.has_limits() {
            return Ok(());
        }
        let now = self.host.now_ms() as i64;
        let ask = self.ask(call, plan, pricing, trace.prompt_estimate(), now);
        let asks = self.scopes(holder, pricing, ask)?;
        if asks.is_empty() {
            return Ok(());
        }
        let admission =
            self.host.reserve(asks).await.map_err(|e| {
                ApiError::new(ErrorCode::KeyStoreUnavailable, format!("limits: {e}"))
            })?;
        match admission {
            Admission::Admitted(granted) => {
                let standings: Vec<Standing> = granted.iter().map(|(_, s)| *s).collect();
                trace.limit_headers(rate_headers(&standings, now));
                trace.hold(granted.into_iter().map(|(h, _)| h).collect());
                Ok(())
            }
            Admission::Refused {
                scope,
                refusal,
                standing,
            } => {
                trace.limit_headers(rate_headers(&[standing], now));
                trace.limited(&scope, refusal.limit);
                Err(refused(
                    &scope,
                    refusal,
                    &standing,
                    now,
                    &self.config.reporting_currency,
                ))
            }
        }
    }

    /// What the request asks: one request, its prompt's estimate plus its completion cap in tokens, and the
    /// costliest of the plan's targets at those tokens (so a fallback to a pricier target stays inside).
    fn ask(
        &self,
        call: &ApiCall,
        plan: &AttemptPlan<'_>,
        pricing: &Pricing,
        prompt: u64,
        now: i64,
    ) -> Ask {
        // The most each kind of request can be billed for: the answer's tokens, images, audio, characters.
        let (completion, images, audio_ms, characters) = match call {
            ApiCall::Chat(c) => {
                let cap = c
                    .body
                    .get("max_completion_tokens")
                    .or_else(|| c.body.get("max_tokens"))
                    .and_then(serde_json::Value::as_u64);
                (cap.unwrap_or(self.config.limit_max_tokens), 0, 0, 0)
            }
            ApiCall::Embeddings(_) => (0, 0, 0, 0),
            // Models that bill pictures as output tokens (GPT image, Gemini) reserve the most one can take.
            ApiCall::Images(i) => (i.n.saturating_mul(IMAGE_OUTPUT_TOKENS), i.n, 0, 0),
            ApiCall::Transcription(t) => (
                self.config.limit_max_tokens,
                0,
                worst_audio_ms(t.call.file.bytes.len()),
                0,
            ),
            ApiCall::Speech(s) => (0, 0, 0, s.characters),
        };
        let reporting = &self.config.reporting_currency;
        let pico = plan
            .targets
            .iter()
            .filter_map(|t| {
                let quote = pricing
                    .book
                    .quote(&t.provider.name, &t.model, now, prompt)?;
                let cost = quote.cost(Tokens {
                    prompt,
                    completion,
                    images,
                    audio_ms,
                    characters,
                    ..Tokens::default()
                });
                pricing.book.convert(cost.pico, &cost.currency, reporting)
            })
            .max()
            .unwrap_or(0);
        Ask {
            now_ms: now,
            tokens: prompt.saturating_add(completion),
            pico,
            stream: call.stream(),
        }
    }

    fn scopes(
        &self,
        holder: &Holder<'_>,
        pricing: &Pricing,
        ask: Ask,
    ) -> Result<Vec<ScopeAsk>, ApiError> {
        let mut asks = Vec::with_capacity(2);
        let key = &holder.key;
        if !key.limits.is_empty() {
            asks.push(self.scope_ask(
                format!("key:{}", key.id),
                &key.limits,
                &pricing.book,
                ask,
            )?);
        }
        if let Some(team) = holder.team.as_ref().filter(|t| !t.limits.is_empty()) {
            asks.push(self.scope_ask(
                format!("team:{}", team.name),
                &team.limits,
                &pricing.book,
                ask,
            )?);
        }
        Ok(asks)
    }

    /// What `ask` asks of `scope` under `limits` (their budgets converted with `book` to the reporting currency).
    pub(super) fn scope_ask(
        &self,
        scope: String,
        limits: &limits::Limits,
        book: &gateway_policy::prices::PriceBook,
        ask: Ask,
    ) -> Result<ScopeAsk, ApiError> {
        let reporting = &self.config.reporting_currency;
        let limits = limits
            .resolve(book, reporting)
            .map_err(|e| ApiError::internal(format!("{scope}: {e}")))?;
        Ok(ScopeAsk {
            scope,
            limits,
            zone: self.config.limit_zone,
            ask,
            currency: reporting.clone(),
        })
    }

    /// A requested model outside the key's or team's allow-list is refused before the policy runs: one that
    /// names its provider (`openai/gpt-5.4`), or any without a policy (then it is what would be called). A bare
    /// model name under a policy is the policy's to route; targets it picks outside the lists are skipped.
    pub(super) fn check_allowed(
        &self,
        holder: &Holder<'_>,
        (requested, call, policy): (&Requested<'_>, &ApiCall, bool),
    ) -> Result<(), ApiError> {
        let Ok(t) = &requested.target else {
            return Ok(());
        };
        if policy && !call.model().contains('/') {
            return Ok(());
        }
        if holder.allows(&t.provider.name, &t.model) {
            return Ok(());
        }
        Err(not_allowed(
            holder,
            &format!("{}/{}", t.provider.name, t.model),
        ))
    }
}

/// Leaves out the plan's targets the key or team may not use; refuses the request (403) when none is left.
pub(super) fn restrict(plan: &mut AttemptPlan<'_>, holder: &Holder<'_>) {
    if plan.refusal.is_some()
        || (holder.key.allow.is_empty() && holder.team.as_ref().is_none_or(|t| t.allow.is_empty()))
    {
        return;
    }
    let (allowed, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.targets)
        .into_iter()
        .partition(|t| holder.allows(&t.provider.name, &t.model));
    if allowed.is_empty() {
        if let Some(t) = refused.first() {
            plan.refusal = Some(not_allowed(
                holder,
                &format!("{}/{}", t.provider.name, t.model),
            ));
        }
    }
    plan.skipped.extend(refused.iter().map(|t| Skipped {
        target: t.name(),
        why: Why::NotAllowed,
    }));
    plan.targets = allowed;
}

fn not_allowed(holder: &Holder<'_>, target: &str) -> ApiError {
    let mut lists = Vec::new();
    if !holder.key.allow.is_empty() {
        lists.push(format!(
            "key `{}`: {}",
            holder.key.id,
            holder.key.allow.join(", ")
        ));
    }
    if let Some(t) = holder.team.as_ref().filter(|t| !t.allow.is_empty()) {
        lists.push(format!("team `{}`: {}", t.name, t.allow.join(", ")));
    }
    ApiError::new(
        ErrorCode::PermissionDenied,
        format!(
            "this API key may not use `{target}` (allowed for {})",
            lists.join("; ")
        ),
    )
    .with_param("model")
}

/// The 429 for a refusal: `rate_limit_exceeded` with a `Retry-After`, or `insufficient_quota` for a budget.
fn refused(
    scope: &str,
    refusal: Refusal,
    standing: &Standing,
    now: i64,
    reporting: &str,
) -> ApiError {
    let who = scope.replacen(':', " `", 1) + "`";
    let limits = &standing.limits;
    let message = match refusal.limit {
        Limit::RequestsPerMinute => format!(
            "rate limit reached for {who}: {} requests per minute",
            limits.requests_per_minute.unwrap_or(0)
        ),
        Limit::TokensPerMinute if refusal.too_large => format!(
            "request too large for {who}: its prompt and max_tokens need more than the limit of {} tokens per \
             minute; lower max_tokens or shorten the prompt",
            limits.tokens_per_minute.unwrap_or(0)
        ),
        Limit::TokensPerMinute => format!(
            "rate limit reached for {who}: {} tokens per minute (prompt and completion; {} used or reserved in \
             this minute)",
            limits.tokens_per_minute.unwrap_or(0),
            standing.tokens
        ),
        Limit::ConcurrentStreams => format!(
            "rate limit reached for {who}: {} concurrent streams",
            limits.concurrent_streams.unwrap_or(0)
        ),
        Limit::BudgetDay | Limit::BudgetMonth => {
            let (period, budget, spent) = if refusal.limit == Limit::BudgetDay {
                ("daily", limits.day_pico, standing.day_pico)
            } else {
                ("monthly", limits.month_pico, standing.month_pico)
            };
            let money = |p: u128| gateway_policy::prices::format_pico(p);
            format!(
                "{who} has used its {period} budget: {} of {} {reporting} spent or reserved by requests in flight",
                money(spent),
                money(budget.unwrap_or(0)),
            )
        }
    };
    let code = if refusal.limit.is_budget() {
        ErrorCode::InsufficientQuota { status: 429 }
    } else {
        ErrorCode::RateLimited { code: None }
    };
    let mut err = ApiError::new(code, message);
    if let Some(at) = refusal.retry_at_ms {
        err.retry_after = Some(((at - now).max(0) as u64).div_ceil(1000).max(1).to_string());
    }
    err
}

/// A limit, or what is left of it, in a scope's standing.
type Count = fn(&Standing) -> Option<u64>;

/// OpenAI's `x-ratelimit-*` headers, for the scope with the least left of each limit that is set.
fn rate_headers(standings: &[Standing], now: i64) -> Vec<(String, String)> {
    let kinds: [(&str, Count, Count); 2] = [
        (
            "requests",
            |s| s.limits.requests_per_minute,
            Standing::remaining_requests,
        ),
        (
            "tokens",
            |s| s.limits.tokens_per_minute,
            Standing::remaining_tokens,
        ),
    ];
    let mut headers = Vec::new();
    for (kind, limit, remaining) in kinds {
        let tightest = standings
            .iter()
            .filter_map(|s| Some((s, limit(s)?, remaining(s)?)))
            .min_by_key(|(_, _, left)| *left);
        if let Some((s, limit, left)) = tightest {
            headers.extend([
                (format!("x-ratelimit-limit-{kind}"), limit.to_string()),
                (format!("x-ratelimit-remaining-{kind}"), left.to_string()),
                (
                    format!("x-ratelimit-reset-{kind}"),
                    limits::reset_duration(s.reset_ms - now),
                ),
            ]);
        }
    }
    headers
}

/// Settles a finished request's reservations with what it used: the tokens and the cost its row records (none
/// when no provider answered: everything reserved is given back).
pub(super) async fn settle<H: LimitStore>(host: &H, row: &mut LogRecord) {
    if row.held.is_empty() {
        return;
    }
    let usage = row.usage.unwrap_or_default();
    let used = Used {
        tokens: usage.prompt_tokens.saturating_add(usage.completion_tokens),
        pico: row
            .cost
            .as_ref()
            .and_then(|c| c.reporting_pico)
            .map_or(0, u128::from),
    };
    host.settle(std::mem::take(&mut row.held), used).await;
}

/// Where the key and its team stand, for the policy's budget attributes (only when the policy tests them).
pub(super) async fn standing<H: Host>(
    gateway: &Gateway<H>,
    holder: &Holder<'_>,
    pricing: &Pricing,
) -> Result<(Option<Standing>, Option<Standing>), ApiError> {
    let now = gateway.host.now_ms() as i64;
    let ask = Ask {
        now_ms: now,
        ..Ask::default()
    };
    let asks = gateway.scopes(holder, pricing, ask)?;
    if asks.is_empty() {
        return Ok((None, None));
    }
    let standings = gateway
        .host
        .standing(asks.clone())
        .await
        .map_err(|e| ApiError::new(ErrorCode::KeyStoreUnavailable, format!("limits: {e}")))?;
    let mut key = None;
    let mut team = None;
    for (a, s) in asks.iter().zip(standings) {
        if a.scope.starts_with("key:") {
            key = Some(s);
        } else {
            team = Some(s);
        }
    }
    Ok((key, team))
}
