//! Containing panics from user code that the runtime itself calls.
//!
//! A task's `poll` is not the only user code a runtime runs. It also runs
//! destructors (of a future, of an output nobody reads, of a panic's
//! payload) and the `wake` of wakers it was handed (a `JoinHandle` polled
//! with a hand-made waker, a socket or timer polled with one). A panic in
//! any of them must not unwind through the runtime's own frames: that would
//! kill a worker thread, leak the task's references (and with them the
//! runtime's file descriptors), lose a blocking-pool slot or leave a lock
//! poisoned. Each such call goes through [`contain`]; the panic hook has
//! already printed the message, so dropping the payload loses nothing a
//! user could act on.
//!
//! Shutdown runs user code as well: it drops the futures of the tasks
//! still pending and wakes their `JoinHandle`s (through the same contained
//! paths as a task that ends), and it drops every waker the reactor still
//! holds for a socket or a timer, each on its own through [`drop_each`].
//! A panic there would do worse still: unwound out of `Runtime::drop`, it
//! would skip the rest of the teardown (threads to join, tasks and
//! descriptors to free), and from a runtime dropped while its thread
//! already unwinds from another panic, it would abort the process.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

// ANCHOR: contain
/// Run `f`; if it panics, drop the payload (see [`drop_payload`]) and
/// return `None`.
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Drop each of `values` on its own, containing a panic in any of them
/// (see [`contain`]). Dropping the whole collection at once would not do:
/// a destructor that panics would stop the drop half-way, and the
/// collection's own unwinding would then run the remaining destructors,
/// where a second panic aborts the process.
pub(crate) fn drop_each<T>(values: impl IntoIterator<Item = T>) {
    for value in values {
        contain(move || drop(value));
    }
}

/// Drop a panic's payload, whose own destructor may panic (a payload is
/// any value given to `panic_any`). A payload whose destructor panics
/// again and again is forgotten after a few tries: leaking a few bytes
/// beats looping for ever or unwinding into the runtime.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..3 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}
// ANCHOR_END: contain
