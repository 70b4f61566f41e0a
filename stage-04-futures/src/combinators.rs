//! Combinators written by hand: [`join_all`] (wait for all of a list) and
//! [`select`] (wait for the first of two).
//!
//! A combinator is a future made of futures. Its `poll` polls its children
//! and decides, from their answers, what to answer itself. It never blocks:
//! if a child is `Pending`, that child has already arranged to wake the task
//! (leaf futures do it through the reactor), and the one waker of the task
//! is shared by all children.
//!
//! ```text
//!   join_all([a, b, c])                select(a, b)
//!   poll: a? b? c?  (skip the done)    poll: a? then b?
//!   Ready when all are done,           Ready with the first done;
//!   outputs in list order              the other is dropped right there
//! ```
//!
//! Dropping a future cancels it: whatever it owns (sockets, timers) is
//! released by its destructor. `select` relies on that to cancel the loser.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One child of a [`JoinAll`]: still running, or finished with its output.
enum Slot<F: Future> {
    Running(F),
    Finished(Option<F::Output>),
}

// ANCHOR: join_all
/// Future of [`join_all`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinAll<F: Future> {
    /// Pinned on the heap as one block: the slice never moves or grows, so
    /// each child is pinned in place even though `JoinAll` itself may move.
    slots: Pin<Box<[Slot<F>]>>,
    running: usize,
}

/// Wait for every future of `futures`; output their outputs in the same
/// order. Each poll polls only the children that have not finished.
pub fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> JoinAll<F> {
    let slots: Box<[Slot<F>]> = futures.into_iter().map(Slot::Running).collect();
    JoinAll {
        running: slots.len(),
        slots: Box::into_pin(slots),
    }
}

impl<F: Future> std::fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinAll")
            .field("children", &self.slots.len())
            .field("running", &self.running)
            .finish()
    }
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        // ANCHOR: lab_4_2_join_all
        // `JoinAll` is Unpin (its fields are a `Pin<Box<_>>` and a count).
        let this = &mut *self;
        // SAFETY: we only use the `&mut [Slot<F>]` to reach each slot in place:
        // a running child is either polled through `Pin::new_unchecked` or
        // overwritten by assignment, which drops it where it lies. No child
        // is ever moved out (only outputs are, with `take`, and an output is
        // never pinned), and the slice is never moved or resized.
        let slots = unsafe { this.slots.as_mut().get_unchecked_mut() };
        for slot in slots.iter_mut() {
            if let Slot::Running(future) = slot {
                // SAFETY: `future` lives inside the pinned slice (see above).
                let future = unsafe { Pin::new_unchecked(future) };
                if let Poll::Ready(output) = future.poll(cx) {
                    // Count first: if the child's destructor panics, the
                    // assignment still stores the output as the panic
                    // leaves, and the count must already agree with it.
                    this.running -= 1;
                    *slot = Slot::Finished(Some(output)); // drops the child in place
                }
            }
        }
        if this.running > 0 {
            return Poll::Pending;
        }
        let outputs = slots
            .iter_mut()
            .map(|slot| match slot {
                Slot::Finished(output) => output.take(),
                Slot::Running(_) => None,
            })
            .collect::<Option<Vec<_>>>()
            .expect("JoinAll polled after it completed");
        Poll::Ready(outputs)
        // ANCHOR_END: lab_4_2_join_all
    }
}
// ANCHOR_END: join_all

/// Which of two futures finished first, with its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<L, R> {
    /// The first future (`a` in [`select`]) finished first.
    Left(L),
    /// The second future (`b`) finished first.
    Right(R),
}

// ANCHOR: select
/// Future of [`select`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Select<A, B> {
    a: Option<A>,
    b: Option<B>,
}

