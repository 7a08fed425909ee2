//! Source text to syntax tree. Syntax errors do not stop the parse: a file that fails is re-parsed statement
//! by statement (a statement starts at a line beginning with a statement keyword), so every broken statement
//! in every file is reported in one run.

use std::cell::RefCell;
use std::sync::LazyLock;

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use super::ast::*;
use crate::diagnostic::{codes, Diagnostic};

#[derive(pest_derive::Parser)]
#[grammar = "../../../grammar/policy.pest"]
struct PolicyParser;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::kw_or, Assoc::Left))
        .op(Op::infix(Rule::kw_and, Assoc::Left))
        .op(Op::prefix(Rule::kw_not))
});

const STATEMENT_KEYWORDS: &[&str] = &["target", "group", "list", "deny", "rule", "when", "default"];

/// Parses every file (in the order given) into one policy, with every syntax error found.
pub fn parse(files: &[SourceFile]) -> (Policy, Vec<Diagnostic>) {
    let mut policy = Policy::default();
    let mut diags = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (statements, d) = parse_file(i as u32, &f.text);
        policy.statements.extend(statements);
        diags.extend(d);
    }
    (policy, diags)
}

/// Parses one file's text; `file` is its index, used in spans.
pub fn parse_file(file: u32, text: &str) -> (Vec<Statement>, Vec<Diagnostic>) {
    match PolicyParser::parse(Rule::file, text) {
        Ok(pairs) => build(file, 0, pairs),
        Err(_) => {
            let mut statements = Vec::new();
            let mut diags = Vec::new();
            for (start, end) in chunks(text) {
                match PolicyParser::parse(Rule::file, &text[start..end]) {
                    Ok(pairs) => {
                        let (s, d) = build(file, start, pairs);
                        statements.extend(s);
                        diags.extend(d);
                    }
                    Err(e) => diags.push(syntax_error(file, start, text, &e)),
                }
            }
            (statements, diags)
        }
    }
}

/// Byte ranges that each begin at a line starting (in column 0) with a statement keyword.
fn chunks(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && starts_statement(line) {
            starts.push(offset);
        }
        offset += line.len();
    }
    let mut out = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(text.len());
        out.push((s, e));
    }
    out
}

fn starts_statement(line: &str) -> bool {
    STATEMENT_KEYWORDS.iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    })
}

fn syntax_error(file: u32, offset: usize, text: &str, e: &pest::error::Error<Rule>) -> Diagnostic {
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (offset + p, offset + p),
        InputLocation::Span((s, e)) => (offset + s, offset + e),
    };
    // Underline the character found (or the end of the line), not an empty span.
    let end = if end > start {
        end
    } else {
        text[start..]
            .chars()
            .next()
            .filter(|c| *c != '\n')
            .map_or(start, |c| start + c.len_utf8())
    };
    let found = text[start..end].trim();
    let (message, label) = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(|r| describe(*r)).collect();
            names.sort_unstable();
            names.dedup();
            let expected = join_or(&names);
            let label = if found.is_empty() {
                "unexpected end".to_owned()
            } else {
                format!("unexpected `{found}`")
            };
            (format!("syntax error: expected {expected}"), label)
        }
        ErrorVariant::CustomError { message } => {
            (format!("syntax error: {message}"), "here".to_owned())
        }
    };
    let mut d = Diagnostic::error(codes::SYNTAX, Span::new(file, start, end), message, label);
    if found.starts_with('\'') {
        d = d.with_help("strings use double quotes: \"...\"");
    } else if found == "=" {
        d = d.with_help("comparisons use `==`");
    }
    d
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What a grammar rule is called in an error message.
fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "a new statement or the end of the file",
        Rule::target_decl
        | Rule::group_decl
        | Rule::list_decl
        | Rule::deny_rule
        | Rule::named_rule
        | Rule::anon_rule
        | Rule::default_rule
        | Rule::kw_target
        | Rule::kw_group
        | Rule::kw_list
        | Rule::kw_rule
        | Rule::kw_default => {
            "a statement (`target`, `group`, `list`, `deny`, `rule`, `when` or `default`)"
        }
        Rule::ident => "a name",
        Rule::word | Rule::value => "a value",
        Rule::number => "a number",
        Rule::string => "a string in double quotes",
        Rule::boolean => "`true` or `false`",
        Rule::cmp_op | Rule::compare => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::not_in | Rule::in_set | Rule::kw_in => "`in`",
        Rule::matches | Rule::kw_matches => "`matches`",
        Rule::contains | Rule::kw_contains => "`contains`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::kw_when => "`when`",
        Rule::kw_deny | Rule::deny_action => "`deny`",
        Rule::kw_fallback => "`fallback`",
        Rule::kw_with | Rule::options => "`with`",
        Rule::expr | Rule::predicate | Rule::field => "a condition",
        Rule::set => "a set `{…}`",
        Rule::list_ref => "a list `$name`",
        Rule::chain | Rule::target_ref | Rule::split | Rule::ranked | Rule::ranking => "a target",
        Rule::kw_split => "`split`",
        Rule::kw_cheapest | Rule::kw_fastest => "`cheapest(…)` or `fastest(…)`",
        Rule::split_arm => "a split arm (`target WEIGHT`)",
        Rule::model_id => "a model id",
        Rule::status => "a status code",
        Rule::duration => "a duration such as `8s` or `500ms`",
        Rule::option => "an option (`timeout`, `first_token_timeout`, `retries`, `retry_on`)",
        Rule::status_set | Rule::status_pat => "a set of statuses such as `{429, 5xx, timeout}`",
        _ => "something else",
    }
}

