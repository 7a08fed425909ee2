//! The price table (`policies/prices.toml`): what each model costs, in the provider's own billing currency, with
//! time-of-day windows (DeepSeek's peak hours), prompt-size tiers (Gemini's and OpenAI's long-context prices) and
//! effective dates (a price change applies from its date), plus the exchange rates that turn every cost into one
//! reporting currency. The compiler checks it and the compiled policy carries it inside the catalog, so both hosts
//! price with exactly what was published; [`PriceBook`] is its form for pricing requests.
//!
//! Money is exact: a price per million tokens has at most six decimals, so it is a whole number of
//! micro-units per million tokens — which is also a whole number of pico-units (10⁻¹² of the currency) per token.
//! Costs are sums of tokens × pico-units per token in integers; only a conversion between currencies rounds (to
//! the pico-unit, half away from zero).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// An amount with at most six decimals, held as a whole number of millionths: a price per million tokens (then
/// also the price per token in 10⁻¹² units), a per-request fee, an exchange rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal(pub u64);

impl Decimal {
    pub const SCALE: u64 = 1_000_000;

    /// `"0.075"`, `"2"`: digits with at most six decimals, not negative.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty() && frac.is_empty()
            || frac.len() > 6
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut frac_value: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        for _ in frac.len()..6 {
            frac_value *= 10;
        }
        whole
            .checked_mul(Self::SCALE)?
            .checked_add(frac_value)
            .map(Decimal)
    }

    fn from_f64(v: f64) -> Option<Self> {
        let scaled = v * Self::SCALE as f64;
        let rounded = scaled.round();
        // A TOML or JSON number with more than six decimals, or negative, or too large for exact arithmetic.
        if !(0.0..9.0e15).contains(&rounded) || (scaled - rounded).abs() > 1e-3 {
            return None;
        }
        Some(Decimal(rounded as u64))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / Self::SCALE, self.0 % Self::SCALE);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:06}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number with at most six decimals, not negative")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                v.checked_mul(Decimal::SCALE)
                    .map(Decimal)
                    .ok_or_else(|| E::custom("the number is too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a price cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                Decimal::from_f64(v).ok_or_else(|| {
                    E::custom(format!(
                        "{v} is not a number with at most six decimals, not negative"
                    ))
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                Decimal::parse(v).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not a number with at most six decimals, not negative"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What a request is charged, per million tokens (and per request), in the entry's currency. Absent prices fall
/// back: cached and cache-write input to the input price, reasoning to the output price, output to nothing (an
/// embeddings model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub input: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Decimal>,
    /// A fee per request, in currency units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_request: Option<Decimal>,
    /// A price per generated image, in currency units (image models priced by the picture, not by tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Decimal>,
    /// A price per minute of audio transcribed, in currency units (charged by the millisecond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_minute: Option<Decimal>,
    /// A price per 1M characters of text spoken (speech models priced by their input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<Decimal>,
}

/// Hours of the week in a fixed UTC offset whose prices differ (DeepSeek's peak hours).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub name: String,
    /// `+08:00`: the offset the days and hours are written in.
    pub timezone: String,
    /// `["mon-fri"]`, `["sat", "sun"]`.
    pub days: Vec<String>,
    /// `["09:00-12:00", "14:00-18:00"]`; `24:00` ends a day.
    pub hours: Vec<String>,
    pub rates: Rates,
}

/// Prices for requests whose prompt is larger than `above` tokens (Gemini's >200k, OpenAI's >272K).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub above: u64,
    pub rates: Rates,
}

/// One model's prices over a span of dates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub provider: String,
    pub model: String,
    /// ISO 4217: the currency the provider bills in (`USD`, `CNY`).
    pub currency: String,
    /// Where the figures come from, and as of when.
    pub source: String,
    /// `2027-01-01`: applies from 00:00 UTC that day (absent: always did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Applies until 00:00 UTC that day (absent: until a later entry's `from`, or for good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub rates: Rates,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
}

/// The whole table, as `prices.toml` holds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Units of each currency per US dollar (`USD = 1`, `CNY = 7.1`): how costs in different currencies are
    /// summed in the reporting currency.
    #[serde(default)]
    pub exchange: BTreeMap<String, Decimal>,
    #[serde(default, rename = "price")]
    pub prices: Vec<PriceEntry>,
}

