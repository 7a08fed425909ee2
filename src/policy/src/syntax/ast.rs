//! The syntax tree of a policy. Every node carries a [`Span`]; spans are not part of a node's identity
//! (two trees that differ only in positions are equal), so `parse(fmt(p)) == p` can be asserted directly.

use std::fmt;

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Span {
    pub fn new(file: u32, start: usize, end: usize) -> Self {
        Self {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both (same file assumed).
    pub fn join(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct SourceFile {
    /// As shown in diagnostics and rule ids: the path given, or the file name inside a directory.
    pub name: String,
    pub text: String,
}

/// All statements of all files, in file order then source order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    Target {
        name: Ident,
        target: TargetRef,
        span: Span,
    },
    Group {
        name: Ident,
        members: Vec<TargetRef>,
        span: Span,
    },
    List {
        name: Ident,
        values: Vec<Literal>,
        span: Span,
    },
    Rule(Rule),
    Default {
        action: Action,
        options: Vec<OptionItem>,
        span: Span,
    },
}

impl Statement {
    pub fn span(&self) -> Span {
        match self {
            Statement::Target { span, .. }
            | Statement::Group { span, .. }
            | Statement::List { span, .. }
            | Statement::Default { span, .. } => *span,
            Statement::Rule(r) => r.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `deny NAME: when … -> deny …`: checked before all other rules; any match denies.
    Deny,
    /// `rule NAME: when … -> …`
    Named,
    /// `when … -> …` (the seed's form); its id is `FILE:LINE`.
    Anonymous,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub name: Option<Ident>,
    pub when: Expr,
    pub action: Action,
    pub options: Vec<OptionItem>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Pred(Predicate),
    Not(Box<Expr>, Span),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Pred(p) => p.span,
            Expr::Not(_, s) => *s,
            Expr::And(a, b) | Expr::Or(a, b) => a.span().join(b.span()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    pub field: Field,
    pub test: Test,
    pub span: Span,
}

/// `tokens`, `key.team`, `health.deepseek.p50_ms`, `meta["x-app"]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub path: Vec<String>,
    pub key: Option<String>,
    pub span: Span,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path.join("."))?;
        if let Some(k) = &self.key {
            write!(f, "[{}]", quote(k))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// A bare boolean field: `has_images`.
    Truthy,
    Compare(CmpOp, Literal),
    In {
        negated: bool,
        set: SetRef,
    },
    Matches(Literal),
    Contains(Literal),
}

#[derive(Clone, Debug, PartialEq)]
pub enum SetRef {
    Inline(Vec<Literal>, Span),
    List(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub value: LitValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LitValue {
    Int(i64),
    Float(f64),
    Str(String),
    /// A bare word such as `zh` or `chat`.
    Word(String),
    Bool(bool),
}

impl fmt::Display for LitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LitValue::Int(i) => write!(f, "{i}"),
            LitValue::Float(x) => {
                let s = format!("{x}");
                if s.contains('.') || s.contains('e') {
                    f.write_str(&s)
                } else {
                    write!(f, "{s}.0")
                }
            }
            LitValue::Str(s) => f.write_str(&quote(s)),
            LitValue::Word(w) => f.write_str(w),
            LitValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Deny {
        status: Option<(u16, Span)>,
        message: String,
        span: Span,
    },
    Chain(Vec<ChainItem>, Span),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChainItem {
    Target(TargetRef),
    Split(Vec<SplitArm>, Span),
    Ranked(Ranking, Vec<TargetRef>, Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SplitArm {
    pub target: TargetRef,
    pub weight: Literal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    Cheapest,
    Fastest,
}

impl Ranking {
    pub fn as_str(self) -> &'static str {
        match self {
            Ranking::Cheapest => "cheapest",
            Ranking::Fastest => "fastest",
        }
    }
}

/// `deepseek`, `deepseek:deepseek-flash`, `siliconflow:"Pro/deepseek-ai/DeepSeek-V3.2"`, a declared name, `requested`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetRef {
    pub name: Ident,
    pub model: Option<String>,
    pub span: Span,
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name.name)?;
        if let Some(m) = &self.model {
            if is_bare_model_id(m) {
                write!(f, ":{m}")?;
            } else {
                write!(f, ":{}", quote(m))?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptionItem {
    pub name: Ident,
    pub value: OptValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OptValue {
    DurationMs(u64),
    Number(Literal),
    StatusSet(Vec<Ident>),
}

/// A model id that needs no quotes after `provider:` (the grammar's `model_id`).
pub fn is_bare_model_id(m: &str) -> bool {
    !m.is_empty()
        && m.char_indices().all(|(i, c)| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '.' | '@')
                || (c == '-' && !m[i + 1..].starts_with('>'))
        })
}

/// A string literal as written in a policy: `"` and `\` before an escape letter are escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => {
                // A lone backslash (as in the regex `\d`) stays as written; one that would read as an escape doubles.
                let next = chars.get(i + 1);
                if matches!(next, None | Some('"' | '\\' | 'n' | 't' | 'r')) {
                    out.push_str("\\\\");
                } else {
                    out.push('\\');
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The inverse of [`quote`]: `\"`, `\\`, `\n`, `\t`, `\r` are escapes; any other backslash is kept.
pub fn unquote(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}
