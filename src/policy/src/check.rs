//! The checker: resolves names against declarations and the catalog, types every condition against the
//! scheme, lowers the policy to the compiled form, and lints it. It reports everything it finds, in every
//! file, in one run.

pub mod region;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::artifact::{Action, Cmp, Cond, Loc, Options, SplitArm, Step, Target, Val};
use crate::catalog::Catalog;
use crate::diagnostic::{codes, line_col, Diagnostic, Severity};
use crate::scheme::{self, FieldError, FieldId, Ty, Vocab, ENDPOINTS, WEEKDAYS};
use crate::syntax::ast::{
    self, LitValue, OptValue, RuleKind, SourceFile, Span, Statement, TargetRef, Test,
};
use crate::syntax::{fmt, parse};
use region::{Cube, Key};

/// A rule in compiled form, with where it came from.
#[derive(Clone, Debug)]
pub struct LoweredRule {
    pub id: String,
    pub loc: Loc,
    pub when: Cond,
    pub action: Action,
    pub options: Options,
    pub span: Span,
}

#[derive(Debug, Default)]
pub struct Checked {
    pub files: Vec<SourceFile>,
    pub policy: ast::Policy,
    pub deny: Vec<LoweredRule>,
    pub rules: Vec<LoweredRule>,
    pub default: Option<LoweredRule>,
    /// Sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }
}

/// Parses and checks the files (in the order given) against the catalog.
pub fn check(files: Vec<SourceFile>, catalog: &Catalog) -> Checked {
    let (policy, mut diagnostics) = parse::parse(&files);
    let cx = Cx {
        files: &files,
        catalog,
        decls: BTreeMap::new(),
        resolved: RefCell::default(),
        used: RefCell::default(),
        diags: RefCell::default(),
    };
    let mut cx = cx;
    cx.declare(&policy);
    cx.resolve_declarations();
    let (deny, rules, default) = cx.lower(&policy);
    cx.unused();
    diagnostics.extend(cx.diags.into_inner());
    diagnostics.sort_by_key(|d| (d.span.file, d.span.start, d.code));
    Checked {
        files,
        policy,
        deny,
        rules,
        default,
        diagnostics,
    }
}