impl PriceTable {
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty() && self.exchange.is_empty()
    }

    /// The price version recorded with each cost: the first 12 hex digits of the SHA-256 of the table's
    /// canonical JSON, the same on every host for the same table.
    pub fn version(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Everything wrong with the table, one line each (empty when it can be used): unknown providers or models,
    /// currencies without an exchange rate, malformed dates, windows and tiers, and entries whose dates overlap.
    pub fn problems(&self, known_model: impl Fn(&str, &str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        if !self.prices.is_empty() && self.exchange.get("USD") != Some(&Decimal(Decimal::SCALE)) {
            out.push(
                "exchange: `USD = 1` is required (rates are units of each currency per US dollar)"
                    .into(),
            );
        }
        for (currency, rate) in &self.exchange {
            if !is_currency(currency) {
                out.push(format!(
                    "exchange: `{currency}` is not an ISO 4217 code (three capital letters)"
                ));
            }
            if rate.0 == 0 {
                out.push(format!("exchange: the rate for {currency} cannot be 0"));
            }
        }
        let mut spans: BTreeMap<(&str, &str), Vec<(i64, i64)>> = BTreeMap::new();
        for e in &self.prices {
            let at = format!("price {}:{}", e.provider, e.model);
            let mut bad = |what: String| out.push(format!("{at}: {what}"));
            if !known_model(&e.provider, &e.model) {
                bad("not a model in the catalog".into());
            }
            if !self.exchange.contains_key(&e.currency) {
                bad(format!(
                    "currency `{}` has no exchange rate (add it under [exchange])",
                    e.currency
                ));
            }
            if e.source.trim().is_empty() {
                bad("`source` must say where the figures come from".into());
            }
            let from = match e.from.as_deref().map(parse_date) {
                Some(None) => {
                    bad(format!(
                        "from `{}` is not a date (YYYY-MM-DD)",
                        e.from.as_deref().unwrap_or("")
                    ));
                    None
                }
                Some(Some(d)) => Some(d),
                None => None,
            };
            let until = match e.until.as_deref().map(parse_date) {
                Some(None) => {
                    bad(format!(
                        "until `{}` is not a date (YYYY-MM-DD)",
                        e.until.as_deref().unwrap_or("")
                    ));
                    None
                }
                Some(Some(d)) => Some(d),
                None => None,
            };
            let (start, end) = (from.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
            if start >= end {
                bad("`until` must come after `from`".into());
            }
            spans
                .entry((&e.provider, &e.model))
                .or_default()
                .push((start, end));
            if !e.windows.is_empty() && !e.tiers.is_empty() {
                bad("has both windows and tiers; give each its own entry".into());
            }
            let mut minutes: Vec<(u32, u32, &str)> = Vec::new();
            for w in &e.windows {
                match window_minutes(w) {
                    Ok(ranges) => {
                        minutes.extend(ranges.into_iter().map(|(a, b)| (a, b, w.name.as_str())))
                    }
                    Err(why) => bad(format!("window `{}`: {why}", w.name)),
                }
            }
            minutes.sort_unstable();
            for pair in minutes.windows(2) {
                if pair[1].0 < pair[0].1 {
                    bad(format!(
                        "windows `{}` and `{}` overlap",
                        pair[0].2, pair[1].2
                    ));
                    break;
                }
            }
            let mut above: Vec<u64> = e.tiers.iter().map(|t| t.above).collect();
            above.sort_unstable();
            if above.windows(2).any(|p| p[0] == p[1]) || above.first() == Some(&0) {
                bad("tiers need distinct `above` token counts greater than 0".into());
            }
        }
        for ((provider, model), mut list) in spans {
            list.sort_unstable();
            for pair in list.windows(2) {
                // An open-ended entry runs until the next one's `from`; two entries without dates, or a closed
                // one that runs past the next one's start, overlap.
                let (a, b) = (pair[0], pair[1]);
                if a.0 == b.0 || (a.1 != i64::MAX && a.1 > b.0) {
                    out.push(format!(
                        "price {provider}:{model}: entries with overlapping dates"
                    ));
                }
            }
        }
        out
    }
}

/// A currency code: three capital letters (`USD`, `CNY`).
pub fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > days_in[(m - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Days since 1970-01-01 of a date (Howard Hinnant's days_from_civil; the date is not checked).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month (1–12) and day of days since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const WEEK: u32 = 7 * 24 * 60;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A window's minutes of the week in UTC (Monday 00:00 UTC = 0), as half-open ranges that do not wrap.
fn window_minutes(w: &Window) -> Result<Vec<(u32, u32)>, String> {
    let offset = parse_offset(&w.timezone)
        .ok_or_else(|| format!("timezone `{}` is not an offset like +08:00", w.timezone))?;
    let mut days = Vec::new();
    for d in &w.days {
        let day = |name: &str| {
            DAYS.iter()
                .position(|x| *x == name)
                .ok_or_else(|| format!("`{name}` is not a day (mon … sun)"))
        };
        match d.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return Err(format!("`{d}`: a range of days runs forward (mon-fri)"));
                }
                days.extend(a..=b);
            }
            None => days.push(day(d)?),
        }
    }
    if days.is_empty() || w.hours.is_empty() {
        return Err("needs days and hours".into());
    }
    let mut out = Vec::new();
    for h in &w.hours {
        let (a, b) = h
            .split_once('-')
            .and_then(|(a, b)| Some((parse_clock(a)?, parse_clock(b)?)))
            .filter(|(a, b)| a < b)
            .ok_or_else(|| format!("hours `{h}` are not HH:MM-HH:MM with the start first"))?;
        for day in &days {
            let local = *day as u32 * 24 * 60;
            // UTC = local − offset, on the circle of the week.
            let start = (i64::from(local + a) - offset).rem_euclid(i64::from(WEEK)) as u32;
            let len = b - a;
            if start + len <= WEEK {
                out.push((start, start + len));
            } else {
                out.push((start, WEEK));
                out.push((0, start + len - WEEK));
            }
        }
    }
    Ok(out)
}

/// `+08:00` → 480 minutes (at most 14 hours either way).
pub fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let minutes = parse_clock(rest)?;
    (minutes <= 14 * 60).then_some(sign * i64::from(minutes))
}

/// `09:30` → 570; `24:00` → 1440.
fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// The tokens a request was charged for, as the provider reported them: cached and cache-write tokens are part
/// of the prompt, reasoning tokens part of the completion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    pub prompt: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub completion: u64,
    pub reasoning: u64,
    /// Images generated (priced at `image` each).
    pub images: u64,
    /// Milliseconds of audio transcribed (priced at `audio_minute`).
    pub audio_ms: u64,
    /// Characters spoken (priced at `characters` per million).
    pub characters: u64,
}