/// Wait for the first of `a` and `b` to finish. `a` is polled first, so if
/// both are ready in the same poll, `a` wins. The loser is dropped (that is,
/// cancelled) as soon as the winner is known, before `Ready` is returned.
pub fn select<A: Future, B: Future>(a: A, b: B) -> Select<A, B> {
    Select {
        a: Some(a),
        b: Some(b),
    }
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // ANCHOR: lab_4_2_select
        // Pin projection by hand. SAFETY: `a` and `b` are structurally
        // pinned: they are only reached through `Pin<&mut Option<_>>`, only
        // ever dropped in place (`Pin::set(.., None)`), never moved out;
        // `Select` has no `Drop` impl and is `Unpin` only if both are.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this` is not used again except through these.
        let (mut a, mut b) = unsafe {
            (
                Pin::new_unchecked(&mut this.a),
                Pin::new_unchecked(&mut this.b),
            )
        };
        let a_output = match a.as_mut().as_pin_mut() {
            Some(future) => future.poll(cx),
            None => panic!("Select polled after it completed"),
        };
        if let Poll::Ready(output) = a_output {
            // `a` goes first (here and below): if a destructor panics, a
            // later poll finds `a` gone and panics clearly, instead of
            // polling a future that already returned `Ready`.
            a.set(None);
            b.set(None); // cancel the loser now
            return Poll::Ready(Either::Left(output));
        }
        let b_output = match b.as_mut().as_pin_mut() {
            Some(future) => future.poll(cx),
            None => panic!("Select polled after it completed"),
        };
        if let Poll::Ready(output) = b_output {
            a.set(None);
            b.set(None);
            return Poll::Ready(Either::Right(output));
        }
        Poll::Pending
        // ANCHOR_END: lab_4_2_select
    }
}
// ANCHOR_END: select

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coroutine::ready_after;
    use crate::testing::{CountingWaker, poll_once, poll_to_completion};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records its name in a shared log when dropped.
    struct DropLog(&'static str, Rc<RefCell<Vec<&'static str>>>);
    impl Drop for DropLog {
        fn drop(&mut self) {
            self.1.borrow_mut().push(self.0);
        }
    }

    #[test]
    fn join_all_outputs_in_list_order_whatever_order_they_finish_in() {
        let (_, waker) = CountingWaker::new();
        let futures = [5, 0, 3, 1].map(|pending| ready_after(pending, pending));
        let (outputs, polls) = poll_to_completion(join_all(futures), &waker);
        assert_eq!(outputs, [5, 0, 3, 1]);
        assert_eq!(polls, 6, "the slowest child decides");
    }

    #[test]
    fn join_all_polls_each_child_only_until_it_finishes() {
        let (_, waker) = CountingWaker::new();
        let polls = Rc::new(RefCell::new([0u32; 3]));
        let child = |index: usize, pending: u32| {
            let polls = polls.clone();
            let mut inner = ready_after(pending, index);
            std::future::poll_fn(move |cx| {
                polls.borrow_mut()[index] += 1;
                Pin::new(&mut inner).poll(cx)
            })
        };
        let (outputs, _) =
            poll_to_completion(join_all([child(0, 0), child(1, 2), child(2, 1)]), &waker);
        assert_eq!(outputs, [0, 1, 2]);
        assert_eq!(*polls.borrow(), [1, 3, 2]);
    }

    #[test]
    fn join_all_of_nothing_is_ready_at_once() {
        let (_, waker) = CountingWaker::new();
        let mut empty = join_all(Vec::<std::future::Ready<()>>::new());
        assert_eq!(poll_once(Pin::new(&mut empty), &waker), Poll::Ready(vec![]));
    }

    #[test]
    fn join_all_accepts_futures_that_are_not_unpin() {
        let (_, waker) = CountingWaker::new();
        let futures = ["a b", "c d"].map(|text| crate::pinning::FirstWord::new(text.as_bytes(), 1));
        let (outputs, _) = poll_to_completion(join_all(futures), &waker);
        assert_eq!(outputs, ["a", "c"]);
    }

    #[test]
    fn select_returns_the_first_to_finish() {
        let (_, waker) = CountingWaker::new();
        let (winner, polls) =
            poll_to_completion(select(ready_after(3, "slow"), ready_after(1, 7)), &waker);
        assert_eq!(winner, Either::Right(7));
        assert_eq!(polls, 2);
        let (winner, _) =
            poll_to_completion(select(ready_after(0, "fast"), ready_after(1, 7)), &waker);
        assert_eq!(winner, Either::Left("fast"));
    }

    #[test]
    fn select_prefers_the_first_future_when_both_are_ready() {
        let (_, waker) = CountingWaker::new();
        let (winner, _) =
            poll_to_completion(select(ready_after(2, 'a'), ready_after(2, 'b')), &waker);
        assert_eq!(winner, Either::Left('a'));
    }

    #[test]
    fn select_drops_the_loser_before_it_returns() {
        let (_, waker) = CountingWaker::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let guarded = |name, pending| {
            let guard = DropLog(name, log.clone());
            async move {
                ready_after(pending, ()).await;
                drop(guard);
                name
            }
        };
        let mut race = Box::pin(select(guarded("slow", 5), guarded("fast", 1)));
        assert!(poll_once(race.as_mut(), &waker).is_pending());
        assert!(
            log.borrow().is_empty(),
            "nobody is cancelled while both run"
        );
        let winner = poll_once(race.as_mut(), &waker);
        assert_eq!(winner, Poll::Ready(Either::Right("fast")));
        assert_eq!(
            *log.borrow(),
            ["fast", "slow"],
            "the winner finished, then the loser was dropped"
        );
        drop(race);
        assert_eq!(log.borrow().len(), 2, "nothing is dropped twice");
    }

    #[test]
    fn dropping_a_join_all_drops_every_unfinished_child() {
        let (_, waker) = CountingWaker::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let children = ["a", "b", "c"].map(|name| {
            let guard = DropLog(name, log.clone());
            async move {
                ready_after(if name == "b" { 0 } else { 9 }, ()).await;
                drop(guard);
            }
        });
        let mut all = Box::pin(join_all(children));
        assert!(poll_once(all.as_mut(), &waker).is_pending());
        assert_eq!(*log.borrow(), ["b"]);
        drop(all);
        assert_eq!(*log.borrow(), ["b", "a", "c"]);
    }

    /// Finishes at once with `output`; its destructor panics.
    struct PanicsWhenDropped(u32);
    impl Future for PanicsWhenDropped {
        type Output = u32;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
            Poll::Ready(self.0)
        }
    }
    impl Drop for PanicsWhenDropped {
        fn drop(&mut self) {
            panic!("child {} panics in Drop", self.0);
        }
    }

    #[test]
    fn a_join_all_whose_finished_child_panics_in_drop_completes_when_polled_again() {
        let (_, waker) = CountingWaker::new();
        let mut all = Box::pin(join_all([PanicsWhenDropped(7)]));
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_once(all.as_mut(), &waker)
        }));
        assert!(first.is_err(), "the child's panic reaches the caller");
        // The output was kept as the panic left, and the count agrees with
        // it: a second poll is `Ready`, not `Pending` for ever.
        assert_eq!(poll_once(all.as_mut(), &waker), Poll::Ready(vec![7]));
    }

    #[test]
    fn a_select_whose_loser_panics_in_drop_never_polls_its_finished_winner_again() {
        let (_, waker) = CountingWaker::new();
        let winner_polls = Rc::new(std::cell::Cell::new(0));
        let winner = {
            let polls = winner_polls.clone();
            std::future::poll_fn(move |_| {
                polls.set(polls.get() + 1);
                Poll::Ready("won")
            })
        };
        let mut race = Box::pin(select(winner, PanicsWhenDropped(7)));
        let mut poll = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                poll_once(race.as_mut(), &waker)
            }))
        };
        assert!(poll().is_err(), "the loser's panic reaches the caller");
        // The select is over: polling it again is a clear error, and the
        // winner, which already returned `Ready`, is not polled again.
        let again = poll().expect_err("a select that finished stays finished");
        assert_eq!(
            again.downcast_ref::<&str>(),
            Some(&"Select polled after it completed")
        );
        assert_eq!(winner_polls.get(), 1);
    }
}
