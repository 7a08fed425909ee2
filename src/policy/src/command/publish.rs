//! `publish` and `rollback`: the compiled policy goes to an immutable `policy/<hash>`, then the `policy/active`
//! pointer moves to it; the pointer's earlier values are kept in `policy/history`, so `rollback` can move it
//! back. The store is Workers KV (through wrangler, local or remote) or a directory the native gateway reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use gateway_policy::eval::Policy;
use gateway_policy::store::{list, pushed, Activation, Entry};

use crate::Sources;

/// Where policies are published.
#[derive(clap::Args)]
pub struct Target {
    /// A directory for the native gateway (`gateway serve --policy DIR`): `active`, `history`, `<hash>.json`.
    #[arg(long, conflicts_with_all = ["local", "remote"])]
    pub dir: Option<PathBuf>,
    /// Workers KV in wrangler's local state (`wrangler dev`).
    #[arg(long, conflicts_with = "remote")]
    pub local: bool,
    /// Workers KV on Cloudflare (needs `wrangler login` or CLOUDFLARE_API_TOKEN).
    #[arg(long)]
    pub remote: bool,
    /// The KV binding that holds policies.
    #[arg(long, default_value = "POLICY")]
    pub binding: String,
    /// wrangler's local state directory (its `--persist-to`).
    #[arg(long)]
    pub persist_to: Option<PathBuf>,
    /// wrangler's configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// wrangler's environment (`[env.NAME]`).
    #[arg(long)]
    pub env: Option<String>,
    /// How to run wrangler.
    #[arg(long, default_value = "npx wrangler")]
    pub wrangler: String,
}

enum Store<'a> {
    Dir(&'a Path),
    Kv(&'a Target),
}

impl<'a> Store<'a> {
    fn new(t: &'a Target) -> Result<Self, String> {
        match (&t.dir, t.local, t.remote) {
            (Some(d), _, _) => Ok(Store::Dir(d)),
            (None, false, false) => {
                Err("say where to publish: --dir DIR, --local or --remote".into())
            }
            _ => Ok(Store::Kv(t)),
        }
    }

    /// An entry's name in this store.
    fn name(&self, entry: Entry<'_>) -> String {
        match self {
            Store::Dir(_) => entry.file_name(),
            Store::Kv(_) => entry.kv_key(),
        }
    }

    fn get(&self, entry: Entry<'_>) -> Result<Option<String>, String> {
        let name = self.name(entry);
        match self {
            Store::Dir(d) => match std::fs::read_to_string(d.join(&name)) {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", d.join(&name).display())),
            },
            Store::Kv(t) => {
                let out = wrangler(t, &["kv", "key", "get", &name, "--text"])?;
                // wrangler prints "Value not found" (and exits 0) for a missing key.
                let text = String::from_utf8_lossy(&out).into_owned();
                Ok((text.trim() != "Value not found").then_some(text))
            }
        }
    }

    fn put(&self, entry: Entry<'_>, value: &str) -> Result<(), String> {
        let name = self.name(entry);
        match self {
            Store::Dir(d) => {
                std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                // Written aside and renamed: a gateway reading the directory never sees half a file.
                let tmp = d.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, value).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, d.join(&name)).map_err(|e| format!("{}: {e}", d.display()))
            }
            Store::Kv(t) => {
                let file = std::env::temp_dir().join(format!(
                    "gateway-policy-{}-{}",
                    std::process::id(),
                    name.replace('/', "_")
                ));
                std::fs::write(&file, value).map_err(|e| format!("{}: {e}", file.display()))?;
                let path = file.to_string_lossy().into_owned();
                let result = wrangler(t, &["kv", "key", "put", &name, "--path", &path]);
                let _ = std::fs::remove_file(&file);
                result.map(|_| ())
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.display().to_string(),
            Store::Kv(t) => format!(
                "KV binding {} ({})",
                t.binding,
                if t.remote { "remote" } else { "local" }
            ),
        }
    }

    fn history(&self) -> Result<Vec<String>, String> {
        match self.get(Entry::History)? {
            None => Ok(Vec::new()),
            Some(s) => serde_json::from_str(&s).map_err(|e| format!("policy history: {e}")),
        }
    }

    fn active(&self) -> Result<Option<String>, String> {
        Ok(self
            .get(Entry::Active)?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()))
    }

    /// Reads back a stored artifact and loads it as the gateway will.
    fn verify(&self, hash: &str) -> Result<(), String> {
        let json = self
            .get(Entry::Artifact(hash))?
            .ok_or_else(|| format!("{} has no policy {hash}", self.describe()))?;
        let policy = Policy::from_json(&json).map_err(|e| format!("policy {hash}: {e}"))?;
        if policy.hash() != hash {
            return Err(format!("policy {hash} holds {}", policy.hash()));
        }
        Ok(())
    }

    /// Points `active` at `hash`, remembering the previous pointer unless this is a rollback, and adds the
    /// move to `log` (when, and by which command).
    fn activate(&self, hash: &str, remember: bool, by: &str) -> Result<(), String> {
        if remember {
            if let Some(old) = self.active()?.filter(|old| old != hash) {
                self.put(Entry::History, &pushed(self.history()?, old))?;
            }
        }
        self.put(Entry::Active, hash)?;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let log = list(self.get(Entry::Log)?.as_deref());
        let activation = Activation {
            hash: hash.to_owned(),
            at_ms,
            by: by.to_owned(),
        };
        self.put(Entry::Log, &pushed(log, activation))
    }
}

