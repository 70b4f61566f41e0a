//! A timer leaf future: [`sleep`] and [`sleep_until`].
//!
//! The poll phase looks at the clock. If the deadline has passed, the timer
//! is `Ready`. Otherwise it asks the current reactor to wake it at the
//! deadline and returns `Pending`; the reactor's wait phase uses the earliest
//! deadline as its timeout, and its wake phase wakes every due timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::reactor;

// ANCHOR: sleep
/// Future of [`sleep`]: ready at or after its deadline.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The waker the reactor holds for us, and which installation of the
    /// reactor holds it, so that being polled again with the same waker
    /// under the same reactor (a spurious poll) does not register a second
    /// timer, while a new reactor always gets a registration.
    registered: Option<(Waker, u64)>,
}

/// Ready once `duration` has passed (counted from this call).
pub fn sleep(duration: Duration) -> Sleep {
    // A duration too long to add means "practically never".
    let now = Instant::now();
    sleep_until(
        now.checked_add(duration)
            .unwrap_or(now + Duration::from_secs(86_400 * 365)),
    )
}

/// Ready at or after `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut(); // Sleep is Unpin
        // Poll phase: is it time?
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        // Not yet: have the reactor wake us at the deadline, unless this very
        // reactor already holds a waker that wakes the same task (`will_wake`
        // is best effort: a "no" only costs a duplicate timer). A timer wake
        // comes only at or after the deadline, so a registration is never
        // used up early; but it dies with its reactor, hence the installation.
        // Clone against clone: a clone of `Waker::noop()` need not share the
        // original's vtable address, so `will_wake(cx.waker())` could say
        // no on every poll, while two clones agree.
        let waker = cx.waker().clone();
        reactor::with_current_installation(|reactor, installation| {
            let held = this
                .registered
                .as_ref()
                .is_some_and(|(held, at)| *at == installation && held.will_wake(&waker));
            if !held {
                reactor.wake_at(this.deadline, &waker);
                this.registered = Some((waker, installation));
            }
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        // Dropped before its deadline: the reactor that holds our
        // registration need not keep it (a reactor that counts what waits,
        // like the naive executor's, would otherwise count it until then).
        if let Some((waker, installation)) = self.registered.take() {
            let deadline = self.deadline;
            reactor::try_with_current_installation(|reactor, current| {
                if current == installation && Instant::now() < deadline {
                    reactor.forget_timer(deadline, &waker);
                }
            });
        }
    }
}
// ANCHOR_END: sleep

impl Sleep {
    /// When this timer is due.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::set_current;
    use crate::testing::{CountingWaker, ReactorCall, RecordingReactor, poll_once};
    use std::rc::Rc;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri gives each clone of a waker its own vtable address, so \
                  `will_wake` says false and the (best-effort) dedup does not apply"
    )]
    fn polled_again_with_the_no_op_waker_a_timer_registers_only_once() {
        // The naive executor polls every pending future with `Waker::noop()`
        // on every event. A clone of that waker may have another vtable
        // address than the original, so `will_wake(original)` can say no:
        // each poll then left one more timer in the reactor.
        let reactor = Rc::new(RecordingReactor::default());
        let _guard = set_current(reactor.clone());
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut timer = sleep_until(deadline);
        for _ in 0..3 {
            assert!(poll_once(Pin::new(&mut timer), Waker::noop()).is_pending());
        }
        assert_eq!(reactor.calls(), [ReactorCall::WakeAt(deadline)]);
    }

    #[test]
    fn a_due_timer_is_ready_without_asking_the_reactor() {
        let (_, waker) = CountingWaker::new();
        let mut timer = sleep_until(Instant::now());
        // No reactor installed: reaching it would panic.
        assert_eq!(poll_once(Pin::new(&mut timer), &waker), Poll::Ready(()));
    }

    #[test]
    fn a_pending_timer_asks_the_reactor_to_wake_it_at_its_deadline() {
        let reactor = Rc::new(RecordingReactor::default());
        let _guard = set_current(reactor.clone());
        let (counter, waker) = CountingWaker::new();
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut timer = sleep_until(deadline);
        assert!(poll_once(Pin::new(&mut timer), &waker).is_pending());
        assert_eq!(reactor.calls(), [ReactorCall::WakeAt(deadline)]);
        assert_eq!(counter.wakes(), 0, "not woken before the deadline");
        // The reactor's wake reaches the task's waker.
        assert_eq!(reactor.wake_all(), 1);
        assert_eq!(counter.wakes(), 1);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri gives each clone of a waker its own vtable address, so \
                  `will_wake` says false and the (best-effort) dedup does not apply"
    )]
    fn a_spurious_poll_with_the_same_waker_does_not_register_a_second_timer() {
        let reactor = Rc::new(RecordingReactor::default());
        let _guard = set_current(reactor.clone());
        let (_, waker) = CountingWaker::new();
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut timer = sleep_until(deadline);
        assert!(poll_once(Pin::new(&mut timer), &waker).is_pending());
        assert!(poll_once(Pin::new(&mut timer), &waker).is_pending());
        assert_eq!(reactor.calls(), [ReactorCall::WakeAt(deadline)]);
        // Polled with another task's waker: that one is registered too.
        let (_, other) = CountingWaker::new();
        assert!(poll_once(Pin::new(&mut timer), &other).is_pending());
        assert_eq!(reactor.calls().len(), 2);
    }

    #[test]
    fn a_timer_registers_again_with_a_new_reactor_even_with_the_same_waker() {
        let (_, waker) = CountingWaker::new();
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut timer = sleep_until(deadline);
        let first = Rc::new(RecordingReactor::default());
        {
            let _guard = set_current(first.clone());
            assert!(poll_once(Pin::new(&mut timer), &waker).is_pending());
        } // the first reactor, and the registration it holds, are gone
        let second = Rc::new(RecordingReactor::default());
        let _guard = set_current(second.clone());
        assert!(poll_once(Pin::new(&mut timer), &waker).is_pending());
        assert_eq!(first.calls(), [ReactorCall::WakeAt(deadline)]);
        assert_eq!(
            second.calls(),
            [ReactorCall::WakeAt(deadline)],
            "no wake-up may depend on a reactor that is gone"
        );
    }

    #[test]
    fn a_huge_duration_does_not_overflow() {
        let timer = sleep(Duration::MAX);
        assert!(timer.deadline() > Instant::now());
    }
}