/// A cost: whole pico-units (10⁻¹²) of a currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    pub pico: u128,
    pub currency: String,
}

impl Cost {
    /// The amount in currency units as an exact decimal (`0.000123`), trailing zeros dropped.
    pub fn amount(&self) -> String {
        format_pico(self.pico)
    }
}

/// `123_000_000` pico-units → `"0.000123"`.
pub fn format_pico(pico: u128) -> String {
    const UNIT: u128 = 1_000_000_000_000;
    let (whole, frac) = (pico / UNIT, pico % UNIT);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:012}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The price table ready to price requests: per model, its dated entries with their windows in UTC minutes of the
/// week; the exchange rates; the version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceBook {
    models: BTreeMap<(String, String), Vec<Dated>>,
    exchange: BTreeMap<String, u64>,
    version: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Dated {
    /// Milliseconds since the epoch; `i64::MIN` / `i64::MAX` when open.
    from_ms: i64,
    until_ms: i64,
    currency: String,
    rates: Rates,
    windows: Vec<UtcWindow>,
    tiers: Vec<Tier>,
}

/// A window as minutes of the week in UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UtcWindow {
    minutes: Vec<(u32, u32)>,
    rates: Rates,
    name: String,
}

/// The prices that apply to one request: which entry, window or tier, in which currency.
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    pub rates: Rates,
    pub currency: String,
    /// The window or tier in force (`peak`, `above 200000`), if any.
    pub variant: Option<String>,
}

