//! Hash maps keyed by the crate's own numbers (green task ids, reactor keys): sequential
//! integers that no peer chooses, so a multiplicative hash can replace SipHash, whose cost
//! showed in every task switch.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by an id the crate hands out.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// 2^64 / φ, odd: multiplying by it maps consecutive ids to well-spread hashes, in the low
/// bits (the bucket) and the high bits (hashbrown's tag) alike.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// Fibonacci hashing of one integer key.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer keys; correct for any other.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(SPREAD);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(SPREAD);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_spread_over_buckets_and_tags() {
        let hash = |n: u64| {
            let mut h = IdHasher::default();
            h.write_u64(n);
            h.finish()
        };
        let low: std::collections::HashSet<u64> = (0..1024).map(|n| hash(n) & 1023).collect();
        let high: std::collections::HashSet<u64> = (0..1024).map(|n| hash(n) >> 57).collect();
        assert_eq!(low.len(), 1024, "a bijection on the low bits");
        assert_eq!(high.len(), 128, "every 7-bit tag used");
        let mut map: IdMap<u64, u64> = IdMap::default();
        for n in 0..10_000 {
            map.insert(n, n * 2);
        }
        assert!((0..10_000).all(|n| map.get(&n) == Some(&(n * 2))));
    }
}
