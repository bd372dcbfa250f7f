//! The event queue: a min-heap ordered by (virtual time, sequence number).
//!
//! The sequence number is assigned at scheduling time, so events at the same nanosecond run in the order they
//! were scheduled: ties are deterministic, on every machine.
//!
//! Time and sequence number are packed into one `u128` key (time in the high half), so that ordering two
//! entries is a single integer comparison the compiler turns into flag arithmetic rather than the two
//! data-dependent branches of a tuple comparison. The heap is a 4-ary heap (half the levels of a binary one)
//! with keys and events in separate arrays, so a level's four child keys are read together and the events
//! move only when their entry does. It is popped with Floyd's method ("hole to the bottom, then sift up", as
//! `std`'s `BinaryHeap`), choosing the smallest child without a branch. Every key is unique, so any correct
//! heap pops events in exactly the same order.

use router_core::Nanos;

/// Children per node.
const ARITY: usize = 4;

/// A priority queue of events of type `E`.
pub struct EventQueue<E> {
    /// `(at << 64) | seq` per entry, in heap order: smaller runs first.
    keys: Vec<u128>,
    /// The event of each entry of `keys`, at the same index.
    events: Vec<E>,
    seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { keys: Vec::with_capacity(1024), events: Vec::with_capacity(1024), seq: 0 }
    }
}

impl<E: Copy> EventQueue<E> {
    /// Schedules `event` at time `at`.
    #[inline(always)]
    pub fn push(&mut self, at: Nanos, event: E) {
        self.seq += 1;
        let key = ((at as u128) << 64) | self.seq as u128;
        self.keys.push(key);
        self.events.push(event);
        let last = self.keys.len() - 1;
        sift_up(&mut self.keys, &mut self.events, last, key, event);
    }

    /// Removes and returns the earliest event.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        let (last_key, last_event) = (self.keys.pop()?, self.events.pop()?);
        let (k, e) = (self.keys.as_mut_slice(), self.events.as_mut_slice());
        let (Some(&top_key), Some(&top_event)) = (k.first(), e.first()) else {
            return Some(((last_key >> 64) as Nanos, last_event));
        };
        // Floyd: walk the hole left by the root down along the smallest children to the bottom, then sift the
        // former last entry up from there (it usually belongs near the bottom, so this compares less than a
        // classic sift-down).
        let n = k.len();
        let mut hole = 0;
        let mut child = 1;
        while child + ARITY <= n {
            // The smallest of four: two pairs side by side, then their winners.
            let a = child + (k[child + 1] < k[child]) as usize;
            let b = child + 2 + (k[child + 3] < k[child + 2]) as usize;
            let m = if k[b] < k[a] { b } else { a };
            k[hole] = k[m];
            e[hole] = e[m];
            hole = m;
            child = ARITY * hole + 1;
        }
        if child < n {
            let mut m = child;
            for c in child + 1..n {
                if k[c] < k[m] {
                    m = c;
                }
            }
            k[hole] = k[m];
            e[hole] = e[m];
            hole = m;
        }
        sift_up(k, e, hole, last_key, last_event);
        Some(((top_key >> 64) as Nanos, top_event))
    }

    /// Time of the earliest event.
    #[inline]
    pub fn peek_time(&self) -> Option<Nanos> {
        self.keys.first().map(|k| (k >> 64) as Nanos)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Events scheduled so far.
    pub fn scheduled(&self) -> u64 {
        self.seq
    }
}

/// Puts the entry (`key`, `event`) into the hole at `hole` or above: parents later than it move down into the
/// hole. Inlined into both callers: a push usually stops at the first parent and a pop's hole is near the
/// bottom, so the call itself (prologue, arguments, epilogue) cost as much as the loop (27 instructions per
/// request of the peer model).
#[inline(always)]
fn sift_up<E: Copy>(k: &mut [u128], e: &mut [E], mut hole: usize, key: u128, event: E) {
    while hole > 0 {
        let parent = (hole - 1) / ARITY;
        let p = k[parent];
        if p <= key {
            break;
        }
        k[hole] = p;
        e[hole] = e[parent];
        hole = parent;
    }
    k[hole] = key;
    e[hole] = event;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn earliest_first_and_ties_in_scheduling_order() {
        let mut q = EventQueue::default();
        q.push(5, "b1");
        q.push(3, "a");
        q.push(5, "b2");
        q.push(5, "b3");
        q.push(9, "c");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!["a", "b1", "b2", "b3", "c"]);
    }

    #[test]
    fn the_end_of_time_sorts_last() {
        let mut q = EventQueue::default();
        q.push(Nanos::MAX, 1);
        q.push(0, 0);
        assert_eq!(q.peek_time(), Some(0));
        assert_eq!(q.pop(), Some((0, 0)));
        assert_eq!(q.pop(), Some((Nanos::MAX, 1)));
        assert_eq!(q.pop(), None);
    }

    proptest! {
        /// Interleaved pushes and pops give the order of a stable sort by time (the reference model).
        #[test]
        fn pops_in_time_then_scheduling_order(ops in proptest::collection::vec((0u64..50, any::<bool>()), 0..400)) {
            let mut q = EventQueue::default();
            let mut model: Vec<(Nanos, usize)> = Vec::new();
            let mut now = 0;
            for (i, (dt, pop)) in ops.into_iter().enumerate() {
                if pop {
                    // The model: earliest time, then earliest scheduled (stable).
                    let best = model.iter().enumerate().min_by_key(|(_, (t, id))| (*t, *id)).map(|(k, _)| k);
                    let expected = best.map(|k| model.remove(k));
                    let got = q.pop();
                    prop_assert_eq!(got, expected);
                    if let Some((t, _)) = got {
                        now = t;
                    }
                } else {
                    q.push(now + dt, i);
                    model.push((now + dt, i));
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.peek_time(), model.iter().map(|m| m.0).min());
            }
        }
    }
}
