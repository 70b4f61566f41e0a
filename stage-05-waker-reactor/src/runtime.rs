//! `Runtime` and its `Builder`: the object that owns a reactor, an executor
//! and a blocking pool, and shuts all three down when dropped.

use std::fmt;
use std::future::Future;
use std::io;

use crate::blocking::BlockingPool;
use crate::scheduler::{Handle, current_thread, multi_thread};
use crate::task::JoinHandle;

/// A reactor-executor runtime.
///
/// ```
/// let rt = runtime::Runtime::new()?; // current-thread flavour
/// let answer = rt.block_on(async {
///     let task = runtime::spawn(async { 6 * 7 });
///     task.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// # std::io::Result::Ok(())
/// ```
///
/// Dropping the runtime shuts it down: every task that has not finished has
/// its future dropped (so the sockets, timers and channels it holds are
/// released, and its `JoinHandle` reports a cancelled [`JoinError`]),
/// queued blocking jobs are cancelled, and every thread of the runtime is
/// joined.
///
/// **The drop waits for running `spawn_blocking` closures, with no
/// timeout.** A thread cannot be interrupted, and a closure that outlived
/// its runtime would break the promise that nothing of the runtime runs
/// after the drop. The futures are dropped *first*, so a closure that waits
/// on a channel from a task sees the channel close; a closure that blocks
/// on something else (a socket with no timeout, a sleep of an hour) makes
/// the drop wait for it. Give such closures their own deadline.
///
/// The runtime may be dropped by its own code (from a task on a worker, or
/// from a blocking closure): the drop then joins every thread but the one
/// it runs on, which finishes its poll or closure and exits by itself.
///
/// [`JoinError`]: crate::JoinError
pub struct Runtime {
    handle: Handle,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("flavour", &self.flavour())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A current-thread runtime: tasks run on the thread that calls
    /// [`block_on`](Runtime::block_on).
    pub fn new() -> io::Result<Runtime> {
        Builder::new_current_thread().build()
    }

    /// A builder, to choose the flavour and the number of threads.
    pub fn builder() -> Builder {
        Builder::new_current_thread()
    }

    // ANCHOR: runtime_block_on
    /// Run `future` to completion on this thread, driving the runtime's
    /// tasks meanwhile (current-thread flavour) or letting the workers run
    /// them (multi-threaded flavour). Returns the future's output.
    ///
    /// Panics if called from inside a task of any runtime (blocking there
    /// would stall that runtime's thread): `.await` the future instead.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.handle {
            Handle::CurrentThread(shared) => current_thread::Shared::block_on(shared, future),
            Handle::MultiThread(shared) => multi_thread::Shared::block_on(shared, future),
        }
    }
    // ANCHOR_END: runtime_block_on

    /// Spawn a task on this runtime, from any thread. On the current-thread
    /// flavour it runs while some thread is in [`block_on`](Runtime::block_on);
    /// on the multi-threaded flavour, at once on a worker.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Run a blocking closure on this runtime's blocking pool.
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// Number of spawned tasks that have not finished (blocking jobs not
    /// included).
    pub fn num_alive_tasks(&self) -> usize {
        self.handle.num_alive_tasks()
    }

    /// Number of sockets registered with the reactor.
    pub fn num_registered_sockets(&self) -> usize {
        self.handle.reactor().num_registrations()
    }

    /// Number of timers waiting in the reactor.
    pub fn num_pending_timers(&self) -> usize {
        self.handle.reactor().timers.len()
    }

    fn flavour(&self) -> &'static str {
        match self.handle {
            Handle::CurrentThread(_) => "current_thread",
            Handle::MultiThread(_) => "multi_thread",
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        match &self.handle {
            Handle::CurrentThread(shared) => current_thread::Shared::shutdown(shared),
            Handle::MultiThread(shared) => multi_thread::Shared::shutdown(shared),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    CurrentThread,
    MultiThread,
}

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = runtime::Runtime::builder()
///     .multi_thread()
///     .worker_threads(2)
///     .build()?;
/// assert_eq!(rt.block_on(async { runtime::spawn(async { 1 }).await.unwrap() }), 1);
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    flavour: Flavour,
    worker_threads: Option<usize>,
    max_blocking_threads: usize,
    thread_name: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new_current_thread()
    }
}

