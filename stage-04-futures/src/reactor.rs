//! The reactor interface that leaf futures talk to.
//!
//! A leaf future (a socket read, a timer) is the place where a future meets
//! the operating system. When the operating system says "not yet"
//! (`EWOULDBLOCK`, or a deadline still in the future), the leaf future must
//! return `Poll::Pending` *and* arrange for somebody to wake its task later.
//! That somebody is the **reactor**: the part of a runtime that waits on the
//! poller (epoll) and on the clock, and turns readiness into `Waker::wake`.
//!
//! The leaf futures of this crate do not know which reactor they run on. They
//! find the *current* reactor of their thread through [`with_current`] and
//! call the methods of the [`Reactor`] trait. Two implementations exist
//! in the course:
//!
//! ```text
//!   stage 04: stackless::naive::PollReactor   over stage 03's netpoll::Poll
//!   stage 05: runtime's reactor              over mio::Poll (one per thread)
//!
//!        leaf future (Read, Write, Connect, Sleep)
//!             |  poll phase: try the syscall / look at the clock
//!             |  Pending?  with_current(|r| r.wake_when_ready(fd, interest, waker))
//!             v                              or r.wake_at(deadline, waker)
//!        +-----------+   wait phase: epoll_wait / mio::Poll::poll until
//!        |  Reactor  |               an fd is ready or the next deadline
//!        +-----------+   wake phase: waker.wake() for every ready fd / due timer
//! ```
//!
//! An executor *installs* its reactor on the thread that polls futures with
//! [`set_current`] and keeps the returned guard alive while it polls:
//!
//! ```
//! use std::{io, os::fd::RawFd, rc::Rc, task::Waker, time::Instant};
//! use stackless::reactor::{self, Interest, Reactor};
//!
//! struct Nothing;
//! impl Reactor for Nothing {
//!     fn wake_when_ready(&self, _: RawFd, _: Interest, _: &Waker) -> io::Result<()> { Ok(()) }
//!     fn forget(&self, _: RawFd) {}
//!     fn wake_at(&self, _: Instant, _: &Waker) {}
//! }
//!
//! let guard = reactor::set_current(Rc::new(Nothing));
//! assert!(reactor::is_set());
//! drop(guard); // restores whatever was current before
//! assert!(!reactor::is_set());
//! ```
//!
//! The trait is deliberately small and uses only `std` types (plus our own
//! two-valued [`Interest`]), so a reactor over mio, over raw epoll or a fake
//! one in a test can implement it without depending on stage 03.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::Instant;

/// Which readiness a leaf future waits for. One direction at a time: a read
/// future waits for `Readable`, a write or connect future for `Writable`.
/// A reactor that registers one fd for both (as epoll and mio do) combines
/// the interests of the wakers it currently holds for that fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interest {
    /// The fd has data to read, a peer hung up, or an error is pending.
    Readable,
    /// The fd has room to write, a non-blocking connect finished, or an
    /// error is pending.
    Writable,
}

