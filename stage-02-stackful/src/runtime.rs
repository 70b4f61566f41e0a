//! The runtime object: how a program builds a scheduler and runs a main
//! green thread on it.
//!
//! ```text
//!   let mut rt = Runtime::builder().stack_size(64 * 1024).build();
//!   let value = rt.block_on(|| { spawn(..); .. 42 })?;   // Ok(42)
//! ```
//!
//! `block_on` makes the runtime the OS thread's current one, spawns the
//! closure as the *main* green thread, and runs the scheduler loop until that
//! thread finishes. Then every green thread still alive is cancelled (its
//! stack unwound, its locals dropped), and `block_on` returns the main
//! thread's value. It returns an error instead of hanging when every green
//! thread waits on something nothing can provide.

use std::fmt;
use std::io;
use std::rc::Rc;

use crate::driver::{Driver, SleepDriver};
use crate::join::{Packet, green_entry};
use crate::scheduler::Scheduler;
use crate::stack_pool::PoolStats;

/// Why `block_on` could not return the main green thread's value.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Every green thread is parked, no timer is pending and the driver has
    /// no waiters: nothing could ever wake them.
    Deadlock {
        /// How many green threads were parked (the main one included).
        parked: usize,
    },
    /// The driver's `wait` failed.
    Driver(io::Error),
    /// No stack could be allocated for the main green thread.
    Spawn(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Deadlock { parked } => write!(
                f,
                "deadlock: all {parked} green threads are parked, no timer is pending \
                 and the driver has no waiters"
            ),
            Error::Driver(e) => write!(f, "the runtime's driver failed: {e}"),
            Error::Spawn(e) => write!(f, "cannot allocate a stack for the main green thread: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Deadlock { .. } => None,
            Error::Driver(e) | Error::Spawn(e) => Some(e),
        }
    }
}

/// Configures a [`Runtime`].
#[derive(Debug)]
pub struct Builder {
    stack_size: usize,
    max_idle_stacks: usize,
    driver: Option<Box<dyn Driver>>,
}

impl Builder {
    /// The smallest stack a green thread gets, whatever `stack_size` says:
    /// below this even a panic message overflows.
    pub const MIN_STACK_SIZE: usize = 16 * 1024;

    /// Defaults: stage 01's default stack size, up to 1024 idle stacks kept,
    /// the [`SleepDriver`].
    pub fn new() -> Self {
        Builder {
            stack_size: fibers::Stack::DEFAULT_SIZE,
            max_idle_stacks: 1024,
            driver: None,
        }
    }

    /// Usable bytes of each green thread's stack (rounded up to whole pages,
    /// at least [`MIN_STACK_SIZE`](Self::MIN_STACK_SIZE)). A thread that
    /// needs more hits the guard page and the process aborts with a message.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes.max(Self::MIN_STACK_SIZE);
        self
    }

    /// How many finished threads' stacks to keep for reuse.
    pub fn max_idle_stacks(mut self, count: usize) -> Self {
        self.max_idle_stacks = count;
        self
    }

    /// The driver the scheduler waits in when no green thread is runnable
    /// (see [`Driver`]).
    pub fn driver(mut self, driver: Box<dyn Driver>) -> Self {
        self.driver = Some(driver);
        self
    }

    /// Builds the runtime. Allocates nothing yet: stacks come on `spawn`.
    pub fn build(self) -> Runtime {
        let driver = self.driver.unwrap_or_else(|| Box::new(SleepDriver));
        Runtime {
            scheduler: Scheduler::new(self.stack_size, self.max_idle_stacks, driver),
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

/// A green-thread runtime: a scheduler for many green threads on the OS
/// thread that calls [`block_on`](Runtime::block_on).
///
/// Not `Send`: a runtime and its green threads belong to one OS thread. Run
/// one runtime per OS thread to use several cores.
#[derive(Debug)]
pub struct Runtime {
    scheduler: Scheduler,
}

impl Runtime {
    /// A runtime with the default settings.
    pub fn new() -> Runtime {
        Builder::new().build()
    }

    /// A [`Builder`] to configure one.
    pub fn builder() -> Builder {
        Builder::new()
    }

    // ANCHOR: block_on
    /// Runs `f` as the main green thread and returns its value once it
    /// finishes. Green threads still alive then are cancelled.
    ///
    /// If `f` panics, the panic is re-raised here (after the cleanup).
    pub fn block_on<F, T>(&mut self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let scheduler = &self.scheduler;
        let _enter = scheduler.enter();
        // Cancels whatever is still alive on every way out, unwinding included.
        let _teardown = Teardown(scheduler);

        let main = Rc::new(Packet::new());
        scheduler
            .spawn_fiber(green_entry(f, main.clone()))
            .map_err(Error::Spawn)?;
        scheduler.run_until(|| main.is_complete())?;

        drop(_teardown);
        match main.take() {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => error.resume_unwind(),
            None => unreachable!("run_until returned before the main thread finished"),
        }
    }
    // ANCHOR_END: block_on

    /// Counters of the stack pool (created, in use, idle, released).
    pub fn stack_stats(&self) -> PoolStats {
        self.scheduler.stack_stats()
    }

    /// The installed driver, if it is a `D`.
    pub fn driver_mut<D: Driver>(&mut self) -> Option<&mut D> {
        let driver: &mut dyn std::any::Any = self.scheduler.driver_mut();
        driver.downcast_mut::<D>()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

/// Cancels every remaining green thread when dropped.
struct Teardown<'a>(&'a Scheduler);

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        self.0.teardown();
    }
}
