//! Reading policy sources from disk: files in a directory in name order, and the catalog beside them.

use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::syntax::ast::SourceFile;

/// The policy files named by `paths` (files, or directories whose `*.policy` files are read in name order).
pub fn sources(paths: &[PathBuf]) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "policy") && f.is_file())
                .collect();
            entries.sort();
            for f in entries {
                files.push(read(&f)?);
            }
        } else {
            files.push(read(p)?);
        }
    }
    if files.is_empty() {
        return Err(format!(
            "no .policy files in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(files)
}

fn read(path: &Path) -> Result<SourceFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not valid UTF-8", path.display()))?;
    Ok(SourceFile {
        name: path.display().to_string(),
        text,
    })
}

/// The catalog: `explicit` if given, else `catalog.toml` in the first directory named, else the built-in one;
/// with the price table beside it (`prices.toml`), if there is one.
pub fn catalog(explicit: Option<&Path>, paths: &[PathBuf]) -> Result<Catalog, String> {
    let found = explicit.map(Path::to_path_buf).or_else(|| {
        paths
            .iter()
            .filter(|p| p.is_dir())
            .map(|p| p.join("catalog.toml"))
            .find(|c| c.is_file())
    });
    match found {
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let catalog =
                Catalog::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let prices = path.with_file_name("prices.toml");
            if !prices.is_file() {
                return Ok(catalog);
            }
            let text = std::fs::read_to_string(&prices)
                .map_err(|e| format!("{}: {e}", prices.display()))?;
            catalog
                .with_prices(&text)
                .map_err(|e| format!("{}: {e}", prices.display()))
        }
        None => Ok(Catalog::builtin()),
    }
}
