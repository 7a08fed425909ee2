//! Limits: what a key or a team may use, and the counters that enforce it exactly. The algorithm is the same on
//! both hosts (in process natively, in a Durable Object per key and per team on Workers); only where the
//! counters live differs.
//!
//! - **Requests and tokens per minute**: fixed windows aligned to the UTC minute. At most the limit is admitted
//!   in a window, so a key driven hard enough gets exactly that many; the window resets at the minute.
//! - **Tokens** are reserved at admission (the prompt's estimate plus `max_tokens`, or the configured cap) and
//!   settled with what the provider reported when the answer ends (the difference is given back, or taken).
//! - **Concurrent streams**: one is held from admission until the stream ends.
//! - **Budgets per day and per month**: spend in the reporting currency's pico-units (exact sums). The worst case
//!   of the plan (the costliest of its targets at the reserved tokens) is reserved at admission and settled
//!   with the real cost; a request no provider answered gives all of it back. Days and months begin at midnight
//!   in the configured time zone.
//!
//! Unset means unlimited, never zero.

use gateway_policy::prices::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// The limits of a key or a team, as stored with its record. Amounts are decimal strings in `budget.currency`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Prompt plus completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_streams: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// A currency of the price table's exchange (`USD`, `CNY`).
    pub currency: String,
    /// `"5"`, `"12.50"`: at most six decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self == &Limits::default()
    }

    /// What is wrong with these limits, if anything (checked when they are written).
    pub fn problem(&self) -> Option<String> {
        if let Some(b) = &self.budget {
            if b.day.is_none() && b.month.is_none() {
                return Some("a budget needs `day` or `month` (or leave `budget` out)".into());
            }
            if !gateway_policy::prices::is_currency(&b.currency) {
                return Some(format!(
                    "budget currency `{}` is not a currency code such as USD or CNY",
                    b.currency
                ));
            }
            for amount in [&b.day, &b.month].into_iter().flatten() {
                if gateway_policy::prices::Decimal::parse(amount).is_none() {
                    return Some(format!(
                        "budget amount `{amount}` is not a decimal number with at most six decimals"
                    ));
                }
            }
        }
        None
    }

    /// These limits with budgets in pico-units of the reporting currency (converted once, at `book`'s rate).
    /// A budget in a currency the table cannot convert is an error.
    pub fn resolve(
        &self,
        book: &gateway_policy::prices::PriceBook,
        reporting: &str,
    ) -> Result<Resolved, String> {
        let mut r = Resolved {
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
            concurrent_streams: self.concurrent_streams,
            ..Resolved::default()
        };
        if let Some(b) = &self.budget {
            let pico = |amount: &Option<String>| -> Result<Option<u128>, String> {
                let Some(a) = amount else { return Ok(None) };
                let d = gateway_policy::prices::Decimal::parse(a)
                    .ok_or_else(|| format!("budget amount `{a}` is not a decimal number"))?;
                let pico = u128::from(d.0) * 1_000_000;
                book.convert(pico, &b.currency, reporting)
                    .map(Some)
                    .ok_or_else(|| {
                        format!(
                            "no exchange rate from {} to {reporting} in the price table",
                            b.currency
                        )
                    })
            };
            r.day_pico = pico(&b.day)?;
            r.month_pico = pico(&b.month)?;
        }
        Ok(r)
    }
}

/// Limits ready for the counters: budgets in the reporting currency's pico-units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_streams: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_pico: Option<u128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month_pico: Option<u128>,
}

/// A time zone for day and month boundaries: a fixed offset from UTC, in minutes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub offset_minutes: i32,
}

/// IANA zones without daylight saving time that our users run in, with their offsets (minutes east of UTC).
const FIXED_ZONES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("Etc/UTC", 0),
    ("GMT", 0),
    ("Asia/Shanghai", 480),
    ("Asia/Chongqing", 480),
    ("Asia/Harbin", 480),
    ("Asia/Urumqi", 360),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Manila", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
    ("Asia/Calcutta", 330),
    ("Asia/Bangkok", 420),
    ("Asia/Ho_Chi_Minh", 420),
    ("Asia/Jakarta", 420),
    ("Asia/Dubai", 240),
];

