//! How a worker of the multi-threaded flavour sleeps and is woken.
//!
//! A worker with nothing to do parks either in the driver's wait phase (if
//! it took the driver) or on its own condition variable. `unpark` must never
//! be lost: one that comes before the `park` makes that `park` return at
//! once. The loom models (`loom_models`) check that for every interleaving.

use crate::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::sync::{Condvar, Mutex};

fn lock(mutex: &Mutex<()>) -> crate::sync::MutexGuard<'_, ()> {
    // Nothing but this parker's handshake runs under this lock.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

const EMPTY: usize = 0;
const PARKED_CONDVAR: usize = 1;
const PARKED_DRIVER: usize = 2;
const NOTIFIED: usize = 3;

/// Puts one worker to sleep and wakes it, with no lost unpark: an `unpark`
/// before `park` makes the next `park` return at once.
#[derive(Debug)]
pub(crate) struct Parker {
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
}

impl Default for Parker {
    fn default() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            mutex: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }
}

impl Parker {
    /// Sleep on the condition variable until [`Parker::unpark`].
    pub(crate) fn park_on_condvar(&self) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = lock(&self.mutex);
        if self
            .state
            .compare_exchange(EMPTY, PARKED_CONDVAR, SeqCst, SeqCst)
            .is_err()
        {
            self.state.store(EMPTY, SeqCst); // it was NOTIFIED
            return;
        }
        loop {
            guard = self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner());
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Sleep in the driver's wait phase (`wait`, which returns when the
    /// driver is woken) until [`Parker::unpark`].
    pub(crate) fn park_in_driver(&self, wait: impl FnOnce()) {
        if self
            .state
            .compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst)
            .is_err()
        {
            self.state.store(EMPTY, SeqCst); // it was NOTIFIED
            return;
        }
        wait();
        self.state.store(EMPTY, SeqCst);
    }

    /// Wake the parked worker, or make its next park return at once.
    /// `wake_driver` ends the driver's wait phase (an eventfd write).
    pub(crate) fn unpark(&self, wake_driver: impl FnOnce()) {
        match self.state.swap(NOTIFIED, SeqCst) {
            PARKED_CONDVAR => {
                // Take the lock so the notify cannot fall between the
                // sleeper's state check and its wait.
                drop(lock(&self.mutex));
                self.condvar.notify_one();
            }
            // Unconditional eventfd write: the driver may not yet have
            // announced itself as parked, and must still not sleep.
            PARKED_DRIVER => wake_driver(),
            _ => {}
        }
    }
}
