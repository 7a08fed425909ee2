use crate::{Format, Sources};

pub fn run(sources: &Sources, format: Format, deny_warnings: bool) -> Result<bool, String> {
    let c = super::checked(sources)?;
    super::print_diagnostics(&c, format);
    if c.diagnostics.is_empty() && format == Format::Human {
        say!("{} file(s) checked: no problems", c.files.len());
    }
    Ok(c.errors() == 0 && (!deny_warnings || c.warnings() == 0))
}