impl Zone {
    /// `UTC`, `+08:00`, `-05:30`, or the name of an IANA zone without daylight saving time (`Asia/Shanghai`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some((_, offset)) = FIXED_ZONES.iter().find(|(n, _)| *n == s) {
            return Ok(Zone {
                offset_minutes: *offset,
            });
        }
        let bad = || {
            format!(
                "time zone `{s}`: use UTC, an offset such as +08:00, or a zone without daylight saving time \
                 ({})",
                FIXED_ZONES
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| n.contains('/'))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let minutes = gateway_policy::prices::parse_offset(s).ok_or_else(bad)?;
        Ok(Zone {
            offset_minutes: minutes as i32,
        })
    }

    fn local_ms(self, utc_ms: i64) -> i64 {
        utc_ms + i64::from(self.offset_minutes) * MINUTE_MS
    }

    /// The local day (days since 1970-01-01 in this zone) of a moment.
    pub fn day(self, utc_ms: i64) -> i64 {
        self.local_ms(utc_ms).div_euclid(DAY_MS)
    }

    /// The local month (`year × 12 + month − 1`) of a moment.
    pub fn month(self, utc_ms: i64) -> i64 {
        let (y, m, _) = civil_from_days(self.day(utc_ms));
        y * 12 + i64::from(m) - 1
    }

    /// When the local day of `utc_ms` began and ends (UTC ms).
    pub fn day_bounds(self, utc_ms: i64) -> (i64, i64) {
        let start = self.day(utc_ms) * DAY_MS - i64::from(self.offset_minutes) * MINUTE_MS;
        (start, start + DAY_MS)
    }

    /// When the local month of `utc_ms` began and ends (UTC ms).
    pub fn month_bounds(self, utc_ms: i64) -> (i64, i64) {
        let (y, m, _) = civil_from_days(self.day(utc_ms));
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let off = i64::from(self.offset_minutes) * MINUTE_MS;
        (
            days_from_civil(y, m, 1) * DAY_MS - off,
            days_from_civil(ny, nm, 1) * DAY_MS - off,
        )
    }
}

/// What a request asks of a scope at admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    pub now_ms: i64,
    /// Estimated prompt tokens plus the completion's cap.
    pub tokens: u64,
    /// The worst-case cost of the plan, reporting currency pico-units.
    pub pico: u128,
    pub stream: bool,
}

/// What was reserved for a request, to settle when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub minute: i64,
    pub tokens: u64,
    pub day: i64,
    pub month: i64,
    pub pico: u128,
    pub stream: bool,
}

/// What the request used, known when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Used {
    /// Prompt plus completion tokens the provider reported (or the gateway estimated); 0 when none answered.
    pub tokens: u64,
    pub pico: u128,
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    RequestsPerMinute,
    TokensPerMinute,
    ConcurrentStreams,
    BudgetDay,
    BudgetMonth,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::RequestsPerMinute => "requests_per_minute",
            Limit::TokensPerMinute => "tokens_per_minute",
            Limit::ConcurrentStreams => "concurrent_streams",
            Limit::BudgetDay => "budget_day",
            Limit::BudgetMonth => "budget_month",
        }
    }

    pub fn is_budget(self) -> bool {
        matches!(self, Limit::BudgetDay | Limit::BudgetMonth)
    }
}

/// A refusal: the limit, and when asking again can succeed (UTC ms; `None` for a stream limit, which frees when a
/// stream ends, and for a request larger than the limit itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_at_ms: Option<i64>,
    /// The request alone is more than the limit allows (it can never be admitted as it is).
    pub too_large: bool,
}

/// The counters of one key or team.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub minute: i64,
    pub requests: u64,
    pub tokens: u64,
    pub streams: u64,
    pub day: i64,
    pub day_pico: u128,
    pub month: i64,
    pub month_pico: u128,
}

/// Where a scope stands: what the `x-ratelimit-*` headers and the policy's budget attributes say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub limits: Resolved,
    pub requests: u64,
    pub tokens: u64,
    /// When the minute's window resets (UTC ms).
    pub reset_ms: i64,
    pub day_pico: u128,
    pub month_pico: u128,
}

impl Standing {
    pub fn remaining_requests(&self) -> Option<u64> {
        self.limits
            .requests_per_minute
            .map(|l| l.saturating_sub(self.requests))
    }

    pub fn remaining_tokens(&self) -> Option<u64> {
        self.limits
            .tokens_per_minute
            .map(|l| l.saturating_sub(self.tokens))
    }

