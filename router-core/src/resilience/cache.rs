//! Exact-match response cache: a key seen recently is answered without calling any endpoint.

use crate::config::CacheConfig;
use crate::keyed_rand::mix64;
use crate::model::Nanos;

/// Most keys a cache may hold (its memory is allocated up front: about 40 bytes per key).
pub const MAX_CACHE_CAPACITY: usize = 1 << 20;

const NIL: u32 = u32::MAX;

/// One cached key, linked into the list of keys in order of their last insertion.
#[derive(Clone, Copy, Debug)]
struct Node {
    key: u64,
    expiry: Nanos,
    prev: u32,
    next: u32,
}

/// Keys of cached responses with their expiry, bounded by `capacity` (the key inserted or refreshed longest
/// ago is evicted first) and by `ttl`. The router consults it in `decide` (a hit is a
/// [`crate::Decision::CacheHit`]) and fills it from successful results.
///
/// All memory is allocated when the cache is built: a slab of `capacity` nodes linked in insertion order
/// (oldest first; with a fixed `ttl` that is also expiry order) and an open-addressing index (linear probing,
/// backward-shift deletion, at most half full). Lookups, inserts, refreshes and evictions never allocate.
#[derive(Clone, Debug)]
pub struct ResponseCache {
    ttl: Nanos,
    nodes: Vec<Node>,
    /// Slot -> node index, or `NIL`.
    index: Vec<u32>,
    mask: usize,
    /// Oldest and newest node of the insertion-order list.
    head: u32,
    tail: u32,
    /// Free nodes, chained through `next`.
    free: u32,
    len: usize,
}

impl ResponseCache {
    /// An empty cache (`capacity` is clamped to `1..=`[`MAX_CACHE_CAPACITY`]).
    pub fn new(cfg: &CacheConfig) -> Self {
        let capacity = cfg.capacity.clamp(1, MAX_CACHE_CAPACITY);
        let slots = (capacity * 2).next_power_of_two();
        let nodes = (0..capacity)
            .map(|i| Node { key: 0, expiry: 0, prev: NIL, next: if i + 1 < capacity { i as u32 + 1 } else { NIL } })
            .collect();
        ResponseCache {
            ttl: cfg.ttl.nanos(),
            nodes,
            index: vec![NIL; slots],
            mask: slots - 1,
            head: NIL,
            tail: NIL,
            free: 0,
            len: 0,
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        mix64(key) as usize & self.mask
    }

    /// The index slot holding `key`, if present.
    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        let mut s = self.home(key);
        loop {
            let n = self.index[s];
            if n == NIL {
                return None;
            }
            if self.nodes[n as usize].key == key {
                return Some(s);
            }
            s = (s + 1) & self.mask;
        }
    }

    /// Whether `key` has a fresh entry at `now`.
    #[inline]
    pub fn hit(&self, key: u64, now: Nanos) -> bool {
        self.find(key).is_some_and(|s| now < self.nodes[self.index[s] as usize].expiry)
    }

    /// Stores (or refreshes) `key` at `now`, evicting expired keys and, when full, the oldest.
    pub fn insert(&mut self, key: u64, now: Nanos) {
        let expiry = now.saturating_add(self.ttl);
        if let Some(s) = self.find(key) {
            let n = self.index[s];
            self.unlink(n);
            self.nodes[n as usize].expiry = expiry;
            self.push_back(n);
        } else {
            // Expired keys go first (they are at the front), then the oldest if still full.
            while self.head != NIL && self.nodes[self.head as usize].expiry <= now {
                self.remove_oldest();
            }
            if self.free == NIL {
                self.remove_oldest();
            }
            let n = self.free;
            self.free = self.nodes[n as usize].next;
            self.nodes[n as usize] = Node { key, expiry, prev: NIL, next: NIL };
            let mut s = self.home(key);
            while self.index[s] != NIL {
                s = (s + 1) & self.mask;
            }
            self.index[s] = n;
            self.push_back(n);
            self.len += 1;
        }
    }

