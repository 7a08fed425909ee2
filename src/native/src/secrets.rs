//! Settings and secrets of the native host: the process's environment, then an optional secrets file
//! (`--secrets-file`, `NAME=value` lines) that is re-read when it changes. A provider declared in a newly
//! published catalog finds its key there without a restart: add the line, publish.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The secrets file's values as last read, with the file's modification time then.
type Read = Option<(SystemTime, HashMap<String, String>)>;

/// Cheap to clone; shared by the worker threads.
#[derive(Clone, Default)]
pub struct Secrets {
    file: Option<Arc<PathBuf>>,
    /// The file as last read, with its modification time.
    read: Arc<Mutex<Read>>,
}

impl Secrets {
    pub fn new(file: Option<PathBuf>) -> Self {
        Self {
            file: file.map(Arc::new),
            read: Arc::default(),
        }
    }

    /// The environment variable `name`, else the secrets file's line for it.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Ok(v) = std::env::var(name) {
            return Some(v);
        }
        let path = self.file.as_ref()?;
        let modified = std::fs::metadata(path.as_path())
            .and_then(|m| m.modified())
            .ok()?;
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        if read.as_ref().is_none_or(|(at, _)| *at != modified) {
            let text = std::fs::read_to_string(path.as_path()).ok()?;
            *read = Some((modified, parse(&text)));
        }
        read.as_ref()
            .and_then(|(_, values)| values.get(name).cloned())
    }
}

/// `NAME=value` lines (`export ` allowed before the name, the value optionally in quotes); `#` comments.
fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.strip_prefix("export ").unwrap_or(l).split_once('=')?;
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((name.trim().to_owned(), unquoted.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_exports_and_quotes() {
        let v =
            parse("# keys\nMOONSHOT_API_KEY=sk-1\nexport VLLM_KEY = \"sk 2\"\n\nBAD LINE\nX='y'\n");
        assert_eq!(v["MOONSHOT_API_KEY"], "sk-1");
        assert_eq!(v["VLLM_KEY"], "sk 2");
        assert_eq!(v["X"], "y");
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn the_file_is_read_again_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("gateway-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.env");
        std::fs::write(&path, "GATEWAY_TEST_SECRET_A=1\n").unwrap();
        let s = Secrets::new(Some(path.clone()));
        assert_eq!(s.get("GATEWAY_TEST_SECRET_A").as_deref(), Some("1"));
        assert_eq!(s.get("GATEWAY_TEST_SECRET_B"), None);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "GATEWAY_TEST_SECRET_A=1\nGATEWAY_TEST_SECRET_B=2\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(later).unwrap();
        assert_eq!(s.get("GATEWAY_TEST_SECRET_B").as_deref(), Some("2"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
