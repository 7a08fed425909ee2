//! The `Limiter` Durable Object: the counters of one key (`key:<id>`) or one team (`team:<name>`), the same
//! [`Counters`] the native host keeps in process. One object per scope serialises every admission of that
//! scope wherever the request arrived, so limits are exact across isolates and locations (the Rate Limiting
//! binding is per location and approximate). The counters are kept in the object's storage after every change,
//! so an evicted or restarted object goes on from where it was.
//!
//! It also keeps the latest state of its key's or team's record (revoked, limits) that the key admin API tells it:
//! a limited key's requests pass its object, so a new limit applies to the next one on every isolate.
//!
//! One more object, named [`FEED`], holds the **changes feed** of key and team records: the admin API announces
//! every record it writes, and every isolate asks for the changes since its last version at most once a second
//! (`gateway/authenticate.rs`), so a revocation reaches all of them within about a second — KV's edge caches can
//! serve the old record for up to a minute.
//!
//! Its protocol is JSON over `fetch` to `https://limiter/<op>`: `reserve` and `standing` take a [`ScopeAsk`],
//! `settle` a [`Settlement`], `cancel` a [`Reservation`], `state` a [`ScopeState`]; `announce` a `RecordChange`,
//! `changes` a version.

use std::cell::RefCell;

use gateway_core::limits::{Counters, Reservation, ScopeAsk, ScopeState, Used};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const STORED: &str = "counters";
/// The object that holds the changes feed of key and team records (no key or team scope is named so: theirs
/// begin with `key:` or `team:`).
pub const FEED: &str = "records";
/// The feed keeps at least this long of changes (longer than KV takes to propagate a write)…
const FEED_KEEP_MS: i64 = 10 * 60_000;
/// …and at most this many.
const FEED_MAX: usize = 10_000;
/// The key's or team's latest record state, as the admin API told it.
const RECORD: &str = "record";
const FEED_STORED: &str = "feed";

#[durable_object(fetch)]
pub struct Limiter {
    state: State,
    counters: RefCell<Option<Counters>>,
    /// `Some(None)`: read, and nothing was told.
    record: RefCell<Option<Option<ScopeState>>>,
    /// The changes feed, in the `records` object only.
    feed: RefCell<Option<Feed>>,
}

/// Changed key and team records, numbered: `version` is the number of the last one.
#[derive(Default, Serialize, Deserialize)]
struct Feed {
    version: u64,
    /// (number, when, the record).
    entries: std::collections::VecDeque<(u64, i64, gateway_core::auth::RecordChange)>,
}

/// What `reserve` answers: the reservation, or the refusal, with where the scope stands.
#[derive(Serialize, Deserialize)]
pub enum Reserved {
    Granted {
        reservation: Reservation,
        standing: gateway_core::limits::Standing,
    },
    Refused {
        refusal: gateway_core::limits::Refusal,
        standing: gateway_core::limits::Standing,
    },
}

#[derive(Serialize, Deserialize)]
pub struct Settlement {
    pub reservation: Reservation,
    pub used: Used,
}

impl Limiter {
    /// The record state the admin API last told, read from storage the first time.
    async fn record(&self) -> Result<Option<ScopeState>> {
        if let Some(r) = *self.record.borrow() {
            return Ok(r);
        }
        let stored: Option<String> = self.state.storage().get(RECORD).await?;
        let record = stored.and_then(|s| serde_json::from_str(&s).ok());
        *self.record.borrow_mut() = Some(record);
        Ok(record)
    }

    /// The changes feed, read from storage the first time.
    async fn load_feed(&self) -> Result<()> {
        if self.feed.borrow().is_some() {
            return Ok(());
        }
        let stored: Option<String> = self.state.storage().get(FEED_STORED).await?;
        let feed = stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        self.feed.borrow_mut().get_or_insert(feed);
        Ok(())
    }

    /// The counters, read from storage the first time after the object started.
    async fn load(&self) -> Result<()> {
        if self.counters.borrow().is_some() {
            return Ok(());
        }
        let stored: Option<String> = self.state.storage().get(STORED).await?;
        let counters = stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        self.counters.borrow_mut().get_or_insert(counters);
        Ok(())
    }

    async fn save(&self) -> Result<()> {
        let json = {
            let c = self.counters.borrow();
            serde_json::to_string(&*c).map_err(|e| worker::Error::RustError(e.to_string()))?
        };
        self.state.storage().put(STORED, json).await
    }

    /// Runs `f` on the counters (no borrow is held across an await) and stores them.
    async fn change<T>(&self, f: impl FnOnce(&mut Counters) -> T) -> Result<T> {
        self.load().await?;
        let out = {
            let mut c = self.counters.borrow_mut();
            f(c.get_or_insert_with(Counters::default))
        };
        self.save().await?;
        Ok(out)
    }
}

