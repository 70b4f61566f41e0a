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
