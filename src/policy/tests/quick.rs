#![allow(clippy::unwrap_used)]
mod common;
use gateway_policy::diagnostic::render_human;

#[test]
fn design_example_diagnostics() {
    let c = common::checked(common::DESIGN_EXAMPLE);
    for d in &c.diagnostics {
        println!("{}", render_human(&c.files, d, false));
    }
    println!("{:#?}", c.rules.iter().map(|r| &r.id).collect::<Vec<_>>());
}
