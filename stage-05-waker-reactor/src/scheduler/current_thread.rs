//! The current-thread flavour: one thread runs every task and the reactor.
//!
//! ```text
//!   block_on(main) loop:
//!     ┌─> main future woken?  poll it (Ready: return its output)
//!     │   run up to EVENT_INTERVAL tasks from the run queue  (poll phase)
//!     │     (every GLOBAL_INTERVAL-th from the remote queue first)
//!     │   nothing left to run?  Driver::park(until next timer)  (wait phase)
//!     │   otherwise             Driver::park(zero timeout)
//!     │     └ events and due timers wake tasks -> run queue      (wake phase)
//!     └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! Two queues: the *local* run queue, touched only by the `block_on` thread
//! (a plain `VecDeque` in a `RefCell`), and the *remote* queue for wakes
//! from other threads (a `VecDeque` under a `Mutex`), after which the waking
//! thread calls [`Reactor::unpark`] to end a wait phase.
//!
//! The "core" (local queue and driver) is owned by whichever thread is in
//! `block_on`. If a second thread calls `block_on` meanwhile, it polls its
//! own future on its own thread and takes the core over when it is free.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use super::{EVENT_INTERVAL, GLOBAL_INTERVAL, Handle};
use crate::blocking::BlockingPool;
use crate::context::{self, SchedulerRef};
use crate::reactor::{Driver, Reactor};
use crate::task::{JoinHandle, Notified, OwnedTasks, Schedule};

/// State shared by the runtime, its handles and its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    remote: Mutex<Remote>,
    pub(crate) owned: OwnedTasks,
    pub(crate) reactor: Arc<Reactor>,
    pub(crate) blocking: Arc<BlockingPool>,
    /// `None` while a thread is in `block_on` (it owns the core).
    core: Mutex<Option<Box<Core>>>,
    /// Threads in `block_on` waiting for the core.
    core_waiters: Mutex<Vec<Thread>>,
}

#[derive(Debug, Default)]
struct Remote {
    queue: VecDeque<Notified>,
    closed: bool,
}

/// What the `block_on` thread owns: the local run queue and the driver.
#[derive(Debug)]
pub(crate) struct Core {
    /// Identity of the runtime, to tell whether a wake is for this core.
    shared: *const Shared,
    run_queue: RefCell<VecDeque<Notified>>,
    driver: RefCell<Driver>,
    tick: Cell<u32>,
}

// SAFETY: a `Core` moves between threads only through `Shared::core`, and
// only while no thread uses it; the `Notified`s inside are `Send`.
unsafe impl Send for Core {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs under these locks, so poisoning cannot leave the
    // queues half-updated.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(blocking: Arc<BlockingPool>) -> std::io::Result<Arc<Shared>> {
        let driver = Driver::new()?;
        let reactor = driver.reactor().clone();
        Ok(Arc::new_cyclic(|weak| Shared {
            remote: Mutex::default(),
            owned: OwnedTasks::default(),
            reactor,
            blocking,
            core: Mutex::new(Some(Box::new(Core {
                shared: weak.as_ptr(),
                run_queue: RefCell::new(VecDeque::with_capacity(256)),
                driver: RefCell::new(driver),
                tick: Cell::new(0),
            }))),
            core_waiters: Mutex::default(),
        }))
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

    fn schedule_remote(&self, task: Notified) {
        let mut remote = lock(&self.remote);
        if remote.closed {
            drop(remote);
            drop(task); // shut down: the task was cancelled already
            return;
        }
        remote.queue.push_back(task);
        drop(remote);
        self.reactor.unpark();
    }

    fn pop_remote(&self) -> Option<Notified> {
        lock(&self.remote).queue.pop_front()
    }

    fn take_core(&self) -> Option<Box<Core>> {
        lock(&self.core).take()
    }

    // ANCHOR: block_on
    pub(crate) fn block_on<F: Future>(this: &Arc<Shared>, future: F) -> F::Output {
        let _block_on = context::enter_block_on();
        let _handle = context::enter(Handle::CurrentThread(this.clone()));
        let _stage04 = crate::stage04::install(&this.reactor);
        let mut future = std::pin::pin!(future);
        loop {
            if let Some(core) = this.take_core() {
                let guard = CoreGuard {
                    shared: this,
                    core: Some(core),
                };
                return guard.run(future);
            }
            // Another thread drives the tasks: poll our future here until it
            // is done or the core is free.
            let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
            if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
                return output;
            }
            {
                // Once per thread: this loop comes here after every wake.
                let me = thread::current();
                let mut waiters = lock(&this.core_waiters);
                if !waiters.iter().any(|t| t.id() == me.id()) {
                    waiters.push(me);
                }
            }
            if lock(&this.core).is_none() {
                thread::park();
            }
        }
    }
    // ANCHOR_END: block_on

    // ANCHOR: shutdown
    /// Runtime shutdown. See [`crate::Runtime`]'s `Drop`.
    pub(crate) fn shutdown(this: &Arc<Shared>) {
        let _handle = context::enter(Handle::CurrentThread(this.clone()));
        let _stage04 = crate::stage04::install(&this.reactor);
        // Drop every task's future. Their destructors may wake or spawn:
        // wakes land on the remote queue (drained below), spawns are refused.
        this.owned.close_and_shutdown_all();
        let queued = {
            let mut remote = lock(&this.remote);
            remote.closed = true;
            std::mem::take(&mut remote.queue)
        };
        drop(queued);
        this.blocking.shutdown();
        this.reactor.stage04_fds.clear(&this.reactor);
        this.reactor.shutdown();
        // Finally the core: its queued references and the driver (mio Poll).
        let core = this.take_core();
        if let Some(core) = core {
            let queued = std::mem::take(&mut *core.run_queue.borrow_mut());
            drop(queued);
            drop(core);
        }
    }
    // ANCHOR_END: shutdown
}