    /// The smaller share of the day's and the month's budget left, 0–100; 100 without a budget.
    pub fn budget_remaining_pct(&self) -> f64 {
        let pct = |budget: Option<u128>, spent: u128| match budget {
            Some(0) => 0.0,
            Some(b) => (b.saturating_sub(spent) as f64 / b as f64 * 100.0).clamp(0.0, 100.0),
            None => 100.0,
        };
        pct(self.limits.day_pico, self.day_pico).min(pct(self.limits.month_pico, self.month_pico))
    }
}

impl Counters {
    /// Starts new windows, days and months as time passes.
    fn roll(&mut self, now_ms: i64, zone: Zone) {
        let minute = now_ms.div_euclid(MINUTE_MS);
        if minute != self.minute {
            self.minute = minute;
            self.requests = 0;
            self.tokens = 0;
        }
        let (day, month) = (zone.day(now_ms), zone.month(now_ms));
        if day != self.day {
            self.day = day;
            self.day_pico = 0;
        }
        if month != self.month {
            self.month = month;
            self.month_pico = 0;
        }
    }

    /// Admits `ask` under `limits` and reserves what it may use, or says which limit refuses it. Nothing is
    /// counted for a refused request.
    pub fn reserve(
        &mut self,
        limits: &Resolved,
        zone: Zone,
        ask: Ask,
    ) -> Result<Reservation, Refusal> {
        self.roll(ask.now_ms, zone);
        let next_minute = (self.minute + 1) * MINUTE_MS;
        if let Some(l) = limits.requests_per_minute {
            if self.requests >= l {
                return Err(Refusal {
                    limit: Limit::RequestsPerMinute,
                    retry_at_ms: Some(next_minute),
                    too_large: l == 0,
                });
            }
        }
        if let Some(l) = limits.tokens_per_minute {
            if self.tokens.saturating_add(ask.tokens) > l {
                let too_large = ask.tokens > l;
                return Err(Refusal {
                    limit: Limit::TokensPerMinute,
                    retry_at_ms: (!too_large).then_some(next_minute),
                    too_large,
                });
            }
        }
        if ask.stream {
            if let Some(l) = limits.concurrent_streams {
                if self.streams >= l {
                    return Err(Refusal {
                        limit: Limit::ConcurrentStreams,
                        retry_at_ms: None,
                        too_large: l == 0,
                    });
                }
            }
        }
        for (limit, budget, spent, ends) in [
            (
                Limit::BudgetDay,
                limits.day_pico,
                self.day_pico,
                zone.day_bounds(ask.now_ms).1,
            ),
            (
                Limit::BudgetMonth,
                limits.month_pico,
                self.month_pico,
                zone.month_bounds(ask.now_ms).1,
            ),
        ] {
            if let Some(b) = budget {
                // An exhausted budget refuses even a request that might be free; a request whose worst case does
                // not fit what is left is refused too.
                if spent >= b || spent.saturating_add(ask.pico) > b {
                    return Err(Refusal {
                        limit,
                        retry_at_ms: Some(ends),
                        too_large: ask.pico > b,
                    });
                }
            }
        }
        self.requests += 1;
        self.tokens = self.tokens.saturating_add(ask.tokens);
        self.streams += u64::from(ask.stream);
        self.day_pico = self.day_pico.saturating_add(ask.pico);
        self.month_pico = self.month_pico.saturating_add(ask.pico);
        Ok(Reservation {
            minute: self.minute,
            tokens: ask.tokens,
            day: self.day,
            month: self.month,
            pico: ask.pico,
            stream: ask.stream,
        })
    }

    /// Replaces a reservation with what the request used, in the window, day and month it was reserved in (a
    /// window that has passed is not touched: its count is history).
    pub fn settle(&mut self, r: &Reservation, used: Used) {
        if r.minute == self.minute {
            self.tokens = self
                .tokens
                .saturating_sub(r.tokens)
                .saturating_add(used.tokens);
        }
        if r.day == self.day {
            self.day_pico = self
                .day_pico
                .saturating_sub(r.pico)
                .saturating_add(used.pico);
        }
        if r.month == self.month {
            self.month_pico = self
                .month_pico
                .saturating_sub(r.pico)
                .saturating_add(used.pico);
        }
        if r.stream {
            self.streams = self.streams.saturating_sub(1);
        }
    }

