//! # Stage 05: a reactor-executor runtime on mio
//!
//! Stage 04 polled every future again and again to find out whether it could
//! make progress. This stage replaces the re-polling with *wakers*: a future
//! that cannot progress leaves its task's [`Waker`](std::task::Waker) with
//! whatever it waits for, and is not polled again until that thing calls
//! `wake`. Three parts make that work:
//!
//! ```text
//!                    spawn(fut)
//!                        |
//!                        v
//!   +-------------- EXECUTOR (scheduler) ---------------+
//!   |  run queue:  [task][task][task]                   |
//!   |  poll phase: pop a task, poll its future once     |
//!   |    Ready   -> output to the JoinHandle            |
//!   |    Pending -> the future gave its waker to ...  --+---+
//!   +---------------------------------------------------+   |
//!          ^                                                |
//!          | wake phase: waker.wake() puts the task back    v
//!          |             on the run queue             +-----------+
//!          +------------------------------------------|  REACTOR  |
//!                     (nothing to run? the executor   |  (driver) |
//!                      blocks in the reactor's        | mio::Poll |
//!                      wait phase: epoll_wait until   |  timers   |
//!                      I/O, a timer, or a wake)       +-----------+
//! ```
//!
//! Module map:
//!
//! | module | what it is |
//! |---|---|
//! | `task` (private) | a task's memory, its state machine (idle, scheduled, running, notified, done), the hand-written waker vtable, `JoinHandle` |
//! | `scheduler` (private) | the executor: `current_thread` and `multi_thread` flavours |
//! | `reactor` (private) | the driver: one mio `Poll`, a slab of socket states, timers |
//! | `slab` (private) | the slab with generation-checked keys |
//! | `blocking` (private) | the `spawn_blocking` thread pool |
//! | `context` (private) | the thread-local current runtime |
//! | `coop` (private) | the budget of socket operations per poll of a task |
//! | `unwind` (private) | containing panics from destructors and wakers the runtime calls |
//! | `sync` (private) | the atomics, locks and cells that the loom model checks (`loom_models`, built with `--cfg loom`) replace with loom's |
//! | [`time`] | `sleep`, `sleep_until`, `timeout`, `interval` |
//! | [`net`] | `TcpListener`, `TcpStream` (`futures::io::AsyncRead`/`AsyncWrite`) |
//! | [`Runtime`], [`Builder`] | owning all of the above; shutdown on drop |
//!
//! `spawn`, `spawn_blocking`, the timers and the sockets find their runtime
//! through a thread-local handle that `block_on` and the runtime's threads
//! set, so there is no global runtime: as many runtimes as you like can live
//! side by side.

mod blocking;
mod context;
mod coop;
mod reactor;
mod runtime;
mod scheduler;
mod slab;
mod stage04;
mod sync;
mod task;
mod unwind;

#[cfg(all(loom, test))]
mod loom_models;

pub mod net;
pub mod time;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use runtime::{Builder, Runtime};
pub use task::{JoinError, JoinHandle};

// ANCHOR: spawn
/// Spawn `future` as a new task on the current runtime. It starts running
/// without being awaited; the returned [`JoinHandle`] gives its output.
///
/// Panics outside a runtime (a programming error: there is no global one).
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    context::handle().spawn(future)
}
// ANCHOR_END: spawn

/// Run the blocking closure `f` on the current runtime's blocking pool, so
/// it does not hold up the threads that run tasks.
///
/// Panics outside a runtime.
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    context::handle().spawn_blocking(f)
}

/// Let the other tasks run, then continue: returns `Pending` once, after
/// waking its own task (which goes to the back of the run queue).
pub async fn yield_now() {
    YieldNow { yielded: false }.await
}

struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
