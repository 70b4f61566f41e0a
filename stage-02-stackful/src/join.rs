//! Joining a green thread: the shared result slot (`Packet`), the
//! [`JoinHandle`] that waits on it, and the [`JoinError`] that carries a
//! panic (or a cancellation) to whoever joins.
//!
//! ```text
//!   spawn(f) ──> fiber entry: catch_unwind(f) ──> Packet::complete(result)
//!                                                   │ store; unpark joiner
//!   JoinHandle::join: loop { take result? else record joiner; park() }
//! ```
//!
//! A panic never crosses the fiber's assembly frames: the entry closure
//! catches it on the green thread's own stack, and the payload travels in
//! the packet like any other value.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use crate::GreenId;
use crate::scheduler::{self, Cancelled, GreenSuspender, Resume};

/// Why a green thread produced no value.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Panic(Box<dyn Any + Send + 'static>),
    Cancelled,
}

impl JoinError {
    fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    /// The thread panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The thread was cancelled: its runtime shut down (`block_on`'s main
    /// thread returned) before it finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The panic message, if the thread panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(payload) => payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str)),
            Repr::Cancelled => None,
        }
    }

    /// The panic payload, or `Err(self)` if the thread was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }

    /// Re-raises the thread's panic in the caller (a cancellation is raised
    /// as a panic with a message saying so).
    pub fn resume_unwind(self) -> ! {
        match self.repr {
            Repr::Panic(payload) => panic::resume_unwind(payload),
            Repr::Cancelled => panic!("joined green thread was cancelled"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => f
                .debug_tuple("JoinError::Panic")
                .field(&self.panic_message())
                .finish(),
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Panic(_), Some(message)) => write!(f, "green thread panicked: {message}"),
            (Repr::Panic(_), None) => f.write_str("green thread panicked"),
            (Repr::Cancelled, _) => f.write_str("green thread was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The slot a finished green thread leaves its result in.
pub(crate) struct Packet<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    /// The thread waiting in `join`, to unpark when the result arrives.
    joiner: Cell<Option<GreenId>>,
}

impl<T> Packet<T> {
    pub(crate) fn new() -> Self {
        Packet {
            result: RefCell::new(None),
            joiner: Cell::new(None),
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.result.borrow().is_some()
    }

    pub(crate) fn take(&self) -> Option<Result<T, JoinError>> {
        self.result.borrow_mut().take()
    }

    fn complete(&self, result: Result<T, JoinError>) {
        *self.result.borrow_mut() = Some(result);
        if let Some(joiner) = self.joiner.take() {
            // Through `unpark`: the joiner may wait in an outer runtime.
            crate::unpark(joiner);
        }
    }
}

// ANCHOR: entry
/// Wraps a user closure into the closure a green thread's fiber runs: it
/// records the fiber's suspender, runs `f` under `catch_unwind`, and leaves
/// the outcome in `packet`.
pub(crate) fn green_entry<F, T>(
    f: F,
    packet: Rc<Packet<T>>,
) -> impl FnOnce(&GreenSuspender, Resume) + 'static
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    move |suspender, first| {
        scheduler::with_current(|s| s.register_suspender(suspender));
        let outcome = panic::catch_unwind(AssertUnwindSafe(move || match first {
            Resume::Run => Some(f()),
            // Cancelled before it ever ran: only drop the closure.
            Resume::Cancel => {
                drop(f);
                None
            }
        }));
        let result = match outcome {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(JoinError::cancelled()),
            Err(payload) if payload.is::<Cancelled>() => Err(JoinError::cancelled()),
            Err(payload) => Err(JoinError::panic(payload)),
        };
        // User code can still run here: if the handle was dropped, the
        // packet goes with us and drops the value, whose destructor may
        // panic. Nothing may unwind out of the fiber into the scheduler, so
        // that panic (already reported by the panic hook) stops here.
        let completed = panic::catch_unwind(AssertUnwindSafe(move || {
            packet.complete(result);
            drop(packet);
        }));
        if let Err(payload) = completed {
            // Leaked, not dropped: a payload's own destructor could panic too.
            std::mem::forget(payload);
        }
    }
}
// ANCHOR_END: entry

/// An owned permission to wait for a green thread's result.
///
/// Dropping the handle detaches the thread: it keeps running, and its result
/// is dropped when it finishes.
pub struct JoinHandle<T> {
    id: GreenId,
    packet: Rc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(id: GreenId, packet: Rc<Packet<T>>) -> Self {
        JoinHandle { id, packet }
    }

    /// The identity of the thread.
    pub fn id(&self) -> GreenId {
        self.id
    }

    /// Whether the thread has finished (so `join` will not block).
    pub fn is_finished(&self) -> bool {
        self.packet.is_complete()
    }

    // ANCHOR: join
    /// Waits for the thread to finish; returns its value, or the panic it
    /// ended with as a [`JoinError`].
    ///
    /// Parks the calling green thread while waiting. Panics if it would have
    /// to wait outside a green thread.
    pub fn join(self) -> Result<T, JoinError> {
        loop {
            if let Some(result) = self.packet.take() {
                return result;
            }
            let me = crate::current();
            self.packet.joiner.set(Some(me));
            crate::park();
        }
    }
    // ANCHOR_END: join
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}
