//! A waker is user code: its `clone` and its `drop` may call back into the
//! runtime. The runtime never runs them under one of its own locks, so a
//! waker that asks the runtime something while it is being stored, or
//! replaced, cannot deadlock it.
//!
//! The waker here is hand-made: its vtable asks the runtime how many timers
//! are pending (which takes the timers' lock) on every clone and drop.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread;
use std::time::Duration;

use runtime::Runtime;

thread_local! {
    /// The runtime the waker asks, and how often it asked.
    static ASKED: Cell<(*const Runtime, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Calls back into the runtime, as a waker built by a framework might.
fn ask_the_runtime() {
    let (runtime, asked) = ASKED.get();
    // SAFETY: the test stores a pointer to a runtime that outlives every
    // waker made from this vtable, and reads it on the same thread.
    let pending = unsafe { (*runtime).num_pending_timers() };
    std::hint::black_box(pending);
    ASKED.set((runtime, asked + 1));
}

fn clone(_: *const ()) -> RawWaker {
    ask_the_runtime();
    RawWaker::new(std::ptr::null(), &VTABLE)
}
fn wake(_: *const ()) {}
fn wake_by_ref(_: *const ()) {}
fn drop_waker(_: *const ()) {
    ask_the_runtime();
}
static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// Fails with `what` instead of hanging if `f` deadlocks.
fn within(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: not done within 20 s (a deadlock?)"));
}

#[test]
fn a_waker_that_calls_the_runtime_from_clone_and_drop_is_stored_and_replaced_without_a_deadlock() {
    within("replacing a timer's waker", || {
        let rt = Runtime::new().expect("runtime");
        ASKED.set((&raw const rt, 0));
        rt.block_on(async {
            let mut sleep = pin!(runtime::time::sleep(Duration::from_secs(3600)));
            // SAFETY: the vtable's functions ignore the data pointer.
            let reentrant = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
            // First poll with the task's own waker, then with ours: the
            // timer must swap one for the other (a clone of ours in, the
            // task's out), then ours for a fresh one from the task.
            poll_fn(|cx| {
                assert!(sleep.as_mut().poll(cx).is_pending());
                let mut ours = Context::from_waker(&reentrant);
                assert!(sleep.as_mut().poll(&mut ours).is_pending());
                assert!(sleep.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
        });
        let (_, asked) = ASKED.get();
        assert!(
            asked >= 2,
            "the waker was cloned into the timer and dropped out of it ({asked} calls)"
        );
        drop(rt);
    });
}
