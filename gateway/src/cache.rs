//! The response bodies behind router-core's response cache.
//!
//! router-core decides whether a request is a hit (its cache holds keys and expiry, bounded by `capacity`
//! and `ttl`); the gateway keeps the bodies here, in a bounded LRU with the same capacity and TTL plus a
//! byte budget. An entry also keeps the request's canonical bytes, so a hash collision is never served.
//! When router-core reports a hit whose body is gone (evicted by the byte budget), the request is routed.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    request: Vec<u8>,
    body: Bytes,
    endpoint: u16,
    expires: Instant,
    tick: u64,
}

struct Inner {
    map: HashMap<u64, Entry>,
    /// Last use -> key, oldest first.
    order: BTreeMap<u64, u64>,
    tick: u64,
    bytes: usize,
}

/// A bounded LRU of response bodies with a TTL.
pub struct ResponseStore {
    inner: Mutex<Inner>,
    capacity: usize,
    max_bytes: usize,
    ttl: Duration,
}

impl ResponseStore {
    /// A store of at most `capacity` entries and `max_bytes` bytes, each valid for `ttl`.
    pub fn new(capacity: usize, max_bytes: usize, ttl: Duration) -> ResponseStore {
        ResponseStore {
            inner: Mutex::new(Inner { map: HashMap::new(), order: BTreeMap::new(), tick: 0, bytes: 0 }),
            capacity: capacity.max(1),
            max_bytes,
            ttl,
        }
    }

    /// The body cached for `key` whose request was `request`, if fresh at `now`, and the endpoint that
    /// produced it.
    pub fn get(&self, key: u64, request: &[u8], now: Instant) -> Option<(Bytes, u16)> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        let e = inner.map.get_mut(&key)?;
        if e.request != request {
            return None;
        }
        if now >= e.expires {
            let old = inner.map.remove(&key)?;
            inner.order.remove(&old.tick);
            inner.bytes -= old.body.len() + old.request.len();
            return None;
        }
        inner.tick += 1;
        inner.order.remove(&e.tick);
        e.tick = inner.tick;
        inner.order.insert(e.tick, key);
        Some((e.body.clone(), e.endpoint))
    }

    /// Stores a body, evicting the least recently used entries past the capacity or the byte budget.
    pub fn put(&self, key: u64, request: Vec<u8>, body: Bytes, endpoint: u16, now: Instant) {
        let size = body.len() + request.len();
        if size > self.max_bytes {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(old) = inner.map.insert(key, Entry { request, body, endpoint, expires: now + self.ttl, tick }) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.body.len() + old.request.len();
        }
        inner.order.insert(tick, key);
        inner.bytes += size;
        while inner.map.len() > self.capacity || inner.bytes > self.max_bytes {
            let Some((_, k)) = inner.order.pop_first() else { break };
            if let Some(old) = inner.map.remove(&k) {
                inner.bytes -= old.body.len() + old.request.len();
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_ttl_capacity_and_collisions() {
        let t0 = Instant::now();
        let s = ResponseStore::new(2, 1 << 20, Duration::from_secs(10));
        s.put(1, b"r1".to_vec(), Bytes::from_static(b"a"), 0, t0);
        s.put(2, b"r2".to_vec(), Bytes::from_static(b"b"), 0, t0);
        assert!(s.get(1, b"r1", t0).is_some()); // 1 is now the most recent
        s.put(3, b"r3".to_vec(), Bytes::from_static(b"c"), 0, t0);
        assert!(s.get(2, b"r2", t0).is_none(), "least recently used is evicted");
        assert!(s.get(1, b"r1", t0).is_some());
        assert!(s.get(1, b"other request, same hash", t0).is_none(), "a collision is not served");
        assert!(s.get(3, b"r3", t0 + Duration::from_secs(11)).is_none(), "expired");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn byte_budget_evicts() {
        let t0 = Instant::now();
        let s = ResponseStore::new(100, 10, Duration::from_secs(10));
        s.put(1, vec![], Bytes::from(vec![0u8; 6]), 0, t0);
        s.put(2, vec![], Bytes::from(vec![0u8; 6]), 0, t0);
        assert!(s.get(1, b"", t0).is_none());
        assert!(s.get(2, b"", t0).is_some());
        s.put(3, vec![], Bytes::from(vec![0u8; 11]), 0, t0);
        assert!(s.get(3, b"", t0).is_none(), "larger than the budget: not stored");
    }
}
