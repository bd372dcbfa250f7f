//! Batching of deferrable requests: router-core's batcher decides which batch a request joins and when a
//! batch is released (full, or at its deadline through `poll_batch`); the gateway holds each request until
//! its batch is released, then sends it to the batch endpoint's upstream as an ordinary chat completion.
//!
//! A provider's own batch API (OpenAI's `/v1/batches`: upload a file, poll a job) is out of scope: the
//! batch endpoint is any OpenAI-compatible upstream, typically a cheaper deployment.

use crate::router_pool::RouterPool;
use router_core::resilience::BatchTicket;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What holding and releasing batches needs of the configuration generation that serves the requests: its
/// [`Batches`], its routers (their batchers and clock) and the count of released batches.
pub trait BatchHost: Send + Sync + 'static {
    /// The requests held for their batch.
    fn batches(&self) -> &Batches;
    /// The routers whose batchers decide the batches.
    fn routers(&self) -> &RouterPool;
    /// Counts one released batch.
    fn count_released_batch(&self);
}

#[derive(Default)]
struct Shard {
    /// Requests waiting, by batch number.
    waiting: HashMap<u64, Vec<oneshot::Sender<()>>>,
    /// Every batch below this number has been released (batches are released in order).
    released_below: u64,
    /// Batches with a deadline timer.
    timers: Vec<u64>,
}

/// Requests held for their batch, per router shard.
pub struct Batches {
    shards: Vec<Mutex<Shard>>,
}

impl Batches {
    /// No request held, for `n` router shards.
    pub fn new(n: usize) -> Batches {
        Batches { shards: (0..n).map(|_| Mutex::new(Shard::default())).collect() }
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[shard].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the batch of `ticket` is released (at once if this request completes it).
    pub async fn hold(&self, host: &Arc<impl BatchHost>, shard: usize, ticket: BatchTicket) {
        if ticket.release.is_some() {
            self.release(host.as_ref(), shard, ticket.batch);
            return;
        }
        let (tx, rx) = oneshot::channel();
        let start_timer = {
            let mut s = self.lock(shard);
            if ticket.batch < s.released_below {
                return;
            }
            s.waiting.entry(ticket.batch).or_default().push(tx);
            let new = !s.timers.contains(&ticket.batch);
            if new {
                s.timers.push(ticket.batch);
            }
            new
        };
        if start_timer {
            let host = host.clone();
            let at = host.routers().instant_at(ticket.deadline);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let now = host.routers().now();
                if let Some((batch, _)) = host.routers().with(shard, |r| r.poll_batch(now)) {
                    host.batches().release(host.as_ref(), shard, batch);
                }
                host.batches().lock(shard).timers.retain(|&b| b != ticket.batch);
            });
        }
        // A dropped sender (never: release always sends) also ends the wait.
        let _ = rx.await;
    }

    /// Releases batch `batch` of `shard` (and any older one still held).
    pub fn release(&self, host: &impl BatchHost, shard: usize, batch: u64) {
        let senders: Vec<_> = {
            let mut s = self.lock(shard);
            s.released_below = s.released_below.max(batch + 1);
            let done: Vec<u64> = s.waiting.keys().copied().filter(|&b| b <= batch).collect();
            done.into_iter().flat_map(|b| s.waiting.remove(&b).unwrap_or_default()).collect()
        };
        host.count_released_batch();
        for tx in senders {
            let _ = tx.send(());
        }
    }

    /// Releases every open batch now (the drain at shutdown): the batcher's deadline is treated as passed.
    pub fn release_all(&self, host: &impl BatchHost) {
        for shard in 0..self.shards.len() {
            if let Some((batch, _)) = host.routers().with(shard, |r| r.poll_batch(router_core::Nanos::MAX)) {
                self.release(host, shard, batch);
            }
        }
    }

    /// Requests held now.
    pub fn held(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock(i).waiting.values().map(Vec::len).sum::<usize>()).sum()
    }
}