fn build(
    file: u32,
    offset: usize,
    mut pairs: Pairs<'_, Rule>,
) -> (Vec<Statement>, Vec<Diagnostic>) {
    let b = Builder {
        file,
        offset,
        diags: RefCell::new(Vec::new()),
    };
    let mut statements = Vec::new();
    if let Some(file_pair) = pairs.next() {
        for p in file_pair.into_inner() {
            if p.as_rule() != Rule::EOI {
                statements.push(b.statement(p));
            }
        }
    }
    (statements, b.diags.into_inner())
}

struct Builder {
    file: u32,
    offset: usize,
    diags: RefCell<Vec<Diagnostic>>,
}

/// The children that carry meaning (keywords dropped).
fn parts<'i>(pair: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
    pair.into_inner().filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::kw_target
                | Rule::kw_group
                | Rule::kw_list
                | Rule::kw_deny
                | Rule::kw_rule
                | Rule::kw_when
                | Rule::kw_default
                | Rule::kw_fallback
                | Rule::kw_split
                | Rule::kw_with
                | Rule::kw_in
                | Rule::kw_matches
                | Rule::kw_contains
        )
    })
}

impl Builder {
    /// The pair's span without the whitespace and comments pest counts at its end.
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        let end = s.start() + trimmed_len(p.as_str());
        Span::new(self.file, self.offset + s.start(), self.offset + end)
    }

    fn ident(&self, p: Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_owned(),
            span: self.span(&p),
        }
    }

    fn statement(&self, p: Pair<'_, Rule>) -> Statement {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = parts(p);
        let mut next = || it.next();
        match rule {
            Rule::target_decl => {
                let name = next().map(|p| self.ident(p));
                let target = next().map(|p| self.target_ref(p));
                match (name, target) {
                    (Some(name), Some(target)) => Statement::Target { name, target, span },
                    _ => self.internal(span),
                }
            }
            Rule::group_decl => {
                let Some(name) = next().map(|p| self.ident(p)) else {
                    return self.internal(span);
                };
                let members = std::iter::from_fn(next)
                    .map(|p| self.target_ref(p))
                    .collect();
                Statement::Group {
                    name,
                    members,
                    span,
                }
            }
            Rule::list_decl => {
                let Some(name) = next().map(|p| self.ident(p)) else {
                    return self.internal(span);
                };
                let values = next()
                    .map(|set| set.into_inner().map(|v| self.literal(v)).collect())
                    .unwrap_or_default();
                Statement::List { name, values, span }
            }
            Rule::deny_rule | Rule::named_rule | Rule::anon_rule => {
                let kind = match rule {
                    Rule::deny_rule => RuleKind::Deny,
                    Rule::named_rule => RuleKind::Named,
                    _ => RuleKind::Anonymous,
                };
                let name = if kind == RuleKind::Anonymous {
                    None
                } else {
                    next().map(|p| self.ident(p))
                };
                let Some(when) = next().map(|p| self.expr(p.into_inner())) else {
                    return self.internal(span);
                };
                let Some(action) = next().map(|p| self.action(p)) else {
                    return self.internal(span);
                };
                let options = next().map(|p| self.options(p)).unwrap_or_default();
                Statement::Rule(Rule_ {
                    kind,
                    name,
                    when,
                    action,
                    options,
                    span,
                })
            }
            Rule::default_rule => {
                let Some(action) = next().map(|p| self.action(p)) else {
                    return self.internal(span);
                };
                let options = next().map(|p| self.options(p)).unwrap_or_default();
                Statement::Default {
                    action,
                    options,
                    span,
                }
            }
            _ => self.internal(span),
        }
    }

    /// The grammar guarantees shapes; reaching this means grammar and builder disagree. Reported, never a panic.
    fn internal(&self, span: Span) -> Statement {
        self.diags.borrow_mut().push(Diagnostic::error(
            codes::SYNTAX,
            span,
            "internal error: this statement could not be read",
            "here",
        ));
        Statement::List {
            name: Ident {
                name: String::new(),
                span,
            },
            values: Vec::new(),
            span,
        }
    }

    fn expr(&self, pairs: Pairs<'_, Rule>) -> Expr {
        PRATT
            .map_primary(|p| match p.as_rule() {
                Rule::expr => self.expr(p.into_inner()),
                _ => Expr::Pred(self.predicate(p)),
            })
            .map_prefix(|op, rhs| {
                let span = self.span(&op).join(rhs.span());
                Expr::Not(Box::new(rhs), span)
            })
            .map_infix(|lhs, op, rhs| match op.as_rule() {
                Rule::kw_and => Expr::And(Box::new(lhs), Box::new(rhs)),
                _ => Expr::Or(Box::new(lhs), Box::new(rhs)),
            })
            .parse(pairs)
    }

    fn predicate(&self, p: Pair<'_, Rule>) -> Predicate {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let field = match it.next() {
            Some(f) => self.field(f),
            None => Field {
                path: Vec::new(),
                key: None,
                span,
            },
        };
        let test = match it.next() {
            None => Test::Truthy,
            Some(t) => {
                let rule = t.as_rule();
                let mut inner = parts(t);
                match rule {
                    Rule::compare => {
                        let op = match inner.next().map(|o| o.as_str().to_owned()).as_deref() {
                            Some("==") => CmpOp::Eq,
                            Some("!=") => CmpOp::Ne,
                            Some("<") => CmpOp::Lt,
                            Some("<=") => CmpOp::Le,
                            Some(">") => CmpOp::Gt,
                            _ => CmpOp::Ge,
                        };
                        Test::Compare(op, self.literal_or_empty(inner.next(), span))
                    }
                    Rule::not_in | Rule::in_set => {
                        let negated = rule == Rule::not_in;
                        let set = inner.find(|p| p.as_rule() != Rule::kw_not);
                        Test::In {
                            negated,
                            set: self.set_ref(set, span),
                        }
                    }
                    Rule::matches => Test::Matches(self.literal_or_empty(inner.next(), span)),
                    _ => Test::Contains(self.literal_or_empty(inner.next(), span)),
                }
            }
        };
        Predicate { field, test, span }
    }

    fn field(&self, p: Pair<'_, Rule>) -> Field {
        let span = self.span(&p);
        let mut path = Vec::new();
        let mut key = None;
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::ident => path.push(part.as_str().to_owned()),
                _ => key = Some(string_value(part)),
            }
        }
        Field { path, key, span }
    }

    fn set_ref(&self, p: Option<Pair<'_, Rule>>, at: Span) -> SetRef {
        match p {
            Some(p) if p.as_rule() == Rule::list_ref => {
                let span = self.span(&p);
                let name = p.as_str().trim_start_matches('$').to_owned();
                SetRef::List(Ident { name, span })
            }
            Some(p) => {
                let span = self.span(&p);
                SetRef::Inline(p.into_inner().map(|v| self.literal(v)).collect(), span)
            }
            None => SetRef::Inline(Vec::new(), at),
        }
    }

    fn literal_or_empty(&self, p: Option<Pair<'_, Rule>>, at: Span) -> Literal {
        p.map_or(
            Literal {
                value: LitValue::Str(String::new()),
                span: at,
            },
            |p| self.literal(p),
        )
    }

    fn literal(&self, p: Pair<'_, Rule>) -> Literal {
        let span = self.span(&p);
        let text = p.as_str();
        let value = match p.as_rule() {
            Rule::number if text.contains('.') => LitValue::Float(text.parse().unwrap_or(0.0)),
            Rule::number => match text.parse::<i64>() {
                Ok(i) => LitValue::Int(i),
                Err(_) => {
                    self.diags.borrow_mut().push(Diagnostic::error(
                        codes::INVALID_VALUE,
                        span,
                        format!("number `{text}` is too large"),
                        "does not fit in 64 bits",
                    ));
                    LitValue::Int(0)
                }
            },
            Rule::string => LitValue::Str(string_value(p)),
            Rule::boolean => LitValue::Bool(text == "true"),
            _ => LitValue::Word(text.to_owned()),
        };
        Literal { value, span }
    }

    fn target_ref(&self, p: Pair<'_, Rule>) -> TargetRef {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = it.next().map_or(
            Ident {
                name: String::new(),
                span,
            },
            |n| self.ident(n),
        );
        let model = it.next().map(|m| match m.as_rule() {
            Rule::string => string_value(m),
            _ => m.as_str().to_owned(),
        });
        TargetRef { name, model, span }
    }

    fn action(&self, p: Pair<'_, Rule>) -> Action {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::deny_action => {
                let mut status = None;
                let mut message = String::new();
                for part in parts(p) {
                    match part.as_rule() {
                        Rule::status => {
                            let s = self.span(&part);
                            status = Some((part.as_str().parse().unwrap_or(403), s));
                        }
                        _ => message = string_value(part),
                    }
                }
                Action::Deny {
                    status,
                    message,
                    span,
                }
            }
            _ => Action::Chain(parts(p).map(|item| self.chain_item(item)).collect(), span),
        }
    }

    fn chain_item(&self, p: Pair<'_, Rule>) -> ChainItem {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::split => {
                let arms = parts(p)
                    .map(|arm| {
                        let arm_span = self.span(&arm);
                        let mut it = arm.into_inner();
                        let target = it.next().map_or_else(
                            || TargetRef {
                                name: Ident {
                                    name: String::new(),
                                    span: arm_span,
                                },
                                model: None,
                                span: arm_span,
                            },
                            |t| self.target_ref(t),
                        );
                        let weight = self.literal_or_empty(it.next(), arm_span);
                        SplitArm { target, weight }
                    })
                    .collect();
                ChainItem::Split(arms, span)
            }
            Rule::ranked => {
                let mut it = p.into_inner();
                let ranking = match it.next().map(|r| r.as_str().to_owned()).as_deref() {
                    Some("fastest") => Ranking::Fastest,
                    _ => Ranking::Cheapest,
                };
                ChainItem::Ranked(ranking, it.map(|t| self.target_ref(t)).collect(), span)
            }
            _ => ChainItem::Target(self.target_ref(p)),
        }
    }

    fn options(&self, p: Pair<'_, Rule>) -> Vec<OptionItem> {
        parts(p)
            .map(|opt| {
                let span = self.span(&opt);
                let mut it = opt.into_inner();
                let name = it.next().map_or(
                    Ident {
                        name: String::new(),
                        span,
                    },
                    |n| self.ident(n),
                );
                let value = match it.next() {
                    Some(v) if v.as_rule() == Rule::duration => {
                        OptValue::DurationMs(self.duration(&v))
                    }
                    Some(v) if v.as_rule() == Rule::status_set => {
                        OptValue::StatusSet(v.into_inner().map(|s| self.ident(s)).collect())
                    }
                    Some(v) => OptValue::Number(self.literal(v)),
                    None => OptValue::StatusSet(Vec::new()),
                };
                OptionItem { name, value, span }
            })
            .collect()
    }

    fn duration(&self, p: &Pair<'_, Rule>) -> u64 {
        let text = p.as_str();
        // The grammar admits only digits and a unit: what does not parse is too large.
        match crate::artifact::parse_duration(text) {
            Some(ms) => ms,
            None => {
                self.diags.borrow_mut().push(Diagnostic::error(
                    codes::INVALID_VALUE,
                    self.span(p),
                    format!("duration `{text}` is too large"),
                    "too large",
                ));
                0
            }
        }
    }
}

/// The text of a `string` pair, escapes resolved.
fn string_value(p: Pair<'_, Rule>) -> String {
    let inner = p.into_inner().next().map_or("", |i| i.as_str());
    unquote(inner)
}

// `Rule` (the grammar's) and the AST's rule type share a name; the AST's is re-exported under this alias here.
use super::ast::Rule as Rule_;

/// Length of `text` without trailing whitespace and `#` comments.
fn trimmed_len(text: &str) -> usize {
    let mut t = text.trim_end();
    // A trailing comment line: cut from its `#` if that `#` is outside a string.
    while let Some(last_nl) = t.rfind('\n') {
        let line = t[last_nl + 1..].trim_start();
        if line.starts_with('#') {
            t = t[..last_nl].trim_end();
        } else {
            break;
        }
    }
    t.len()
}
