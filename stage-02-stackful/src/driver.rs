//! The driver: what the scheduler does when no green thread can run.
//!
//! The scheduler (the executor half of a runtime) knows how to run green
//! threads; it does not know what they are waiting *for*. When the run queue
//! is empty it enters the **wait phase** and hands the OS thread to a
//! [`Driver`] (the reactor half). The driver blocks until something happens,
//! then reports which green threads that something readies; the scheduler
//! puts them back on the run queue (the **wake phase**) and runs them (the
//! **poll phase** of the stackful world: resuming a fiber).
//!
//! ```text
//!          ┌──────────── scheduler loop (Runtime::block_on) ───────────┐
//!          │                                                           │
//!          │  fire expired timers ──> run queue ──> resume a fiber     │
//!          │        ^                    │ empty                       │
//!          │        │                    v                             │
//!          │        │     timers pending or driver.has_waiters()?      │
//!          │        │          │ yes                    │ no           │
//!          │        │          v                        v              │
//!          │        └── driver.wait(timeout, wake)   Err(Deadlock)     │
//!          │              wake(id) = unpark(id)                        │
//!          └───────────────────────────────────────────────────────────┘
//! ```
//!
//! # Writing a driver (for example a netpoller)
//!
//! Stage 03 builds green-thread sockets on this hook. The recipe:
//!
//! 1. A green thread tries a non-blocking system call. On `WouldBlock` it
//!    records "fd 7 wants READABLE, wake [`current()`]" in the driver (reach
//!    the installed driver with [`with_driver`], or share state with it through
//!    an `Rc` you created before installing it), then calls [`park()`] and
//!    retries the call when `park` returns. `park` may return spuriously, so
//!    this is always a loop.
//! 2. [`Driver::wait`] blocks in `epoll_wait` for at most `timeout`, and for
//!    each ready fd calls `wake(id)` with the green thread recorded for it.
//! 3. [`Driver::has_waiters`] answers whether any green thread is recorded.
//!    When nothing is runnable, no timer is pending and this is `false`,
//!    nobody can ever wake the parked threads, and `block_on` returns
//!    [`Error::Deadlock`](crate::Error::Deadlock) instead of blocking forever.
//!
//! The scheduler also calls `wait(Some(Duration::ZERO), ..)` now and then
//! while green threads are runnable (every [`POLL_INTERVAL`] switches), so
//! that threads busy yielding cannot starve threads waiting on I/O.
//!
//! [`current()`]: crate::current
//! [`park()`]: crate::park
//! [`with_driver`]: crate::with_driver

use std::any::Any;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::GreenId;

/// How many green-thread switches the scheduler makes between two
/// non-blocking polls of the driver while the run queue is never empty.
pub const POLL_INTERVAL: u32 = 61;

// ANCHOR: driver_trait
/// The reactor half of a runtime: blocks the OS thread in the wait phase and
/// reports which parked green threads became ready.
///
/// Install one with [`Builder::driver`](crate::Builder::driver). The default
/// is [`SleepDriver`]. A driver is owned by the runtime and used only on the
/// runtime's OS thread; the scheduler never calls it while a green thread is
/// running, so `wait` may not re-enter the runtime except through `wake`.
pub trait Driver: Any {
    /// The wait phase. Blocks the OS thread until an event arrives or
    /// `timeout` has passed, then calls `wake(id)` once for every green
    /// thread the events made ready (`wake` unparks it; unknown or finished
    /// ids are ignored, so calling it for a stale id is harmless).
    ///
    /// `timeout`:
    /// - `Some(Duration::ZERO)`: poll, do not block;
    /// - `Some(d)`: block at most `d` (the next timer is due then); returning
    ///   a little early is allowed, the scheduler simply loops;
    /// - `None`: block until an event (only passed when
    ///   [`has_waiters`](Driver::has_waiters) returned `true` and no timer is
    ///   pending).
    ///
    /// An `Err` ends `block_on` with [`Error::Driver`](crate::Error::Driver).
    fn wait(&mut self, timeout: Option<Duration>, wake: &mut dyn FnMut(GreenId)) -> io::Result<()>;

    /// Whether any green thread is registered with this driver and may be
    /// woken by a future `wait`. `false` tells deadlock detection that the
    /// driver can never wake anyone.
    fn has_waiters(&self) -> bool;
}
// ANCHOR_END: driver_trait

/// The default driver: knows no events, only time. `wait` sleeps the OS
/// thread until the next timer is due.
#[derive(Debug, Default, Clone, Copy)]
pub struct SleepDriver;

impl Driver for SleepDriver {
    fn wait(
        &mut self,
        timeout: Option<Duration>,
        _wake: &mut dyn FnMut(GreenId),
    ) -> io::Result<()> {
        // `None` cannot happen (we never have waiters), and then there is
        // nothing to wait for anyway.
        if let Some(timeout) = timeout.filter(|t| !t.is_zero()) {
            std::thread::sleep(timeout);
        }
        Ok(())
    }

    fn has_waiters(&self) -> bool {
        false
    }
}

impl fmt::Debug for dyn Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Driver")
    }
}