    /// Where the scope stands at `now_ms`.
    pub fn standing(&mut self, limits: &Resolved, zone: Zone, now_ms: i64) -> Standing {
        self.roll(now_ms, zone);
        Standing {
            limits: *limits,
            requests: self.requests,
            tokens: self.tokens,
            reset_ms: (self.minute + 1) * MINUTE_MS,
            day_pico: self.day_pico,
            month_pico: self.month_pico,
        }
    }

    /// Spend already made (read from the log when the counters are first needed after a restart).
    pub fn seed_spend(&mut self, now_ms: i64, zone: Zone, day_pico: u128, month_pico: u128) {
        self.roll(now_ms, zone);
        self.day_pico = self.day_pico.saturating_add(day_pico);
        self.month_pico = self.month_pico.saturating_add(month_pico);
    }
}

/// A scope (`key:<id>` or `team:<name>`) and what a request asks of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeAsk {
    pub scope: String,
    pub limits: Resolved,
    pub zone: Zone,
    pub ask: Ask,
    /// The reporting currency budgets and spend are in (a host that reads spend back from the log sums the rows
    /// in this currency only).
    #[serde(default)]
    pub currency: String,
}

/// A scope's reservation, to settle when the request ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub scope: String,
    pub reservation: Reservation,
}

/// What admission decided: every scope admitted (with where each stands now), or the one that refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Admission {
    Admitted(Vec<(Held, Standing)>),
    Refused {
        scope: String,
        refusal: Refusal,
        standing: Standing,
    },
}

impl Counters {
    /// Undoes a reservation made just now (another scope refused the request): the request is not counted.
    pub fn cancel(&mut self, r: &Reservation) {
        if r.minute == self.minute {
            self.requests = self.requests.saturating_sub(1);
        }
        self.settle(r, Used::default());
    }
}

/// Counters in process, shared by every thread (the native host; tests): admission of all scopes happens under
/// one lock, so it is exact. Cheap to clone (a handle).
#[derive(Clone, Default)]
pub struct Ledger(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Counters>>>);

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Counters>> {
        // A panic while the lock was held cannot leave counters half-updated (each update is a few additions).
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `scope` has counters yet (a host seeds spend made before a restart first).
    pub fn knows(&self, scope: &str) -> bool {
        self.lock().contains_key(scope)
    }

    /// Starts `scope`'s counters with spend already made today and this month (nothing if it has counters).
    pub fn seed(&self, scope: &str, now_ms: i64, zone: Zone, day_pico: u128, month_pico: u128) {
        self.lock().entry(scope.to_owned()).or_insert_with(|| {
            let mut c = Counters::default();
            c.seed_spend(now_ms, zone, day_pico, month_pico);
            c
        });
    }

    /// Admits a request in every scope or in none.
    pub fn reserve(&self, asks: &[ScopeAsk]) -> Admission {
        let mut all = self.lock();
        let mut granted: Vec<(Held, Standing)> = Vec::with_capacity(asks.len());
        for a in asks {
            let counters = all.entry(a.scope.clone()).or_default();
            match counters.reserve(&a.limits, a.zone, a.ask) {
                Ok(reservation) => {
                    let standing = counters.standing(&a.limits, a.zone, a.ask.now_ms);
                    granted.push((
                        Held {
                            scope: a.scope.clone(),
                            reservation,
                        },
                        standing,
                    ));
                }
                Err(refusal) => {
                    let standing = counters.standing(&a.limits, a.zone, a.ask.now_ms);
                    for (held, _) in &granted {
                        if let Some(c) = all.get_mut(&held.scope) {
                            c.cancel(&held.reservation);
                        }
                    }
                    return Admission::Refused {
                        scope: a.scope.clone(),
                        refusal,
                        standing,
                    };
                }
            }
        }
        Admission::Admitted(granted)
    }

    pub fn settle(&self, held: &[Held], used: Used) {
        let mut all = self.lock();
        for h in held {
            if let Some(c) = all.get_mut(&h.scope) {
                c.settle(&h.reservation, used);
            }
        }
    }

    /// Where each scope stands, without reserving anything.
    pub fn standing(&self, asks: &[ScopeAsk]) -> Vec<Standing> {
        let mut all = self.lock();
        asks.iter()
            .map(|a| {
                all.entry(a.scope.clone())
                    .or_default()
                    .standing(&a.limits, a.zone, a.ask.now_ms)
            })
            .collect()
    }
}

