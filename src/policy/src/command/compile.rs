use std::path::Path;

use crate::Sources;

pub fn run(sources: &Sources, output: &Path) -> Result<bool, String> {
    let c = super::checked(sources)?;
    let catalog = gateway_policy::load::catalog(sources.catalog.as_deref(), &sources.paths)?;
    let Some(artifact) = gateway_policy::compile::compile(&c, &catalog) else {
        super::print_diagnostics(&c, crate::Format::Human);
        return Ok(false);
    };
    let json = gateway_policy::compile::to_json(&artifact);
    if output == Path::new("-") {
        say!("{json}");
    } else {
        std::fs::write(output, format!("{json}\n"))
            .map_err(|e| format!("{}: {e}", output.display()))?;
    }
    eprintln!(
        "compiled {} rule(s) from {} file(s); hash {}",
        artifact.deny.len() + artifact.rules.len() + 1,
        c.files.len(),
        artifact.hash
    );
    Ok(true)
}