    fn unlink(&mut self, n: u32) {
        let Node { prev, next, .. } = self.nodes[n as usize];
        if prev == NIL {
            self.head = next
        } else {
            self.nodes[prev as usize].next = next
        }
        if next == NIL { self.tail = prev } else { self.nodes[next as usize].prev = prev }
    }

    fn push_back(&mut self, n: u32) {
        self.nodes[n as usize].prev = self.tail;
        self.nodes[n as usize].next = NIL;
        if self.tail == NIL {
            self.head = n
        } else {
            self.nodes[self.tail as usize].next = n
        }
        self.tail = n;
    }

    fn remove_oldest(&mut self) {
        let n = self.head;
        debug_assert!(n != NIL);
        let key = self.nodes[n as usize].key;
        self.unlink(n);
        self.nodes[n as usize].next = self.free;
        self.free = n;
        self.len -= 1;
        // Backward-shift deletion keeps every probe chain unbroken without tombstones.
        let Some(mut hole) = self.find(key) else { return };
        let mut s = (hole + 1) & self.mask;
        loop {
            let m = self.index[s];
            if m == NIL {
                break;
            }
            let home = self.home(self.nodes[m as usize].key);
            // Move `m` into the hole unless its home lies cyclically in (hole, s].
            if (s.wrapping_sub(home) & self.mask) >= (s.wrapping_sub(hole) & self.mask) {
                self.index[hole] = m;
                hole = s;
            }
            s = (s + 1) & self.mask;
        }
        self.index[hole] = NIL;
    }

    /// Number of keys held (including expired ones not yet evicted).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;

    #[test]
    fn hits_until_ttl_then_misses() {
        let mut c = ResponseCache::new(&CacheConfig { ttl: Duration(100), capacity: 10 });
        c.insert(7, 0);
        assert!(c.hit(7, 99));
        assert!(!c.hit(7, 100));
        assert!(!c.hit(8, 0));
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let mut c = ResponseCache::new(&CacheConfig { ttl: Duration(1_000), capacity: 3 });
        for k in 0..5 {
            c.insert(k, k);
        }
        assert_eq!(c.len(), 3);
        assert!(!c.hit(0, 5) && !c.hit(1, 5));
        assert!(c.hit(2, 5) && c.hit(3, 5) && c.hit(4, 5));
    }

    #[test]
    fn refresh_keeps_a_key_alive() {
        let mut c = ResponseCache::new(&CacheConfig { ttl: Duration(100), capacity: 2 });
        c.insert(1, 0);
        c.insert(1, 90);
        assert!(c.hit(1, 150));
        c.insert(2, 160);
        c.insert(3, 170);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn refresh_moves_a_key_to_the_back_of_the_eviction_order() {
        let mut c = ResponseCache::new(&CacheConfig { ttl: Duration(1_000), capacity: 2 });
        c.insert(1, 0);
        c.insert(2, 1);
        c.insert(1, 2);
        c.insert(3, 3);
        assert!(c.hit(1, 4) && c.hit(3, 4) && !c.hit(2, 4));
    }

    #[test]
    fn matches_a_reference_model_under_churn() {
        // Colliding keys, refreshes, expiries and evictions against a plain Vec model.
        let ttl = 50;
        let mut c = ResponseCache::new(&CacheConfig { ttl: Duration(ttl), capacity: 8 });
        let mut model: Vec<(u64, Nanos)> = Vec::new();
        for t in 0..5_000u64 {
            let key = mix64(t) % 24;
            model.retain(|&(k, _)| k != key);
            if c.find(key).is_none() {
                model.retain(|&(_, e)| e > t);
                if model.len() == 8 {
                    model.remove(0);
                }
            }
            model.push((key, t + ttl));
            c.insert(key, t);
            for k in 0..24 {
                let want = model.iter().any(|&(m, e)| m == k && t < e);
                assert_eq!(c.hit(k, t), want, "key {k} at {t}");
            }
            assert!(c.len() <= 8);
        }
    }
}
