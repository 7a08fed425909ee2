//! Actions: targets resolved against declarations and the catalog (with capability checks), options
//! validated.

use super::*;

impl<'a, 'p> Cx<'a, 'p> {
    pub(super) fn action(&self, a: &ast::Action, requires: &Requires) -> Option<Action> {
        match a {
            ast::Action::Deny {
                status, message, ..
            } => {
                let status = match status {
                    Some((s, span)) if !(400..=599).contains(s) => {
                        self.report(
                            Diagnostic::error(codes::INVALID_VALUE, *span, format!("`{s}` is not an error status"), "not 4xx or 5xx")
                                .with_help("deny with a status from 400 to 599, e.g. `deny 403 \"…\"` (403 when omitted)"),
                        );
                        return None;
                    }
                    Some((s, _)) => *s,
                    None => 403,
                };
                Some(Action::Deny {
                    status,
                    message: message.clone(),
                })
            }
            ast::Action::Chain(items, _) => {
                let mut steps = Vec::new();
                let mut seen: Vec<(Target, Span)> = Vec::new();
                let mut ok = true;
                for item in items {
                    match item {
                        ast::ChainItem::Target(tr) => match self.target(tr, true, 0) {
                            Some(ts) => {
                                for t in ts {
                                    self.capability(&t, tr.span, requires);
                                    self.duplicate(&mut seen, &t, tr.span);
                                    steps.push(Step::Target { target: t });
                                }
                            }
                            None => ok = false,
                        },
                        ast::ChainItem::Split(arms, span) => {
                            let mut out = Vec::new();
                            let mut sum: i64 = 0;
                            let mut weights_ok = true;
                            for arm in arms {
                                let weight = match arm.weight.value {
                                    LitValue::Int(w) if w > 0 && w <= 100 => w,
                                    _ => {
                                        self.report(
                                            Diagnostic::error(codes::SPLIT_WEIGHTS, arm.weight.span, "a split weight must be a whole number from 1 to 100", "invalid weight")
                                                .with_help("weights are percentages: `split { openai 90, openrouter 10 }`"),
                                        );
                                        weights_ok = false;
                                        continue;
                                    }
                                };
                                sum += weight;
                                match self.target(&arm.target, false, 0).as_deref() {
                                    Some([t]) => {
                                        self.capability(t, arm.target.span, requires);
                                        self.duplicate(&mut seen, t, arm.target.span);
                                        out.push(SplitArm {
                                            target: t.clone(),
                                            weight: weight as u32,
                                        });
                                    }
                                    _ => ok = false,
                                }
                            }
                            if weights_ok && sum != 100 {
                                self.report(
                                    Diagnostic::error(codes::SPLIT_WEIGHTS, *span, format!("split weights sum to {sum}, not 100"), "weights must sum to 100")
                                        .with_help("weights are percentages of traffic; the arm is chosen by the request's stable `split_sample`"),
                                );
                                ok = false;
                            }
                            ok &= weights_ok;
                            steps.push(Step::Split { arms: out });
                        }
                        ast::ChainItem::Ranked(ranking, targets, _) => {
                            let mut out = Vec::new();
                            for tr in targets {
                                match self.target(tr, true, 0) {
                                    Some(ts) => {
                                        for t in ts {
                                            self.capability(&t, tr.span, requires);
                                            self.duplicate(&mut seen, &t, tr.span);
                                            out.push(t);
                                        }
                                    }
                                    None => ok = false,
                                }
                            }
                            steps.push(match ranking {
                                ast::Ranking::Cheapest => Step::Cheapest { targets: out },
                                ast::Ranking::Fastest => Step::Fastest { targets: out },
                            });
                        }
                    }
                }
                ok.then_some(Action::Route { steps })
            }
        }
    }

    pub(super) fn duplicate(&self, seen: &mut Vec<(Target, Span)>, t: &Target, span: Span) {
        if let Some((_, first)) = seen.iter().find(|(s, _)| s == t) {
            let first = self.where_(*first);
            self.report(
                Diagnostic::warning(
                    codes::DUPLICATE_TARGET,
                    span,
                    format!("`{t}` is already in this chain"),
                    "tried twice",
                )
                .with_help(format!(
                    "it first appears at {first}; the second attempt is skipped, so remove it"
                )),
            );
        } else {
            seen.push((t.clone(), span));
        }
    }

