//! One coroutine written twice: as an `async fn`, and as the state machine
//! the compiler turns it into, written by hand.
//!
//! The coroutine looks a key up, then fetches the record the lookup named.
//! Both steps are "I/O" that may not be ready yet, stood in for by
//! [`ReadyAfter`], a leaf future that answers `Pending` a given number of
//! times first. The locals `trail` and `id` live across the awaits, so they
//! must be kept somewhere while the coroutine is suspended:
//!
//! ```text
//!   stackful (stage 02): on the coroutine's own stack
//!   stackless (here):    in the future value itself, one enum variant per
//!                        suspension point, holding exactly what is live there
//!
//!   Start ──poll──► Lookup ──lookup ready──► Fetch ──fetch ready──► Done
//!   {key, waits}    {key, waits.fetch,      {key, id, trail,       (output
//!                    trail, lookup future}   fetch future}           returned)
//! ```
//!
//! [`LookupThenFetch`] is the hand-written enum; [`lookup_then_fetch`] the
//! `async fn`. Tests check that they agree on every input; [`sizes`] compares
//! how large the two state machines are.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

// ANCHOR: ready_after
/// A leaf future standing in for I/O: `Pending` `pending` times, then
/// `Ready(value)`. Each `Pending` wakes the task at once (as if the I/O
/// finished right away), so any executor polls it again.
#[derive(Debug)]
pub struct ReadyAfter<T> {
    pending: u32,
    value: Option<T>,
}

/// Make a [`ReadyAfter`].
pub fn ready_after<T>(pending: u32, value: T) -> ReadyAfter<T> {
    ReadyAfter {
        pending,
        value: Some(value),
    }
}

// `ReadyAfter` never borrows itself, so moving it between polls is fine.
impl<T> Unpin for ReadyAfter<T> {}

impl<T> Future for ReadyAfter<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.pending > 0 {
            self.pending -= 1;
            // Wake phase, done early: we are "ready" to be polled again.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(
            self.value
                .take()
                .expect("ReadyAfter polled after it completed"),
        )
    }
}
// ANCHOR_END: ready_after

/// How many times each step answers `Pending` before it is ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    /// `Pending`s of the lookup step.
    pub lookup: u32,
    /// `Pending`s of the fetch step.
    pub fetch: u32,
}

/// What the coroutine returns: the record and every value it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `key + id + record`, wrapping.
    pub total: u32,
    /// The key, the id the lookup found, the record the fetch found.
    pub trail: Vec<u32>,
}

/// The "service": which id a key names.
fn id_of(key: u32) -> u32 {
    key.wrapping_mul(3).wrapping_add(1)
}

/// The "service": the record stored under an id.
fn record_of(id: u32) -> u32 {
    id ^ 0x55
}

// ANCHOR: async_fn
/// The coroutine as an `async fn`: two awaits, and locals (`key`, `trail`,
/// `id`) that live across them.
pub async fn lookup_then_fetch(key: u32, waits: Waits) -> Record {
    let mut trail = Vec::with_capacity(3);
    trail.push(key);
    let id = ready_after(waits.lookup, id_of(key)).await; // suspension point 1
    trail.push(id);
    let record = ready_after(waits.fetch, record_of(id)).await; // suspension point 2
    trail.push(record);
    Record {
        total: key.wrapping_add(id).wrapping_add(record),
        trail,
    }
}
// ANCHOR_END: async_fn

// ANCHOR: state_machine
/// The same coroutine, desugared by hand. Each variant is one place the
/// coroutine can be suspended, holding exactly the values live there.
#[derive(Debug)]
pub enum LookupThenFetch {
    /// Created, never polled: only the arguments exist.
    Start { key: u32, waits: Waits },
    /// Suspended at the first `.await`, on the lookup.
    Lookup {
        key: u32,
        fetch_waits: u32,
        trail: Vec<u32>,
        lookup: ReadyAfter<u32>,
    },
    /// Suspended at the second `.await`, on the fetch.
    Fetch {
        key: u32,
        id: u32,
        trail: Vec<u32>,
        fetch: ReadyAfter<u32>,
    },
    /// The output was returned; polling again is a bug.
    Done,
}

