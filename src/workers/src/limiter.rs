//! The `Limiter` Durable Object: the counters of one key (`key:<id>`) or one team (`team:<name>`), the same
//! [`Counters`] the native host keeps in process. One object per scope serialises every admission of that
//! scope wherever the request arrived, so limits are exact across isolates and locations (the Rate Limiting
//! binding is per location and approximate). The counters are kept in the object's storage after every change,
//! so an evicted or restarted object goes on from where it was.
//!
//! One more object, named [`FEED`], holds the **changes feed** of key and team records: the admin API announces
//! every record it writes, and every isolate asks for the changes since its last version at most once a second
//! (`gateway/authenticate.rs`), so a revocation reaches all of them within about a second — KV's edge caches can
//! serve the old record for up to a minute.
//!
//! Its protocol is JSON over `fetch` to `https://limiter/<op>`: `reserve` and `standing` take a [`ScopeAsk`],
//! `settle` a [`Settlement`], `cancel` a [`Reservation`]; `announce` a `RecordChange`, `changes` a version. The
//! feed itself, what it keeps and what it answers, is the core's `RecordFeed`.

use std::cell::RefCell;

use gateway_core::auth::{RecordChange, RecordFeed};
use gateway_core::limits::{Counters, Refusal, Reservation, ScopeAsk, Standing, Used};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const STORED: &str = "counters";
const FEED_STORED: &str = "feed";
/// The object that holds the changes feed of key and team records (no key or team scope is named so: theirs
/// begin with `key:` or `team:`).
pub const FEED: &str = "records";

#[durable_object(fetch)]
pub struct Limiter {
    state: State,
    counters: RefCell<Option<Counters>>,
    /// The changes feed, in the `records` object only.
    feed: RefCell<Option<RecordFeed>>,
}

/// What `reserve` answers: the reservation, or the refusal, with where the scope stands.
#[derive(Serialize, Deserialize)]
pub enum Reserved {
    Granted {
        reservation: Reservation,
        standing: Standing,
    },
    Refused {
        refusal: Refusal,
        standing: Standing,
    },
}

#[derive(Serialize, Deserialize)]
pub struct Settlement {
    pub reservation: Reservation,
    pub used: Used,
}

impl Limiter {
    /// Runs `f` on the value stored under `key` (read from storage the first time after the object started, the
    /// default before anything was stored), then stores it again. No borrow is held across an await.
    async fn change<T, R>(
        &self,
        (cell, key): (&RefCell<Option<T>>, &str),
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        self.load(cell, key).await?;
        let (out, json) = {
            let mut value = cell.borrow_mut();
            let value = value.get_or_insert_with(T::default);
            let out = f(value);
            let json = serde_json::to_string(value)
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            (out, json)
        };
        self.state.storage().put(key, json).await?;
        Ok(out)
    }

    /// Reads `f` of the value under `key`, storing nothing.
    async fn read<T, R>(
        &self,
        (cell, key): (&RefCell<Option<T>>, &str),
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R>
    where
        T: DeserializeOwned + Default,
    {
        self.load(cell, key).await?;
        let mut value = cell.borrow_mut();
        Ok(f(value.get_or_insert_with(T::default)))
    }

    async fn load<T: DeserializeOwned + Default>(
        &self,
        cell: &RefCell<Option<T>>,
        key: &str,
    ) -> Result<()> {
        if cell.borrow().is_some() {
            return Ok(());
        }
        let stored: Option<String> = self.state.storage().get(key).await?;
        let value = stored
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        cell.borrow_mut().get_or_insert(value);
        Ok(())
    }
}

/// `body` as a `T`, or the 400 that says why not.
fn parse<T: DeserializeOwned>(body: &str) -> std::result::Result<T, Result<Response>> {
    serde_json::from_str(body).map_err(|e| Response::error(format!("limiter: {e}"), 400))
}

impl DurableObject for Limiter {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            counters: RefCell::new(None),
            feed: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let body = req.text().await?;
        let counters = (&self.counters, STORED);
        let feed = (&self.feed, FEED_STORED);
        match req.path().as_str() {
            "/reserve" => {
                let ask: ScopeAsk = match parse(&body) {
                    Ok(a) => a,
                    Err(bad) => return bad,
                };
                let answer = self
                    .change(counters, |c| {
                        let reserved = c.reserve(&ask.limits, ask.zone, ask.ask);
                        let standing = c.standing(&ask.limits, ask.zone, ask.ask.now_ms);
                        match reserved {
                            Ok(reservation) => Reserved::Granted {
                                reservation,
                                standing,
                            },
                            Err(refusal) => Reserved::Refused { refusal, standing },
                        }
                    })
                    .await?;
                Response::from_json(&answer)
            }
            "/standing" => {
                let ask: ScopeAsk = match parse(&body) {
                    Ok(a) => a,
                    Err(bad) => return bad,
                };
                let standing = self
                    .read(counters, |c| {
                        c.standing(&ask.limits, ask.zone, ask.ask.now_ms)
                    })
                    .await?;
                Response::from_json(&standing)
            }
            "/settle" => {
                let s: Settlement = match parse(&body) {
                    Ok(s) => s,
                    Err(bad) => return bad,
                };
                self.change(counters, |c| c.settle(&s.reservation, s.used))
                    .await?;
                Response::empty()
            }
            "/cancel" => {
                let r: Reservation = match parse(&body) {
                    Ok(r) => r,
                    Err(bad) => return bad,
                };
                self.change(counters, |c| c.cancel(&r)).await?;
                Response::empty()
            }
            "/announce" => {
                let change: RecordChange = match parse(&body) {
                    Ok(c) => c,
                    Err(bad) => return bad,
                };
                let now = worker::Date::now().as_millis() as i64;
                self.change(feed, |f| f.announce(change, now)).await?;
                Response::empty()
            }
            "/changes" => {
                let since: u64 = match parse(&body) {
                    Ok(s) => s,
                    Err(bad) => return bad,
                };
                let answer = self.read(feed, |f| f.since(since)).await?;
                Response::from_json(&answer)
            }
            other => Response::error(format!("limiter: no operation `{other}`"), 404),
        }
    }
}