fn json(history: &[String]) -> String {
    serde_json::to_string(history).unwrap_or_else(|_| "[]".into())
}

/// Runs wrangler with the target's flags; its standard output, or why it failed.
fn wrangler(t: &Target, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut words = t.wrangler.split_whitespace();
    let program = words.next().ok_or("--wrangler is empty")?;
    let mut cmd = Command::new(program);
    cmd.args(words).args(args).args(["--binding", &t.binding]);
    cmd.arg(if t.remote { "--remote" } else { "--local" });
    if let Some(p) = &t.persist_to {
        cmd.arg("--persist-to").arg(p);
    }
    if let Some(c) = &t.config {
        cmd.arg("--config").arg(c);
    }
    if let Some(e) = &t.env {
        cmd.args(["--env", e]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("could not run `{}`: {e}", t.wrangler))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {}` failed: {}",
            t.wrangler,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

pub fn publish(sources: &Sources, target: &Target, deny_warnings: bool) -> Result<bool, String> {
    let store = Store::new(target)?;
    let c = super::checked(sources)?;
    if c.errors() > 0 || (deny_warnings && c.warnings() > 0) {
        super::print_diagnostics(&c, crate::Format::Human);
        eprintln!("not published");
        return Ok(false);
    }
    let catalog = gateway_policy::load::catalog(sources.catalog.as_deref(), &sources.paths)?;
    let Some(artifact) = gateway_policy::compile::compile(&c, &catalog) else {
        super::print_diagnostics(&c, crate::Format::Human);
        return Ok(false);
    };
    let hash = artifact.hash.clone();
    let previous = store.active()?;
    if previous.as_deref() == Some(hash.as_str()) {
        eprintln!("policy {hash} is already active in {}", store.describe());
        return Ok(true);
    }
    store.put(
        Entry::Artifact(&hash),
        &gateway_policy::compile::to_json(&artifact),
    )?;
    store.verify(&hash)?;
    store.activate(&hash, true, "publish")?;
    eprintln!(
        "published policy {hash} ({} rule(s)) to {}; it was {}",
        artifact.deny.len() + artifact.rules.len() + 1,
        store.describe(),
        previous.as_deref().unwrap_or("the built-in default")
    );
    say!("{hash}");
    Ok(true)
}

pub fn rollback(target: &Target, to: Option<&str>) -> Result<bool, String> {
    let store = Store::new(target)?;
    let current = store.active()?;
    // `remaining`: the history without the hash rolled back to (it is not pushed again).
    let (hash, remaining) = match to {
        Some(h) => (h.to_owned(), None),
        None => {
            let mut history = store.history()?;
            let Some(prev) = history.pop() else {
                return Err(format!(
                    "{} has no earlier policy to roll back to",
                    store.describe()
                ));
            };
            (prev, Some(history))
        }
    };
    // Checked before anything moves: the pointer never names a policy that does not load.
    store.verify(&hash)?;
    if let Some(history) = &remaining {
        store.put(Entry::History, &json(history))?;
    }
    store.activate(&hash, remaining.is_none(), "rollback")?;
    eprintln!(
        "policy/active in {} moved from {} to {hash}",
        store.describe(),
        current.as_deref().unwrap_or("nothing")
    );
    say!("{hash}");
    Ok(true)
}
