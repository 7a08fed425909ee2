//! The key administration API, behind `GATEWAY_ADMIN_TOKEN`: keys and teams, their limits and allow-lists.
//!
//! | request | answer |
//! |---|---|
//! | `POST /admin/keys` `{name, team?, tier?, tags?, allow?, limits?, expires_at_ms?}` | 201: the key (shown once) and its record |
//! | `GET /admin/keys` | every key with its spend today and this month |
//! | `GET /admin/keys/{id}` | one key, its spend and where its limits stand |
//! | `PATCH /admin/keys/{id}` | changes the fields given (`null` clears one) |
//! | `POST /admin/keys/{id}/revoke` | revokes it |
//! | `POST /admin/teams` `{name, allow?, limits?}`, `GET /admin/teams`, `GET`/`PATCH /admin/teams/{name}` | the same for teams |
//!
//! A change applies from the next request: every thread's cached records are dropped (natively all threads
//! share the signal), and on hosts with a changes feed (Workers) the record goes into it, which every isolate
//! follows within a second.

use serde_json::{json, Map, Value};

use super::request::json_body;
use super::{Gateway, Reply};
use crate::auth::{self, KeyRecord, RecordChange, TeamRecord};
use crate::error::{ApiError, ErrorCode};
use crate::http::GatewayRequest;
use crate::limits::{Ask, Limits, Standing};
use crate::ports::Host;

const MAX_BODY: usize = 64 * 1024;

