//! The checker: resolves names against declarations and the catalog, types every condition against the
//! scheme, lowers the policy to the compiled form, and lints it. It reports everything it finds, in every
//! file, in one run.

mod actions;
mod conditions;
mod lints;
pub mod region;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::artifact::{Action, CacheScope, Cmp, Cond, Loc, Options, SplitArm, Step, Target, Val};
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
        self.cache_lints(&rules);
        (deny, rules, defaults.into_iter().next().map(|(r, _)| r))
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