enum Decl<'p> {
    Target(&'p TargetRef),
    Group(&'p [TargetRef]),
    List(&'p [ast::Literal]),
}

struct Cx<'a, 'p> {
    files: &'a [SourceFile],
    catalog: &'a Catalog,
    decls: BTreeMap<String, (Decl<'p>, Span)>,
    /// Each declaration resolved once (its errors reported once), whether or not a rule uses it.
    resolved: RefCell<BTreeMap<String, Option<Vec<Target>>>>,
    used: RefCell<BTreeSet<String>>,
    diags: RefCell<Vec<Diagnostic>>,
}

/// What a rule's condition guarantees about every request it matches (for capability lints).
#[derive(Default)]
struct Requires {
    images: bool,
    tools: bool,
    json: bool,
    min_tokens: i64,
}

impl<'a, 'p> Cx<'a, 'p> {
    fn report(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    fn where_(&self, span: Span) -> String {
        let f = self.files.get(span.file as usize);
        let (line, _) = f.map_or((0, 0), |f| line_col(&f.text, span.start as usize));
        format!("{}:{line}", f.map_or("?", |f| f.name.as_str()))
    }

    fn loc(&self, span: Span) -> Loc {
        let f = self.files.get(span.file as usize);
        let (line, column) = f.map_or((0, 0), |f| line_col(&f.text, span.start as usize));
        Loc {
            file: f.map_or_else(String::new, |f| base_name(&f.name)),
            line: line as u32,
            column: column as u32,
        }
    }

    fn declare(&mut self, policy: &'p ast::Policy) {
        for st in &policy.statements {
            let (name, decl) = match st {
                Statement::Target { name, target, .. } => (name, Decl::Target(target)),
                Statement::Group { name, members, .. } => (name, Decl::Group(members)),
                Statement::List { name, values, .. } => (name, Decl::List(values)),
                _ => continue,
            };
            if name.name.is_empty() {
                continue;
            }
            if self.catalog.providers.contains_key(&name.name) || name.name == "requested" {
                self.report(
                    Diagnostic::error(codes::DUPLICATE_NAME, name.span, format!("`{}` is already a provider name", name.name), "shadows a provider")
                        .with_help("choose another name; a declaration cannot redefine a provider or `requested`"),
                );
                continue;
            }
            if let Some((_, first)) = self.decls.get(&name.name) {
                let first = self.where_(*first);
                self.report(
                    Diagnostic::error(
                        codes::DUPLICATE_NAME,
                        name.span,
                        format!("`{}` is declared twice", name.name),
                        "declared again here",
                    )
                    .with_help(format!("the first declaration is at {first}")),
                );
                continue;
            }
            self.decls.insert(name.name.clone(), (decl, name.span));
        }
    }

    /// Resolves every target and group declaration, so a broken one is reported even if no rule uses it.
    fn resolve_declarations(&self) {
        for (name, (decl, _)) in &self.decls {
            if matches!(decl, Decl::Target(_) | Decl::Group(_)) {
                self.declared(name, 0);
            }
        }
    }

    /// A declared target's or group's targets, resolved on first use and remembered.
    fn declared(&self, name: &str, depth: u8) -> Option<Vec<Target>> {
        if let Some(r) = self.resolved.borrow().get(name) {
            return r.clone();
        }
        let result = match self.decls.get(name).map(|(d, _)| d) {
            Some(Decl::Target(t)) => self.target(t, false, depth + 1),
            Some(Decl::Group(members)) => {
                let mut out = Some(Vec::new());
                for m in members.iter() {
                    match (self.target(m, false, depth + 1), &mut out) {
                        (Some(ts), Some(acc)) => acc.extend(ts),
                        _ => out = None,
                    }
                }
                out
            }
            _ => None,
        };
        self.resolved
            .borrow_mut()
            .insert(name.to_owned(), result.clone());
        result
    }

    fn lower(
        &self,
        policy: &ast::Policy,
    ) -> (Vec<LoweredRule>, Vec<LoweredRule>, Option<LoweredRule>) {
        let mut deny = Vec::new();
        let mut rules = Vec::new();
        let mut defaults: Vec<(LoweredRule, Span)> = Vec::new();
        let mut names: BTreeMap<String, Span> = BTreeMap::new();
        // Rules whose conditions lowered cleanly take part in reachability; others are skipped there.
        let mut reach: Vec<(usize, bool, Option<Vec<Cube>>)> = Vec::new();
        for st in &policy.statements {
            match st {
                Statement::Rule(r) => {
                    if let Some(n) = &r.name {
                        if let Some(first) = names.get(&n.name) {
                            let first = self.where_(*first);
                            self.report(
                                Diagnostic::error(codes::DUPLICATE_NAME, n.span, format!("rule `{}` is defined twice", n.name), "defined again here")
                                    .with_help(format!("the first rule with this name is at {first}; rule names must be unique")),
                            );
                        } else {
                            names.insert(n.name.clone(), n.span);
                        }
                    }
                    let id = match &r.name {
                        Some(n) => n.name.clone(),
                        None => {
                            let loc = self.loc(r.span);
                            format!("{}:{}", loc.file, loc.line)
                        }
                    };
                    let when = self.expr(&r.when);
                    let cubes = when.as_ref().and_then(|c| region::dnf(c, false));
                    let requires = cubes.as_deref().map(requires).unwrap_or_default();
                    let action = self.action(&r.action, &requires);
                    let options = self.options(&r.options);
                    let ok = when.is_some();
                    if let (Some(when), Some(action)) = (when, action) {
                        let lowered = LoweredRule {
                            id,
                            loc: self.loc(r.span),
                            when,
                            action,
                            options,
                            span: r.span,
                        };
                        let is_deny = r.kind == RuleKind::Deny;
                        let list = if is_deny { &mut deny } else { &mut rules };
                        list.push(lowered);
                        reach.push((list.len() - 1, is_deny, if ok { cubes } else { None }));
                    }
                }
                Statement::Default {
                    action,
                    options,
                    span,
                } => {
                    let action = self.action(action, &Requires::default());
                    let options = self.options(options);
                    if let Some(action) = action {
                        let rule = LoweredRule {
                            id: "default".into(),
                            loc: self.loc(*span),
                            when: Cond::True,
                            action,
                            options,
                            span: *span,
                        };
                        defaults.push((rule, *span));
                    }
                }
                _ => {}
            }
        }
        let default_count = policy
            .statements
            .iter()
            .filter(|s| matches!(s, Statement::Default { .. }))
            .count();
        if default_count == 0 {
            let span = policy.statements.last().map_or(Span::default(), |s| {
                let sp = s.span();
                Span {
                    file: sp.file,
                    start: sp.end,
                    end: sp.end,
                }
            });
            self.report(
                Diagnostic::error(codes::MISSING_DEFAULT, span, "the policy has no `default` rule", "add it here")
                    .with_help("every policy ends with exactly one `default -> …`, for requests no rule matches, e.g. `default -> requested`"),
            );
        }
        let mut extra = policy.statements.iter().filter_map(|s| match s {
            Statement::Default { span, .. } => Some(*span),
            _ => None,
        });
        if let Some(first) = extra.next() {
            let first = self.where_(first);
            for span in extra {
                self.report(
                    Diagnostic::error(
                        codes::DUPLICATE_DEFAULT,
                        span,
                        "the policy has more than one `default` rule",
                        "another default",
                    )
                    .with_help(format!("keep one; the first is at {first}")),
                );
            }
        }
        self.reachability(&deny, &rules, &reach);
        (deny, rules, defaults.into_iter().next().map(|(r, _)| r))
    }

    // ---- conditions

    fn expr(&self, e: &ast::Expr) -> Option<Cond> {
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

    fn field(&self, f: &ast::Field) -> Option<FieldId> {
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

    fn predicate(&self, p: &ast::Predicate) -> Option<Cond> {
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
                if !matches!(ty, Ty::Str | Ty::Sym(_)) {
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
                            first_line(&e),
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
                if !matches!(ty, Ty::Str | Ty::StrSet | Ty::Sym(_)) {
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
    fn literal(&self, field: &FieldId, ty: Ty, lit: &ast::Literal) -> Option<Val> {
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
        }
    }

    fn vocab(&self, vocab: Vocab, s: &str, span: Span) -> Option<()> {
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
                "endpoints are `chat` and `embeddings`",
            ),
            Vocab::Weekday if WEEKDAYS.contains(&s) => Some(()),
            Vocab::Weekday => bad(
                "a weekday",
                WEEKDAYS,
                "weekdays are `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`",
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

    // ---- actions

    fn action(&self, a: &ast::Action, requires: &Requires) -> Option<Action> {
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

    fn duplicate(&self, seen: &mut Vec<(Target, Span)>, t: &Target, span: Span) {
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

    fn capability(&self, t: &Target, span: Span, req: &Requires) {
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
    fn target(&self, tr: &TargetRef, allow_group: bool, depth: u8) -> Option<Vec<Target>> {
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
                "a target is a provider ({}), a declared target or group, or `requested`",
                self.catalog
                    .providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        None
    }

    fn options(&self, opts: &[ast::OptionItem]) -> Options {
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
                _ => {
                    let d = Diagnostic::error(
                        codes::INVALID_OPTION,
                        o.name.span,
                        format!("unknown option `{name}`"),
                        "not an option",
                    );
                    let names = ["timeout", "first_token_timeout", "retries", "retry_on"];
                    self.report(self.suggest(d, name, names.into_iter()).with_help_if_none(
                        "options are `timeout`, `first_token_timeout`, `retries` and `retry_on`",
                    ));
                }
            }
        }
        out
    }

    // ---- lints over the whole policy

    fn reachability(
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

    fn never(&self, rule: &LoweredRule) {
        self.report(
            Diagnostic::warning(codes::NEVER_MATCHES, rule.span, format!("the condition of rule `{}` can never be true", rule.id), "contradictory")
                .with_help("its conditions exclude each other (or fall outside an attribute's range, e.g. `tokens < 0`)"),
        );
    }

    fn unused(&self) {
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
    fn suggest<'c>(
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
}

fn requires(cubes: &[Cube]) -> Requires {
    let all_true = |f: FieldId| {
        let key = Key::Field(f);
        !cubes.is_empty()
            && cubes.iter().all(|c| {
                c.get(&key)
                    .is_some_and(|d| *d == region::Dom::Bools { t: true, f: false })
            })
    };
    let min_tokens = cubes
        .iter()
        .map(|c| match c.get(&Key::Field(FieldId::Tokens)) {
            Some(region::Dom::Ints(v)) => v.first().map_or(0, |(lo, _)| *lo),
            _ => 0,
        })
        .min()
        .unwrap_or(0);
    Requires {
        images: all_true(FieldId::HasImages),
        tools: all_true(FieldId::HasTools),
        json: all_true(FieldId::JsonMode),
        min_tokens,
    }
}

/// A file's name without its directory: rule ids and compiled policies do not depend on where they were built.
pub fn base_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}

fn valid_retry_on(s: &str) -> bool {
    matches!(s, "timeout" | "connect")
        || (s.len() == 3
            && matches!(s.as_bytes()[0], b'4' | b'5')
            && (s[1..] == *"xx" || s[1..].bytes().all(|b| b.is_ascii_digit())))
}

fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_owned()
}

/// The candidate nearest to `name` if it is near enough to be a likely typo.
pub fn closest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

trait HelpIfNone {
    fn with_help_if_none(self, help: impl Into<String>) -> Self;
}

impl HelpIfNone for Diagnostic {
    fn with_help_if_none(self, help: impl Into<String>) -> Self {
        if self.help.is_some() {
            self
        } else {
            self.with_help(help)
        }
    }
}
