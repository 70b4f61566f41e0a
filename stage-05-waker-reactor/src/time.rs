//! Timers: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! A [`Sleep`] registers its deadline and its task's waker with the reactor
//! the first time it is polled and finds the deadline still ahead. The
//! reactor bounds its wait phase by the earliest deadline and, in the wake
//! phase, wakes every timer whose deadline has passed. A `Sleep` completes
//! only when `Instant::now() >= deadline`: never early.
//!
//! Every timer belongs to the runtime it was created in (found through the
//! thread's current runtime), so creating one outside a runtime panics.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;

use crate::context;
use crate::reactor::Reactor;
use crate::reactor::timer::{TimerKey, TimerPoll};

/// Far enough to mean "never" without overflowing `Instant`.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Wait until `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(far_future);
    sleep_until(deadline)
}

/// Wait until `deadline`. A deadline in the past completes at the first poll.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        reactor: context::current_reactor(),
        key: None,
    }
}

/// Future of [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    reactor: Arc<Reactor>,
    /// Set while registered with the reactor.
    key: Option<TimerKey>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.key.is_some())
            .finish()
    }
}

impl Sleep {
    /// When this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Move the deadline (used by [`Interval`]).
    pub fn reset(&mut self, deadline: Instant) {
        if let Some(key) = self.key.take() {
            self.reactor.timers.remove(key);
        }
        self.deadline = deadline;
    }
}

// ANCHOR: sleep_poll
impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(key) = self.key.take() {
                self.reactor.timers.remove(key);
            }
            return Poll::Ready(());
        }
        match self.key {
            // Wait phase begins: hand the deadline and waker to the reactor.
            None => {
                let key = self.reactor.add_timer(self.deadline, cx.waker().clone());
                self.key = Some(key);
            }
            // Still registered: make sure the reactor has the current waker.
            // `Fired` means the entry is gone: either the reactor fired it
            // since the clock was read above (waking the waker it had, maybe
            // another task's, not this one), or the runtime shut down and
            // dropped every timer. Read the clock again to tell them apart:
            // the first is due now; the second can never fire, and
            // completing would be early, so it stays pending (like any
            // future of a runtime that is gone).
            Some(key) => {
                if self.reactor.timers.poll(key, cx.waker()) == TimerPoll::Fired {
                    self.key = None;
                    if Instant::now() >= self.deadline {
                        return Poll::Ready(());
                    }
                }
            }
        }
        Poll::Pending
    }
}
// ANCHOR_END: sleep_poll

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.reactor.timers.remove(key);
        }
    }
}

/// The error of [`timeout`]: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// Run `future` for at most `duration`: `Ok(output)` if it finishes first,
/// `Err(Elapsed)` (and the future is dropped) otherwise.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Future of [`timeout`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`: it is never moved out of
        // `self` (no method hands it out by value or `&mut`), and `Timeout`
        // has no `Drop` that could move it. `sleep` is `Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A clock that ticks every `period`, the first tick at once. A zero
/// period is taken as one millisecond.
///
/// If ticks are missed (the task was busy), the next tick comes at the next
/// multiple of `period` after now: missed ticks are skipped, not bunched.
pub fn interval(period: Duration) -> Interval {
    let period = if period.is_zero() {
        Duration::from_millis(1)
    } else {
        period
    };
    Interval {
        period,
        sleep: sleep_until(Instant::now()),
    }
}

/// See [`interval`]. Also a `Stream` of tick instants.
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    sleep: Sleep,
}

impl Interval {
    /// Wait for the next tick; returns the instant it was scheduled for.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Poll for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        std::task::ready!(Pin::new(&mut self.sleep).poll(cx));
        let scheduled = self.sleep.deadline();
        self.sleep
            .reset(next_tick(scheduled, self.period, Instant::now()));
        Poll::Ready(scheduled)
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// The first multiple of `period` after `scheduled` that is later than
/// `now`: the ticks missed while the task was busy are skipped.
fn next_tick(scheduled: Instant, period: Duration, now: Instant) -> Instant {
    let behind = now.saturating_duration_since(scheduled).as_nanos();
    let period = period.as_nanos();
    // Exact in u128, and at most `behind + period`: no count of skipped
    // ticks to overflow, however small the period and late the task.
    let ahead = (behind / period + 1) * period;
    u64::try_from(ahead)
        .ok()
        .and_then(|nanos| scheduled.checked_add(Duration::from_nanos(nanos)))
        .unwrap_or_else(far_future)
}

impl Stream for Interval {
    type Item = Instant;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_tick_is_the_first_multiple_of_the_period_after_now() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_tick(start, ms(10), start), start + ms(10), "on time");
        assert_eq!(next_tick(start, ms(10), start + ms(25)), start + ms(30));
        assert_eq!(
            next_tick(start, ms(10), start + ms(30)),
            start + ms(40),
            "a tick due exactly now is missed: the next is later than now"
        );
    }

    #[test]
    fn a_tiny_period_far_behind_still_skips_to_after_now() {
        // 10 s behind with a 1 ns period is 10^10 missed ticks, more than
        // a u32 counts: the next tick must still land after `now`, not on
        // a tick that is already past (which would fire at once).
        let start = Instant::now();
        let now = start + Duration::from_secs(10);
        let period = Duration::from_nanos(1);
        let next = next_tick(start, period, now);
        assert!(next > now && next - now <= period, "{:?}", next - now);
    }
}
