//! Batching of deferrable requests for a batch endpoint (cheaper and slower, as provider batch APIs are).

use crate::config::BatchConfig;
use crate::model::{EndpointIdx, Nanos};

/// What the router tells the caller about a deferrable request: hold it in batch `batch`, which goes to
/// `endpoint` when released. `release` is `Some(n)` when this request completes the batch (it is full, or
/// its deadline has already passed): the caller sends the `n` held requests of that batch now. Otherwise the
/// caller holds it, and releases the batch at `deadline` at the latest (by calling
/// [`crate::Router::poll_batch`] then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchTicket {
    /// The batch endpoint.
    pub endpoint: EndpointIdx,
    /// Batch number (increasing).
    pub batch: u64,
    /// `Some(size)` when the batch is full and must be released now.
    pub release: Option<u32>,
    /// When the batch must be released even if not full.
    pub deadline: Nanos,
}

/// Accumulates deferrable requests into batches of at most `max_size`, each held at most `max_wait`.
#[derive(Clone, Debug)]
pub struct Batcher {
    endpoint: EndpointIdx,
    max_size: u32,
    max_wait: Nanos,
    batch: u64,
    count: u32,
    opened: Nanos,
}

impl Batcher {
    /// The batch endpoint.
    pub fn endpoint(&self) -> EndpointIdx {
        self.endpoint
    }

    /// A batcher for `endpoint`.
    pub fn new(cfg: &BatchConfig, endpoint: EndpointIdx) -> Self {
        Batcher {
            endpoint,
            max_size: cfg.max_size.max(1),
            max_wait: cfg.max_wait.nanos(),
            batch: 0,
            count: 0,
            opened: 0,
        }
    }

    /// Adds a request at `now`.
    pub fn add(&mut self, now: Nanos) -> BatchTicket {
        if self.count == 0 {
            self.opened = now;
        }
        self.count += 1;
        let ticket = BatchTicket {
            endpoint: self.endpoint,
            batch: self.batch,
            release: None,
            deadline: self.opened.saturating_add(self.max_wait),
        };
        // A full batch goes now; so does an overdue one (its deadline passed before anyone polled it).
        if self.count >= self.max_size || now >= ticket.deadline {
            let size = self.count;
            self.close();
            BatchTicket { release: Some(size), ..ticket }
        } else {
            ticket
        }
    }

    /// Releases the open batch if its deadline has passed: `Some((batch, size))`.
    pub fn poll(&mut self, now: Nanos) -> Option<(u64, u32)> {
        if self.count > 0 && now >= self.opened.saturating_add(self.max_wait) {
            let out = (self.batch, self.count);
            self.close();
            Some(out)
        } else {
            None
        }
    }

    fn close(&mut self) {
        self.batch += 1;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;

    fn batcher() -> Batcher {
        Batcher::new(&BatchConfig { endpoint: "b".into(), max_size: 3, max_wait: Duration(100) }, EndpointIdx(2))
    }

    #[test]
    fn releases_when_full() {
        let mut b = batcher();
        assert_eq!(b.add(0).release, None);
        assert_eq!(b.add(10).release, None);
        let t = b.add(20);
        assert_eq!((t.batch, t.release, t.deadline), (0, Some(3), 100));
        assert_eq!(b.add(30).batch, 1);
    }

    #[test]
    fn a_request_joining_an_overdue_batch_releases_it() {
        let mut b = batcher();
        b.add(5);
        let t = b.add(200);
        assert_eq!((t.batch, t.release, t.deadline), (0, Some(2), 105));
        assert_eq!(b.poll(300), None);
        assert_eq!(b.add(300).deadline, 400);
    }

    #[test]
    fn releases_at_the_deadline() {
        let mut b = batcher();
        b.add(5);
        assert_eq!(b.poll(104), None);
        assert_eq!(b.poll(105), Some((0, 1)));
        assert_eq!(b.poll(500), None);
    }
}
