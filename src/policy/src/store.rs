//! Where published policies live: one layout for `gateway-policy publish`, the Workers host and the native
//! host. An entry is the pointer to the policy in force, the pointer's earlier values, or a compiled artifact
//! under its hash (written once, never changed).
//!
//! | entry | Workers KV (binding `POLICY`) | directory (`gateway serve --policy DIR`) |
//! |---|---|---|
//! | the policy in force | `policy/active` (its hash) | `active` |
//! | earlier pointers, newest last | `policy/history` (JSON array) | `history` |
//! | a compiled policy | `policy/<hash>` | `<hash>.json` |

/// One entry of a policy store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Active,
    History,
    Artifact(&'a str),
}

impl Entry<'_> {
    /// The key in Workers KV.
    pub fn kv_key(&self) -> String {
        match self {
            Entry::Active => "policy/active".into(),
            Entry::History => "policy/history".into(),
            Entry::Artifact(hash) => format!("policy/{hash}"),
        }
    }

    /// The file name in a policy directory.
    pub fn file_name(&self) -> String {
        match self {
            Entry::Active => "active".into(),
            Entry::History => "history".into(),
            Entry::Artifact(hash) => format!("{hash}.json"),
        }
    }
}

/// Whether `s` can name a policy: 64 hex digits (SHA-256), so it is safe as a key or a file name.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How many earlier pointers `history` keeps.
pub const HISTORY_LEN: usize = 50;

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
    }
}
