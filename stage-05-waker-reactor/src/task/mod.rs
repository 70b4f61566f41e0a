//! Tasks: a spawned future, its output slot, and the handles to it.
//!
//! The story of a task, from `spawn` to `wake`:
//!
//! ```text
//!   spawn(fut) ── allocate the cell (state: scheduled, 3 references:
//!   │             owner's list, JoinHandle, run queue)
//!   │
//!   ├─> OwnedTasks: the runtime's list of live tasks (for shutdown)
//!   ├─> JoinHandle: returned to the caller
//!   └─> run queue ─> executor pops it ─> run(): poll phase
//!                     ├ Ready  ─> store output, wake JoinHandle, leave list
//!                     └ Pending ─> idle; the future left a clone of the
//!                                  waker with the reactor (wait phase)
//!   reactor / timer / channel ─> waker.wake(): wake phase ─> run queue
//! ```
//!
//! Modules: [`state`] (the state machine), [`core`] (the memory and the poll
//! of a task), [`waker`] (the hand-written `RawWakerVTable`), [`join`]
//! (`JoinHandle`, `JoinError`).

pub(crate) mod core;
mod join;
mod state;
mod waker;

#[cfg(all(test, not(loom)))]
mod tests;

use std::future::Future;
use std::ptr::NonNull;
use std::sync::Mutex;

pub use join::{JoinError, JoinHandle};

use self::core::Header;
use crate::slab::{Key, Slab};

/// What a task needs from the executor that owns it.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// Put a woken task on a run queue.
    fn schedule(&self, task: Notified);

    /// Put a task that was woken during its own poll back on a run queue
    /// (behind the others, so a task that keeps waking itself is fair).
    fn yield_now(&self, task: Notified) {
        self.schedule(task);
    }

    /// The task is done: remove it from the owner's list. Returns `true`
    /// if it was there, handing the list's reference to the caller.
    fn release(&self, task: &Header) -> bool;
}

/// A reference to a task that is on (or about to go on) a run queue.
/// Running it consumes it; dropping it just drops the reference.
#[derive(Debug)]
pub(crate) struct Notified(NonNull<Header>);

// SAFETY: tasks hold `Send` futures and outputs, and every shared field of
// the header is atomic; a `Notified` may be run on any thread of the runtime.
unsafe impl Send for Notified {}

impl Notified {
    pub(crate) fn from_raw(ptr: NonNull<Header>) -> Notified {
        Notified(ptr)
    }

    // ANCHOR: notified_run
    /// Poll phase: poll the task's future once.
    pub(crate) fn run(self) {
        let ptr = self.0;
        std::mem::forget(self); // `run` consumes the queue's reference
        // SAFETY: we owned a reference; the vtable matches the cell.
        unsafe { (ptr.as_ref().vtable().run)(ptr) }
    }
    // ANCHOR_END: notified_run

    /// Runtime shutdown of a task that never got into an owner's list:
    /// drop its future and complete it as cancelled.
    pub(crate) fn shutdown(self) {
        // SAFETY: we own a reference, so the header is live.
        unsafe { (self.0.as_ref().vtable().shutdown)(self.0) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: a `Notified` owns one reference.
        unsafe { Header::ref_dec(self.0, 1) }
    }
}

/// The runtime's list of live tasks, so that shutdown can find every one of
/// them, including idle tasks that only a reactor's waker knows about.
#[derive(Debug, Default)]
pub(crate) struct OwnedTasks {
    inner: Mutex<OwnedInner>,
}

#[derive(Debug, Default)]
struct OwnedInner {
    tasks: Slab<ListRef>,
    closed: bool,
}

/// The list's reference to a task.
#[derive(Debug)]
struct ListRef(NonNull<Header>);

// SAFETY: as for `Notified`.
unsafe impl Send for ListRef {}

impl OwnedTasks {
    /// Number of tasks spawned and not yet done.
    pub(crate) fn len(&self) -> usize {
        self.lock().tasks.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OwnedInner> {
        // A panic while holding this lock cannot leave the slab half
        // updated (its methods do not call user code), so poisoning is moot.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocate a task for `future` and put it in the list. Returns the join
    /// handle, and the task's first run (`None` if the runtime is shutting
    /// down: the task is then already cancelled).
    pub(crate) fn spawn<F, S>(
        &self,
        future: F,
        scheduler: S,
    ) -> (JoinHandle<F::Output>, Option<Notified>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        S: Schedule,
    {
        // Three references: the list, the join handle, the first run.
        let ptr = self::core::allocate(future, scheduler, 3);
        let join = JoinHandle::from_raw(ptr);
        let notified = Notified(ptr);
        let mut inner = self.lock();
        if inner.closed {
            drop(inner);
            // Never listed: shut it down through its first run's reference
            // and drop the list's reference, which was never handed out.
            // SAFETY: the header is live (we hold references).
            unsafe { (ptr.as_ref().vtable().shutdown)(ptr) };
            drop(notified);
            // SAFETY: the list's reference was never handed out: ours.
            unsafe { Header::ref_dec(ptr, 1) };
            return (join, None);
        }
        match inner.tasks.insert(ListRef(ptr)) {
            Ok(key) => {
                // SAFETY: the task is not yet shared with any other thread
                // (the first run is still in our hands), and the lock orders
                // this write before any `release`.
                unsafe { *ptr.as_ref().owned_key.get() = key.to_usize() };
                (join, Some(notified))
            }
            Err(list_ref) => {
                drop(inner);
                // Sixteen million live tasks: refuse this one as cancelled.
                // SAFETY: as above.
                unsafe { (ptr.as_ref().vtable().shutdown)(ptr) };
                drop(notified);
                // SAFETY: the list's reference came back to us.
                unsafe { Header::ref_dec(list_ref.0, 1) };
                (join, None)
            }
        }
    }

    /// Remove a finished task. `true` hands the list's reference to the caller.
    pub(crate) fn remove(&self, task: &Header) -> bool {
        // SAFETY: written once in `spawn` before the task was shared.
        let raw_key = unsafe { *task.owned_key.get() };
        if raw_key == usize::MAX {
            return false; // never listed (spawned after shutdown)
        }
        let key = Key::from_usize(raw_key);
        match self.lock().tasks.remove(key) {
            Some(list_ref) => {
                debug_assert!(std::ptr::eq(list_ref.0.as_ptr(), task));
                // The list's reference now belongs to the caller.
                let _ = list_ref;
                true
            }
            None => false,
        }
    }

    // ANCHOR: shutdown_all
    /// Shutdown: refuse new tasks, then drop the future of every task in
    /// the list (each completes as cancelled) and the list's references.
    pub(crate) fn close_and_shutdown_all(&self) {
        let tasks = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.tasks.drain()
        };
        for ListRef(ptr) in tasks {
            // SAFETY: the list owned a reference, now ours.
            unsafe {
                (ptr.as_ref().vtable().shutdown)(ptr);
                Header::ref_dec(ptr, 1);
            }
        }
    }
    // ANCHOR_END: shutdown_all
}

/// Allocate a task that is in no owner's list (a blocking job). Returns the
/// join handle and its first run.
pub(crate) fn spawn_unowned<F, S>(future: F, scheduler: S) -> (JoinHandle<F::Output>, Notified)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    let ptr = self::core::allocate(future, scheduler, 2);
    (JoinHandle::from_raw(ptr), Notified(ptr))
}
