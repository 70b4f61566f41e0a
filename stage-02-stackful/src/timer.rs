//! The timer queue: which parked green thread to wake, and when.
//!
//! A binary min-heap ordered by deadline (ties broken by insertion order, so
//! two sleeps with the same deadline wake in the order they started). The
//! scheduler looks at the earliest deadline to decide how long the wait phase
//! may block, and fires every entry whose deadline has passed.
//!
//! Entries are never removed from the middle of the heap. A green thread
//! that is woken early (by `unpark`) just leaves its entry behind; each entry
//! carries a `key` that the thread records, and the scheduler ignores an entry
//! whose key the thread no longer holds (a *stale* entry). Once the queue
//! holds more than twice as many entries as there are threads (plus 64),
//! most of them are stale, and the scheduler drops them all in one pass.
//!
//! ```text
//!            (t=5 ms, key 3, thread A)      <- peek: the wait phase may block 5 ms
//!           /                        \
//!   (t=9 ms, key 1, B)       (t=12 ms, key 2, C)
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::GreenId;

/// One pending wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerEntry {
    // Field order matters: the derived `Ord` compares deadline first, then key.
    pub(crate) deadline: Instant,
    /// Unique per entry and increasing, so equal deadlines fire in FIFO order.
    pub(crate) key: u64,
    pub(crate) thread: GreenId,
}

/// Min-heap of timer entries.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<TimerEntry>>,
    next_key: u64,
}

impl TimerQueue {
    pub(crate) fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            next_key: 1,
        }
    }

    /// Schedules a wake-up of `thread` at `deadline`; returns the entry's key.
    pub(crate) fn insert(&mut self, deadline: Instant, thread: GreenId) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.heap.push(Reverse(TimerEntry {
            deadline,
            key,
            thread,
        }));
        key
    }

    /// The earliest entry, without removing it.
    pub(crate) fn peek(&self) -> Option<TimerEntry> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<TimerEntry> {
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// How many entries are queued, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries for which `keep` is true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&TimerEntry) -> bool) {
        self.heap.retain(|Reverse(entry)| keep(entry));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU64;
    use std::time::Duration;

    fn id(n: u64) -> GreenId {
        GreenId::new(n as usize, NonZeroU64::new(n).unwrap())
    }

    #[test]
    fn entries_pop_in_deadline_order_and_ties_in_insertion_order() {
        let t0 = Instant::now();
        let mut queue = TimerQueue::new();
        queue.insert(t0 + Duration::from_millis(30), id(1));
        queue.insert(t0 + Duration::from_millis(10), id(2));
        queue.insert(t0 + Duration::from_millis(30), id(3));
        queue.insert(t0 + Duration::from_millis(20), id(4));
        let order: Vec<_> = std::iter::from_fn(|| queue.pop())
            .map(|e| e.thread)
            .collect();
        assert_eq!(order, vec![id(2), id(4), id(1), id(3)]);
        assert!(queue.is_empty());
    }
}
