//! The thread-local "current runtime": how `spawn`, `sleep` and
//! `TcpStream::connect` find the runtime they run in, with no global
//! singleton.
//!
//! Two pieces per thread:
//!
//! * the [`Handle`] of the runtime whose code runs here (set by `block_on`,
//!   on worker threads and on blocking-pool threads);
//! * a raw pointer to the *scheduler core* running on this thread, if any:
//!   the `block_on` loop of a current-thread runtime, or a multi-threaded
//!   worker. A wake on such a thread pushes to its local run queue without
//!   any lock.
//!
//! Both are restored by guards when a scope ends, also on unwinding.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::reactor::Reactor;
use crate::scheduler::{Handle, current_thread, multi_thread};

/// The scheduler core that runs on this thread right now.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SchedulerRef {
    None,
    CurrentThread(*const current_thread::Core),
    Worker(*const multi_thread::WorkerCtx),
}

thread_local! {
    static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static SCHEDULER: Cell<SchedulerRef> = const { Cell::new(SchedulerRef::None) };
    static IN_BLOCK_ON: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous handle on drop.
#[derive(Debug)]
pub(crate) struct HandleGuard {
    previous: Option<Handle>,
}

/// Make `handle` current on this thread until the guard drops.
pub(crate) fn enter(handle: Handle) -> HandleGuard {
    let previous = HANDLE.with(|h| h.borrow_mut().replace(handle));
    HandleGuard { previous }
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let ours = HANDLE.with(|h| std::mem::replace(&mut *h.borrow_mut(), previous));
        drop(ours); // outside the borrow: dropping a handle may run destructors
    }
}

/// The current runtime's handle. Panics outside a runtime: calling `spawn`
/// or creating a socket or timer there is a programming error.
pub(crate) fn handle() -> Handle {
    try_handle().expect(
        "this must be called from inside a runtime (in `Runtime::block_on`, \
         a spawned task, or a `spawn_blocking` closure)",
    )
}

pub(crate) fn try_handle() -> Option<Handle> {
    HANDLE.with(|h| h.borrow().clone())
}

pub(crate) fn current_reactor() -> Arc<Reactor> {
    handle().reactor().clone()
}

/// Restores the previous scheduler pointer on drop.
#[derive(Debug)]
pub(crate) struct SchedulerGuard {
    previous: SchedulerRef,
}

/// Record that a scheduler core runs on this thread until the guard drops.
pub(crate) fn set_scheduler(scheduler: SchedulerRef) -> SchedulerGuard {
    let previous = SCHEDULER.with(|s| s.replace(scheduler));
    SchedulerGuard { previous }
}

impl Drop for SchedulerGuard {
    fn drop(&mut self) {
        SCHEDULER.with(|s| s.set(self.previous));
    }
}

pub(crate) fn scheduler() -> SchedulerRef {
    SCHEDULER
        .try_with(|s| s.get())
        .unwrap_or(SchedulerRef::None)
}

/// Marks this thread as inside `block_on` until dropped.
#[derive(Debug)]
pub(crate) struct BlockOnGuard(());

impl Drop for BlockOnGuard {
    fn drop(&mut self) {
        IN_BLOCK_ON.with(|b| b.set(false));
    }
}

/// The start of every `block_on`, of either flavour. Panics, saying which,
/// if this thread already runs a runtime's tasks (a nested `block_on` would
/// stall every task that thread drives) or is inside another `block_on`
/// (whose future would stop being polled: with the current-thread flavour
/// that also stalls its tasks; with either, a nested call that waits for
/// the outer future deadlocks). The same rule for both flavours.
pub(crate) fn enter_block_on() -> BlockOnGuard {
    if !matches!(scheduler(), SchedulerRef::None) {
        panic!(
            "`Runtime::block_on` called from inside a runtime's task: that would \
             block the thread that drives the tasks. Use `.await` instead, or \
             `spawn_blocking` for blocking work."
        );
    }
    if IN_BLOCK_ON.with(|b| b.replace(true)) {
        panic!(
            "`Runtime::block_on` called inside another `block_on` on the same \
             thread: the outer future would stop being polled until the inner \
             one finishes (a deadlock if it waits for the outer). Use `.await` \
             instead, or `spawn_blocking` for blocking work."
        );
    }
    BlockOnGuard(())
}
