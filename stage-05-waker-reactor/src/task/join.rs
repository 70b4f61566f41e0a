//! `JoinHandle<T>`: the future of a task's output, and `JoinError`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::core::Header;

/// An owned permission to await a spawned task's output.
///
/// Awaiting it gives `Ok(output)`, or `Err(JoinError)` if the task panicked
/// (the panic is inside the error) or was cancelled by [`abort`](Self::abort)
/// or by runtime shutdown. Dropping the handle *detaches* the task: it keeps
/// running and its output is dropped when it finishes.
///
/// Like most futures, a handle that returned `Ready` must not be polled
/// again: that panics ("JoinHandle polled after it returned Ready"). It may
/// be polled with a different waker each time; only the latest is woken.
pub struct JoinHandle<T> {
    raw: NonNull<Header>,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves `T` out of the task (so `T: Send` suffices)
// and touches the header through atomics.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only allows `abort` and `is_finished`, both atomic.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn from_raw(raw: NonNull<Header>) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _output: PhantomData,
        }
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn raw_header(&self) -> *const Header {
        self.raw.as_ptr()
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle owns a reference: the header is live.
        unsafe { self.raw.as_ref() }
    }

    // ANCHOR: abort
    /// Cancel the task. If it is idle or queued, its future is dropped the
    /// next time the executor gets to it (on the executor's thread); if it is
    /// being polled, right after that poll. A task that already finished
    /// keeps its output. Awaiting the handle then gives a cancelled
    /// [`JoinError`] (unless the task finished first).
    pub fn abort(&self) {
        if self.header().state.transition_to_cancelled() {
            // The task was idle: queue it so a runner drops its future.
            self.header().ref_inc();
            // SAFETY: we hand the new reference to the scheduler.
            unsafe { (self.header().vtable().schedule)(self.raw) };
        }
    }
    // ANCHOR_END: abort

    /// Whether the task is done (its output, if any, is ready).
    pub fn is_finished(&self) -> bool {
        self.header().state.load().is_complete()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: the task was allocated with `F::Output = T`, so the vtable
        // writes a `Poll<Result<T, JoinError>>` into `out`.
        unsafe {
            (self.header().vtable().try_read_output)(self.raw, (&raw mut out).cast(), cx.waker());
        }
        out
    }
}

// ANCHOR: join_handle_drop
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let prev = self.header().state.transition_to_join_handle_dropped();
        if prev.is_complete() {
            // Done before we let go: the output is ours to drop.
            // SAFETY: COMPLETE with JOIN_INTEREST held: we own the output.
            unsafe { (self.header().vtable().drop_output)(self.raw) };
        }
        if !prev.is_complete() || !prev.has_join_waker() {
            // The runner will not read the waker slot (or is done with it):
            // empty it, so the waiting task is not kept alive by this one.
            // SAFETY: the state transition gave us the slot.
            unsafe { (self.header().vtable().drop_join_waker)(self.raw) };
        }
        // SAFETY: the handle owns one reference.
        unsafe { Header::ref_dec(self.raw, 1) };
    }
}
// ANCHOR_END: join_handle_drop

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("state", &self.header().state.load().name())
            .finish()
    }
}

/// Why a task has no output: it panicked, or it was cancelled.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    /// In a `Mutex` only to make `JoinError: Sync` (so it converts into
    /// `anyhow::Error`); the payload itself is just `Send`.
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    /// The task was cancelled (`abort`, or the runtime shut down).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic's payload, e.g. to resume it with
    /// `std::panic::resume_unwind`. Panics if the task was cancelled instead.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError::into_panic` on a cancelled task: check `is_panic` first")
    }

    /// The panic's payload, or the error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<String> {
        let Repr::Panic(payload) = &self.repr else {
            return None;
        };
        let payload = payload.lock().unwrap_or_else(|e| e.into_inner());
        payload
            .downcast_ref::<&'static str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => write!(f, "task was cancelled"),
            (Repr::Panic(_), Some(message)) => write!(f, "task panicked: {message}"),
            (Repr::Panic(_), None) => write!(f, "task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => write!(f, "JoinError::Cancelled"),
            (Repr::Panic(_), Some(message)) => write!(f, "JoinError::Panic({message:?})"),
            (Repr::Panic(_), None) => write!(f, "JoinError::Panic(..)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(error: JoinError) -> std::io::Error {
        std::io::Error::other(error.to_string())
    }
}