    pub(super) fn capability(&self, t: &Target, span: Span, req: &Requires) {
        let Target::Model { provider, model } = t else {
            return;
        };
        let Some(m) = self.catalog.model(provider, model) else {
            return;
        };
        let mut missing = Vec::new();
        if req.images && !m.vision {
            missing.push(("images (`has_images`)", "vision"));
        }
        if req.tools && !m.tools {
            missing.push(("tools (`has_tools`)", "tool calling"));
        }
        if req.json && !m.json {
            missing.push(("JSON mode (`json_mode`)", "JSON mode"));
        }
        for (what, cap) in missing {
            self.report(
                Diagnostic::warning(
                    codes::CAPABILITY_MISMATCH,
                    span,
                    format!("this rule sends requests with {what} to `{t}`, which has no {cap}"),
                    format!("no {cap}"),
                )
                .with_help(
                    "route to a model that supports it (policies/catalog.toml lists capabilities)",
                ),
            );
        }
        if let Some(ctx) = m.context {
            if req.min_tokens > 0 && req.min_tokens as u64 > ctx {
                self.report(
                    Diagnostic::warning(
                        codes::CAPABILITY_MISMATCH,
                        span,
                        format!("this rule sends prompts of at least {} tokens to `{t}`, whose context window is {ctx}", req.min_tokens),
                        "context window too small",
                    )
                    .with_help("route large prompts to a model with a larger context window"),
                );
            }
        }
    }

