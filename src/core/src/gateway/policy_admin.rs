//! The policy as the console sees it: `GET /admin/policy` (the policy in force, its rules as text, the store's
//! history), `POST /admin/policy/rollback` (the pointer moved back, as `gateway-policy rollback` does) and
//! `POST /admin/explain` (a chat request in; the rule, the plan, the skipped targets and every rule's checks
//! out, decided exactly as the request would be, without dispatching it).

use serde_json::{json, Value};

use super::limit::Holder;
use super::request::json_body;
use super::{limit, plan, request, resolve, Gateway, Reply};
use crate::auth::KeyRecord;
use crate::error::{ApiError, ErrorCode};
use crate::http::GatewayRequest;
use crate::ports::Host;
use crate::usage::query_pairs;
use gateway_policy::store::{list, pushed, Activation, Entry, HISTORY_LEN};
use gateway_policy::Policy;

impl<H: Host> Gateway<H> {
    /// `/admin/policy`, `/admin/policy/rollback` and `/admin/explain`.
    pub(super) async fn admin_policy(&self, req: &GatewayRequest) -> Result<Reply, ApiError> {
        self.admit_admin(req)?;
        let body = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/admin/policy") => self.policy_view().await?,
            ("POST", "/admin/policy/rollback") => self.rollback(req).await?,
            ("POST", "/admin/explain") => self.explain(req).await?,
            _ => return Err(ApiError::method_not_allowed(&req.method, &req.path)),
        };
        Ok(Reply::local(serde_json::to_vec(&body).unwrap_or_default()))
    }

    /// The store's `history` and `log` entries, oldest first.
    async fn policy_lists(&self) -> Result<(Vec<String>, Vec<Activation>), ApiError> {
        let read = |e: crate::error::StoreError| ApiError::internal(format!("policy store: {e}"));
        let history = self.host.policy_entry(Entry::History).await.map_err(read)?;
        let log = self.host.policy_entry(Entry::Log).await.map_err(read)?;
        Ok((list(history.as_deref()), list(log.as_deref())))
    }

    async fn policy_view(&self) -> Result<Value, ApiError> {
        let store = |e: crate::error::StoreError| ApiError::internal(format!("policy store: {e}"));
        let (history, log) = self.policy_lists().await?;
        let stored = self.host.active_policy().await.map_err(store)?;
        let providers = self.providers(self.shared.policy().as_deref());
        let status = self.shared.status(self.host.now_ms(), &providers);
        let rules = self
            .shared
            .policy()
            .map(|p| rules_text(&p))
            .unwrap_or_default();
        // When each policy last became active (the log's newest move to it).
        let since = |hash: &str| log.iter().rev().find(|a| a.hash == hash).map(|a| a.at_ms);
        let active = status["policy"]["hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let history: Vec<Value> = history
            .iter()
            .rev()
            .map(|h| json!({"hash": h, "active_since_ms": since(h)}))
            .collect();
        Ok(json!({
            "published": self.shared.policy().is_some(),
            "active": status["policy"],
            "published_at_ms": since(&active),
            "store_active": stored,
            "history": history,
            "log": log.iter().rev().collect::<Vec<_>>(),
            "rules": rules,
        }))
    }

    /// Moves the pointer to `to` (one of the history's hashes; the current one is remembered) or, without
    /// `to`, back to the previous policy (taken off the history). The artifact is loaded and checked first, so
    /// the pointer never names a policy that does not load; the move goes into the log; this isolate or thread
    /// then uses the policy at once.
    async fn rollback(&self, req: &GatewayRequest) -> Result<Value, ApiError> {
        let store = |e: crate::error::StoreError| ApiError::internal(format!("policy store: {e}"));
        let body = json_body(&req.body, 4096)?;
        let current = self.host.active_policy().await.map_err(store)?;
        let (mut history, log) = self.policy_lists().await?;
        let conflict = |m: String| ApiError::new(ErrorCode::InvalidRequest, m);
        let to = match body.get("to") {
            None | Some(Value::Null) => history
                .pop()
                .ok_or_else(|| conflict("there is no earlier policy to roll back to".into()))?,
            Some(Value::String(h))
                if history.contains(h) || current.as_deref() == Some(h.as_str()) =>
            {
                if let Some(c) = current.clone().filter(|c| c != h) {
                    history.push(c);
                    let keep = history.len().saturating_sub(HISTORY_LEN);
                    history.drain(..keep);
                }
                h.clone()
            }
            Some(other) => {
                return Err(conflict(format!(
                    "`to` must be a hash from the policy history, not {other}"
                ))
                .with_param("to"))
            }
        };
        let json = self
            .host
            .policy_artifact(&to)
            .await
            .map_err(store)?
            .ok_or_else(|| conflict(format!("the policy store has no artifact {to}")))?;
        match Policy::from_json(&json) {
            Ok(p) if p.hash() == to => {}
            Ok(p) => {
                return Err(conflict(format!(
                    "the artifact {to} holds the policy {}",
                    p.hash()
                )))
            }
            Err(e) => return Err(conflict(format!("the policy {to} does not load: {e}"))),
        }
        // The history and the log first, the pointer last (as `gateway-policy rollback` writes them).
        let activation = Activation {
            hash: to.clone(),
            at_ms: self.host.now_ms() as i64,
            by: "console".into(),
        };
        let history = serde_json::to_string(&history).unwrap_or_else(|_| "[]".into());
        for (entry, value) in [
            (Entry::History, history),
            (Entry::Log, pushed(log, activation)),
            (Entry::Active, to.clone()),
        ] {
            self.host
                .put_policy_entry(entry, &value)
                .await
                .map_err(|e| {
                    ApiError::new(ErrorCode::InvalidRequest, format!("policy store: {e}"))
                })?;
        }
        self.shared.refresh(&self.host).await;
        Ok(json!({"active": to, "previous": current}))
    }

    /// Plans the chat request in the body as the gateway would (for the key `?key=<id>`, its team and budget
    /// standing included; without one, a key with no tier, tags or team).
    async fn explain(&self, req: &GatewayRequest) -> Result<Value, ApiError> {
        let key = match query_pairs(&req.query).find(|(k, _)| *k == "key") {
            Some((_, id)) => self.key_by_id(&id).await?,
            None => KeyRecord::default(),
        };
        let holder = Holder {
            team: self.find_team(&key).await?,
            key: &key,
        };
        let policy = self.shared.policy();
        let providers = self.providers(policy.as_deref());
        let call = request::chat(&req.body, self.config.max_body_bytes)?;
        request::known_provider(&call, &providers)?;
        let requested = resolve::resolve(&providers, &call);
        let pricing = self.pricing(policy.as_deref());
        let standings = match policy.as_deref() {
            Some(p) if plan::tests_budgets(p) && !key.id.is_empty() => {
                limit::standing(self, &holder, &pricing).await?
            }
            _ => (None, None),
        };
        let mut plan = self.plan(
            req,
            (&key, &call, standings),
            requested,
            "explain",
            (policy.as_deref(), &providers),
        );
        limit::restrict(&mut plan, &holder);
        let trace = match (policy.as_deref(), &plan.attrs) {
            (Some(p), Some(attrs)) => serde_json::to_value(p.explain(attrs).1).unwrap_or_default(),
            _ => Value::Array(Vec::new()),
        };
        let deny = plan
            .refusal
            .as_ref()
            .map(|e| json!({"status": e.status(), "message": e.message}));
        let decided: Value = plan
            .decision_json()
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_else(
                || json!({"plan": plan.targets.iter().map(|t| t.name()).collect::<Vec<_>>()}),
            );
        Ok(json!({
            "policy": plan.policy,
            "rule": plan.rule,
            "plan": decided["plan"],
            "skipped": decided.get("skipped").cloned().unwrap_or_else(|| json!([])),
            "attrs": decided.get("attrs").cloned().unwrap_or(Value::Null),
            "deny": deny,
            "trace": trace,
        }))
    }
}

/// The policy's rules as text, in the order they are tried.
fn rules_text(p: &Policy) -> Vec<Value> {
    let a = p.artifact();
    let mut out: Vec<Value> = Vec::new();
    for (kind, rules) in [("deny", &a.deny), ("rule", &a.rules)] {
        out.extend(
            rules
                .iter()
                .map(|r| json!({"id": r.id, "kind": kind, "text": r.text(kind)})),
        );
    }
    out.push(json!({"id": a.default.id, "kind": "default", "text": a.default.text("default")}));
    out
}
