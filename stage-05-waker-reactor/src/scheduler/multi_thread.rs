//! The multi-threaded flavour: N workers share the tasks.
//!
//! ```text
//!                 spawn / wake from a non-worker thread
//!                               |
//!                               v
//!                     +-------------------+
//!                     |  inject (Mutex)   |  <- every GLOBAL_INTERVAL-th task,
//!                     +-------------------+     or when the local queue is empty
//!                       |               |
//!          +------------v--+         +--v------------+
//!          | worker 0      |  steal  | worker 1      |
//!          | local queue   | <-----> | local queue   |   wake/spawn on a worker
//!          | (Mutex<Deque>)|  half   | (Mutex<Deque>)|   -> its own local queue
//!          +---------------+         +---------------+
//!                 \                     /
//!                  \  idle? try_lock   /
//!                   v                 v
//!                 +---------------------+
//!                 | driver (one Poll):  |  the first idle worker blocks in it
//!                 | I/O + timers        |  (wait phase); the others sleep on a
//!                 +---------------------+  condition variable
//! ```
//!
//! Finding work, in order: own queue, injection queue, steal half of another
//! worker's queue. Out of work, a worker *registers as a sleeper*, looks
//! once more (so a push that raced with the registration is not missed),
//! then parks: in the driver if no one else holds it, else on its own
//! condition variable. Whoever queues work that another worker could take
//! wakes one sleeper, unless a worker is already out searching.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use super::current_thread::ThreadWaker;
use super::parker::Parker;
use super::{EVENT_INTERVAL, GLOBAL_INTERVAL, Handle};
use crate::blocking::BlockingPool;
use crate::context::{self, SchedulerRef};
use crate::reactor::{Driver, Reactor};
use crate::task::{JoinHandle, Notified, OwnedTasks, Schedule};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The driver, if no other worker holds it. The driver's wake phase runs
/// wakers (user code) under this lock; they are contained (see `unwind`),
/// but should a panic ever get through, a poisoned lock must still read as
/// free: `Err` from `try_lock` would otherwise mean "someone else drives"
/// for ever, and no worker would ever wait in epoll again.
fn try_lock_driver(driver: &Mutex<Option<Driver>>) -> Option<MutexGuard<'_, Option<Driver>>> {
    match driver.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    inject: Mutex<Inject>,
    /// Length of `inject`, readable without the lock (a hint: the park path
    /// re-checks under the lock).
    inject_len: AtomicUsize,
    workers: Box<[WorkerShared]>,
    /// Indices of parked workers.
    sleepers: Mutex<Vec<usize>>,
    num_sleepers: AtomicUsize,
    /// Workers woken to look for work that have not found any yet.
    num_searching: AtomicUsize,
    driver: Mutex<Option<Driver>>,
    pub(crate) reactor: Arc<Reactor>,
    pub(crate) owned: OwnedTasks,
    pub(crate) blocking: Arc<BlockingPool>,
    shutdown: AtomicBool,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Inject {
    queue: VecDeque<Notified>,
    closed: bool,
}

#[derive(Debug)]
struct WorkerShared {
    queue: Mutex<VecDeque<Notified>>,
    /// Length of `queue`, a hint for thieves.
    len: AtomicUsize,
    parker: Parker,
}

/// What runs on a worker thread; the thread-local scheduler pointer points
/// here.
#[derive(Debug)]
pub(crate) struct WorkerCtx {
    shared: *const Shared,
    index: usize,
    tick: Cell<u32>,
    searching: Cell<bool>,
}

