//! One module per command. Each `run` returns `Ok(true)` when clean, `Ok(false)` for findings, `Err` for
//! usage or I/O errors.

pub mod check;
pub mod compile;
pub mod diff;
pub mod explain;
pub mod fmt;
pub mod publish;
pub mod replay;
pub mod test;

use std::io::IsTerminal;

use gateway_policy::check::Checked;
use gateway_policy::diagnostic::{locate, render_github, render_human};
use gateway_policy::eval::Policy;

use crate::{Format, Sources};

/// Reads and checks the sources.
pub fn checked(sources: &Sources) -> Result<Checked, String> {
    let files = gateway_policy::load::sources(&sources.paths)?;
    let catalog = gateway_policy::load::catalog(sources.catalog.as_deref(), &sources.paths)?;
    Ok(gateway_policy::check::check(files, &catalog))
}

/// Prints diagnostics in the chosen format, to stdout.
pub fn print_diagnostics(c: &Checked, format: Format) {
    match format {
        Format::Human => {
            let color = std::io::stdout().is_terminal();
            for d in &c.diagnostics {
                say_raw!("{}", render_human(&c.files, d, color));
            }
            if !c.diagnostics.is_empty() {
                say!("{} error(s), {} warning(s)", c.errors(), c.warnings());
            }
        }
        Format::Json => {
            let located: Vec<_> = c.diagnostics.iter().map(|d| locate(&c.files, d)).collect();
            let out = serde_json::json!({"diagnostics": located, "errors": c.errors(), "warnings": c.warnings()});
            say!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Github => {
            for d in &c.diagnostics {
                say!("{}", render_github(&c.files, d));
            }
        }
    }
}

/// Compiles sources into a loaded policy, printing diagnostics (to stderr) when that fails.
pub fn policy(sources: &Sources) -> Result<Option<Policy>, String> {
    let c = checked(sources)?;
    let catalog = gateway_policy::load::catalog(sources.catalog.as_deref(), &sources.paths)?;
    match gateway_policy::compile::compile(&c, &catalog) {
        Some(artifact) => Policy::new(artifact).map(Some).map_err(|e| e.to_string()),
        None => {
            for d in c
                .diagnostics
                .iter()
                .filter(|d| d.severity == gateway_policy::diagnostic::Severity::Error)
            {
                eprint!(
                    "{}",
                    render_human(&c.files, d, std::io::stderr().is_terminal())
                );
            }
            eprintln!(
                "the policy has {} error(s); run `gateway-policy check`",
                c.errors()
            );
            Ok(None)
        }
    }
}