impl Builder {
    /// The most worker threads [`worker_threads`](Builder::worker_threads)
    /// accepts. Far more than any machine has cores; a larger number is
    /// almost surely a mistake (a count of something else, an overflow), and
    /// would only exhaust memory or the OS's thread limit half-way through
    /// starting the workers.
    pub const MAX_WORKER_THREADS: usize = 4096;

    /// Current-thread flavour (the default).
    pub fn new_current_thread() -> Builder {
        Builder {
            flavour: Flavour::CurrentThread,
            worker_threads: None,
            max_blocking_threads: 16,
            thread_name: "runtime".to_string(),
        }
    }

    /// Multi-threaded flavour, one worker per CPU unless told otherwise.
    pub fn new_multi_thread() -> Builder {
        Builder {
            flavour: Flavour::MultiThread,
            ..Builder::new_current_thread()
        }
    }

    /// Switch to the current-thread flavour.
    pub fn current_thread(mut self) -> Builder {
        self.flavour = Flavour::CurrentThread;
        self
    }

    /// Switch to the multi-threaded flavour.
    pub fn multi_thread(mut self) -> Builder {
        self.flavour = Flavour::MultiThread;
        self
    }

    /// Number of worker threads of the multi-threaded flavour (at least 1;
    /// [`build`](Builder::build) refuses more than
    /// [`MAX_WORKER_THREADS`](Builder::MAX_WORKER_THREADS)).
    pub fn worker_threads(mut self, n: usize) -> Builder {
        self.worker_threads = Some(n.max(1));
        self
    }

    /// Most threads the blocking pool starts (at least 1; default 16).
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.max_blocking_threads = n.max(1);
        self
    }

    /// Prefix of the names of the runtime's threads. It may not contain a
    /// NUL byte ([`build`](Builder::build) refuses it).
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
        self
    }

    /// Create the reactor (a mio `Poll`), the blocking pool and, for the
    /// multi-threaded flavour, start the workers.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] for a thread name with a
    /// NUL byte or more than [`MAX_WORKER_THREADS`](Builder::MAX_WORKER_THREADS)
    /// workers, and with the OS's error if it refuses a thread or the epoll
    /// instance.
    pub fn build(&self) -> io::Result<Runtime> {
        // Checked here, before anything starts: the OS cannot name a thread
        // with a NUL byte, and `std::thread::Builder::spawn` panics on one.
        // Blocking-pool threads start on demand, so the panic would come
        // much later, out of some task's `spawn_blocking`.
        if self.thread_name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the runtime's thread name contains a NUL byte",
            ));
        }
        if self.flavour == Flavour::MultiThread
            && self
                .worker_threads
                .is_some_and(|n| n > Builder::MAX_WORKER_THREADS)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "worker_threads: at most {} threads",
                    Builder::MAX_WORKER_THREADS
                ),
            ));
        }
        let blocking = BlockingPool::new(
            self.max_blocking_threads,
            format!("{}-blocking", self.thread_name),
        );
        let handle = match self.flavour {
            Flavour::CurrentThread => {
                Handle::CurrentThread(current_thread::Shared::new(blocking.clone())?)
            }
            Flavour::MultiThread => {
                let workers = self.worker_threads.unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map_or(1, |n| n.get().min(Builder::MAX_WORKER_THREADS))
                });
                Handle::MultiThread(multi_thread::Shared::new(
                    workers,
                    blocking.clone(),
                    &self.thread_name,
                )?)
            }
        };
        blocking.set_handle(handle.clone());
        Ok(Runtime { handle })
    }
}
