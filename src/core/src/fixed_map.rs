//! Maps built once from the gateway's own tables (word lists, the task model), looked up per request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// No request inserts into these maps, so a fast unkeyed hash (FNV-1a) is safe, and it is several times cheaper
/// per lookup than the default SipHash.
pub(crate) type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