/// A duration the way OpenAI's `x-ratelimit-reset-*` headers write it: `1s`, `6m0s`, `250ms`.
pub fn reset_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms as f64 / 1000.0;
    let (m, s) = ((secs / 60.0).floor() as i64, secs % 60.0);
    let s = if (s - s.round()).abs() < 0.0005 {
        format!("{}", s.round() as i64)
    } else {
        format!("{s:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    };
    if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_000_000_000; // 2026-11-29T..., any moment

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> Resolved {
        Resolved {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            ..Resolved::default()
        }
    }

    #[test]
    fn exactly_the_limit_is_admitted_per_minute_window() {
        let mut c = Counters::default();
        let l = limits(Some(3), None);
        let start = T0.div_euclid(MINUTE_MS) * MINUTE_MS;
        let ask = |ms| Ask {
            now_ms: start + ms,
            ..Ask::default()
        };
        for ms in [0, 10, 59_000] {
            assert!(c.reserve(&l, Zone::default(), ask(ms)).is_ok());
        }
        let refused = c.reserve(&l, Zone::default(), ask(59_999)).unwrap_err();
        assert_eq!(refused.limit, Limit::RequestsPerMinute);
        assert_eq!(refused.retry_at_ms, Some(start + MINUTE_MS));
        // The next window admits three more.
        for ms in [60_000, 60_001, 119_999] {
            assert!(c.reserve(&l, Zone::default(), ask(ms)).is_ok());
        }
        assert!(c.reserve(&l, Zone::default(), ask(119_999)).is_err());
    }

    #[test]
    fn tokens_are_reserved_then_settled_to_what_was_used() {
        let mut c = Counters::default();
        let l = limits(None, Some(1_000));
        let ask = |tokens| Ask {
            now_ms: T0,
            tokens,
            ..Ask::default()
        };
        let r = c.reserve(&l, Zone::default(), ask(600)).unwrap();
        // 600 reserved: 500 more do not fit, until the first settles at 150 used.
        assert_eq!(
            c.reserve(&l, Zone::default(), ask(500)).unwrap_err().limit,
            Limit::TokensPerMinute
        );
        c.settle(
            &r,
            Used {
                tokens: 150,
                pico: 0,
            },
        );
        assert!(c.reserve(&l, Zone::default(), ask(500)).is_ok());
        assert_eq!(
            c.standing(&l, Zone::default(), T0).remaining_tokens(),
            Some(350)
        );
        // A request larger than the whole limit can never pass: it says so, without a time to retry.
        let big = c.reserve(&l, Zone::default(), ask(1_001)).unwrap_err();
        assert!(big.too_large && big.retry_at_ms.is_none());
    }

    #[test]
    fn a_budget_is_never_passed_and_a_refund_makes_room() {
        let mut c = Counters::default();
        let l = Resolved {
            day_pico: Some(1_000),
            ..Resolved::default()
        };
        let ask = |pico| Ask {
            now_ms: T0,
            pico,
            ..Ask::default()
        };
        let a = c.reserve(&l, Zone::default(), ask(700)).unwrap();
        assert_eq!(
            c.reserve(&l, Zone::default(), ask(400)).unwrap_err().limit,
            Limit::BudgetDay
        );
        // Nobody answered: all of it comes back.
        c.settle(&a, Used::default());
        let b = c.reserve(&l, Zone::default(), ask(400)).unwrap();
        c.settle(
            &b,
            Used {
                tokens: 10,
                pico: 1_000,
            },
        );
        // Spent to the unit: even a free request is refused until the day ends.
        let refused = c.reserve(&l, Zone::default(), ask(0)).unwrap_err();
        assert_eq!(refused.limit, Limit::BudgetDay);
        let (_, day_end) = Zone::default().day_bounds(T0);
        assert_eq!(refused.retry_at_ms, Some(day_end));
        assert!(c
            .reserve(
                &l,
                Zone::default(),
                Ask {
                    now_ms: day_end,
                    ..Ask::default()
                }
            )
            .is_ok());
        assert_eq!(
            c.standing(&l, Zone::default(), day_end)
                .budget_remaining_pct(),
            100.0
        );
    }

    #[test]
    fn streams_are_held_until_they_end() {
        let mut c = Counters::default();
        let l = Resolved {
            concurrent_streams: Some(1),
            ..Resolved::default()
        };
        let stream = Ask {
            now_ms: T0,
            stream: true,
            ..Ask::default()
        };
        let r = c.reserve(&l, Zone::default(), stream).unwrap();
        assert_eq!(
            c.reserve(&l, Zone::default(), stream).unwrap_err().limit,
            Limit::ConcurrentStreams
        );
        // A JSON request is not a stream.
        assert!(c
            .reserve(
                &l,
                Zone::default(),
                Ask {
                    stream: false,
                    ..stream
                }
            )
            .is_ok());
        c.settle(&r, Used::default());
        assert!(c.reserve(&l, Zone::default(), stream).is_ok());
    }

    #[test]
    fn days_and_months_begin_at_midnight_in_the_zone() {
        let shanghai = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(shanghai, Zone::parse("+08:00").unwrap());
        // 2026-12-31T16:00:00Z is midnight of 2027-01-01 in Shanghai: a new day and a new month there.
        let midnight = (days_from_civil(2026, 12, 31) * DAY_MS) + 16 * 3_600_000;
        assert_eq!(shanghai.day(midnight - 1) + 1, shanghai.day(midnight));
        assert_eq!(shanghai.month(midnight - 1) + 1, shanghai.month(midnight));
        assert_eq!(
            Zone::default().month(midnight),
            Zone::default().month(midnight - 1)
        );
        assert_eq!(shanghai.month_bounds(midnight).0, midnight);
        assert_eq!(
            shanghai.month_bounds(midnight - 1),
            (midnight - 31 * DAY_MS, midnight)
        );
        assert_eq!(
            shanghai.day_bounds(midnight + 5),
            (midnight, midnight + DAY_MS)
        );
        assert_eq!(Zone::parse("-05:30").unwrap().offset_minutes, -330);
        assert!(Zone::parse("America/New_York").is_err());
        assert!(Zone::parse("+8").is_err());
        for d in [-1000, 0, 59, 60, 365, 20_000, 21_000] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn a_ledger_admits_in_every_scope_or_in_none() {
        let ledger = Ledger::default();
        let scope = |name: &str, rpm| ScopeAsk {
            scope: name.into(),
            limits: limits(Some(rpm), None),
            zone: Zone::default(),
            ask: Ask {
                now_ms: T0,
                ..Ask::default()
            },
            currency: "USD".into(),
        };
        // The team allows 2 a minute, its keys 5 each: the team's third request is refused and not counted
        // against the key.
        let asks = [scope("key:a", 5), scope("team:t", 2)];
        assert!(matches!(ledger.reserve(&asks), Admission::Admitted(_)));
        assert!(matches!(ledger.reserve(&asks), Admission::Admitted(_)));
        match ledger.reserve(&asks) {
            Admission::Refused { scope, refusal, .. } => {
                assert_eq!(
                    (scope.as_str(), refusal.limit),
                    ("team:t", Limit::RequestsPerMinute)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ledger.standing(&asks[..1])[0].remaining_requests(), Some(3));
    }

    #[test]
    fn reset_durations_read_like_openais() {
        assert_eq!(reset_duration(250), "250ms");
        assert_eq!(reset_duration(1_000), "1s");
        assert_eq!(reset_duration(17_500), "17.5s");
        assert_eq!(reset_duration(360_000), "6m0s");
        assert_eq!(reset_duration(-5), "0ms");
    }

    #[test]
    fn limits_check_their_budget() {
        let mut l = Limits {
            budget: Some(Budget {
                currency: "CNY".into(),
                day: Some("5.5".into()),
                month: None,
            }),
            ..Limits::default()
        };
        assert_eq!(l.problem(), None);
        let book = gateway_policy::prices::PriceBook::new(
            &gateway_policy::catalog::Catalog::builtin().prices,
        );
        // ¥5.5 at 7.1 per dollar: $0.774647887324 (rounded to the pico-dollar).
        assert_eq!(
            l.resolve(&book, "USD").unwrap().day_pico,
            Some(774_647_887_324)
        );
        assert_eq!(
            l.resolve(&book, "CNY").unwrap().day_pico,
            Some(5_500_000_000_000)
        );
        l.budget.as_mut().unwrap().day = Some("five".into());
        assert!(l.problem().is_some());
        l.budget.as_mut().unwrap().currency = "XYZ".into();
        l.budget.as_mut().unwrap().day = Some("1".into());
        assert!(l.resolve(&book, "USD").is_err());
    }
}
