//! Where the native gateway finds its routing policy: a compiled policy file, or a directory that
//! `gateway-policy publish --dir` writes (`active` naming `<hash>.json`). The startup check and the worker
//! threads' refreshes read it the same way.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gateway_policy::store::{is_hash, Entry};

/// Why the policy file or directory could not be read, or does not hold a usable policy. Messages name the path.
#[derive(Debug, thiserror::Error)]
pub enum PolicySourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: `{value}` is not a policy hash")]
    NotAHash { path: String, value: String },
    #[error("`{0}` is not a policy hash")]
    BadHash(String),
    #[error("{path}: not a compiled policy: {reason}")]
    NotCompiled { path: String, reason: String },
    #[error("{path}: the policy {hash} is missing")]
    Missing { path: String, hash: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path} is a policy file: the console rolls back a published directory (`gateway serve --policy DIR`, `gateway-policy publish --dir DIR`)")]
    NotADirectory { path: String },
    #[error("{path}: names {named} but holds {holds}")]
    WrongHash {
        path: String,
        named: String,
        holds: String,
    },
}

pub struct PolicySource {
    path: PathBuf,
    /// For a file: its modification time and length when its hash was last read, and that hash, so an
    /// unchanged file is not read and parsed again on every refresh.
    seen: RefCell<Option<(SystemTime, u64, String)>>,
}

/// Only the `hash` of a compiled policy (the rest is parsed when it is loaded).
#[derive(serde::Deserialize)]
struct HashOnly {
    hash: String,
}

impl PolicySource {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            seen: RefCell::new(None),
        }
    }

    /// The hash of the policy the source names now; `None` when nothing is there (yet).
    pub fn active(&self) -> Result<Option<String>, PolicySourceError> {
        if self.path.is_dir() {
            let active = self.path.join(Entry::Active.file_name());
            return match read(&active)? {
                None => Ok(None),
                Some(h) if is_hash(h.trim()) => Ok(Some(h.trim().to_owned())),
                Some(h) => Err(PolicySourceError::NotAHash {
                    path: active.display().to_string(),
                    value: h.trim().to_owned(),
                }),
            };
        }
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PolicySourceError::Io {
                    path: self.path.display().to_string(),
                    source,
                })
            }
        };
        let stamp = (meta.modified().ok(), meta.len());
        if let (Some(modified), Some((m, len, hash))) = (stamp.0, self.seen.borrow().as_ref()) {
            if modified == *m && stamp.1 == *len {
                return Ok(Some(hash.clone()));
            }
        }
        let Some(json) = read(&self.path)? else {
            return Ok(None);
        };
        let hash = serde_json::from_str::<HashOnly>(&json)
            .map_err(|e| PolicySourceError::NotCompiled {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?
            .hash;
        if let Some(modified) = stamp.0 {
            *self.seen.borrow_mut() = Some((modified, stamp.1, hash.clone()));
        }
        Ok(Some(hash))
    }

    /// The compiled policy stored under `hash`.
    pub fn artifact(&self, hash: &str) -> Result<Option<String>, PolicySourceError> {
        if !self.path.is_dir() {
            return read(&self.path);
        }
        if !is_hash(hash) {
            return Err(PolicySourceError::BadHash(hash.to_owned()));
        }
        read(&self.path.join(Entry::Artifact(hash).file_name()))
    }

    /// The policy the source names, checked as the gateway loads it (format, hash, regexes): its JSON, or
    /// `None` when nothing is published yet. `gateway serve` refuses to start when this fails.
    pub fn load(&self) -> Result<Option<String>, PolicySourceError> {
        let Some(hash) = self.active()? else {
            return Ok(None);
        };
        let path = || self.path.display().to_string();
        let Some(json) = self.artifact(&hash)? else {
            return Err(PolicySourceError::Missing { path: path(), hash });
        };
        let policy =
            gateway_policy::Policy::from_json(&json).map_err(|e| PolicySourceError::Invalid {
                path: path(),
                reason: e.to_string(),
            })?;
        if policy.hash() != hash {
            return Err(PolicySourceError::WrongHash {
                path: path(),
                named: hash,
                holds: policy.hash().to_owned(),
            });
        }
        Ok(Some(json))
    }
}

impl PolicySource {
    /// A store entry of a published directory (`history`, `log`); nothing for a policy file.
    pub fn entry(&self, entry: Entry<'_>) -> Result<Option<String>, PolicySourceError> {
        if !self.path.is_dir() {
            return Ok(None);
        }
        read(&self.path.join(entry.file_name()))
    }

    /// Writes a store entry of a published directory, aside and renamed (as `gateway-policy publish --dir`
    /// writes it): a reader never sees half a file.
    pub fn put_entry(&self, entry: Entry<'_>, value: &str) -> Result<(), PolicySourceError> {
        if !self.path.is_dir() {
            return Err(PolicySourceError::NotADirectory {
                path: self.path.display().to_string(),
            });
        }
        let path = self.path.join(entry.file_name());
        let aside = self.path.join(format!(".{}.tmp", entry.file_name()));
        let io = |source| PolicySourceError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(&aside, value).map_err(io)?;
        std::fs::rename(&aside, &path).map_err(io)
    }
}

fn read(path: &Path) -> Result<Option<String>, PolicySourceError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PolicySourceError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}
