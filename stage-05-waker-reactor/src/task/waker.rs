//! The task's `Waker`, built by hand from a [`RawWakerVTable`].
//!
//! A `Waker` is two words: a data pointer and a pointer to a table of four
//! functions. Ours uses the task's [`Header`] address as the data pointer, and
//! each `Waker` owns one reference to the task (so the task's memory lives at
//! least as long as any waker that could wake it).
//!
//! The contract of `RawWakerVTable` (from the standard library's docs) and
//! how each clause is kept here:
//!
//! | clause | how |
//! |---|---|
//! | `clone` returns a `RawWaker` that wakes the *same* task, with its own resources | same pointer, one more reference |
//! | `wake` wakes the task and *consumes* the waker's resources | a wake by reference, then the waker's reference is dropped |
//! | `wake_by_ref` wakes the task without consuming the waker | like `wake`, taking a new reference if the task must be queued |
//! | `drop` releases the resources | one reference less; the last frees the task |
//! | all four must be safe to call from any thread (`Waker: Send + Sync`) | the reference count and the state are atomics; queues are `Send` |
//! | waking a task that already finished must be harmless | the state machine ignores it (see `state`) |
//!
//! Note what a wake does *not* do: it never polls the future. It only
//! changes the task's state and, at most once per poll, puts the task on a
//! run queue. Polling happens later, on the executor's thread.

use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::core::Header;

// ANCHOR: vtable
static TASK_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_waker, wake, wake_by_ref, drop_waker);

/// `clone`: one more reference to the same task.
unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // ANCHOR: lab_5_1_clone
    // SAFETY: `data` is the header pointer of a live task: the waker being
    // cloned owns (or borrows, in `run`) a reference to it.
    let header = unsafe { &*data.cast::<Header>() };
    header.ref_inc();
    RawWaker::new(data, &TASK_WAKER_VTABLE)
    // ANCHOR_END: lab_5_1_clone
}

/// `wake`: wake phase, by value: a wake by reference, then the waker's
/// drop.
///
/// Why not hand the waker's reference straight to the run queue? Because
/// once the task is on a queue, another thread may run it, complete it and
/// free it (and with it, possibly the last handle to the runtime) while
/// `schedule` is still running here with `&self` pointing into the task.
/// Holding our own reference until `schedule` returns keeps both alive.
unsafe fn wake(data: *const ()) {
    // ANCHOR: lab_5_1_wake
    // SAFETY: the waker owns a reference, which it keeps during the wake
    // and gives up just after.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
    // ANCHOR_END: lab_5_1_wake
}

/// `wake_by_ref`: wake phase, keeping the waker. Only if the task must be
/// queued does it take a new reference, for the queue; the waker's own
/// reference keeps the task alive while `schedule` runs.
unsafe fn wake_by_ref(data: *const ()) {
    // ANCHOR: lab_5_1_wake_by_ref
    let ptr = header_ptr(data);
    // SAFETY: the waker owns (or borrows) a reference, so the header is live.
    let header = unsafe { ptr.as_ref() };
    if header.state.transition_to_notified() {
        header.ref_inc();
        // SAFETY: we hand the new reference to the scheduler.
        unsafe { (header.vtable().schedule)(ptr) };
    }
    // ANCHOR_END: lab_5_1_wake_by_ref
}

/// `drop`: one reference less.
unsafe fn drop_waker(data: *const ()) {
    // ANCHOR: lab_5_1_drop
    // SAFETY: the waker owns a reference, which it gives up here.
    unsafe { Header::ref_dec(header_ptr(data), 1) };
    // ANCHOR_END: lab_5_1_drop
}
// ANCHOR_END: vtable

fn header_ptr(data: *const ()) -> NonNull<Header> {
    // SAFETY: wakers of this vtable are only made from non-null headers.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) }
}

/// A waker that *borrows* the reference of its caller: the caller must keep
/// it in `ManuallyDrop` and never drop it. Used by the runner for the
/// `Context` of a poll, so that a poll that never clones the waker costs no
/// reference counting at all.
///
/// # Safety
/// `ptr` is a live task and stays live while the waker is in use.
pub(crate) unsafe fn borrowed(ptr: NonNull<Header>) -> Waker {
    let raw = RawWaker::new(ptr.as_ptr().cast_const().cast(), &TASK_WAKER_VTABLE);
    // SAFETY: the vtable's functions keep the `RawWaker` contract (module
    // docs) for data pointers that are live task headers.
    unsafe { Waker::from_raw(raw) }
}
