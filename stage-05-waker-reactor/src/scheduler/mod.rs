//! The executor: the two flavours of scheduler and what they share.
//!
//! * [`current_thread`]: every task runs on the thread that calls
//!   `block_on`, which also drives the reactor. No task moves between
//!   threads, and the run queue needs no lock.
//! * [`multi_thread`]: N worker threads, each with its own run queue, a
//!   shared injection queue for tasks woken from outside, and work stealing.
//!   One idle worker at a time drives the reactor.

pub(crate) mod current_thread;
pub(crate) mod multi_thread;
pub(crate) mod parker;

use std::future::Future;
use std::sync::Arc;

use crate::blocking::BlockingPool;
use crate::reactor::Reactor;
use crate::task::JoinHandle;

/// A cheap, clonable reference to a runtime's shared state.
#[derive(Clone, Debug)]
pub(crate) enum Handle {
    CurrentThread(Arc<current_thread::Shared>),
    MultiThread(Arc<multi_thread::Shared>),
}

impl Handle {
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Handle::CurrentThread(shared) => current_thread::Shared::spawn(shared, future),
            Handle::MultiThread(shared) => multi_thread::Shared::spawn(shared, future),
        }
    }

    pub(crate) fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.blocking().spawn(f)
    }

    pub(crate) fn reactor(&self) -> &Arc<Reactor> {
        match self {
            Handle::CurrentThread(shared) => &shared.reactor,
            Handle::MultiThread(shared) => &shared.reactor,
        }
    }

    pub(crate) fn blocking(&self) -> &Arc<BlockingPool> {
        match self {
            Handle::CurrentThread(shared) => &shared.blocking,
            Handle::MultiThread(shared) => &shared.blocking,
        }
    }

    pub(crate) fn num_alive_tasks(&self) -> usize {
        match self {
            Handle::CurrentThread(shared) => shared.owned.len(),
            Handle::MultiThread(shared) => shared.owned.len(),
        }
    }
}

/// How often (in tasks run) a scheduler looks at the reactor even though
/// it still has tasks: I/O must not starve behind a long queue.
pub(crate) const EVENT_INTERVAL: u32 = 61;
/// How often (in tasks run) a scheduler takes from the shared queue first:
/// tasks woken from other threads must not starve behind local ones.
pub(crate) const GLOBAL_INTERVAL: u32 = 31;
