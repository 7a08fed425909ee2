//! Where published policies live: one layout for `gateway-policy publish`, the Workers host and the native
//! host. An entry is the pointer to the policy in force, the pointer's earlier values, or a compiled artifact
//! under its hash (written once, never changed).
//!
//! | entry | Workers KV (binding `POLICY`) | directory (`gateway serve --policy DIR`) |
//! |---|---|---|
//! | the policy in force | `policy/active` (its hash) | `active` |
//! | earlier pointers, newest last | `policy/history` (JSON array) | `history` |
//! | every move of the pointer, newest last | `policy/log` (JSON array of [`Activation`]) | `log` |
//! | a compiled policy | `policy/<hash>` | `<hash>.json` |

/// One entry of a policy store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Active,
    History,
    Log,
    Artifact(&'a str),
}

impl Entry<'_> {
    /// The key in Workers KV.
    pub fn kv_key(&self) -> String {
        match self {
            Entry::Active => "policy/active".into(),
            Entry::History => "policy/history".into(),
            Entry::Log => "policy/log".into(),
            Entry::Artifact(hash) => format!("policy/{hash}"),
        }
    }

    /// The file name in a policy directory.
    pub fn file_name(&self) -> String {
        match self {
            Entry::Active => "active".into(),
            Entry::History => "history".into(),
            Entry::Log => "log".into(),
            Entry::Artifact(hash) => format!("{hash}.json"),
        }
    }
}

/// Whether `s` can name a policy: 64 hex digits (SHA-256), so it is safe as a key or a file name.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How many earlier pointers `history` keeps, and how many moves `log` keeps.
pub const HISTORY_LEN: usize = 50;

/// One move of the `active` pointer: which policy became active, when, and by what (`publish`, `rollback`
/// from the CLI, `console` for a rollback in the console).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Activation {
    pub hash: String,
    pub at_ms: i64,
    pub by: String,
}

/// The entries of a stored `history` or `log` (an unreadable one reads as empty: it only informs).
pub fn list<T: serde::de::DeserializeOwned>(stored: Option<&str>) -> Vec<T> {
    stored
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// `list` with `item` added last, keeping the newest [`HISTORY_LEN`], as stored text.
pub fn pushed<T: serde::Serialize>(mut list: Vec<T>, item: T) -> String {
    list.push(item);
    let keep = list.len().saturating_sub(HISTORY_LEN);
    list.drain(..keep);
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_alike_in_kv_and_in_a_directory() {
        let h = "ab".repeat(32);
        assert!(is_hash(&h) && !is_hash("../active") && !is_hash(&h[1..]));
        assert_eq!(Entry::Artifact(&h).kv_key(), format!("policy/{h}"));
        assert_eq!(Entry::Artifact(&h).file_name(), format!("{h}.json"));
        assert_eq!(
            (Entry::Active.kv_key(), Entry::History.file_name()),
            ("policy/active".to_owned(), "history".to_owned())
        );
        assert_eq!(
            (Entry::Log.kv_key(), Entry::Log.file_name()),
            ("policy/log".to_owned(), "log".to_owned())
        );
    }

    #[test]
    fn lists_keep_the_newest_entries_and_read_junk_as_empty() {
        let mut text = "[]".to_owned();
        for i in 0..HISTORY_LEN + 5 {
            text = pushed(list::<usize>(Some(&text)), i);
        }
        let kept: Vec<usize> = list(Some(&text));
        assert_eq!(
            (kept.len(), kept[0], *kept.last().unwrap()),
            (HISTORY_LEN, 5, HISTORY_LEN + 4)
        );
        assert!(list::<String>(Some("not json")).is_empty() && list::<String>(None).is_empty());
    }
}
