//! The `Limiter` Durable Object: the counters of one key (`key:<id>`) or one team (`team:<name>`), the same
//! [`Counters`] the native host keeps in process. One object per scope serialises every admission of that
//! scope wherever the request arrived, so limits are exact across isolates and locations (the Rate Limiting
//! binding is per location and approximate). The counters are kept in the object's storage after every change,
//! so an evicted or restarted object goes on from where it was.
//!
//! Its protocol is JSON over `fetch` to `https://limiter/<op>`: `reserve` and `standing` take a [`ScopeAsk`],
//! `settle` a [`Settlement`], `cancel` a [`Reservation`].

use std::cell::RefCell;

use gateway_core::limits::{Counters, Reservation, ScopeAsk, Used};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

const STORED: &str = "counters";

#[durable_object]
pub struct Limiter {
    state: State,
    counters: RefCell<Option<Counters>>,
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
                let answer = self
                    .change(|c| match c.reserve(&ask.limits, ask.zone, ask.ask) {
                        Ok(reservation) => Reserved::Granted {
                            reservation,
                            standing: c.standing(&ask.limits, ask.zone, ask.ask.now_ms),
                        },
                        Err(refusal) => Reserved::Refused {
                            refusal,
                            standing: c.standing(&ask.limits, ask.zone, ask.ask.now_ms),
                        },
                    })
                    .await?;
                Response::from_json(&answer)
            }
            "/standing" => {
                let ask: ScopeAsk = match serde_json::from_str(&body) {
                    Ok(a) => a,
                    Err(e) => return bad(e),
                };
                self.load().await?;
                let standing = {
                    let mut c = self.counters.borrow_mut();
                    c.get_or_insert_with(Counters::default).standing(
                        &ask.limits,
                        ask.zone,
                        ask.ask.now_ms,
                    )
                };
                Response::from_json(&standing)
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
            other => Response::error(format!("limiter: no operation `{other}`"), 404),
        }
    }
}
