//! `spawn_blocking`: a small pool of threads for work that blocks (file I/O,
//! DNS, CPU-heavy loops), so that it never blocks a thread that runs tasks.
//!
//! A blocking job is a task like any other (same cell, same `JoinHandle`,
//! same panic and cancel handling); its "future" runs the closure the first
//! time it is polled, and its scheduler is this pool: a queue under a mutex
//! and a condition variable. Threads are started on demand up to
//! `max_threads` and exit after `KEEP_ALIVE` without work.
//!
//! Shutdown cancels the jobs that have not started and waits for the
//! running ones to return (a thread cannot be interrupted).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use crate::context;
use crate::scheduler::Handle;
use crate::task::{self, JoinHandle, Notified, Schedule};

const KEEP_ALIVE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    condvar: Condvar,
    max_threads: usize,
    thread_name: String,
    /// The runtime's handle, made current on pool threads (so a blocking
    /// job can `spawn`). Cleared at shutdown to break the cycle
    /// runtime -> pool -> handle -> runtime.
    handle: Mutex<Option<Handle>>,
}

#[derive(Debug, Default)]
struct PoolState {
    queue: VecDeque<Notified>,
    threads: usize,
    idle: usize,
    /// Idle threads told to wake and not yet awake.
    wakeups: usize,
    shutdown: bool,
    joins: Vec<thread::JoinHandle<()>>,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, thread_name: String) -> Arc<BlockingPool> {
        Arc::new(BlockingPool {
            state: Mutex::default(),
            condvar: Condvar::new(),
            max_threads: max_threads.max(1),
            thread_name,
            handle: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // No user code runs under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_handle(&self, handle: Handle) {
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    pub(crate) fn spawn<F, T>(self: &Arc<Self>, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (join, notified) = task::spawn_unowned(BlockingJob(Some(f)), self.clone());
        self.schedule(notified);
        join
    }

    /// Cancel queued jobs, let running ones finish, join every thread.
    pub(crate) fn shutdown(&self) {
        let (queued, joins) = {
            let mut state = self.lock();
            state.shutdown = true;
            (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.joins),
            )
        };
        self.condvar.notify_all();
        for job in queued {
            job.shutdown();
        }
        let me = thread::current().id();
        for join in joins {
            if join.thread().id() != me {
                let _ = join.join(); // a job's panic was caught already
            }
        }
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(handle);
    }

    fn spawn_thread(self: &Arc<Self>, state: &mut PoolState) {
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(handle) = handle else {
            return;
        };
        let pool = self.clone();
        let spawned = thread::Builder::new()
            .name(self.thread_name.clone())
            .spawn(move || pool.run_thread(handle));
        // Out of threads (`Err`): the job waits in the queue for a running
        // thread, or, if none runs, for the next `spawn_blocking` to try
        // starting one again (or for shutdown, which cancels it).
        if let Ok(join) = spawned {
            state.joins.retain(|j| !j.is_finished());
            state.joins.push(join);
            state.threads += 1;
        }
    }

    fn run_thread(self: Arc<Self>, handle: Handle) {
        let _enter = context::enter(handle);
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job.run();
                state = self.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (guard, timeout) = self
                .condvar
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(|e| e.into_inner());
            state = guard;
            if state.wakeups > 0 {
                state.wakeups -= 1; // the pusher took us off `idle`
            } else {
                state.idle -= 1;
                if timeout.timed_out() && state.queue.is_empty() {
                    break;
                }
            }
        }
        state.threads -= 1;
    }
}

impl Schedule for Arc<BlockingPool> {
    fn schedule(&self, job: Notified) {
        let mut state = self.lock();
        if state.shutdown {
            drop(state);
            job.shutdown();
            return;
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.wakeups += 1;
            self.condvar.notify_one();
        } else if state.threads < self.max_threads {
            self.spawn_thread(&mut state);
        }
    }

    fn release(&self, _task: &crate::task::core::Header) -> bool {
        false // blocking jobs are not in the runtime's task list
    }
}

/// The future of a blocking job: runs the closure on its first poll.
struct BlockingJob<F>(Option<F>);

impl<F> Unpin for BlockingJob<F> {}

impl<F: FnOnce() -> T, T> Future for BlockingJob<F> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let f = self.0.take().expect("a blocking job runs once");
        Poll::Ready(f())
    }
}