// ANCHOR: reactor_trait
/// What a leaf future needs from a reactor. Implemented by stage 04's naive
/// `PollReactor` (over `netpoll::Poll`) and by stage 05's reactor (over mio).
///
/// The contract, from the leaf future's side:
///
/// * A leaf future first tries its operation. Only when that says "not yet"
///   does it call [`wake_when_ready`](Reactor::wake_when_ready) or
///   [`wake_at`](Reactor::wake_at), with the waker of the `Context` it is
///   being polled with, and then return `Poll::Pending`.
/// * It calls them again on every `Pending` (readiness is consumed by the
///   wake; the next `Pending` needs a new registration).
/// * Before it closes an fd it calls [`forget`](Reactor::forget).
/// * It tolerates spurious wakes: after any wake it simply tries again.
///
/// From the reactor's side:
///
/// * **No lost wake-ups.** If the fd is already ready when `wake_when_ready`
///   is called (readiness arrived between the failed syscall and the call),
///   the waker must still be woken, promptly.
/// * A later registration for the same `(fd, interest)` replaces the earlier
///   waker; the two interests of one fd are independent (one task may read
///   while another writes).
/// * Each registration wakes its waker at most once (one-shot), then is gone.
/// * Methods take `&self` and are called from inside `Future::poll` on the
///   thread that installed the reactor, so an implementation uses interior
///   mutability and must not hold a borrow across a call to `Waker::wake`
///   (the waker may poll or re-register straight away in a simple executor),
///   nor across cloning or dropping a waker (dropping a task's last waker
///   may drop the task, and its streams then call `forget`).
/// * A future may be polled on different threads over its life (a
///   multi-threaded runtime moves tasks), and each call goes to the current
///   reactor *of the calling thread*. So the reactors installed on a
///   runtime's threads must be handles to one shared reactor, or otherwise
///   agree: `forget` may arrive at another thread's handle than the
///   `wake_when_ready` it undoes.
pub trait Reactor {
    /// Wake `waker` once `fd` is ready for `interest` (or has an error or
    /// hang-up to report). Called by a leaf future each time it returns
    /// `Pending` on `fd`. An error means the fd could not be watched (for
    /// example it is not a pollable fd); the leaf future returns it.
    fn wake_when_ready(&self, fd: RawFd, interest: Interest, waker: &Waker) -> io::Result<()>;

    /// Forget every registration of `fd`. Called just before `fd` is closed,
    /// so that a later fd with the same number starts clean. Must not fail
    /// if `fd` was never registered.
    fn forget(&self, fd: RawFd);

    /// Wake `waker` at or after `deadline` (never before). A deadline that
    /// has passed wakes promptly. A timer whose future was dropped may still
    /// wake its (stale) waker once; wakers tolerate that.
    fn wake_at(&self, deadline: Instant, waker: &Waker);

    /// Called by a timer dropped before its deadline: drop one
    /// registration of `wake_at(deadline, w)` where `w` wakes the same task
    /// as `waker`, if there is one (such registrations are interchangeable).
    /// Without it a dropped timer's registration lives on to its deadline,
    /// and a reactor that reports "nothing waits" would count it. The
    /// default keeps the registration; a reactor that can find it should.
    fn forget_timer(&self, deadline: Instant, waker: &Waker) {
        let _ = (deadline, waker);
    }
}
// ANCHOR_END: reactor_trait

thread_local! {
    /// The reactor of this thread, if an executor installed one.
    static CURRENT: RefCell<Option<Installed>> = const { RefCell::new(None) };
}

/// A reactor as installed by one [`set_current`] call.
#[derive(Clone)]
struct Installed {
    reactor: Rc<dyn Reactor>,
    /// Different for every `set_current` call in the process (never reused,
    /// unlike the reactor's address), so a leaf future can tell whether the
    /// reactor that holds its registration is still the current one.
    installation: u64,
}

static NEXT_INSTALLATION: AtomicU64 = AtomicU64::new(1);

/// Restores the previously current reactor when dropped. Returned by
/// [`set_current`]; keep it alive while futures are polled. Guards must be
/// dropped in the reverse order of their creation (they nest like scopes).
#[must_use = "the reactor is uninstalled when the guard is dropped"]
pub struct CurrentReactorGuard {
    previous: Option<Installed>,
}

impl fmt::Debug for CurrentReactorGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentReactorGuard")
            .field("restores_a_reactor", &self.previous.is_some())
            .finish()
    }
}

// ANCHOR: set_current
/// Make `reactor` the current reactor of this thread until the guard drops.
///
/// An executor calls this once per thread that polls futures (stage 05's
/// multi-threaded flavour calls it on each worker thread, with a handle to
/// its shared reactor).
pub fn set_current(reactor: Rc<dyn Reactor>) -> CurrentReactorGuard {
    let installed = Installed {
        reactor,
        installation: NEXT_INSTALLATION.fetch_add(1, Ordering::Relaxed),
    };
    let previous = CURRENT.with(|current| current.borrow_mut().replace(installed));
    CurrentReactorGuard { previous }
}

