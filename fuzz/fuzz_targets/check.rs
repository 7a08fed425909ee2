//! Any bytes as a policy file: parsing, checking, formatting and compiling must never panic, and whatever
//! compiles must load and evaluate. Run: `cargo +nightly fuzz run check` (from fuzz/).
#![no_main]

use gateway_policy::catalog::Catalog;
use gateway_policy::syntax::ast::SourceFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let catalog = Catalog::builtin();
    let (statements, _) = gateway_policy::syntax::parse::parse_file(0, &text);
    let _ = gateway_policy::syntax::fmt::format_file(&text, &statements.iter().collect::<Vec<_>>());
    let checked = gateway_policy::check::check(vec![SourceFile { name: "fuzz.policy".into(), text }], &catalog);
    if let Some(artifact) = gateway_policy::compile::compile(&checked, &catalog) {
        let json = gateway_policy::compile::to_json(&artifact);
        let policy = gateway_policy::Policy::from_json(&json).expect("a compiled policy loads");
        let _ = policy.decide(&gateway_policy::Attrs::default());
    }
});
