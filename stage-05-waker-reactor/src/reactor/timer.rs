//! Timers: a map from deadline to the waker of the task that waits for it.
//!
//! An ordered map (`BTreeMap`) keyed by `(deadline, id)` serves as the timer
//! queue: the first key is the next deadline (which bounds how long the
//! reactor may block in its wait phase), expired timers come off the front,
//! and a `Sleep` that is dropped early removes its own entry in `O(log n)`,
//! so cancelled timeouts do not pile up.
//!
//! A timer is *fired* when its entry is gone from the map. The reactor
//! removes entries only when `deadline <= now`, and a `Sleep` also checks the
//! clock itself, so no timer ever completes early.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::task::Waker;
use std::time::Instant;

/// Identifies one registered timer.
pub(crate) type TimerKey = (Instant, u64);

#[derive(Debug, Default)]
pub(crate) struct Timers {
    inner: Mutex<TimerMap>,
}

#[derive(Debug, Default)]
struct TimerMap {
    wakers: BTreeMap<TimerKey, Waker>,
    next_id: u64,
}

/// What [`Timers::poll`] found for a registered timer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TimerPoll {
    Fired,
    Waiting,
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, TimerMap> {
        // No user code runs under this lock (wakers are woken after it).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register `waker` for `deadline`. Returns the key, and whether this is
    /// now the earliest timer (the reactor may need waking to shorten its
    /// wait).
    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> (TimerKey, bool) {
        let mut map = self.lock();
        let key = (deadline, map.next_id);
        map.next_id += 1;
        map.wakers.insert(key, waker);
        let earliest = map.wakers.first_key_value().map(|(k, _)| *k) == Some(key);
        (key, earliest)
    }

    /// A registered timer: fired (entry gone), or still waiting, in which
    /// case its waker is replaced by `waker` if they differ.
    ///
    /// Cloning the new waker and dropping the old one are user code (a
    /// hand-made waker's vtable), so neither runs under the lock: a waker
    /// that panics there, or that registers a timer itself, would poison the
    /// lock or deadlock on it.
    pub(crate) fn poll(&self, key: TimerKey, waker: &Waker) -> TimerPoll {
        match self.lock().wakers.get(&key) {
            None => return TimerPoll::Fired,
            Some(stored) if stored.will_wake(waker) => return TimerPoll::Waiting,
            Some(_) => {}
        }
        let new = waker.clone();
        let mut map = self.lock();
        // The timer may have fired between the two locks.
        let swapped = match map.wakers.get_mut(&key) {
            None => Err(new),
            Some(stored) => Ok(std::mem::replace(stored, new)),
        };
        drop(map);
        match swapped {
            Err(unused) => {
                drop(unused);
                TimerPoll::Fired
            }
            Ok(old) => {
                drop(old);
                TimerPoll::Waiting
            }
        }
    }

    /// Forget a timer (its `Sleep` was dropped or reset).
    pub(crate) fn remove(&self, key: TimerKey) {
        let waker = self.lock().wakers.remove(&key);
        drop(waker); // outside the lock: dropping a waker may run user code
    }

    /// The earliest deadline, if any timer is registered.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.lock().wakers.first_key_value().map(|((d, _), _)| *d)
    }

    /// Forget every timer (runtime shutdown).
    pub(crate) fn clear(&self) {
        let wakers = std::mem::take(&mut self.lock().wakers);
        // Outside the lock, and one at a time: a waker's drop is user code
        // (a timer polled with a hand-made waker), and shutdown must go on
        // past its panic.
        crate::unwind::drop_each(wakers.into_values());
    }

    /// Number of registered timers.
    pub(crate) fn len(&self) -> usize {
        self.lock().wakers.len()
    }

    // ANCHOR: fire
    /// Wake phase for timers: remove every timer whose deadline is at or
    /// before `now` and wake its task. Returns how many fired.
    pub(crate) fn fire_expired(&self, now: Instant, buffer: &mut Vec<Waker>) -> usize {
        // ANCHOR: lab_5_3_fire
        {
            let mut map = self.lock();
            while let Some(entry) = map.wakers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                buffer.push(entry.remove());
            }
        }
        let fired = buffer.len();
        for waker in buffer.drain(..) {
            // User code, maybe under the driver's lock: contained.
            crate::unwind::contain(move || waker.wake());
        }
        fired
        // ANCHOR_END: lab_5_3_fire
    }
    // ANCHOR_END: fire
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_expired_timers_fire_and_the_earliest_bounds_the_wait() {
        let timers = Timers::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let now = Instant::now();
        let (late, _) = timers.insert(now + Duration::from_secs(60), waker.clone());
        let (soon, earliest) = timers.insert(now, waker.clone());
        assert!(earliest);
        assert_eq!(timers.next_deadline(), Some(now));
        let mut buffer = Vec::new();
        assert_eq!(timers.fire_expired(now, &mut buffer), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(timers.poll(soon, &waker), TimerPoll::Fired);
        assert_eq!(timers.poll(late, &waker), TimerPoll::Waiting);
        timers.remove(late);
        assert_eq!(timers.len(), 0);
    }
}