impl DurableObject for Limiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            counters: RefCell::new(None),
            record: RefCell::new(None),
            feed: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await?;
        let bad = |e: serde_json::Error| Response::error(format!("limiter: {e}"), 400);
        match req.path().as_str() {
            "/reserve" => {
                let ask: ScopeAsk = match serde_json::from_str(&body) {
                    Ok(a) => a,
                    Err(e) => return bad(e),
                };
                let record = self.record().await?;
                let answer = self
                    .change(|c| {
                        let limits = match ScopeState::apply(record.as_ref(), &ask) {
                            Ok(limits) => limits,
                            Err(refusal) => {
                                return Reserved::Refused {
                                    refusal,
                                    standing: c.standing(&ask.limits, ask.zone, ask.ask.now_ms),
                                }
                            }
                        };
                        match c.reserve(&limits, ask.zone, ask.ask) {
                            Ok(reservation) => Reserved::Granted {
                                reservation,
                                standing: c.standing(&limits, ask.zone, ask.ask.now_ms),
                            },
                            Err(refusal) => Reserved::Refused {
                                refusal,
                                standing: c.standing(&limits, ask.zone, ask.ask.now_ms),
                            },
                        }
                    })
                    .await?;
                Response::from_json(&answer)
            }
            "/standing" => {
                let ask: ScopeAsk = match serde_json::from_str(&body) {
                    Ok(a) => a,
                    Err(e) => return bad(e),
                };
                let limits =
                    ScopeState::apply(self.record().await?.as_ref(), &ask).unwrap_or(ask.limits);
                self.load().await?;
                let standing = {
                    let mut c = self.counters.borrow_mut();
                    c.get_or_insert_with(Counters::default).standing(
                        &limits,
                        ask.zone,
                        ask.ask.now_ms,
                    )
                };
                Response::from_json(&standing)
            }
            "/state" => {
                let state: ScopeState = match serde_json::from_str(&body) {
                    Ok(s) => s,
                    Err(e) => return bad(e),
                };
                self.state.storage().put(RECORD, body).await?;
                *self.record.borrow_mut() = Some(Some(state));
                Response::empty()
            }
            "/settle" => {
                let s: Settlement = match serde_json::from_str(&body) {
                    Ok(s) => s,
                    Err(e) => return bad(e),
                };
                self.change(|c| c.settle(&s.reservation, s.used)).await?;
                Response::empty()
            }
            "/cancel" => {
                let r: Reservation = match serde_json::from_str(&body) {
                    Ok(r) => r,
                    Err(e) => return bad(e),
                };
                self.change(|c| c.cancel(&r)).await?;
                Response::empty()
            }
            "/announce" => {
                let change: gateway_core::auth::RecordChange = match serde_json::from_str(&body) {
                    Ok(c) => c,
                    Err(e) => return bad(e),
                };
                self.load_feed().await?;
                let json = {
                    let mut feed = self.feed.borrow_mut();
                    let feed = feed.get_or_insert_with(Feed::default);
                    let now = worker::Date::now().as_millis() as i64;
                    feed.version += 1;
                    feed.entries.push_back((feed.version, now, change));
                    while feed.entries.len() > FEED_MAX
                        || (feed.entries.len() > 1
                            && feed
                                .entries
                                .front()
                                .is_some_and(|(_, at, _)| now - at > FEED_KEEP_MS))
                    {
                        feed.entries.pop_front();
                    }
                    serde_json::to_string(&*feed)
                        .map_err(|e| worker::Error::RustError(e.to_string()))?
                };
                self.state.storage().put(FEED_STORED, json).await?;
                Response::empty()
            }
            "/changes" => {
                let since: u64 = match serde_json::from_str(&body) {
                    Ok(s) => s,
                    Err(e) => return bad(e),
                };
                self.load_feed().await?;
                let answer = {
                    let feed = self.feed.borrow();
                    let feed = feed.as_ref();
                    let version = feed.map_or(0, |f| f.version);
                    let oldest = feed
                        .and_then(|f| f.entries.front())
                        .map_or(version + 1, |(n, _, _)| *n);
                    gateway_core::auth::RecordChanges {
                        version,
                        // The feed reaches back to `since` when nothing after it was dropped.
                        complete: since >= version || since + 1 >= oldest,
                        changes: feed
                            .into_iter()
                            .flat_map(|f| f.entries.iter())
                            .filter(|(n, _, _)| *n > since)
                            .map(|(_, _, c)| c.clone())
                            .collect(),
                    }
                };
                Response::from_json(&answer)
            }
            other => Response::error(format!("limiter: no operation `{other}`"), 404),
        }
    }
}
