//! The rendered diagnostics of a policy with every kind of mistake, compared with `snapshots/broken.txt`.
//! After an intended change to messages, regenerate it with `UPDATE_SNAPSHOTS=1 cargo test -p gateway-policy`.
#![allow(clippy::unwrap_used)]

use gateway_policy::catalog::Catalog;
use gateway_policy::check::check;
use gateway_policy::diagnostic::render_human;
use gateway_policy::syntax::ast::SourceFile;

#[test]
fn every_mistake_rendered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let text = std::fs::read_to_string(dir.join("broken.policy")).unwrap();
    let c = check(
        vec![SourceFile {
            name: "broken.policy".into(),
            text,
        }],
        &Catalog::builtin(),
    );
    let mut out = String::new();
    for d in &c.diagnostics {
        out.push_str(&render_human(&c.files, d, false));
        out.push('\n');
    }
    out.push_str(&format!(
        "{} error(s), {} warning(s)\n",
        c.errors(),
        c.warnings()
    ));
    let path = dir.join("broken.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(out == expected, "rendered diagnostics changed; got:\n{out}");
}