/// Run `f` with this thread's current reactor.
///
/// # Panics
/// If no reactor is installed: a leaf future was polled outside an executor
/// that provides one. That is a programming error, not an input error.
pub fn with_current<T>(f: impl FnOnce(&dyn Reactor) -> T) -> T {
    match try_with_current(f) {
        Some(value) => value,
        None => panic!(
            "no current reactor: poll stackless leaf futures inside an executor that \
             installs one (stackless::naive::block_on, or stage 05's Runtime)"
        ),
    }
}
// ANCHOR_END: set_current

/// Like [`with_current`], but `None` if no reactor is installed. Used on
/// paths that must not panic, such as `Drop`.
pub fn try_with_current<T>(f: impl FnOnce(&dyn Reactor) -> T) -> Option<T> {
    // Clone the Rc out so that no RefCell borrow is held while `f` runs:
    // `f` may install another reactor or call back into this module.
    // `try_with`: at thread exit this thread-local may be destroyed before
    // a user's that holds a stream; that stream's `Drop` lands here.
    let installed = CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()?;
    Some(f(&*installed.reactor))
}

/// Like [`with_current`], and also passes a number that names this
/// installation of the reactor: it differs after every [`set_current`] and
/// never repeats. A leaf future that skips registering again when it
/// already did (the timer) compares it, so that a registration left behind
/// in an earlier reactor is not mistaken for a live one.
pub(crate) fn with_current_installation<T>(f: impl FnOnce(&dyn Reactor, u64) -> T) -> T {
    let installation = CURRENT
        .try_with(|current| current.borrow().as_ref().map(|i| i.installation))
        .ok()
        .flatten();
    // Without a reactor, `with_current` panics (and `installation` is None).
    with_current(|reactor| f(reactor, installation.unwrap_or(0)))
}

/// Like [`with_current_installation`], but `None` if no reactor is
/// installed: for `Drop`, which must not panic.
pub(crate) fn try_with_current_installation<T>(
    f: impl FnOnce(&dyn Reactor, u64) -> T,
) -> Option<T> {
    let installed = CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()?;
    Some(f(&*installed.reactor, installed.installation))
}

/// Whether this thread has a current reactor.
pub fn is_set() -> bool {
    CURRENT
        .try_with(|current| current.borrow().is_some())
        .unwrap_or(false)
}

impl Drop for CurrentReactorGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Drop the replaced reactor outside the borrow: its destructor may
        // drop futures that call `try_with_current`. If the thread-local is
        // already destroyed (a guard kept in a user's thread-local, dropped
        // at thread exit), there is nothing left to restore.
        let replaced = CURRENT
            .try_with(|current| std::mem::replace(&mut *current.borrow_mut(), previous))
            .ok()
            .flatten();
        drop(replaced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Named(&'static str, Rc<Cell<&'static str>>);
    impl Reactor for Named {
        fn wake_when_ready(&self, _: RawFd, _: Interest, _: &Waker) -> io::Result<()> {
            self.1.set(self.0);
            Ok(())
        }
        fn forget(&self, _: RawFd) {}
        fn wake_at(&self, _: Instant, _: &Waker) {}
    }

    #[test]
    fn set_current_nests_and_guards_restore_the_previous_reactor() {
        let seen = Rc::new(Cell::new(""));
        let touch = || {
            with_current(|r| r.wake_when_ready(0, Interest::Readable, Waker::noop()))
                .expect("fake reactor never fails");
        };
        assert!(!is_set());
        let outer = set_current(Rc::new(Named("outer", seen.clone())));
        touch();
        assert_eq!(seen.get(), "outer");
        {
            let _inner = set_current(Rc::new(Named("inner", seen.clone())));
            touch();
            assert_eq!(seen.get(), "inner");
        }
        touch();
        assert_eq!(seen.get(), "outer");
        drop(outer);
        assert!(!is_set());
    }

    #[test]
    fn try_with_current_is_none_without_a_reactor() {
        assert!(try_with_current(|_| ()).is_none());
    }

    #[test]
    #[should_panic(expected = "no current reactor")]
    fn with_current_panics_clearly_without_a_reactor() {
        with_current(|_| ());
    }
}
