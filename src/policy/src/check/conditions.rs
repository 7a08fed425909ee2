//! Conditions: fields resolved against the scheme, predicates typed, literals parsed by the type of the
//! field they are compared with, words checked against their vocabulary.

use super::*;

impl<'a, 'p> Cx<'a, 'p> {
    pub(super) fn expr(&self, e: &ast::Expr) -> Option<Cond> {
        match e {
            ast::Expr::Pred(p) => self.predicate(p),
            ast::Expr::Not(inner, _) => Some(Cond::Not {
                cond: Box::new(self.expr(inner)?),
            }),
            ast::Expr::And(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let mut all = Vec::new();
                for c in [a?, b?] {
                    match c {
                        Cond::And { all: inner } => all.extend(inner),
                        c => all.push(c),
                    }
                }
                Some(Cond::And { all })
            }
            ast::Expr::Or(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let mut any = Vec::new();
                for c in [a?, b?] {
                    match c {
                        Cond::Or { any: inner } => any.extend(inner),
                        c => any.push(c),
                    }
                }
                Some(Cond::Or { any })
            }
        }
    }

    pub(super) fn field(&self, f: &ast::Field) -> Option<FieldId> {
        match scheme::resolve(&f.path, f.key.as_deref()) {
            Ok(FieldId::Health(provider, m)) => {
                if !self.catalog.providers.contains_key(&provider) {
                    let d = Diagnostic::error(
                        codes::UNKNOWN_PROVIDER,
                        f.span,
                        format!("unknown provider `{provider}` in `{f}`"),
                        "no such provider",
                    );
                    self.report(self.suggest(
                        d,
                        &provider,
                        self.catalog.providers.keys().map(String::as_str),
                    ));
                    return None;
                }
                Some(FieldId::Health(provider, m))
            }
            Ok(id) => Some(id),
            Err(FieldError::MetaWithoutKey) => {
                self.report(
                    Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        f.span,
                        "`meta` needs a header name",
                        "which header?",
                    )
                    .with_help(
                        "write `meta[\"name\"]` for the request header `x-gateway-meta-name`",
                    ),
                );
                None
            }
            Err(FieldError::UnknownMetric) => {
                self.report(
                    Diagnostic::error(codes::UNKNOWN_FIELD, f.span, format!("unknown health metric in `{f}`"), "no such metric")
                        .with_help("health has `error_rate`, `p50_ms` and `up`, e.g. `health.deepseek.error_rate`"),
                );
                None
            }
            Err(FieldError::Unknown) => {
                let name = f.to_string();
                let d = Diagnostic::error(
                    codes::UNKNOWN_FIELD,
                    f.span,
                    format!("unknown attribute `{name}`"),
                    "not an attribute",
                );
                let fields = scheme::FIELDS
                    .iter()
                    .map(|(n, ..)| *n)
                    .chain(["meta", "health"]);
                self.report(self.suggest(d, &name, fields));
                None
            }
        }
    }

    pub(super) fn predicate(&self, p: &ast::Predicate) -> Option<Cond> {
        let field = self.field(&p.field)?;
        let ty = field.ty();
        let src = fmt::predicate(p);
        let mismatch = |span: Span, message: String, help: &str| {
            self.report(
                Diagnostic::error(codes::TYPE_MISMATCH, span, message, "type mismatch")
                    .with_help(help),
            );
            None
        };
        match &p.test {
            Test::Truthy => match ty {
                Ty::Bool => Some(Cond::Cmp {
                    field,
                    cmp: Cmp::Eq,
                    value: Val::Bool(true),
                    src,
                }),
                _ => mismatch(
                    p.span,
                    format!(
                        "`{}` is {}, not a condition by itself",
                        p.field,
                        ty.describe()
                    ),
                    "compare it with something, e.g. `tokens > 1000` or `lang == zh`",
                ),
            },
            Test::Compare(..) | Test::In { .. } if ty == Ty::Text => mismatch(
                p.span,
                format!("`{}` is {}", p.field, ty.describe()),
                "write `prompt contains \"SELECT\"` or `prompt matches \"(?i)\\bsql\\b\"`",
            ),
            Test::Compare(op, lit) => {
                let ordered = matches!(
                    op,
                    ast::CmpOp::Lt | ast::CmpOp::Le | ast::CmpOp::Gt | ast::CmpOp::Ge
                );
                match ty {
                    Ty::StrSet => {
                        return mismatch(
                            p.span,
                            format!("`{}` is a set; it cannot be compared", p.field),
                            "test membership with `tags contains \"x\"`",
                        )
                    }
                    Ty::Int { .. } | Ty::Float { .. } => {}
                    _ if ordered => {
                        return mismatch(
                            p.span,
                            format!(
                                "`{}` is {}; `{}` needs a number",
                                p.field,
                                ty.describe(),
                                op.as_str()
                            ),
                            "use `==`, `!=`, `in {…}` or `matches \"regex\"`",
                        )
                    }
                    _ => {}
                }
                let value = self.literal(&field, ty, lit)?;
                let cmp = match op {
                    ast::CmpOp::Eq => Cmp::Eq,
                    ast::CmpOp::Ne => Cmp::Ne,
                    ast::CmpOp::Lt => Cmp::Lt,
                    ast::CmpOp::Le => Cmp::Le,
                    ast::CmpOp::Gt => Cmp::Gt,
                    ast::CmpOp::Ge => Cmp::Ge,
                };
                Some(Cond::Cmp {
                    field,
                    cmp,
                    value,
                    src,
                })
            }
            Test::In { negated, set } => {
                if ty == Ty::StrSet {
                    return mismatch(
                        p.span,
                        format!("`{}` is a set; `in` tests a single value", p.field),
                        "test membership with `tags contains \"x\"`",
                    );
                }
                let literals: Vec<&ast::Literal> = match set {
                    ast::SetRef::Inline(values, _) => values.iter().collect(),
                    ast::SetRef::List(name) => match self.decls.get(&name.name) {
                        Some((Decl::List(values), _)) => {
                            self.used.borrow_mut().insert(name.name.clone());
                            values.iter().collect()
                        }
                        Some(_) => {
                            self.report(Diagnostic::error(
                                codes::UNKNOWN_NAME,
                                name.span,
                                format!("`{}` is not a list", name.name),
                                "not a list",
                            ));
                            return None;
                        }
                        None => {
                            let d = Diagnostic::error(
                                codes::UNKNOWN_NAME,
                                name.span,
                                format!("unknown list `${}`", name.name),
                                "no such list",
                            );
                            let lists = self
                                .decls
                                .iter()
                                .filter(|(_, (d, _))| matches!(d, Decl::List(_)))
                                .map(|(n, _)| n.as_str());
                            self.report(self.suggest(d, &name.name, lists).with_help_if_none(
                                format!("declare it: `list {} = {{\"a\", \"b\"}}`", name.name),
                            ));
                            return None;
                        }
                    },
                };
                let mut values = Vec::new();
                let mut ok = true;
                for lit in literals {
                    match self.literal(&field, ty, lit) {
                        Some(v) => values.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Cond::In {
                    field,
                    values,
                    negated: *negated,
                    src,
                })
            }
            Test::Matches(lit) => {
                if !matches!(ty, Ty::Str | Ty::Text | Ty::Sym(_)) {
                    return mismatch(
                        p.span,
                        format!("`{}` is {}; `matches` needs text", p.field, ty.describe()),
                        "`matches` applies to text attributes such as `model` or `key.team`",
                    );
                }
                let LitValue::Str(pattern) = &lit.value else {
                    return mismatch(
                        lit.span,
                        "`matches` takes a regular expression in double quotes".into(),
                        "write `model matches \"^gpt-6\"`",
                    );
                };
                if let Err(e) = crate::eval::compile_regex(pattern) {
                    self.report(
                        Diagnostic::error(
                            codes::INVALID_REGEX,
                            lit.span,
                            "invalid regular expression",
                            first_line(&e.to_string()),
                        )
                        .with_help(
                            "the syntax is Rust's regex (without look-around or backreferences)",
                        ),
                    );
                    return None;
                }
                Some(Cond::Matches {
                    field,
                    pattern: pattern.clone(),
                    src,
                })
            }
            Test::Contains(lit) => {
                if !matches!(ty, Ty::Str | Ty::Text | Ty::StrSet | Ty::Sym(_)) {
                    return mismatch(
                        p.span,
                        format!(
                            "`{}` is {}; `contains` needs text or a set",
                            p.field,
                            ty.describe()
                        ),
                        "e.g. `tags contains \"beta\"`",
                    );
                }
                match &lit.value {
                    LitValue::Str(s) | LitValue::Word(s) => Some(Cond::Contains {
                        field,
                        value: s.clone(),
                        src,
                    }),
                    _ => mismatch(
                        lit.span,
                        "`contains` takes a string".into(),
                        "e.g. `tags contains \"beta\"`",
                    ),
                }
            }
        }
    }

    /// A literal as the field's type, or a diagnostic.
    pub(super) fn literal(&self, field: &FieldId, ty: Ty, lit: &ast::Literal) -> Option<Val> {
        let found = match &lit.value {
            LitValue::Int(_) => "a whole number",
            LitValue::Float(_) => "a decimal number",
            LitValue::Str(_) => "a string",
            LitValue::Word(_) => "a bare word",
            LitValue::Bool(_) => "a boolean",
        };
        let wrong = |help: String| {
            self.report(
                Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    lit.span,
                    format!("`{field}` is {}, but this is {found}", ty.describe()),
                    format!("expected {}", ty.describe()),
                )
                .with_help(help),
            );
            None
        };
        match (ty, &lit.value) {
            (Ty::Int { .. }, LitValue::Int(i)) => Some(Val::Int(*i)),
            (Ty::Int { .. }, _) => wrong(format!("write a whole number, e.g. `{field} > 500`")),
            (Ty::Float { .. }, LitValue::Int(i)) => Some(Val::Float(*i as f64)),
            (Ty::Float { .. }, LitValue::Float(x)) => Some(Val::Float(*x)),
            (Ty::Float { .. }, _) => wrong(format!("write a number, e.g. `{field} > 0.05`")),
            (Ty::Bool, LitValue::Bool(b)) => Some(Val::Bool(*b)),
            (Ty::Bool, _) => wrong(format!(
                "write `true` or `false`, or just `{field}` / `not {field}`"
            )),
            (Ty::Str, LitValue::Str(s) | LitValue::Word(s)) => Some(Val::Str(s.clone())),
            (Ty::Str, _) => wrong("put text in double quotes: \"…\"".into()),
            (Ty::Sym(vocab), LitValue::Str(s) | LitValue::Word(s)) => {
                self.vocab(vocab, s, lit.span).map(|()| Val::Str(s.clone()))
            }
            (Ty::Sym(_), _) => wrong(format!("write {}", ty.describe())),
            (Ty::StrSet, _) => wrong("test membership with `contains`".into()),
            (Ty::Text, _) => wrong(format!("test `{field}` with `contains` or `matches`")),
        }
    }

    pub(super) fn vocab(&self, vocab: Vocab, s: &str, span: Span) -> Option<()> {
        let bad = |what: &str, options: &[&str], help: &str| {
            let d = Diagnostic::error(
                codes::INVALID_VALUE,
                span,
                format!("`{s}` is not {what}"),
                format!("not {what}"),
            );
            let d = self.suggest(d, s, options.iter().copied());
            self.report(d.with_help_if_none(help));
            None
        };
        match vocab {
            Vocab::Lang if scheme::is_lang_code(s) => Some(()),
            Vocab::Lang => bad(
                "a language code",
                &["zh", "en", "ja", "ko", "ru", "fr", "de", "es", "und"],
                "use ISO 639-1 codes such as `zh`, `en`, `ja`; `und` when undetermined",
            ),
            Vocab::Endpoint if ENDPOINTS.contains(&s) => Some(()),
            Vocab::Endpoint => bad(
                "an endpoint",
                ENDPOINTS,
                "endpoints are `chat`, `messages`, `responses`, `embeddings`, `images`, `transcriptions` and `speech`",
            ),
            Vocab::Weekday if WEEKDAYS.contains(&s) => Some(()),
            Vocab::Weekday => bad(
                "a weekday",
                WEEKDAYS,
                "weekdays are `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`",
            ),
            Vocab::Task if scheme::TASKS.contains(&s) => Some(()),
            Vocab::Task => bad(
                "a task",
                scheme::TASKS,
                "tasks are `code`, `math`, `translation`, `summarization`, `extraction`, `creative`, `chat`",
            ),
            Vocab::Provider if self.catalog.providers.contains_key(s) || s.is_empty() => Some(()),
            Vocab::Provider => {
                let providers: Vec<&str> =
                    self.catalog.providers.keys().map(String::as_str).collect();
                let d = Diagnostic::error(
                    codes::UNKNOWN_PROVIDER,
                    span,
                    format!("unknown provider `{s}`"),
                    "no such provider",
                );
                self.report(
                    self.suggest(d, s, providers.iter().copied())
                        .with_help_if_none(format!("providers: {}", providers.join(", "))),
                );
                None
            }
        }
    }
}
