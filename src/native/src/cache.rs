//! The response cache natively: in process, shared by every worker thread, least recently used entries dropped
//! first once the entries' bytes pass `CACHE_MAX_BYTES` (64 MiB unless set). Not persisted: a restart starts it
//! empty, which costs only misses, while persisting answers would put prompts' answers on disk unasked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct ResponseCache {
    inner: Arc<Mutex<Lru>>,
}

struct Slot {
    entry: Vec<u8>,
    until_ms: f64,
    used: u64,
}

struct Lru {
    slots: HashMap<String, Slot>,
    /// Last use → key: the oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    max_bytes: usize,
}

impl ResponseCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Lru {
                slots: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                max_bytes,
            })),
        }
    }

    /// The entry under `key` if it has not expired at `now_ms` (and it becomes the most recently used).
    pub fn get(&self, key: &str, now_ms: f64) -> Option<Vec<u8>> {
        let mut lru = self.inner.lock().ok()?;
        let lru = &mut *lru;
        let slot = lru.slots.get_mut(key)?;
        if slot.until_ms <= now_ms {
            let gone = lru.slots.remove(key)?;
            lru.order.remove(&gone.used);
            lru.bytes -= gone.entry.len() + key.len();
            return None;
        }
        lru.tick += 1;
        lru.order.remove(&slot.used);
        slot.used = lru.tick;
        lru.order.insert(lru.tick, key.to_owned());
        Some(slot.entry.clone())
    }

    pub fn put(&self, key: &str, entry: Vec<u8>, until_ms: f64) {
        let Ok(mut lru) = self.inner.lock() else {
            return;
        };
        let lru = &mut *lru;
        let size = entry.len() + key.len();
        if size > lru.max_bytes {
            return;
        }
        if let Some(old) = lru.slots.remove(key) {
            lru.order.remove(&old.used);
            lru.bytes -= old.entry.len() + key.len();
        }
        lru.tick += 1;
        lru.bytes += size;
        lru.order.insert(lru.tick, key.to_owned());
        lru.slots.insert(
            key.to_owned(),
            Slot {
                entry,
                until_ms,
                used: lru.tick,
            },
        );
        while lru.bytes > lru.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(gone) = lru.slots.remove(&oldest) {
                lru.bytes -= gone.entry.len() + oldest.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_and_entries_expire() {
        let c = ResponseCache::new(25);
        c.put("a", vec![0; 9], 100.0);
        c.put("b", vec![0; 9], 100.0);
        assert!(c.get("a", 1.0).is_some()); // a is now the most recent
        c.put("c", vec![0; 9], 100.0); // 30 bytes with their keys, over 25: b goes
        assert!(c.get("b", 1.0).is_none());
        assert!(c.get("a", 1.0).is_some() && c.get("c", 1.0).is_some());
        assert!(c.get("a", 100.0).is_none(), "expired");
        c.put("big", vec![0; 40], 100.0);
        assert!(c.get("big", 1.0).is_none(), "larger than the whole cache");
        c.put("c", vec![1; 2], 200.0);
        assert_eq!(c.get("c", 150.0), Some(vec![1, 1]));
    }
}
