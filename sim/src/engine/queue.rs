//! The event queue: a min-heap ordered by (virtual time, sequence number).
//!
//! The sequence number is assigned at scheduling time, so events at the same nanosecond run in the order they
//! were scheduled: ties are deterministic, on every machine.
//!
//! Time and sequence number are packed into one `u128` key (time in the high half), so that ordering two
//! entries is a single integer comparison the compiler turns into flag arithmetic rather than the two
//! data-dependent branches of a tuple comparison. The heap is a 4-ary heap (half the levels of a binary one)
//! of 32-byte entries, key and event side by side: one vector to grow, shrink and bounds-check per push and
//! pop (two arrays, keys apart from events, took 31 instructions more per request of the peer model). It is
//! popped with Floyd's method ("hole to the bottom, then sift up", as `std`'s `BinaryHeap`), choosing the
//! smallest child without a branch. Every key is unique, so any correct heap pops events in exactly the same
//! order.

use router_core::Nanos;

/// Children per node.
const ARITY: usize = 4;

/// One scheduled event and its key: `(at << 64) | seq`, smaller runs first.
#[derive(Clone, Copy)]
struct Entry<E> {
    key: u128,
    event: E,
}

/// A priority queue of events of type `E`.
pub struct EventQueue<E> {
    /// The entries in heap order.
    heap: Vec<Entry<E>>,
    seq: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: Vec::with_capacity(1024), seq: 0 }
    }
}

impl<E: Copy> EventQueue<E> {
    /// Schedules `event` at time `at`.
    #[inline(always)]
    pub fn push(&mut self, at: Nanos, event: E) {
        self.seq += 1;
        let entry = Entry { key: ((at as u128) << 64) | self.seq as u128, event };
        self.heap.push(entry);
        let last = self.heap.len() - 1;
        sift_up(&mut self.heap, last, entry);
    }

    /// Removes and returns the earliest event.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        let last = self.heap.pop()?;
        let h = self.heap.as_mut_slice();
        let Some(&top) = h.first() else {
            return Some(((last.key >> 64) as Nanos, last.event));
        };
        // Floyd: walk the hole left by the root down along the smallest children to the bottom, then sift the
        // former last entry up from there (it usually belongs near the bottom, so this compares less than a
        // classic sift-down).
        let n = h.len();
        let mut hole = 0;
        let mut child = 1;
        while child + ARITY <= n {
            // The smallest of four: two pairs side by side, then their winners.
            let a = child + (h[child + 1].key < h[child].key) as usize;
            let b = child + 2 + (h[child + 3].key < h[child + 2].key) as usize;
            let m = if h[b].key < h[a].key { b } else { a };
            h[hole] = h[m];
            hole = m;
            child = ARITY * hole + 1;
        }
        if child < n {
            let mut m = child;
            for c in child + 1..n {
                if h[c].key < h[m].key {
                    m = c;
                }
            }
            h[hole] = h[m];
            hole = m;
        }
        sift_up(h, hole, last);
        Some(((top.key >> 64) as Nanos, top.event))
    }

    /// Time of the earliest event.
    #[inline]
    pub fn peek_time(&self) -> Option<Nanos> {
        self.heap.first().map(|e| (e.key >> 64) as Nanos)
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Events scheduled so far.
    pub fn scheduled(&self) -> u64 {
        self.seq
    }
}

/// Puts `entry` into the hole at `hole` or above: parents later than it move down into the hole. Inlined into
/// both callers: a push usually stops at the first parent and a pop's hole is near the bottom, so the call
/// itself (prologue, arguments, epilogue) cost as much as the loop (27 instructions per request of the peer
/// model).
#[inline(always)]
fn sift_up<E: Copy>(h: &mut [Entry<E>], mut hole: usize, entry: Entry<E>) {
    while hole > 0 {
        let parent = (hole - 1) / ARITY;
        let p = h[parent];
        if p.key <= entry.key {
            break;
        }
        h[hole] = p;
        hole = parent;
    }
    h[hole] = entry;
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
