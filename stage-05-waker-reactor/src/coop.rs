//! Cooperative scheduling: a budget of I/O operations per poll.
//!
//! An executor cannot preempt a task: it runs until its `poll` returns. A
//! task that reads from a socket that always has data (a fast peer, a full
//! buffer) never sees `WouldBlock`, so it never returns `Pending`, and every
//! other task on its thread starves. So each poll of a task gets a budget:
//! every completed socket operation spends one unit, and once the budget is
//! spent, the next operation returns `Pending` after waking its own task,
//! which goes to the back of the run queue, exactly like `yield_now`.
//!
//! Outside a task's poll (in `block_on`'s own future, on other threads)
//! there is no budget and nothing is ever held back.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Socket operations one poll of a task may complete.
pub(crate) const BUDGET: u8 = 128;

thread_local! {
    static REMAINING: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Run one poll of a task (`f`) with a fresh budget.
pub(crate) fn budget<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u8>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = REMAINING.try_with(|r| r.set(self.0));
        }
    }
    let previous = REMAINING.with(|r| r.replace(Some(BUDGET)));
    let _restore = Restore(previous);
    f()
}

// ANCHOR: poll_proceed
/// Before a socket operation: `Pending` (with the task woken, so it is
/// requeued) if this poll's budget is spent.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    REMAINING.with(|r| match r.get() {
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        _ => Poll::Ready(()),
    })
}

/// After a socket operation completed (made progress): spend one unit.
pub(crate) fn spend() {
    REMAINING.with(|r| {
        if let Some(n) = r.get() {
            r.set(Some(n.saturating_sub(1)));
        }
    });
}
// ANCHOR_END: poll_proceed

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_spent_budget_holds_the_next_operation_back_until_the_next_poll() {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(poll_proceed(&mut cx).is_ready(), "no budget outside a task");
        budget(|| {
            for _ in 0..BUDGET {
                assert!(poll_proceed(&mut cx).is_ready());
                spend();
            }
            assert!(poll_proceed(&mut cx).is_pending());
            budget(|| {
                assert!(
                    poll_proceed(&mut cx).is_ready(),
                    "a nested poll starts afresh"
                )
            });
            assert!(
                poll_proceed(&mut cx).is_pending(),
                "and the outer one is restored"
            );
        });
        assert!(poll_proceed(&mut cx).is_ready());
    }
}
