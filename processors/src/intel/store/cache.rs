//! The in-process front cache of lookup results: observed value → every candidate match
//! (before the `valid_until` check, which is done on each read), bounded by an entry count.
//!
//! Sharded (one mutex per shard) and two-generation per shard: new entries go to `hot`; when
//! `hot` holds half the shard's capacity it becomes `cold` and the old `cold` is dropped; a hit
//! in `cold` moves the entry back to `hot`. That keeps the recently used entries, bounds the
//! shard to its capacity, and costs O(1) per operation with no LRU list.
//!
//! Every entry is tagged with the store's write generation: a write bumps the generation, so
//! every older entry is a miss from then on (including one inserted by a lookup that read the
//! database before the write committed).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Match;

/// FxHash (the rustc hasher) with a final avalanche: fast for short keys; the keys are not attacker-chosen in a way
/// that matters (a collision flood only slows the cache down, the shards stay bounded).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // The Fx step leaves the low bits poorly mixed (the hash table indexes by them): finish
        // with the MurmurHash3 avalanche.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

type Map = HashMap<Box<[u8]>, Entry, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Clone)]
struct Entry {
    generation: u64,
    matches: Arc<[Match]>,
}

#[derive(Debug, Default)]
struct Shard {
    hot: Map,
    cold: Map,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct FrontCache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per shard at most (`hot` + `cold`).
    shard_capacity: usize,
}

const SHARDS: usize = 16;

impl FrontCache {
    /// A cache of at most `capacity` entries (0 disables it).
    pub(crate) fn new(capacity: usize) -> FrontCache {
        let shards = if capacity == 0 { 0 } else { SHARDS };
        FrontCache {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity.div_ceil(SHARDS).max(2),
        }
    }

    fn shard(&self, key: &[u8]) -> Option<MutexGuard<'_, Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        let mut h = FxHasher::default();
        h.write(key);
        let i = (h.finish() >> 32) as usize % self.shards.len();
        // A poisoned shard only means a panic elsewhere while holding it; the maps are still
        // valid (every mutation is a single insert/remove/swap).
        Some(self.shards[i].lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The cached candidates for `key` if present and written at `generation`.
    pub(crate) fn get(&self, key: &[u8], generation: u64) -> Option<Arc<[Match]>> {
        let mut s = self.shard(key)?;
        if let Some(e) = s.hot.get(key) {
            return (e.generation == generation).then(|| e.matches.clone());
        }
        let e = s.cold.remove(key)?;
        if e.generation != generation {
            return None;
        }
        let matches = e.matches.clone();
        self.insert_locked(&mut s, key.into(), e);
        Some(matches)
    }

    /// Caches the candidates for `key`, read at `generation`.
    pub(crate) fn insert(&self, key: &[u8], generation: u64, matches: Arc<[Match]>) {
        if let Some(mut s) = self.shard(key) {
            self.insert_locked(
                &mut s,
                key.into(),
                Entry {
                    generation,
                    matches,
                },
            );
        }
    }

    fn insert_locked(&self, s: &mut Shard, key: Box<[u8]>, e: Entry) {
        if s.hot.len() >= self.shard_capacity / 2 {
            s.cold = std::mem::take(&mut s.hot);
        }
        s.hot.insert(key, e);
    }

    /// Drops every entry (they are already invalid after a write; this frees the memory).
    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            s.hot = Map::default();
            s.cold = Map::default();
        }
    }

    /// Number of cached entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.hot.len() + s.cold.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_generation_checked() {
        let c = FrontCache::new(64);
        let empty: Arc<[Match]> = Arc::from(Vec::new());
        for i in 0..10_000u32 {
            c.insert(&i.to_le_bytes(), 1, empty.clone());
            assert!(c.len() <= 64 + SHARDS, "len {}", c.len());
        }
        c.insert(b"k", 1, empty.clone());
        assert!(c.get(b"k", 1).is_some());
        assert!(c.get(b"k", 2).is_none());
        c.clear();
        assert_eq!(c.len(), 0);
        let off = FrontCache::new(0);
        off.insert(b"k", 1, empty);
        assert!(off.get(b"k", 1).is_none());
    }
}
