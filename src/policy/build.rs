//! Converts the repository's catalog (`policies/catalog.toml`) and price table (`policies/prices.toml`, as the
//! catalog's `prices`) to JSON, so the gateway can carry them as its built-in provider table and prices without
//! linking a TOML parser (the Worker's bundle).

use std::path::PathBuf;

fn main() {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies/catalog.toml");
    println!("cargo:rerun-if-changed={}", source.display());
    let text =
        std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    // Validity (dialects, URLs, models) is the compiler's check, run by the policy tests; here only the syntax.
    let mut value: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let prices = source.with_file_name("prices.toml");
    println!("cargo:rerun-if-changed={}", prices.display());
    let text =
        std::fs::read_to_string(&prices).unwrap_or_else(|e| panic!("{}: {e}", prices.display()));
    let table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", prices.display()));
    value.insert("prices".into(), toml::Value::Table(table));
    let json = serde_json::to_string(&value).unwrap_or_else(|e| panic!("catalog as JSON: {e}"));
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("catalog.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