impl<H: Host> Gateway<H> {
    /// `/admin/keys…` and `/admin/teams…`.
    pub(super) async fn admin_records(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        self.admit_admin(req)?;
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let store = |e: crate::error::StoreError| ApiError::internal(format!("key store: {e}"));
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["admin", "keys"]) => {
                let keys = self.host.keys().await.map_err(store)?;
                let mut data = Vec::with_capacity(keys.len());
                for k in &keys {
                    data.push(self.key_view(k).await?);
                }
                Ok(reply(200, json!({"object": "list", "data": data})))
            }
            ("POST", ["admin", "keys"]) => self.create_key(req).await,
            ("GET", ["admin", "keys", id]) => {
                let key = self.key_by_id(id).await?;
                Ok(reply(200, self.key_view(&key).await?))
            }
            ("PATCH", ["admin", "keys", id]) => {
                let mut key = self.key_by_id(id).await?;
                let body = json_body(&req.body, MAX_BODY)?;
                patch_key(&mut key, &body)?;
                self.save_key(key).await
            }
            ("POST", ["admin", "keys", id, "revoke"]) => {
                let mut key = self.key_by_id(id).await?;
                key.revoked = true;
                self.save_key(key).await
            }
            ("GET", ["admin", "teams"]) => {
                let teams = self.host.teams().await.map_err(store)?;
                let mut data = Vec::with_capacity(teams.len());
                for t in &teams {
                    data.push(self.team_view(t).await?);
                }
                Ok(reply(200, json!({"object": "list", "data": data})))
            }
            ("POST", ["admin", "teams"]) => {
                let body = json_body(&req.body, MAX_BODY)?;
                let name = match body.get("name") {
                    Some(Value::String(n)) => n.clone(),
                    _ => return Err(invalid("`name` is required: the team's name", "name")),
                };
                check_team_name(&name)?;
                if self.team_by_name(&name).await.is_ok() {
                    return Err(invalid(
                        &format!("team `{name}` exists: change it with PATCH /admin/teams/{name}"),
                        "name",
                    ));
                }
                let now = self.host.now_ms() as i64;
                let mut team = TeamRecord {
                    name,
                    created_at_ms: now,
                    ..TeamRecord::default()
                };
                patch_team(&mut team, &body)?;
                self.save_team(team, 201).await
            }
            ("GET", ["admin", "teams", name]) => {
                let team = self.team_by_name(name).await?;
                Ok(reply(200, self.team_view(&team).await?))
            }
            ("PATCH", ["admin", "teams", name]) => {
                let mut team = self.team_by_name(name).await?;
                let body = json_body(&req.body, MAX_BODY)?;
                patch_team(&mut team, &body)?;
                self.save_team(team, 200).await
            }
            (method, _) => Err(super::route::no_route(method, &req.path)),
        }
    }

    async fn create_key(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        let body = json_body(&req.body, MAX_BODY)?;
        let name = match body.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 200 => n.clone(),
            _ => return Err(invalid("`name` is required: up to 200 characters", "name")),
        };
        let random = || {
            self.host
                .secret_bytes()
                .map_err(|e| ApiError::internal(format!("no secure random source: {e}")))
        };
        let key = auth::key_from_random(&random()?);
        let now = self.host.now_ms() as i64;
        let mut record = KeyRecord {
            id: format!("key_{}", auth::hex(&random()?[..6])),
            name,
            created_at_ms: now,
            updated_at_ms: now,
            ..KeyRecord::default()
        };
        patch_key(&mut record, &body)?;
        self.check_limits(&record.limits)?;
        self.host
            .insert_key(&auth::hash_key(&key), &record)
            .await
            .map_err(|e| ApiError::internal(format!("key store: {e}")))?;
        self.changed(RecordChange::Key(record.clone())).await?;
        let mut view = self.key_view(&record).await?;
        if let Value::Object(m) = &mut view {
            m.insert("key".into(), Value::String(key));
        }
        Ok(reply(201, view))
    }

    async fn save_key(&self, mut key: KeyRecord) -> Result<Reply, ApiError> {
        self.check_limits(&key.limits)?;
        key.updated_at_ms = (self.host.now_ms() as i64).max(key.updated_at_ms + 1);
        let found = self
            .host
            .update_key(&key)
            .await
            .map_err(|e| ApiError::internal(format!("key store: {e}")))?;
        if !found {
            return Err(ApiError::not_found(format!("no key with id `{}`", key.id)));
        }
        self.changed(RecordChange::Key(key.clone())).await?;
        Ok(reply(200, self.key_view(&key).await?))
    }

    async fn save_team(&self, mut team: TeamRecord, status: u16) -> Result<Reply, ApiError> {
        self.check_limits(&team.limits)?;
        team.updated_at_ms = (self.host.now_ms() as i64).max(team.updated_at_ms + 1);
        self.host
            .put_team(&team)
            .await
            .map_err(|e| ApiError::internal(format!("team store: {e}")))?;
        self.changed(RecordChange::Team(team.clone())).await?;
        Ok(reply(status, self.team_view(&team).await?))
    }

    /// Budgets in a currency the price table cannot convert to the reporting currency are a 400 now, not a 500
    /// on every request later.
    fn check_limits(&self, limits: &Limits) -> Result<(), ApiError> {
        limits
            .resolve(&self.config.prices, &self.config.reporting_currency)
            .map(|_| ())
            .map_err(|e| invalid(&format!("`limits`: {e}"), "limits"))
    }

    /// A record was written: into the changes feed (on hosts with one, which every isolate follows), and every
    /// thread's cached records are dropped.
    async fn changed(&self, change: RecordChange) -> Result<(), ApiError> {
        self.host
            .announce(change)
            .await
            .map_err(|e| ApiError::internal(format!("record changes feed: {e}")))?;
        self.shared.records().changed();
        Ok(())
    }

    pub(super) async fn key_by_id(&self, id: &str) -> Result<KeyRecord, ApiError> {
        self.host
            .key_by_id(id)
            .await
            .map_err(|e| ApiError::internal(format!("key store: {e}")))?
            .ok_or_else(|| ApiError::not_found(format!("no key with id `{id}`")))
    }

    async fn team_by_name(&self, name: &str) -> Result<TeamRecord, ApiError> {
        self.host
            .find_team(name)
            .await
            .map_err(|e| ApiError::internal(format!("team store: {e}")))?
            .ok_or_else(|| ApiError::not_found(format!("no team named `{name}`")))
    }

    /// A key's record as JSON (never the key), with where its limits stand.
    async fn key_view(&self, key: &KeyRecord) -> Result<Value, ApiError> {
        self.view(key, "key", format!("key:{}", key.id), &key.limits)
            .await
    }

    async fn team_view(&self, team: &TeamRecord) -> Result<Value, ApiError> {
        self.view(team, "team", format!("team:{}", team.name), &team.limits)
            .await
    }

    /// A record as JSON with its `object` kind and its `standing`: spend today and this month (reporting
    /// currency) and what is left of each limit.
    async fn view(
        &self,
        record: &impl serde::Serialize,
        object: &str,
        scope: String,
        limits: &Limits,
    ) -> Result<Value, ApiError> {
        // A record written before its budget's currency could be converted still shows its spend.
        let limits = match self.check_limits(limits) {
            Ok(()) => limits.clone(),
            Err(_) => Limits::default(),
        };
        let ask = self.scope_ask(
            scope,
            &limits,
            &self.config.prices,
            Ask {
                now_ms: self.host.now_ms() as i64,
                ..Ask::default()
            },
        )?;
        let s: Standing = self
            .host
            .standing(vec![ask])
            .await
            .map_err(|e| ApiError::new(ErrorCode::KeyStoreUnavailable, format!("limits: {e}")))?
            .into_iter()
            .next()
            .unwrap_or_default();
        let money = |p: u128| gateway_policy::prices::format_pico(p);
        let mut view = serde_json::to_value(record).unwrap_or_default();
        if let Value::Object(m) = &mut view {
            m.insert("object".into(), object.into());
            m.insert(
                "standing".into(),
                json!({
                    "currency": self.config.reporting_currency,
                    "spend_day": money(s.day_pico),
                    "spend_month": money(s.month_pico),
                    "budget_remaining_pct": s.budget_remaining_pct(),
                    "remaining_requests": s.remaining_requests(),
                    "remaining_tokens": s.remaining_tokens(),
                }),
            );
        }
        Ok(view)
    }
}

