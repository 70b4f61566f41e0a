//! Counting polls: [`CountPolls`] wraps any future and counts how often it
//! was polled until it finished.
//!
//! This is the instrument of the stage's experiment. The naive executor
//! polls every future whenever anything happens; stage 05's executor polls a
//! future only when its waker was called. Wrap the same futures in
//! `CountPolls`, run them on both, and compare the counts (see
//! [`workload`](crate::workload)).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The output of a future, and how many polls it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted<T> {
    /// What the wrapped future returned.
    pub output: T,
    /// How many times it was polled, the last (`Ready`) poll included.
    pub polls: u64,
}

// ANCHOR: count_polls
/// A future that forwards to `inner` and counts the polls.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct CountPolls<F> {
    inner: F,
    polls: u64,
}

impl<F: Future> CountPolls<F> {
    /// Wrap `inner`.
    pub fn new(inner: F) -> Self {
        CountPolls { inner, polls: 0 }
    }

    /// Polls so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }
}

impl<F: Future> Future for CountPolls<F> {
    type Output = Counted<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: pin projection. `inner` is structurally pinned: it is only
        // reached as `Pin<&mut F>` and never moved out; `polls` is a plain
        // counter, not pinned. `CountPolls` has no `Drop` impl, and it is
        // `Unpin` exactly when `F` is.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `this.inner` belongs to a pinned value we never move.
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        this.polls += 1;
        inner.poll(cx).map(|output| Counted {
            output,
            polls: this.polls,
        })
    }
}
// ANCHOR_END: count_polls

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coroutine::ready_after;
    use crate::testing::{CountingWaker, poll_to_completion};

    #[test]
    fn count_polls_counts_every_poll_including_the_last() {
        let (_, waker) = CountingWaker::new();
        let (counted, polls) = poll_to_completion(CountPolls::new(ready_after(4, "done")), &waker);
        assert_eq!(
            counted,
            Counted {
                output: "done",
                polls: 5
            }
        );
        assert_eq!(polls, 5);
    }

    #[test]
    fn count_polls_wraps_futures_that_are_not_unpin() {
        let (_, waker) = CountingWaker::new();
        let future = CountPolls::new(crate::pinning::FirstWord::new(b"pinned inside", 2));
        let (counted, _) = poll_to_completion(future, &waker);
        assert_eq!(counted.output, "pinned");
        assert_eq!(counted.polls, 3);
    }
}