impl LookupThenFetch {
    /// Calling the "function" runs nothing yet: it only stores the arguments.
    pub fn new(key: u32, waits: Waits) -> Self {
        LookupThenFetch::Start { key, waits }
    }
}

impl Future for LookupThenFetch {
    type Output = Record;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Record> {
        // ANCHOR: lab_4_1_poll
        // Every field is Unpin (no variant borrows another field), so the
        // whole enum is Unpin and we may take a plain `&mut`.
        let this = self.get_mut();
        // Run from the current state until the next suspension point or the end.
        loop {
            // Take the state out (leaving `Done`), and put the next one back.
            match mem::replace(this, LookupThenFetch::Done) {
                LookupThenFetch::Start { key, waits } => {
                    // The code before the first await.
                    let mut trail = Vec::with_capacity(3);
                    trail.push(key);
                    *this = LookupThenFetch::Lookup {
                        key,
                        fetch_waits: waits.fetch,
                        trail,
                        lookup: ready_after(waits.lookup, id_of(key)),
                    };
                }
                LookupThenFetch::Lookup {
                    key,
                    fetch_waits,
                    mut trail,
                    mut lookup,
                } => match Pin::new(&mut lookup).poll(cx) {
                    Poll::Pending => {
                        // Suspend: store everything live, return to the executor.
                        *this = LookupThenFetch::Lookup {
                            key,
                            fetch_waits,
                            trail,
                            lookup,
                        };
                        return Poll::Pending;
                    }
                    Poll::Ready(id) => {
                        // The code between the two awaits.
                        trail.push(id);
                        *this = LookupThenFetch::Fetch {
                            key,
                            id,
                            trail,
                            fetch: ready_after(fetch_waits, record_of(id)),
                        };
                    }
                },
                LookupThenFetch::Fetch {
                    key,
                    id,
                    mut trail,
                    mut fetch,
                } => match Pin::new(&mut fetch).poll(cx) {
                    Poll::Pending => {
                        *this = LookupThenFetch::Fetch {
                            key,
                            id,
                            trail,
                            fetch,
                        };
                        return Poll::Pending;
                    }
                    Poll::Ready(record) => {
                        // The code after the last await; `this` stays `Done`.
                        trail.push(record);
                        return Poll::Ready(Record {
                            total: key.wrapping_add(id).wrapping_add(record),
                            trail,
                        });
                    }
                },
                LookupThenFetch::Done => panic!("LookupThenFetch polled after it completed"),
            }
        }
        // ANCHOR_END: lab_4_1_poll
    }
}
// ANCHOR_END: state_machine

// ANCHOR: liveness
/// A 1 KiB buffer that is dead before the await: not stored in the future.
pub async fn buffer_dies_before_await() -> u8 {
    let buffer = [7u8; 1024];
    let first = buffer[0];
    ready_after(1, ()).await;
    first
}

/// The same buffer, used after the await: stored in the future.
pub async fn buffer_lives_across_await() -> u8 {
    let buffer = [7u8; 1024];
    ready_after(1, ()).await;
    buffer[1023]
}
// ANCHOR_END: liveness

/// Sizes in bytes of the state machines of this module, to print and compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// `size_of` the future returned by [`lookup_then_fetch`].
    pub async_fn: usize,
    /// `size_of::<LookupThenFetch>()`.
    pub hand_written: usize,
    /// `size_of` the largest variant's fields, added up by hand
    /// (the `Lookup` and `Fetch` variants are the same size).
    pub largest_variant_fields: usize,
    /// `size_of` [`buffer_dies_before_await`]'s future.
    pub buffer_dead_at_await: usize,
    /// `size_of` [`buffer_lives_across_await`]'s future.
    pub buffer_live_at_await: usize,
}

