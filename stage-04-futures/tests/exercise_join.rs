//! Chapter 4, exercise 4: `join(a, b)`, two futures of different types.
//!
//! This file compiles only once you ask for it, because `join` does not
//! exist until you write it:
//!
//! ```sh
//! cargo test -p stage-04-futures --features exercise-join --test exercise_join
//! ```
#![cfg(feature = "exercise-join")]

use stackless::combinators::join;
use stackless::coroutine::ready_after;
use stackless::testing::{CountingWaker, poll_once, poll_to_completion};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

#[test]
fn join_outputs_both_in_order_whatever_order_they_finish_in() {
    let (_, waker) = CountingWaker::new();
    let (outputs, polls) =
        poll_to_completion(join(ready_after(3, "slow"), ready_after(0, 7)), &waker);
    assert_eq!(outputs, ("slow", 7));
    assert_eq!(polls, 4, "the slower child decides how many polls it takes");
    let (outputs, _) = poll_to_completion(join(ready_after(0, 'a'), ready_after(2, 2.5)), &waker);
    assert_eq!(outputs, ('a', 2.5));
}

#[test]
fn join_polls_each_child_only_until_it_finishes() {
    let (_, waker) = CountingWaker::new();
    let polls = Rc::new(RefCell::new([0u32; 2]));
    let child = |index: usize, pending: u32| {
        let polls = polls.clone();
        let mut inner = ready_after(pending, index);
        std::future::poll_fn(move |cx| {
            polls.borrow_mut()[index] += 1;
            Pin::new(&mut inner).poll(cx)
        })
    };
    let (outputs, _) = poll_to_completion(join(child(0, 0), child(1, 3)), &waker);
    assert_eq!(outputs, (0, 1));
    assert_eq!(
        *polls.borrow(),
        [1, 4],
        "a finished child must not be polled again (polls per child)"
    );
}

#[test]
fn dropping_a_join_early_drops_both_children() {
    struct DropLog(&'static str, Rc<RefCell<Vec<&'static str>>>);
    impl Drop for DropLog {
        fn drop(&mut self) {
            self.1.borrow_mut().push(self.0);
        }
    }
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
    let mut both = Box::pin(join(guarded("a", 9), guarded("b", 9)));
    assert!(poll_once(both.as_mut(), &waker).is_pending());
    assert!(log.borrow().is_empty(), "nothing is dropped while both run");
    drop(both);
    let mut dropped = log.borrow().clone();
    dropped.sort();
    assert_eq!(
        dropped,
        ["a", "b"],
        "dropping the join cancels both children"
    );
}

#[test]
fn join_accepts_futures_that_are_not_unpin() {
    let (_, waker) = CountingWaker::new();
    let first = stackless::pinning::FirstWord::new(b"left side", 1);
    let (outputs, _) = poll_to_completion(join(first, ready_after(2, 9)), &waker);
    assert_eq!(outputs, ("left".to_string(), 9));
}
