//! A tiny async "something changed" broadcast, for idle workers.
//!
//! A worker that asks for a task while every remaining task is running must
//! wait until one finishes (the phase may change), one times out, or the
//! job ends. It should not sleep and ask again (polling wastes time and
//! delays the answer); its request *waits* on a [`Signal`] instead:
//!
//! ```text
//!   handler:   seen = signal.generation()      ← read BEFORE checking the state
//!              lock schedule; assign() says Wait; unlock
//!              signal.changed(seen).await      ← returns at once if anything
//!                                                 changed since `seen`
//!   elsewhere: lock schedule; complete(); unlock; signal.notify_all()
//! ```
//!
//! The generation counter is what makes this free of lost wake-ups: a
//! notification between the check and the await bumps the generation, so
//! the await completes immediately instead of waiting for a second one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

/// Wakes every task waiting for a change.
#[derive(Debug, Default)]
pub struct Signal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    waiters: Vec<Waker>,
}

impl Signal {
    /// A signal nobody waits on yet.
    pub fn new() -> Signal {
        Signal::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave `Inner` half-updated
        // (each update is one push or one increment), so poisoning is moot.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current generation; pass it to [`changed`](Signal::changed).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    // ANCHOR: notify
    /// Bumps the generation and wakes every waiter (the wake phase).
    pub fn notify_all(&self) {
        let waiters = {
            let mut inner = self.lock();
            inner.generation += 1;
            std::mem::take(&mut inner.waiters)
        };
        // Wake outside the lock: a waker may run code that takes it again.
        for waker in waiters {
            waker.wake();
        }
    }

    // ANCHOR_END: notify

    /// Completes once the generation differs from `seen`.
    pub fn changed(&self, seen: u64) -> Changed<'_> {
        Changed { signal: self, seen }
    }
}

/// The future returned by [`Signal::changed`].
#[derive(Debug)]
pub struct Changed<'a> {
    signal: &'a Signal,
    seen: u64,
}

// ANCHOR: changed
impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.signal.lock();
        if inner.generation != self.seen {
            return Poll::Ready(());
        }
        // Register once per task, however often it is polled.
        if !inner.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            inner.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
// ANCHOR_END: changed

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use futures::task::noop_waker;
    use std::sync::Arc;

    #[test]
    fn a_change_before_the_await_is_not_lost() {
        let s = Signal::new();
        let seen = s.generation();
        s.notify_all();
        assert_eq!(s.changed(seen).now_or_never(), Some(()));
    }

    #[test]
    fn a_waiter_stays_pending_until_notified_and_is_woken_once() {
        let s = Arc::new(Signal::new());
        let seen = s.generation();
        let mut fut = Box::pin(s.changed(seen));
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(s.lock().waiters.len(), 1, "registered once");
        let s2 = Arc::clone(&s);
        std::thread::spawn(move || s2.notify_all()).join().unwrap();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert!(s.lock().waiters.is_empty());
    }

    #[test]
    fn many_waiters_all_wake_on_one_notification() {
        let s = Arc::new(Signal::new());
        let seen = s.generation();
        let s2 = Arc::clone(&s);
        let notifier = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            s2.notify_all();
        });
        futures::executor::block_on(futures::future::join3(
            s.changed(seen),
            s.changed(seen),
            s.changed(seen),
        ));
        notifier.join().unwrap();
    }
}
