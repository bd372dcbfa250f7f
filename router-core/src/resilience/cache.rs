//! Exact-match response cache: a key seen recently is answered without calling any endpoint.

use crate::config::CacheConfig;
use crate::model::Nanos;
use std::collections::{HashMap, VecDeque};

/// Keys of cached responses with their expiry, bounded by `capacity` (the oldest insertion is evicted first)
/// and by `ttl`. The router consults it in `decide` (a hit is a [`crate::Decision::CacheHit`]) and fills
/// it from successful results. Memory is allocated up front; steady-state operation does not allocate.
#[derive(Clone, Debug)]
pub struct ResponseCache {
    ttl: Nanos,
    capacity: usize,
    expiry: HashMap<u64, Nanos>,
    order: VecDeque<(u64, Nanos)>,
}

impl ResponseCache {
    /// An empty cache.
    pub fn new(cfg: &CacheConfig) -> Self {
        let capacity = cfg.capacity.max(1);
        ResponseCache {
            ttl: cfg.ttl.nanos(),
            capacity,
            expiry: HashMap::with_capacity(capacity + 1),
            order: VecDeque::with_capacity(capacity + 1),
        }
    }

    /// Whether `key` has a fresh entry at `now`.
    pub fn hit(&self, key: u64, now: Nanos) -> bool {
        self.expiry.get(&key).is_some_and(|&exp| now < exp)
    }

    /// Stores (or refreshes) `key` at `now`.
    pub fn insert(&mut self, key: u64, now: Nanos) {
        let exp = now.saturating_add(self.ttl);
        self.expiry.insert(key, exp);
        self.order.push_back((key, exp));
        // Evict stale queue entries (refreshed keys leave old entries behind) and enforce the capacity.
        while let Some(&(k, e)) = self.order.front() {
            let current = self.expiry.get(&k).copied();
            let stale_entry = current != Some(e);
            let expired = e <= now;
            let over = self.expiry.len() > self.capacity;
            if stale_entry {
                self.order.pop_front();
            } else if expired || over {
                self.order.pop_front();
                self.expiry.remove(&k);
            } else {
                break;
            }
        }
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
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
}