/// Measure [`Sizes`].
pub fn sizes() -> Sizes {
    fn size_of_val_of<T>(_: &T) -> usize {
        mem::size_of::<T>()
    }
    Sizes {
        async_fn: size_of_val_of(&lookup_then_fetch(0, Waits::default())),
        hand_written: mem::size_of::<LookupThenFetch>(),
        largest_variant_fields: mem::size_of::<u32>() * 2
            + mem::size_of::<Vec<u32>>()
            + mem::size_of::<ReadyAfter<u32>>(),
        buffer_dead_at_await: size_of_val_of(&buffer_dies_before_await()),
        buffer_live_at_await: size_of_val_of(&buffer_lives_across_await()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CountingWaker, poll_once, poll_to_completion};

    #[test]
    fn ready_after_is_pending_the_given_number_of_times_and_wakes_each_time() {
        let (counter, waker) = CountingWaker::new();
        let (value, polls) = poll_to_completion(ready_after(3, 'x'), &waker);
        assert_eq!(value, 'x');
        assert_eq!(polls, 4);
        assert_eq!(counter.wakes(), 3);
    }

    #[test]
    fn state_machine_and_async_fn_agree_on_every_input() {
        let (_, waker) = CountingWaker::new();
        let keys = [0, 1, 2, 41, 0x55, 1_000_000, u32::MAX / 3, u32::MAX];
        for key in keys {
            for lookup in 0..4 {
                for fetch in 0..4 {
                    let waits = Waits { lookup, fetch };
                    let by_compiler = poll_to_completion(lookup_then_fetch(key, waits), &waker);
                    let by_hand = poll_to_completion(LookupThenFetch::new(key, waits), &waker);
                    assert_eq!(by_hand, by_compiler, "key {key}, {waits:?}");
                    // One poll to start, one per Pending, the last one finishes.
                    assert_eq!(by_hand.1, u64::from(lookup + fetch + 1));
                }
            }
        }
    }

    #[test]
    fn both_forms_are_suspended_in_the_same_places() {
        let (_, waker) = CountingWaker::new();
        let waits = Waits {
            lookup: 1,
            fetch: 2,
        };
        let mut by_hand = LookupThenFetch::new(9, waits);
        let mut by_compiler = std::pin::pin!(lookup_then_fetch(9, waits));
        assert!(matches!(by_hand, LookupThenFetch::Start { .. }));
        let mut trace = Vec::new();
        loop {
            let a = poll_once(Pin::new(&mut by_hand), &waker);
            let b = poll_once(by_compiler.as_mut(), &waker);
            assert_eq!(a.is_ready(), b.is_ready());
            let state = match &by_hand {
                LookupThenFetch::Start { .. } => "start",
                LookupThenFetch::Lookup { .. } => "lookup",
                LookupThenFetch::Fetch { .. } => "fetch",
                LookupThenFetch::Done => "done",
            };
            trace.push(state);
            if a.is_ready() {
                break;
            }
        }
        assert_eq!(trace, ["lookup", "fetch", "fetch", "done"]);
    }

    #[test]
    #[should_panic(expected = "polled after it completed")]
    fn polling_the_hand_written_machine_after_completion_panics() {
        let (_, waker) = CountingWaker::new();
        let mut machine = LookupThenFetch::new(1, Waits::default());
        assert!(poll_once(Pin::new(&mut machine), &waker).is_ready());
        let _ = poll_once(Pin::new(&mut machine), &waker);
    }

    #[test]
    fn a_local_dead_at_the_await_is_not_stored_in_the_future() {
        let sizes = sizes();
        assert!(sizes.buffer_dead_at_await < 1024, "{sizes:?}");
        assert!(sizes.buffer_live_at_await >= 1024, "{sizes:?}");
        assert!(
            sizes.hand_written >= sizes.largest_variant_fields,
            "{sizes:?}"
        );
    }
}
