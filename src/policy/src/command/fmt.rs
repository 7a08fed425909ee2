use std::path::PathBuf;

use gateway_policy::diagnostic::render_human;
use gateway_policy::syntax::{fmt, parse};

pub fn run(paths: &[PathBuf], check: bool) -> Result<bool, String> {
    let files = gateway_policy::load::sources(paths)?;
    let mut clean = true;
    for (i, f) in files.iter().enumerate() {
        let (statements, diags) = parse::parse_file(i as u32, &f.text);
        if !diags.is_empty() {
            for d in &diags {
                eprint!("{}", render_human(&files, d, false));
            }
            eprintln!("{}: not formatted: fix the syntax errors first", f.name);
            clean = false;
            continue;
        }
        let refs: Vec<_> = statements.iter().collect();
        let formatted = fmt::format_file(&f.text, &refs);
        if formatted == f.text {
            continue;
        }
        if check {
            say!("{}: not formatted", f.name);
            clean = false;
        } else {
            std::fs::write(&f.name, formatted).map_err(|e| format!("{}: {e}", f.name))?;
            say!("formatted {}", f.name);
        }
    }
    Ok(clean)
}
