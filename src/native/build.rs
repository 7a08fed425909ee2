//! Embeds the built console (`console/dist/console/`, made by `scripts/build-console.sh`) in the binary. Without a
//! build the binary serves a page that says how to make one, so `cargo build` alone still works.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../console/dist/console");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut out = String::from("/// (file name, content type, bytes) of each console asset.\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for path in files.iter().filter(|p| p.is_file()) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            _ => "application/octet-stream",
        };
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({name:?}, {kind:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    if files.is_empty() {
        println!("cargo:warning=the console is not built (scripts/build-console.sh): /console will say so");
        out.push_str("    (\"index.html\", \"text/html; charset=utf-8\", b\"<!doctype html><meta charset=utf-8><title>Console not built</title><p>The console was not built into this binary: run <code>bash scripts/build-console.sh</code>, then <code>cargo build</code> again.\"),\n");
    }
    out.push_str("];\n");
    // The headers the console's pages go out with: the `_headers` file Workers static assets read, so both
    // hosts send the same Content-Security-Policy.
    let headers = dir.join("../_headers");
    println!("cargo:rerun-if-changed={}", headers.display());
    out.push_str("/// (name, value) of each header sent with a console asset.\npub static HEADERS: &[(&str, &str)] = &[\n");
    for line in std::fs::read_to_string(&headers)
        .unwrap_or_default()
        .lines()
    {
        if let Some((name, value)) = line.strip_prefix("  ").and_then(|l| l.split_once(": ")) {
            let _ = writeln!(out, "    ({name:?}, {value:?}),");
        }
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("console_assets.rs");
    if let Err(e) = std::fs::write(&target, out) {
        println!("cargo:warning=cannot write {}: {e}", target.display());
    }
}