fn reply(status: u16, body: Value) -> Reply {
    Reply::Local {
        status,
        body: serde_json::to_vec(&body).unwrap_or_default(),
        content_type: None,
        headers: Vec::new(),
    }
}

fn invalid(message: &str, param: &str) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Team names become parts of storage keys (`team/<name>`, `team:<name>`): a short plain name.
fn check_team_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(
            "a team name is 1-64 letters, digits, `-`, `_` or `.`",
            "team",
        ));
    }
    Ok(())
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(&format!("`{field}` must be a list of strings"), field))
            })
            .collect(),
        _ => Err(invalid(
            &format!("`{field}` must be a list of strings"),
            field,
        )),
    }
}

fn limits_of(v: &Value) -> Result<Limits, ApiError> {
    if v.is_null() {
        return Ok(Limits::default());
    }
    let limits: Limits = serde_json::from_value(v.clone())
        .map_err(|e| invalid(&format!("`limits`: {e}"), "limits"))?;
    if let Some(p) = limits.problem() {
        return Err(invalid(&format!("`limits`: {p}"), "limits"));
    }
    Ok(limits)
}

fn allow_of(v: &Value) -> Result<Vec<String>, ApiError> {
    let allow = string_list(v, "allow")?;
    if let Some(p) = auth::allow_problem(&allow) {
        return Err(invalid(&p, "allow"));
    }
    Ok(allow)
}

fn optional_string(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.len() <= 200 => Ok(Some(s.clone())),
        _ => Err(invalid(
            &format!("`{field}` must be a string (or null)"),
            field,
        )),
    }
}

/// Applies the fields a create or `PATCH` body gives to a key record.
fn patch_key(key: &mut KeyRecord, body: &Map<String, Value>) -> Result<(), ApiError> {
    for (field, v) in body {
        match field.as_str() {
            "name" => match v {
                Value::String(n) if !n.trim().is_empty() && n.len() <= 200 => key.name = n.clone(),
                _ => return Err(invalid("`name` must be a non-empty string", "name")),
            },
            "team" => {
                key.team = optional_string(v, "team")?;
                if let Some(t) = &key.team {
                    check_team_name(t)?;
                }
            }
            "tier" => key.tier = optional_string(v, "tier")?,
            "tags" => key.tags = string_list(v, "tags")?,
            "allow" => key.allow = allow_of(v)?,
            "limits" => key.limits = limits_of(v)?,
            "expires_at_ms" => {
                key.expires_at_ms = match v {
                    Value::Null => None,
                    v => Some(v.as_i64().ok_or_else(|| {
                        invalid("`expires_at_ms` must be Unix milliseconds (or null)", "expires_at_ms")
                    })?),
                }
            }
            other => {
                return Err(invalid(
                    &format!(
                        "unknown field `{other}`: a key has name, team, tier, tags, allow, limits and expires_at_ms"
                    ),
                    other,
                ))
            }
        }
    }
    Ok(())
}

fn patch_team(team: &mut TeamRecord, body: &Map<String, Value>) -> Result<(), ApiError> {
    for (field, v) in body {
        match field.as_str() {
            "name" if v.as_str() == Some(team.name.as_str()) => {}
            "allow" => team.allow = allow_of(v)?,
            "limits" => team.limits = limits_of(v)?,
            other => {
                return Err(invalid(
                    &format!(
                        "unknown field `{other}`: a team has allow and limits (its name is fixed)"
                    ),
                    other,
                ))
            }
        }
    }
    Ok(())
}