impl PriceBook {
    /// From a table the compiler accepted; parts it would have refused (a malformed window) are left out.
    pub fn new(table: &PriceTable) -> Self {
        let day_ms = 86_400_000i64;
        let mut models: BTreeMap<(String, String), Vec<Dated>> = BTreeMap::new();
        for e in &table.prices {
            let date = |d: &Option<String>, open: i64| {
                d.as_deref()
                    .and_then(parse_date)
                    .map_or(open, |days| days.saturating_mul(day_ms))
            };
            let windows = e
                .windows
                .iter()
                .filter_map(|w| {
                    Some(UtcWindow {
                        minutes: window_minutes(w).ok()?,
                        rates: w.rates,
                        name: w.name.clone(),
                    })
                })
                .collect();
            let mut tiers = e.tiers.clone();
            tiers.sort_by_key(|t| std::cmp::Reverse(t.above));
            models
                .entry((e.provider.clone(), e.model.clone()))
                .or_default()
                .push(Dated {
                    from_ms: date(&e.from, i64::MIN),
                    until_ms: date(&e.until, i64::MAX),
                    currency: e.currency.clone(),
                    rates: e.rates,
                    windows,
                    tiers,
                });
        }
        for list in models.values_mut() {
            list.sort_by_key(|d| d.from_ms);
        }
        PriceBook {
            models,
            exchange: table
                .exchange
                .iter()
                .map(|(k, v)| (k.clone(), v.0))
                .collect(),
            version: table.version(),
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn is_priced(&self, provider: &str, model: &str) -> bool {
        self.models
            .contains_key(&(provider.to_owned(), model.to_owned()))
    }

    /// The prices for a request to `provider:model` at `now_ms` with a prompt of `prompt_tokens`: the latest
    /// entry in force, then the tier its prompt falls in, else the window the time falls in, else the entry's
    /// own rates. `None` when the table has no price for it then.
    pub fn quote(
        &self,
        provider: &str,
        model: &str,
        now_ms: i64,
        prompt_tokens: u64,
    ) -> Option<Quote> {
        let list = self.models.get(&(provider.to_owned(), model.to_owned()))?;
        let entry = list
            .iter()
            .rev()
            .find(|d| d.from_ms <= now_ms && now_ms < d.until_ms)?;
        let quote = |rates: Rates, variant: Option<String>| Quote {
            rates,
            currency: entry.currency.clone(),
            variant,
        };
        if let Some(t) = entry.tiers.iter().find(|t| prompt_tokens > t.above) {
            return Some(quote(t.rates, Some(format!("above {}", t.above))));
        }
        let minute = minute_of_week(now_ms);
        for w in &entry.windows {
            if w.minutes.iter().any(|(a, b)| (*a..*b).contains(&minute)) {
                return Some(quote(w.rates, Some(w.name.clone())));
            }
        }
        Some(quote(entry.rates, None))
    }

    /// `amount` pico-units of `from` in `to`, rounded to the pico-unit; `None` without a rate for either.
    pub fn convert(&self, pico: u128, from: &str, to: &str) -> Option<u128> {
        if from == to {
            return Some(pico);
        }
        let (f, t) = (*self.exchange.get(from)?, *self.exchange.get(to)?);
        if f == 0 {
            return None;
        }
        // Both rates are in millionths per US dollar: amount × to / from.
        let num = pico.checked_mul(u128::from(t))?;
        let den = u128::from(f);
        Some(num.checked_add(den / 2)? / den)
    }
}

impl Quote {
    /// The cost of `tokens` at these prices, exactly: cached and cache-write tokens at their prices and the rest
    /// of the prompt at the input price; reasoning tokens at the reasoning price (the output price when there is
    /// none) and the rest of the completion at the output price; plus the per-request fee, the images at their
    /// price each, the audio by the millisecond at its price per minute (rounded up to the pico-unit) and the
    /// characters spoken at their price per million. Reported counts that
    /// do not fit (more cached tokens than prompt tokens) are clamped, never added on top.
    pub fn cost(&self, tokens: Tokens) -> Cost {
        let r = &self.rates;
        let cached = tokens.cached.min(tokens.prompt);
        let cache_write = tokens.cache_write.min(tokens.prompt - cached);
        let plain_prompt = tokens.prompt - cached - cache_write;
        let reasoning = tokens.reasoning.min(tokens.completion);
        let plain_completion = tokens.completion - reasoning;
        let output = r.output.unwrap_or_default();
        // A provider's token counts are not trusted to be sane: the sum saturates rather than overflows.
        let per = |n: u64, rate: Decimal| u128::from(n) * u128::from(rate.0);
        let pico = [
            per(plain_prompt, r.input),
            per(cached, r.cached.unwrap_or(r.input)),
            per(cache_write, r.cache_write.unwrap_or(r.input)),
            per(plain_completion, output),
            per(reasoning, r.reasoning.unwrap_or(output)),
            // A fee in currency units: millionths × 10⁶ = pico-units.
            u128::from(r.per_request.unwrap_or_default().0) * 1_000_000,
            u128::from(tokens.images) * u128::from(r.image.unwrap_or_default().0) * 1_000_000,
            // Millionths per minute × 10⁶ / 60,000 ms = pico-units per ms × 50/3: rounded up to the pico-unit.
            (u128::from(tokens.audio_ms) * u128::from(r.audio_minute.unwrap_or_default().0) * 50)
                .div_ceil(3),
            per(tokens.characters, r.characters.unwrap_or_default()),
        ]
        .into_iter()
        .fold(0u128, u128::saturating_add);
        Cost {
            pico,
            currency: self.currency.clone(),
        }
    }
}

/// Minutes since Monday 00:00 UTC.
fn minute_of_week(now_ms: i64) -> u32 {
    let minutes = now_ms.div_euclid(60_000);
    // 1970-01-01 was a Thursday: Monday 00:00 UTC came 3 days earlier.
    (minutes + 3 * 24 * 60).rem_euclid(i64::from(WEEK)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    fn rates(input: &str, cached: Option<&str>, output: &str) -> Rates {
        Rates {
            input: d(input),
            cached: cached.map(d),
            output: Some(d(output)),
            ..Rates::default()
        }
    }

    fn deepseek() -> PriceTable {
        PriceTable {
            exchange: [("USD".to_owned(), d("1")), ("CNY".to_owned(), d("7.1"))].into(),
            prices: vec![PriceEntry {
                provider: "deepseek".into(),
                model: "deepseek-flash".into(),
                currency: "CNY".into(),
                source: "test".into(),
                rates: rates("1", Some("0.02"), "4"),
                windows: vec![Window {
                    name: "peak".into(),
                    timezone: "+08:00".into(),
                    days: vec!["mon-fri".into()],
                    hours: vec!["09:00-12:00".into(), "14:00-18:00".into()],
                    rates: rates("2", Some("0.04"), "8"),
                }],
                ..PriceEntry::default()
            }],
        }
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(d("0.075"), Decimal(75_000));
        assert_eq!(d("2"), Decimal(2_000_000));
        assert_eq!(Decimal::from_f64(0.075), Some(Decimal(75_000)));
        assert_eq!(Decimal::from_f64(0.0000001), None);
        assert_eq!(Decimal::parse("1.2345678"), None);
        assert_eq!(Decimal::parse("-1"), None);
        assert_eq!(d("0.075").to_string(), "0.075");
        assert_eq!(d("7.10").to_string(), "7.1");
        assert_eq!(format_pico(123_000_000), "0.000123");
        // Absurd counts from a provider saturate instead of overflowing.
        let q = Quote {
            rates: Rates {
                input: Decimal(u64::MAX),
                output: Some(Decimal(u64::MAX)),
                ..Rates::default()
            },
            currency: "USD".into(),
            variant: None,
        };
        let max = Tokens {
            prompt: u64::MAX,
            completion: u64::MAX,
            ..Tokens::default()
        };
        assert_eq!(q.cost(max).pico, u128::MAX);
    }

    #[test]
    fn deepseek_peak_and_off_peak() {
        let book = PriceBook::new(&deepseek());
        // 2026-12-01 (a Tuesday) 02:00 UTC = 10:00 Beijing: peak. 12:30 UTC = 20:30 Beijing: off-peak.
        let tue = parse_date("2026-12-01").unwrap() * 86_400_000;
        let peak = book
            .quote("deepseek", "deepseek-flash", tue + 2 * 3_600_000, 100)
            .unwrap();
        assert_eq!(peak.variant.as_deref(), Some("peak"));
        let off = book
            .quote(
                "deepseek",
                "deepseek-flash",
                tue + 12 * 3_600_000 + 1_800_000,
                100,
            )
            .unwrap();
        assert_eq!(off.variant, None);
        // 1,000 prompt tokens of which 600 cached, 200 completion of which 50 reasoning, at peak:
        // 400 × ¥2/M + 600 × ¥0.04/M + 200 × ¥8/M = ¥0.0008 + ¥0.000024 + ¥0.0016.
        let tokens = Tokens {
            prompt: 1000,
            cached: 600,
            completion: 200,
            reasoning: 50,
            ..Tokens::default()
        };
        assert_eq!(peak.cost(tokens).amount(), "0.002424");
        assert_eq!(off.cost(tokens).amount(), "0.001212");
        // In US dollars at 7.1 CNY per dollar, to the pico-dollar.
        assert_eq!(
            book.convert(peak.cost(tokens).pico, "CNY", "USD"),
            Some(341_408_451)
        );
        // Saturday 10:00 Beijing is off-peak.
        let sat = parse_date("2026-12-05").unwrap() * 86_400_000 + 2 * 3_600_000;
        assert_eq!(
            book.quote("deepseek", "deepseek-flash", sat, 1)
                .unwrap()
                .variant,
            None
        );
    }

    #[test]
    fn dates_tiers_and_problems() {
        let mut table = deepseek();
        table.prices[0].windows.clear();
        let mut later = table.prices[0].clone();
        later.from = Some("2027-01-01".into());
        later.rates = rates("3", None, "9");
        later.tiers = vec![Tier {
            above: 200_000,
            rates: rates("6", None, "18"),
        }];
        table.prices.push(later);
        assert_eq!(table.problems(|_, _| true), Vec::<String>::new());
        let book = PriceBook::new(&table);
        let new_year = parse_date("2027-01-01").unwrap() * 86_400_000;
        assert_eq!(
            book.quote("deepseek", "deepseek-flash", new_year - 1, 10)
                .unwrap()
                .rates
                .input,
            d("1")
        );
        assert_eq!(
            book.quote("deepseek", "deepseek-flash", new_year, 10)
                .unwrap()
                .rates
                .input,
            d("3")
        );
        assert_eq!(
            book.quote("deepseek", "deepseek-flash", new_year, 300_000)
                .unwrap()
                .rates
                .input,
            d("6")
        );
        // Two undated entries overlap; a window with bad hours, an unknown currency, a missing model.
        let mut bad = deepseek();
        bad.prices.push(bad.prices[0].clone());
        bad.prices[1].currency = "EUR".into();
        bad.prices[1].windows[0].hours = vec!["18:00-09:00".into()];
        let problems = bad.problems(|_, m| m == "deepseek-flash");
        assert!(
            problems.iter().any(|p| p.contains("overlapping dates")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("EUR")), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("18:00-09:00")),
            "{problems:?}"
        );
    }

    #[test]
    fn images_are_priced_by_the_picture_exactly() {
        let q = Quote {
            rates: Rates {
                image: Some(d("0.04")),
                ..Rates::default()
            },
            currency: "USD".into(),
            variant: None,
        };
        let three = q.cost(Tokens {
            images: 3,
            ..Tokens::default()
        });
        assert_eq!(three.pico, 120_000_000_000, "0.12 USD");
        // A model priced by tokens (gpt-image) charges nothing per picture.
        let tokens = Quote {
            rates: rates("5", None, "40"),
            currency: "USD".into(),
            variant: None,
        };
        let c = tokens.cost(Tokens {
            prompt: 17,
            completion: 1372,
            images: 1,
            ..Tokens::default()
        });
        assert_eq!(c.pico, 17 * 5_000_000 + 1372 * 40_000_000);
    }

    #[test]
    fn audio_is_priced_by_the_millisecond_and_speech_by_the_character() {
        let whisper = Quote {
            rates: Rates {
                audio_minute: Some(d("0.006")),
                ..Rates::default()
            },
            currency: "USD".into(),
            variant: None,
        };
        let minute = |ms| {
            whisper
                .cost(Tokens {
                    audio_ms: ms,
                    ..Tokens::default()
                })
                .pico
        };
        assert_eq!(minute(60_000), 6_000_000_000, "0.006 USD a minute");
        assert_eq!(minute(9_000), 900_000_000);
        // A millisecond at 0.00051 a minute is 8,500 pico-units exactly; at a millionth a minute it is 16⅔,
        // rounded up, never down.
        let per_ms = |rate: &str, ms: u64| {
            Quote {
                rates: Rates {
                    audio_minute: Some(d(rate)),
                    ..Rates::default()
                },
                currency: "USD".into(),
                variant: None,
            }
            .cost(Tokens {
                audio_ms: ms,
                ..Tokens::default()
            })
            .pico
        };
        assert_eq!(per_ms("0.00051", 1), 8_500);
        assert_eq!(per_ms("0.000001", 1), 17);
        assert_eq!(per_ms("0.000001", 3), 50);
        let tts = Quote {
            rates: Rates {
                characters: Some(d("15")),
                ..Rates::default()
            },
            currency: "USD".into(),
            variant: None,
        };
        assert_eq!(
            tts.cost(Tokens {
                characters: 1000,
                ..Tokens::default()
            })
            .pico,
            15_000_000_000
        );
    }

    #[test]
    fn the_version_follows_the_content() {
        let a = deepseek();
        let mut b = deepseek();
        assert_eq!(a.version(), b.version());
        b.prices[0].rates.input = d("1.5");
        assert_ne!(a.version(), b.version());
        assert_eq!(a.version().len(), 12);
    }
}
