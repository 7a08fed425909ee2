//! Lints over the whole policy: unreachable and never-matching rules, unused declarations, suggestions.

use super::*;

impl<'a, 'p> Cx<'a, 'p> {
    pub(super) fn reachability(
        &self,
        deny: &[LoweredRule],
        rules: &[LoweredRule],
        reach: &[(usize, bool, Option<Vec<Cube>>)],
    ) {
        let mut cover: Vec<(Cube, String)> = Vec::new();
        // Deny rules come first at runtime, whatever their position in the source.
        for (i, is_deny, cubes) in reach {
            if !is_deny {
                continue;
            }
            let Some(cubes) = cubes else { continue };
            let rule = &deny[*i];
            if cubes.is_empty() {
                self.never(rule);
            } else if region::dnf(&rule.when, true).is_some_and(|c| c.is_empty()) {
                self.report(
                    Diagnostic::warning(
                        codes::ALWAYS_TRUE,
                        rule.span,
                        format!("deny rule `{}` matches every request", rule.id),
                        "denies everything",
                    )
                    .with_help("every request will be denied; narrow its condition"),
                );
            }
            cover.extend(cubes.iter().map(|c| (c.clone(), rule.id.clone())));
        }
        let mut complete = true;
        for (i, is_deny, cubes) in reach {
            if *is_deny {
                continue;
            }
            let rule = &rules[*i];
            let Some(cubes) = cubes else {
                complete = false;
                continue;
            };
            if cubes.is_empty() {
                self.never(rule);
                continue;
            }
            // Only the earlier cubes that overlap this rule can take any of its requests.
            let covering: Vec<&Cube> = cover
                .iter()
                .filter(|(c, _)| cubes.iter().any(|r| region::intersects(r, c)))
                .map(|(c, _)| c)
                .collect();
            // Covered entirely by earlier rules? (`None`: too costly to tell.)
            let covered = if region::escapes(cubes, &covering) {
                Some(false)
            } else {
                region::uncovered(cubes, &covering).map(|rest| rest.is_empty())
            };
            match covered {
                Some(true) => {
                    let p = region::point(&cubes[0], &covering);
                    let by = cover
                        .iter()
                        .find(|(c, _)| region::cube_contains(c, &p))
                        .map_or("earlier rules", |(_, id)| id.as_str());
                    self.report(
                        Diagnostic::warning(
                            codes::UNREACHABLE_RULE,
                            rule.span,
                            format!(
                                "rule `{}` can never decide: every request it matches is decided earlier (e.g. {} goes to `{by}`)",
                                rule.id,
                                region::describe(&cubes[0], &p)
                            ),
                            "unreachable",
                        )
                        .with_help(format!("move it above `{by}`, or narrow the earlier rules so some requests reach it")),
                    );
                }
                Some(false) => {
                    if region::dnf(&rule.when, true).is_some_and(|c| c.is_empty())
                        && !matches!(rule.when, Cond::True)
                    {
                        self.report(
                            Diagnostic::warning(codes::ALWAYS_TRUE, rule.span, format!("the condition of rule `{}` is always true", rule.id), "matches every request")
                                .with_help("rules after it can never decide; if this is the fallback for everything, make it the `default`"),
                        );
                    }
                }
                None => complete = false,
            }
            cover.extend(cubes.iter().map(|c| (c.clone(), rule.id.clone())));
        }
        let _ = complete;
    }

    pub(super) fn never(&self, rule: &LoweredRule) {
        self.report(
            Diagnostic::warning(codes::NEVER_MATCHES, rule.span, format!("the condition of rule `{}` can never be true", rule.id), "contradictory")
                .with_help("its conditions exclude each other (or fall outside an attribute's range, e.g. `tokens < 0`)"),
        );
    }

    pub(super) fn unused(&self) {
        let used = self.used.borrow();
        for (name, (decl, span)) in &self.decls {
            if !used.contains(name) {
                let what = match decl {
                    Decl::Target(_) => "target",
                    Decl::Group(_) => "group",
                    Decl::List(_) => "list",
                };
                self.report(
                    Diagnostic::warning(
                        codes::UNUSED_DECLARATION,
                        *span,
                        format!("{what} `{name}` is never used"),
                        "unused",
                    )
                    .with_help("remove it, or use it in a rule"),
                );
            }
        }
    }

    /// Adds "did you mean" when a candidate is close.
    pub(super) fn suggest<'c>(
        &self,
        d: Diagnostic,
        name: &str,
        candidates: impl Iterator<Item = &'c str>,
    ) -> Diagnostic {
        match closest(name, candidates) {
            Some(c) => d.with_help(format!("did you mean `{c}`?")),
            None => d,
        }
    }

    /// A cached answer is given again to the next request like it, so a cacheable rule should route only requests
    /// whose answer does not vary: `temperature == 0` and no tools, both required by its condition (W108).
    pub(super) fn cache_lints(&self, rules: &[LoweredRule]) {
        for rule in rules.iter().filter(|r| r.options.cache_ms.is_some()) {
            let all: Vec<&Cond> = match &rule.when {
                Cond::And { all } => all.iter().collect(),
                other => vec![other],
            };
            let requires = |field: FieldId, holds: &dyn Fn(&Cmp, &Val) -> bool| {
                all.iter().any(|c| match c {
                    Cond::Cmp { field: f, cmp, value, .. } => *f == field && holds(cmp, value),
                    Cond::Not { cond } => matches!(cond.as_ref(), Cond::Cmp { field: f, cmp: Cmp::Eq, value: Val::Bool(true), .. } if *f == field),
                    _ => false,
                })
            };
            let zero =
                |v: &Val| matches!(v, Val::Int(0)) || matches!(v, Val::Float(x) if *x == 0.0);
            let greedy = requires(FieldId::Temperature, &|cmp, v| {
                matches!(cmp, Cmp::Eq | Cmp::Le) && zero(v)
            });
            let no_tools = requires(FieldId::HasTools, &|cmp, v| {
                matches!(
                    (cmp, v),
                    (Cmp::Eq, Val::Bool(false)) | (Cmp::Ne, Val::Bool(true))
                )
            });
            let mut missing = Vec::new();
            if !greedy {
                missing.push("requests with `temperature > 0` (sampled answers differ each time)");
            }
            if !no_tools {
                missing.push("requests with tools (their answers depend on the tools' results)");
            }
            if missing.is_empty() {
                continue;
            }
            self.report(
                Diagnostic::warning(
                    codes::CACHE_NOT_DETERMINISTIC,
                    rule.span,
                    format!("rule `{}` caches answers to {}", rule.id, missing.join(" and ")),
                    "cacheable, but not deterministic",
                )
                .with_help("add `temperature == 0 and not has_tools` to its condition, or drop the cache option"),
            );
        }
    }
}