impl Schedule for Arc<Shared> {
    // ANCHOR: schedule
    fn schedule(&self, task: Notified) {
        if let SchedulerRef::CurrentThread(core) = context::scheduler() {
            // SAFETY: the pointer is set only while the `Core` it points to
            // is owned by this thread's `block_on` (see `CoreGuard::run`).
            let core = unsafe { &*core };
            if std::ptr::eq(core.shared, Arc::as_ptr(self)) {
                core.run_queue.borrow_mut().push_back(task);
                return;
            }
        }
        self.schedule_remote(task);
    }
    // ANCHOR_END: schedule

    fn release(&self, task: &crate::task::core::Header) -> bool {
        self.owned.remove(task)
    }
}

/// Owns the core while a thread runs `block_on`; gives it back on drop,
/// also when a task or the main future panics.
struct CoreGuard<'a> {
    shared: &'a Arc<Shared>,
    core: Option<Box<Core>>,
}

impl CoreGuard<'_> {
    // ANCHOR: run_loop
    fn run<F: Future>(self, mut future: Pin<&mut F>) -> F::Output {
        let core: &Core = self.core.as_deref().expect("the guard holds the core");
        let shared = self.shared;
        let _scheduler = context::set_scheduler(SchedulerRef::CurrentThread(core));
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            reactor: shared.reactor.clone(),
        });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);

        // Polls (of tasks and of the main future) since the reactor was
        // last asked for events.
        let mut since_driver = 0;
        loop {
            // AcqRel: pairs with the waker's store, so what the waking
            // thread wrote before waking is visible to this poll.
            if main.woken.swap(false, AcqRel) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
                since_driver += 1;
            }
            // Poll phase: run what is queued, a bounded number at a time.
            let mut ran_out = false;
            for _ in 0..EVENT_INTERVAL {
                match core.next_task(shared) {
                    Some(task) => task.run(),
                    None => {
                        ran_out = true;
                        break;
                    }
                }
                since_driver += 1;
            }
            // (Relaxed: only a hint; `may_block` checks again with SeqCst
            // after announcing the park, which is what rules out a lost wake.)
            if ran_out && !main.woken.load(Relaxed) {
                // Wait phase: nothing to run. Sleep in epoll until an event,
                // the next timer, or a wake from another thread.
                core.driver.borrow_mut().park(None, || {
                    !main.woken.load(SeqCst) && lock(&shared.remote).queue.is_empty()
                });
                since_driver = 0;
            } else if since_driver >= EVENT_INTERVAL {
                // Busy for a while (a long queue, or a main future that
                // keeps waking itself): collect ready I/O and due timers
                // without sleeping, so the tasks waiting on them get a turn.
                core.driver.borrow_mut().park(Some(Duration::ZERO), || true);
                since_driver = 0;
            }
        }
    }
    // ANCHOR_END: run_loop
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.shared.core) = self.core.take();
        for waiter in lock(&self.shared.core_waiters).drain(..) {
            waiter.unpark();
        }
    }
}

impl Core {
    fn next_task(&self, shared: &Shared) -> Option<Notified> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick.is_multiple_of(GLOBAL_INTERVAL) {
            shared.pop_remote().or_else(|| self.pop_local())
        } else {
            self.pop_local().or_else(|| shared.pop_remote())
        }
    }

    fn pop_local(&self) -> Option<Notified> {
        self.run_queue.borrow_mut().pop_front()
    }
}

/// The waker of `block_on`'s own future: sets a flag the loop checks, and
/// ends a wait phase if the wake comes from another thread.
struct MainWaker {
    woken: AtomicBool,
    reactor: Arc<Reactor>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.reactor.unpark();
    }
}

/// Unparks a thread: the waker of a future polled outside any scheduler.
pub(crate) struct ThreadWaker(pub(crate) Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}