    /// Resolves a target reference to one target, or several for a group (where `allow_group`).
    pub(super) fn target(
        &self,
        tr: &TargetRef,
        allow_group: bool,
        depth: u8,
    ) -> Option<Vec<Target>> {
        let name = &tr.name.name;
        if depth > 8 {
            self.report(Diagnostic::error(
                codes::UNKNOWN_NAME,
                tr.span,
                format!("target `{name}` refers to itself"),
                "circular",
            ));
            return None;
        }
        if name == "requested" {
            if tr.model.is_some() {
                self.report(
                    Diagnostic::error(
                        codes::UNKNOWN_NAME,
                        tr.span,
                        "`requested` takes no model",
                        "no `:model` here",
                    )
                    .with_help("`requested` is whatever the client asked for"),
                );
                return None;
            }
            return Some(vec![Target::Requested]);
        }
        if let Some((decl, _)) = self.decls.get(name) {
            self.used.borrow_mut().insert(name.clone());
            if tr.model.is_some() {
                self.report(
                    Diagnostic::error(
                        codes::UNKNOWN_NAME,
                        tr.span,
                        format!("`{name}` is a declared name; it takes no `:model`"),
                        "no `:model` here",
                    )
                    .with_help("`provider:model` is for provider names"),
                );
                return None;
            }
            return match decl {
                Decl::Target(_) => self.declared(name, depth),
                Decl::Group(_) if allow_group => self.declared(name, depth),
                Decl::Group(_) => {
                    self.report(
                        Diagnostic::error(codes::UNKNOWN_NAME, tr.span, format!("group `{name}` cannot be used here"), "a group")
                            .with_help("a group stands for several targets; use it in a chain or in `cheapest(…)` / `fastest(…)`"),
                    );
                    None
                }
                Decl::List(_) => {
                    self.report(
                        Diagnostic::error(
                            codes::UNKNOWN_NAME,
                            tr.span,
                            format!("`{name}` is a list, not a target"),
                            "a list",
                        )
                        .with_help(format!(
                            "lists are used in conditions: `key.team in ${name}`"
                        )),
                    );
                    None
                }
            };
        }
        if let Some(p) = self.catalog.providers.get(name) {
            let model = tr.model.clone().unwrap_or_else(|| p.default_model.clone());
            if !p.models.contains_key(&model) {
                let d = Diagnostic::error(
                    codes::UNKNOWN_MODEL,
                    tr.span,
                    format!("provider `{name}` has no model `{model}` in the catalog"),
                    "unknown model",
                );
                let d = self.suggest(d, &model, p.models.keys().map(String::as_str));
                self.report(d.with_help_if_none("add the model to policies/catalog.toml"));
                return None;
            }
            let prices = &self.catalog.prices.prices;
            if !prices.is_empty()
                && !prices
                    .iter()
                    .any(|e| e.provider == *name && e.model == model)
            {
                self.report(
                    Diagnostic::warning(
                        codes::NO_PRICE,
                        tr.span,
                        format!("`{name}:{model}` has no price in prices.toml"),
                        "no price",
                    )
                    .with_help("its requests are logged without a cost, and `cheapest(…)` ranks it last; add a [[price]] entry (0 for a free model)"),
                );
            }
            return Some(vec![Target::Model {
                provider: name.clone(),
                model,
            }]);
        }
        let candidates: Vec<&str> = self
            .catalog
            .providers
            .keys()
            .map(String::as_str)
            .chain(self.decls.keys().map(String::as_str))
            .chain(["requested"])
            .collect();
        let (code, what) = if tr.model.is_some() {
            (codes::UNKNOWN_PROVIDER, "provider")
        } else {
            (codes::UNKNOWN_NAME, "target")
        };
        let d = Diagnostic::error(
            code,
            tr.name.span,
            format!("unknown {what} `{name}`"),
            format!("not a {what}"),
        );
        let d = self.suggest(d, name, candidates.iter().copied());
        self.report(d.with_help_if_none(format!(
                "a target is a provider the catalog declares ({}; declare others under `[providers.NAME]` in catalog.toml), a declared target or group, or `requested`",
                self.catalog
                    .providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        None
    }

    pub(super) fn options(&self, opts: &[ast::OptionItem]) -> Options {
        let mut out = Options::default();
        let mut seen = BTreeSet::new();
        for o in opts {
            let name = o.name.name.as_str();
            if !seen.insert(name) {
                self.report(Diagnostic::error(
                    codes::INVALID_OPTION,
                    o.span,
                    format!("option `{name}` is given twice"),
                    "repeated",
                ));
                continue;
            }
            let bad = |help: &str| {
                self.report(
                    Diagnostic::error(
                        codes::INVALID_OPTION,
                        o.span,
                        format!("invalid value for `{name}`"),
                        "invalid value",
                    )
                    .with_help(help),
                );
            };
            match (name, &o.value) {
                ("timeout", OptValue::DurationMs(ms)) if *ms > 0 => out.timeout_ms = Some(*ms),
                ("first_token_timeout", OptValue::DurationMs(ms)) if *ms > 0 => {
                    out.first_token_timeout_ms = Some(*ms)
                }
                ("timeout" | "first_token_timeout", _) => {
                    bad("a duration greater than zero, e.g. `8s` or `500ms`")
                }
                (
                    "retries",
                    OptValue::Number(ast::Literal {
                        value: LitValue::Int(n),
                        ..
                    }),
                ) if (0..=10).contains(n) => out.retries = Some(*n as u32),
                ("retries", _) => bad("a whole number from 0 to 10"),
                ("retry_on", OptValue::StatusSet(items)) => {
                    for item in items {
                        if valid_retry_on(&item.name) {
                            out.retry_on.push(item.name.clone());
                        } else {
                            self.report(
                                Diagnostic::error(codes::INVALID_OPTION, item.span, format!("`{}` is not a retry condition", item.name), "not a status or failure kind")
                                    .with_help("use statuses (`429`, `503`), classes (`5xx`) or `timeout`, `connect`"),
                            );
                        }
                    }
                }
                ("retry_on", _) => bad("a set such as `{429, 5xx, timeout}`"),
                ("cache" | "team_cache" | "shared_cache", OptValue::DurationMs(ms)) if *ms > 0 => {
                    let scope = match name {
                        "cache" => CacheScope::Key,
                        "team_cache" => CacheScope::Team,
                        _ => CacheScope::Shared,
                    };
                    if let Some(earlier) = out.cache_scope {
                        self.report(
                            Diagnostic::error(
                                codes::INVALID_OPTION,
                                o.span,
                                format!(
                                    "`{name}` after `{}`: a rule's answers have one cache",
                                    earlier.option()
                                ),
                                "second cache option",
                            )
                            .with_help(
                                "keep one of `cache` (per key), `team_cache` and `shared_cache`",
                            ),
                        );
                    } else {
                        out.cache_ms = Some(*ms);
                        out.cache_scope = Some(scope);
                    }
                }
                ("cache" | "team_cache" | "shared_cache", _) => {
                    bad("a duration greater than zero, e.g. `10m` or `1h`")
                }
                ("archive", OptValue::DurationMs(ms)) if *ms > 0 => out.archive_ms = Some(*ms),
                ("archive", _) => bad("how long payloads are kept, e.g. `7d` or `12h`"),
                _ => {
                    let d = Diagnostic::error(
                        codes::INVALID_OPTION,
                        o.name.span,
                        format!("unknown option `{name}`"),
                        "not an option",
                    );
                    let names = [
                        "timeout",
                        "first_token_timeout",
                        "retries",
                        "retry_on",
                        "cache",
                        "team_cache",
                        "shared_cache",
                        "archive",
                    ];
                    self.report(self.suggest(d, name, names.into_iter()).with_help_if_none(
                        "options are `timeout`, `first_token_timeout`, `retries`, `retry_on`, `cache`, `team_cache`, `shared_cache` and `archive`",
                    ));
                }
            }
        }
        out
    }
}