impl Shared {
    pub(crate) fn new(
        workers: usize,
        blocking: Arc<BlockingPool>,
        thread_name: &str,
    ) -> std::io::Result<Arc<Shared>> {
        let driver = Driver::new()?;
        let reactor = driver.reactor().clone();
        let workers = workers.max(1);
        let shared = Arc::new(Shared {
            inject: Mutex::default(),
            inject_len: AtomicUsize::new(0),
            workers: (0..workers)
                .map(|_| WorkerShared {
                    queue: Mutex::new(VecDeque::with_capacity(256)),
                    len: AtomicUsize::new(0),
                    parker: Parker::default(),
                })
                .collect(),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            num_sleepers: AtomicUsize::new(0),
            num_searching: AtomicUsize::new(0),
            driver: Mutex::new(Some(driver)),
            reactor,
            owned: OwnedTasks::default(),
            blocking,
            shutdown: AtomicBool::new(false),
            threads: Mutex::default(),
        });
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let worker_shared = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("{thread_name}-{index}"))
                .spawn(move || worker_shared.run_worker(index));
            match spawned {
                Ok(join) => threads.push(join),
                Err(error) => {
                    *lock(&shared.threads) = threads;
                    Shared::shutdown(&shared);
                    return Err(error);
                }
            }
        }
        *lock(&shared.threads) = threads;
        Ok(shared)
    }

    pub(crate) fn spawn<F>(this: &Arc<Shared>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (join, notified) = this.owned.spawn(future, this.clone());
        if let Some(notified) = notified {
            this.schedule(notified);
        }
        join
    }

    /// `block_on` in the multi-threaded flavour: the workers run the tasks;
    /// this thread only polls `future`, parking between wakes.
    pub(crate) fn block_on<F: Future>(this: &Arc<Shared>, future: F) -> F::Output {
        let _block_on = context::enter_block_on();
        let _handle = context::enter(Handle::MultiThread(this.clone()));
        let _stage04 = crate::stage04::install(&this.reactor);
        let mut future = std::pin::pin!(future);
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            thread::park();
        }
    }

    /// Runtime shutdown. See [`crate::Runtime`]'s `Drop`.
    pub(crate) fn shutdown(this: &Arc<Shared>) {
        this.shutdown.store(true, SeqCst);
        for worker in this.workers.iter() {
            worker.parker.unpark(|| this.reactor.wake());
        }
        let threads = std::mem::take(&mut *lock(&this.threads));
        let me = thread::current().id();
        for join in threads {
            if join.thread().id() != me {
                let _ = join.join(); // task panics are caught in the task
            }
        }
        // No other worker runs any more. If this thread is a worker (the
        // runtime is dropped by one of its own tasks), that task is RUNNING:
        // shutdown marks it CANCELLED and its runner drops its future when
        // the poll returns. Drop every other future now.
        let _handle = context::enter(Handle::MultiThread(this.clone()));
        let _stage04 = crate::stage04::install(&this.reactor);
        this.owned.close_and_shutdown_all();
        let queued = {
            let mut inject = lock(&this.inject);
            inject.closed = true;
            std::mem::take(&mut inject.queue)
        };
        drop(queued);
        for worker in this.workers.iter() {
            let queued = std::mem::take(&mut *lock(&worker.queue));
            drop(queued);
        }
        this.blocking.shutdown();
        this.reactor.stage04_fds.clear(&this.reactor);
        this.reactor.shutdown();
        let driver = lock(&this.driver).take();
        drop(driver);
    }

    fn push_inject(&self, task: Notified) {
        let mut inject = lock(&self.inject);
        if inject.closed {
            drop(inject);
            drop(task); // already cancelled by shutdown
            return;
        }
        inject.queue.push_back(task);
        self.inject_len.store(inject.queue.len(), Release);
        drop(inject);
        self.notify_one();
    }

    fn push_local(&self, index: usize, task: Notified) {
        let worker = &self.workers[index];
        let had_work = {
            let mut queue = lock(&worker.queue);
            queue.push_back(task);
            worker.len.store(queue.len(), Release);
            queue.len() > 1
        };
        // A single queued task will be run by this worker as soon as its
        // current poll returns; only a surplus is worth waking a thief for.
        if had_work {
            self.notify_one();
        }
    }

    // ANCHOR: notify_one
    /// Wake one parked worker, unless one is already searching for work.
    fn notify_one(&self) {
        if self.num_searching.load(SeqCst) != 0 || self.num_sleepers.load(SeqCst) == 0 {
            return;
        }
        let woken = {
            let mut sleepers = lock(&self.sleepers);
            let woken = sleepers.pop();
            if woken.is_some() {
                self.num_sleepers.fetch_sub(1, SeqCst);
                // Counted as searching from now on; it stops counting itself
                // when it finds work or parks again.
                self.num_searching.fetch_add(1, SeqCst);
            }
            woken
        };
        if let Some(index) = woken {
            self.workers[index].parker.unpark(|| self.reactor.wake());
        }
    }
    // ANCHOR_END: notify_one

    fn pop_local(&self, index: usize) -> Option<Notified> {
        let worker = &self.workers[index];
        if worker.len.load(Acquire) == 0 {
            return None;
        }
        let mut queue = lock(&worker.queue);
        let task = queue.pop_front();
        worker.len.store(queue.len(), Release);
        task
    }

    /// Take one task from the injection queue, and a fair share more into
    /// the local queue.
    fn pop_inject(&self, index: usize) -> Option<Notified> {
        if self.inject_len.load(Acquire) == 0 {
            return None;
        }
        let mut inject = lock(&self.inject);
        let task = inject.queue.pop_front()?;
        let share = (inject.queue.len() / self.workers.len()).min(64);
        if share > 0 {
            let batch: Vec<Notified> = inject.queue.drain(..share).collect();
            self.inject_len.store(inject.queue.len(), Release);
            drop(inject);
            let worker = &self.workers[index];
            let mut queue = lock(&worker.queue);
            queue.extend(batch);
            worker.len.store(queue.len(), Release);
        } else {
            self.inject_len.store(inject.queue.len(), Release);
        }
        Some(task)
    }

    // ANCHOR: steal
    /// Take half of the first non-empty queue of another worker.
    fn steal(&self, index: usize) -> Option<Notified> {
        let n = self.workers.len();
        for offset in 1..n {
            let victim = &self.workers[(index + offset) % n];
            if victim.len.load(Acquire) == 0 {
                continue;
            }
            let mut batch = {
                let mut queue = lock(&victim.queue);
                let take = queue.len().div_ceil(2);
                let batch: VecDeque<Notified> = queue.drain(..take).collect();
                victim.len.store(queue.len(), Release);
                batch
            };
            let Some(first) = batch.pop_front() else {
                continue;
            };
            if !batch.is_empty() {
                let worker = &self.workers[index];
                let mut queue = lock(&worker.queue);
                queue.extend(batch);
                worker.len.store(queue.len(), Release);
            }
            return Some(first);
        }
        None
    }
    // ANCHOR_END: steal

    fn next_task(&self, ctx: &WorkerCtx) -> Option<Notified> {
        let tick = ctx.tick.get();
        if tick.is_multiple_of(GLOBAL_INTERVAL)
            && let Some(task) = self.pop_inject(ctx.index)
        {
            return Some(task);
        }
        self.pop_local(ctx.index)
            .or_else(|| self.pop_inject(ctx.index))
            .or_else(|| self.steal(ctx.index))
    }

    /// Is any work queued anywhere? Looks under the locks (see `park`).
    fn has_work(&self) -> bool {
        !lock(&self.inject).queue.is_empty()
            || self.workers.iter().any(|w| !lock(&w.queue).is_empty())
    }

    fn stop_searching(&self, ctx: &WorkerCtx) {
        if ctx.searching.replace(false) && self.num_searching.fetch_sub(1, SeqCst) == 1 {
            // The last searcher found work; there may be more for others.
            self.notify_one();
        }
    }

    // ANCHOR: worker_loop
    fn run_worker(self: Arc<Self>, index: usize) {
        let _handle = context::enter(Handle::MultiThread(self.clone()));
        let ctx = WorkerCtx {
            shared: Arc::as_ptr(&self),
            index,
            tick: Cell::new(0),
            searching: Cell::new(false),
        };
        let _scheduler = context::set_scheduler(SchedulerRef::Worker(&ctx));
        let _stage04 = crate::stage04::install(&self.reactor);
        while !self.shutdown.load(Acquire) {
            let tick = ctx.tick.get().wrapping_add(1);
            ctx.tick.set(tick);
            if tick.is_multiple_of(EVENT_INTERVAL) {
                // Maintenance: collect ready I/O even while busy.
                let looked = match try_lock_driver(&self.driver) {
                    Some(mut guard) => match guard.as_mut() {
                        Some(driver) => {
                            driver.park(Some(Duration::ZERO), || true);
                            true
                        }
                        None => false,
                    },
                    None => false,
                };
                // We had the driver (now released), so no worker waits in
                // it. A sleeper that tried to take it while we held it
                // sleeps on its condvar instead, and I/O and timers would
                // wait for our next look (long, if our next task blocks):
                // wake it, so it finds no work and parks in the driver. Only
                // after the guard is dropped: woken while we still held it,
                // the sleeper would find it taken and sleep again.
                if looked && self.num_sleepers.load(SeqCst) > 0 {
                    self.notify_one();
                }
            }
            if let Some(task) = self.next_task(&ctx) {
                self.stop_searching(&ctx);
                task.run(); // poll phase
                continue;
            }
            self.park(&ctx);
        }
        if ctx.searching.replace(false) {
            self.num_searching.fetch_sub(1, SeqCst);
        }
    }
    // ANCHOR_END: worker_loop

    // ANCHOR: worker_park
    fn park(&self, ctx: &WorkerCtx) {
        let index = ctx.index;
        {
            let mut sleepers = lock(&self.sleepers);
            sleepers.push(index);
            self.num_sleepers.fetch_add(1, SeqCst);
        }
        // Registered as a sleeper: undo that however we leave, also by
        // unwinding, or notifiers would keep "waking" a worker that is gone
        // (and count it as searching, so they stop waking the others).
        let registered = SleeperGuard { shared: self, ctx };
        // A searcher that parks stops searching (after registering, so a
        // notifier that sees no searcher also sees this sleeper).
        if ctx.searching.replace(false) {
            self.num_searching.fetch_sub(1, SeqCst);
        }
        // Look again: a task pushed before we registered was pushed under a
        // queue lock we take now, so we see it; one pushed after will see
        // us in `sleepers` and wake us.
        if self.has_work() || self.shutdown.load(SeqCst) {
            return; // `registered` unregisters us
        }
        let parker = &self.workers[index].parker;
        let drove = match try_lock_driver(&self.driver) {
            Some(mut driver) => match driver.as_mut() {
                // Wait phase: block in epoll until I/O, a timer or an unpark.
                Some(driver) => {
                    parker.park_in_driver(|| driver.park(None, || true));
                    true
                }
                None => {
                    parker.park_on_condvar();
                    false
                }
            },
            // Another worker is in the wait phase already.
            None => {
                parker.park_on_condvar();
                false
            }
        };
        drop(registered);
        // Leaving the driver with work to do: wake a sleeper, which takes
        // the driver over (or a share of the work), so that I/O and timers
        // keep being served while this worker runs tasks.
        if drove && self.workers[index].len.load(Acquire) > 0 {
            self.notify_one();
        }
    }
    // ANCHOR_END: worker_park

    fn unregister_sleeper(&self, ctx: &WorkerCtx) {
        let mut sleepers = lock(&self.sleepers);
        if let Some(position) = sleepers.iter().position(|&i| i == ctx.index) {
            sleepers.swap_remove(position);
            self.num_sleepers.fetch_sub(1, SeqCst);
        } else {
            // A notifier took us out of the list and counted us as searching.
            ctx.searching.set(true);
        }
    }
}

/// Takes a parking worker out of the sleepers' list when dropped.
struct SleeperGuard<'a> {
    shared: &'a Shared,
    ctx: &'a WorkerCtx,
}

impl Drop for SleeperGuard<'_> {
    fn drop(&mut self) {
        self.shared.unregister_sleeper(self.ctx);
    }
}

impl Schedule for Arc<Shared> {
    fn schedule(&self, task: Notified) {
        if let SchedulerRef::Worker(ctx) = context::scheduler() {
            // SAFETY: the pointer is set only while the `WorkerCtx` lives on
            // this thread's stack (see `run_worker`).
            let ctx = unsafe { &*ctx };
            if std::ptr::eq(ctx.shared, Arc::as_ptr(self)) {
                self.push_local(ctx.index, task);
                return;
            }
        }
        self.push_inject(task);
    }

    fn release(&self, task: &crate::task::core::Header) -> bool {
        self.owned.remove(task)
    }
}
