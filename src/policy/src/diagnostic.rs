//! Diagnostics: every finding has a stable code, a severity, a message, a labelled span and usually a help line.
//! Rendered for people with miette, and as JSON or GitHub workflow commands for tools.

use serde::Serialize;

use crate::syntax::ast::{SourceFile, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// The stable codes. docs/policy-language.md has an example of each.
pub mod codes {
    pub const SYNTAX: &str = "E001";
    pub const UNKNOWN_FIELD: &str = "E002";
    pub const TYPE_MISMATCH: &str = "E003";
    pub const UNKNOWN_PROVIDER: &str = "E004";
    pub const UNKNOWN_MODEL: &str = "E005";
    pub const UNKNOWN_NAME: &str = "E006";
    pub const MISSING_DEFAULT: &str = "E007";
    pub const DUPLICATE_DEFAULT: &str = "E008";
    pub const DUPLICATE_NAME: &str = "E009";
    pub const INVALID_REGEX: &str = "E010";
    pub const SPLIT_WEIGHTS: &str = "E011";
    pub const INVALID_OPTION: &str = "E012";
    pub const INVALID_VALUE: &str = "E013";
    pub const UNREACHABLE_RULE: &str = "W101";
    pub const NEVER_MATCHES: &str = "W102";
    pub const ALWAYS_TRUE: &str = "W103";
    pub const DUPLICATE_TARGET: &str = "W104";
    pub const CAPABILITY_MISMATCH: &str = "W105";
    pub const UNUSED_DECLARATION: &str = "W106";
    pub const NO_PRICE: &str = "W107";
    pub const CACHE_NOT_DETERMINISTIC: &str = "W108";
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip)]
    pub span: Span,
    /// What the label under the span says.
    pub label: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: label.into(),
            help: None,
        }
    }

    /// A finding that does not stop compilation.
    pub fn warning(
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, span, message, label)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Line and column (both from 1, columns in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A diagnostic located in its file, as `--format json` prints it.
#[derive(Serialize)]
pub struct Located<'a> {
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
}

pub fn locate<'a>(files: &'a [SourceFile], d: &'a Diagnostic) -> Located<'a> {
    let (name, text) = files
        .get(d.span.file as usize)
        .map_or(("<unknown>", ""), |f| (f.name.as_str(), f.text.as_str()));
    let (line, column) = line_col(text, d.span.start as usize);
    let (end_line, end_column) = line_col(text, d.span.end as usize);
    Located {
        file: name,
        line,
        column,
        end_line,
        end_column,
        diagnostic: d,
    }
}

#[cfg(feature = "compiler")]
pub use render::{render_github, render_human};

#[cfg(feature = "compiler")]
mod render {
    use super::*;
    use miette::{
        GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, Report,
    };

    /// miette's graphical rendering (with colour when `color` is set), source line and caret underline included.
    pub fn render_human(files: &[SourceFile], d: &Diagnostic, color: bool) -> String {
        let mut md = MietteDiagnostic::new(d.message.clone())
            .with_code(d.code)
            .with_severity(match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            });
        let len = (d.span.end - d.span.start) as usize;
        md = md.with_label(LabeledSpan::new(
            Some(d.label.clone()),
            d.span.start as usize,
            len,
        ));
        if let Some(h) = &d.help {
            md = md.with_help(h.clone());
        }
        let (name, text) = files
            .get(d.span.file as usize)
            .map_or(("<unknown>", String::new()), |f| {
                (f.name.as_str(), f.text.clone())
            });
        let report = Report::new(md).with_source_code(NamedSource::new(name, text));
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        if handler.render_report(&mut out, report.as_ref()).is_err() {
            out = format!("{}: {}\n", d.code, d.message);
        }
        out
    }

    /// A GitHub Actions workflow command, which annotates the pull request's diff.
    pub fn render_github(files: &[SourceFile], d: &Diagnostic) -> String {
        let l = locate(files, d);
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut msg = d.message.clone();
        if let Some(h) = &d.help {
            msg.push_str(" (help: ");
            msg.push_str(h);
            msg.push(')');
        }
        let escape = |s: &str| {
            s.replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
        };
        format!(
            "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            l.file.replace(',', "%2C").replace(':', "%3A"),
            l.line,
            l.column,
            l.end_line,
            l.end_column,
            d.code,
            escape(&msg)
        )
    }
}
