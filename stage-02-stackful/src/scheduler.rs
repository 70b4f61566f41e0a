//! The scheduler: every green thread of one runtime, the run queue, the
//! timer queue, the stack pool, and the loop that runs them all on one OS
//! thread.
//!
//! # The story of a green thread
//!
//! ```text
//!   spawn ──> Runnable ──(popped from run queue, fiber resumed)──> Running
//!                ^                                                  │
//!                │  yield_now: Switch::Yield (back of the queue) <──┤
//!                │                                                  │
//!                │  unpark / timer fired                            │ park: Switch::Park
//!                └─────────────────────────── Parked <──────────────┤
//!                                                                   │ closure returned
//!                                                                   v
//!                                      removed; stack back to the pool
//! ```
//!
//! A green thread is a stage-01 [`Fiber`]. "Running" it means calling
//! [`Fiber::resume`]; the thread gives the OS thread back by calling
//! `suspend` on its [`Suspender`] with a [`Switch`] that says why. Both
//! directions are one stage-01 context switch, so a `yield_now` from thread
//! A to thread B is two switches: A -> scheduler -> B.
//!
//! ```text
//!   OS thread stack                 fiber stacks
//!   ┌──────────────────┐   resume   ┌──────────┐ ┌──────────┐
//!   │ Runtime::block_on│ ─────────> │ thread A │ │ thread B │ ...
//!   │  scheduler loop  │ <───────── │          │ │          │
//!   └──────────────────┘  suspend   └──────────┘ └──────────┘
//! ```
//!
//! # Reaching the scheduler from a green thread
//!
//! Free functions (`spawn`, `yield_now`, `park`, ...) find the running
//! scheduler through one thread-local pointer, `CURRENT`, set for the length
//! of `block_on` and restored afterwards. That is the only per-runtime global
//! state, so several runtimes can run on several OS threads at once, and one
//! after another on the same OS thread.
//!
//! # No lost wake-ups: the unpark token
//!
//! `unpark(id)` on a thread that is not parked leaves a token; the next
//! `park()` of that thread consumes it and returns at once. So a wake-up that
//! arrives "too early" is never lost. In exchange `park` may return without
//! the awaited condition being true: callers always re-check in a loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::num::NonZeroU64;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fibers::{Fiber, FiberResult, Suspender};

use crate::driver::{Driver, POLL_INTERVAL};
use crate::slab::Slab;
use crate::stack_pool::{PoolStats, StackPool};
use crate::timer::TimerQueue;
use crate::{Error, GreenId};

/// What the scheduler passes into a green thread when it resumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Carry on.
    Run,
    /// The runtime is shutting down: unwind your stack (dropping every local)
    /// and finish. Delivered at `block_on`'s end to threads still alive.
    Cancel,
}

/// Why a green thread handed the OS thread back to the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// Still runnable: go to the back of the run queue.
    Yield,
    /// Waiting for an `unpark` (from another thread, a timer or the driver).
    Park,
}

/// A green thread's fiber: resumed with [`Resume`], suspends with [`Switch`].
pub(crate) type GreenFiber = Fiber<Resume, Switch, ()>;
/// The handle a green thread uses to switch back to the scheduler.
pub(crate) type GreenSuspender = Suspender<Resume, Switch>;

/// The panic payload that unwinds a cancelled green thread.
#[derive(Debug)]
pub(crate) struct Cancelled;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the run queue (exactly once).
    Runnable,
    /// Its fiber is executing right now.
    Running,
    /// Waiting for `unpark`; in no queue.
    Parked,
}

/// The scheduler's record of one green thread.
struct Thread {
    serial: NonZeroU64,
    /// `None` while the thread runs: the scheduler holds the fiber then.
    fiber: Option<GreenFiber>,
    state: State,
    /// An `unpark` arrived while the thread was not parked.
    unpark_token: bool,
    /// The thread's own suspender, recorded when its fiber first runs.
    suspender: *const GreenSuspender,
    /// Key of the timer entry that may wake this thread (0 = none).
    timer_key: u64,
    /// Cancellation has been delivered (the thread is unwinding).
    cancelled: bool,
    /// Cancelled before its closure ever ran: its entry only drops the
    /// closure, so no later block in it is unwound.
    never_ran: bool,
}

impl std::fmt::Debug for Thread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thread")
            .field("serial", &self.serial)
            .field("state", &self.state)
            .field("unpark_token", &self.unpark_token)
            .field("timer_key", &self.timer_key)
            .finish_non_exhaustive()
    }
}

/// Serial numbers of green threads: unique in the process, never reused, so
/// a `GreenId` can never name the wrong thread. (A counter is the only
/// process-wide state of this crate.)
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

fn next_serial() -> NonZeroU64 {
    let n = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
    NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN)
}

thread_local! {
    /// The scheduler whose `block_on` is running on this OS thread, or null.
    static CURRENT: Cell<*const Scheduler> = const { Cell::new(ptr::null()) };
}

/// Calls `f` with the running scheduler, or returns `None` outside one.
#[inline(always)]
pub(crate) fn with_current<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
    let scheduler = CURRENT.with(Cell::get);
    if scheduler.is_null() {
        return None;
    }
    // SAFETY: `CURRENT` is non-null only between `Scheduler::enter` and the
    // drop of the guard it returns; `enter` takes `&self` and the guard
    // borrows it, so the scheduler is alive and not mutably borrowed
    // (all its mutable state sits behind `Cell`/`RefCell`).
    Some(f(unsafe { &*scheduler }))
}

/// Like [`with_current`], but outside a runtime panics with a message naming
/// `what` (calling a runtime function there is a programming error).
#[inline(always)]
pub(crate) fn expect_current<R>(what: &str, f: impl FnOnce(&Scheduler) -> R) -> R {
    match with_current(f) {
        Some(r) => r,
        None => panic!(
            "green::{what} called outside a green-thread runtime (run it inside Runtime::block_on)"
        ),
    }
}

/// Restores the previous `CURRENT` (and the scheduler's `outer`) when dropped.
#[derive(Debug)]
pub(crate) struct EnterGuard<'a> {
    previous: *const Scheduler,
    previous_outer: *const Scheduler,
    scheduler: &'a Scheduler,
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
        self.scheduler.outer.set(self.previous_outer);
    }
}

/// Marks "a nested fiber (a [`Generator`](crate::Generator)) is running on
/// top of the current green thread" for as long as it lives.
#[derive(Debug)]
pub(crate) struct NestedFiberGuard(());

impl NestedFiberGuard {
    pub(crate) fn enter() -> Self {
        with_current(|s| s.nested_fibers.set(s.nested_fibers.get() + 1));
        NestedFiberGuard(())
    }
}

impl Drop for NestedFiberGuard {
    fn drop(&mut self) {
        with_current(|s| s.nested_fibers.set(s.nested_fibers.get() - 1));
    }
}

/// All the state of one runtime. Owned by [`Runtime`](crate::Runtime).
#[derive(Debug)]
pub(crate) struct Scheduler {
    threads: RefCell<Slab<Thread>>,
    /// FIFO of runnable threads: fair, and the order tests rely on.
    run_queue: RefCell<VecDeque<GreenId>>,
    timers: RefCell<TimerQueue>,
    stacks: RefCell<StackPool>,
    driver: RefCell<Box<dyn Driver>>,
    /// The green thread whose fiber is executing, if any.
    running: Cell<Option<GreenId>>,
    /// Its suspender (null when no green thread runs).
    running_suspender: Cell<*const GreenSuspender>,
    /// Generators currently resumed on top of the running green thread.
    nested_fibers: Cell<u32>,
    /// While this runtime runs inside a green thread of another one: that
    /// one (null otherwise), so a wake-up for one of its threads reaches it.
    outer: Cell<*const Scheduler>,
}

impl Scheduler {
    pub(crate) fn new(stack_size: usize, max_idle_stacks: usize, driver: Box<dyn Driver>) -> Self {
        Scheduler {
            threads: RefCell::new(Slab::new()),
            run_queue: RefCell::new(VecDeque::new()),
            timers: RefCell::new(TimerQueue::new()),
            stacks: RefCell::new(StackPool::new(stack_size, max_idle_stacks)),
            driver: RefCell::new(driver),
            running: Cell::new(None),
            running_suspender: Cell::new(ptr::null()),
            nested_fibers: Cell::new(0),
            outer: Cell::new(ptr::null()),
        }
    }

    /// Makes this the current scheduler of the OS thread until the guard
    /// drops. A runtime entered while another one is current runs inside
    /// it (in one of its green threads), which stays alive meanwhile: it is
    /// remembered as `outer`. (Teardown enters its own, already current,
    /// scheduler again: that is no nesting.)
    pub(crate) fn enter(&self) -> EnterGuard<'_> {
        let previous = CURRENT.with(|c| c.replace(self));
        let previous_outer = self.outer.get();
        if !ptr::eq(previous, self) {
            self.outer.set(previous);
        }
        EnterGuard {
            previous,
            previous_outer,
            scheduler: self,
        }
    }

    pub(crate) fn stack_stats(&self) -> PoolStats {
        self.stacks.borrow().stats()
    }

    pub(crate) fn driver_mut(&mut self) -> &mut dyn Driver {
        &mut **self.driver.get_mut()
    }

    /// The installed driver, mutably borrowed for the length of `f`.
    pub(crate) fn with_driver<R>(&self, f: impl FnOnce(&mut dyn Driver) -> R) -> R {
        let mut driver = self.driver.try_borrow_mut().unwrap_or_else(|_| {
            panic!("green::with_driver: the driver is already in use (nested with_driver?)")
        });
        f(&mut **driver)
    }

    // ANCHOR: spawn
    /// Creates a green thread that will run `entry` on a pooled stack, and
    /// queues it at the back of the run queue.
    pub(crate) fn spawn_fiber<F>(&self, entry: F) -> io::Result<GreenId>
    where
        F: FnOnce(&GreenSuspender, Resume) + 'static,
    {
        let stack = self.stacks.borrow_mut().get()?;
        let fiber = GreenFiber::with_stack(stack, entry);
        let serial = next_serial();
        let slot = self.threads.borrow_mut().insert(Thread {
            serial,
            fiber: Some(fiber),
            state: State::Runnable,
            unpark_token: false,
            suspender: ptr::null(),
            timer_key: 0,
            cancelled: false,
            never_ran: false,
        });
        let id = GreenId::new(slot, serial);
        self.run_queue.borrow_mut().push_back(id);
        Ok(id)
    }
    // ANCHOR_END: spawn

    /// Called by a green thread's entry closure when its fiber first runs.
    pub(crate) fn register_suspender(&self, suspender: &GreenSuspender) {
        let suspender: *const GreenSuspender = suspender;
        self.running_suspender.set(suspender);
        if let Some(id) = self.running.get()
            && let Some(thread) = self.threads.borrow_mut().get_mut(id.slot())
        {
            thread.suspender = suspender;
        }
    }

    /// The running green thread, if any.
    pub(crate) fn running(&self) -> Option<GreenId> {
        self.running.get()
    }

    #[inline]
    fn running_or_panic(&self, what: &str) -> GreenId {
        match self.running.get() {
            Some(id) => id,
            None => panic!("green::{what} must be called from a green thread"),
        }
    }

    // ANCHOR: switch_out
    /// Hands the OS thread from the running green thread back to the
    /// scheduler, and returns when the scheduler resumes it.
    #[inline(always)]
    fn switch_out(&self, why: Switch, what: &str) {
        assert!(
            self.nested_fibers.get() == 0,
            "green::{what} cannot block from inside a Generator (it runs on its own fiber)"
        );
        // Only `with_driver` can hold the driver while a green thread runs;
        // the scheduler needs it as soon as this thread blocks.
        assert!(
            self.driver.try_borrow_mut().is_ok(),
            "green::{what} cannot block inside with_driver (the driver stays borrowed)"
        );
        let id = self.running_or_panic(what);
        let suspender = self.running_suspender.get();
        assert!(
            !suspender.is_null(),
            "green::{what}: the running green thread has no suspender"
        );
        // SAFETY: `running_suspender` is set only while the fiber of the
        // running green thread executes (the scheduler clears it whenever a
        // resume returns), and points at that fiber's `Suspender`, which lives
        // in the fiber's root frame until its closure returns. We execute on
        // that fiber's own stack: no nested fiber is active (checked above).
        let resumed_with = unsafe { &*suspender }.suspend(why);
        if resumed_with == Resume::Cancel {
            self.unwind_cancelled(id);
        }
    }
    // ANCHOR_END: switch_out

    /// Starts unwinding a cancelled green thread.
    fn unwind_cancelled(&self, id: GreenId) {
        let (first_time, never_ran) =
            self.threads
                .borrow_mut()
                .get_mut(id.slot())
                .map_or((false, true), |thread| {
                    (
                        !std::mem::replace(&mut thread.cancelled, true),
                        thread.never_ran,
                    )
                });
        // After the first delivery, a block inside a destructor that runs
        // during the unwind must not panic again (that would abort), so it
        // gets a spurious wake-up. But if no unwind is in flight, the thread
        // caught the cancellation (a `catch_unwind` around a blocking call,
        // as a supervisor loop has) and blocks again in ordinary code: a
        // wake-up would only let it loop, and teardown would spin for ever,
        // so it is cancelled again. (`panicking()` counts every unwind on the
        // OS thread: while another green thread is parked half-way through
        // its own unwind, this one gets spurious wake-ups until that ends.)
        if !never_ran && (first_time || !std::thread::panicking()) {
            // `resume_unwind` runs destructors without calling the panic hook:
            // a cancellation is not an error worth printing.
            std::panic::resume_unwind(Box::new(Cancelled));
        }
    }

    /// `yield_now`: go to the back of the run queue.
    #[inline(always)]
    pub(crate) fn yield_now(&self) {
        self.switch_out(Switch::Yield, "yield_now");
    }

    // ANCHOR: park
    /// `park`: sleep until unparked (or return at once if a token is waiting).
    #[inline]
    pub(crate) fn park(&self) {
        // ANCHOR: lab_2_2_park
        let id = self.running_or_panic("park");
        if let Some(thread) = self.threads.borrow_mut().get_mut(id.slot())
            && std::mem::take(&mut thread.unpark_token)
        {
            return;
        }
        self.switch_out(Switch::Park, "park");
        // ANCHOR_END: lab_2_2_park
    }

    /// `unpark`: make `id` runnable, or leave it a token if it is not parked.
    /// Returns `false` if `id` names no live thread of this runtime.
    pub(crate) fn unpark(&self, id: GreenId) -> bool {
        // ANCHOR: lab_2_2_unpark
        let mut threads = self.threads.borrow_mut();
        let Some(thread) = threads
            .get_mut(id.slot())
            .filter(|t| t.serial == id.serial())
        else {
            return false;
        };
        match thread.state {
            State::Parked => {
                thread.state = State::Runnable;
                drop(threads);
                self.run_queue.borrow_mut().push_back(id);
            }
            State::Runnable | State::Running => thread.unpark_token = true,
        }
        true
        // ANCHOR_END: lab_2_2_unpark
    }
    // ANCHOR_END: park

    /// `unpark` for a thread of this runtime or of one it runs inside: a
    /// channel, a join or a plain id may be shared between a runtime and a
    /// runtime nested in one of its green threads, and a wake-up sent from
    /// the inner one must not be lost. (Serials are unique in the process,
    /// so no other runtime's thread can answer for `id`.)
    pub(crate) fn unpark_here_or_outside(&self, id: GreenId) -> bool {
        let mut scheduler = self;
        loop {
            if scheduler.unpark(id) {
                return true;
            }
            let outer = scheduler.outer.get();
            if outer.is_null() {
                return false;
            }
            // SAFETY: `outer` is set only while this scheduler is entered
            // from inside a green thread of `outer`, whose `block_on` (and
            // so the scheduler) lives until that green thread returns; the
            // guard of that `enter` resets it. `outer` holds no
            // `RefCell` borrow across the resume of its green thread.
            scheduler = unsafe { &*outer };
        }
    }

    /// `park` with a timer entry that unparks the thread at `deadline`.
    pub(crate) fn park_until(&self, deadline: Instant) {
        let id = self.running_or_panic("park_until");
        let key = self.timers.borrow_mut().insert(deadline, id);
        self.set_timer_key(id, key);
        self.park();
        // Woken early? Then the entry is stale from now on.
        self.set_timer_key(id, 0);
        self.drop_stale_timers_if_most_are();
    }

    /// Drops every stale timer entry once they outnumber the live ones, so
    /// that a thread woken early again and again (a long read timeout on a
    /// busy socket) cannot grow the queue until its deadlines pass. Each
    /// thread holds at most one live entry: a queue longer than twice the
    /// thread count is mostly stale, and the O(n) pass comes only after at
    /// least n/2 early wake-ups.
    fn drop_stale_timers_if_most_are(&self) {
        /// Below this many extra entries a pass is not worth it.
        const SLACK: usize = 64;
        let threads = self.threads.borrow();
        let mut timers = self.timers.borrow_mut();
        if timers.len() <= 2 * threads.len() + SLACK {
            return;
        }
        timers.retain(|entry| {
            threads
                .get(entry.thread.slot())
                .is_some_and(|t| t.serial == entry.thread.serial() && t.timer_key == entry.key)
        });
    }

    fn set_timer_key(&self, id: GreenId, key: u64) {
        if let Some(thread) = self.threads.borrow_mut().get_mut(id.slot()) {
            thread.timer_key = key;
        }
    }

    fn is_parked(&self, id: GreenId) -> bool {
        self.threads
            .borrow()
            .get(id.slot())
            .is_some_and(|t| t.serial == id.serial() && t.state == State::Parked)
    }

    /// Whether a timer entry still belongs to a thread parked on it.
    fn timer_is_live(&self, thread: GreenId, key: u64) -> bool {
        self.threads
            .borrow()
            .get(thread.slot())
            .is_some_and(|t| t.serial == thread.serial() && t.timer_key == key)
    }

    // ANCHOR: fire_timers
    /// Unparks every thread whose deadline has passed.
    #[inline(always)]
    fn fire_timers(&self) {
        // The common case (no timers) costs one check, not a call.
        if !self.timers.borrow().is_empty() {
            self.fire_expired_timers();
        }
    }

    fn fire_expired_timers(&self) {
        let now = Instant::now();
        loop {
            let entry = {
                let mut timers = self.timers.borrow_mut();
                match timers.peek() {
                    Some(entry) if entry.deadline <= now => timers.pop(),
                    _ => None,
                }
            };
            let Some(entry) = entry else { break };
            if self.timer_is_live(entry.thread, entry.key) {
                self.set_timer_key(entry.thread, 0);
                // Already made runnable by someone else? Then leave no token:
                // the thread is about to see its deadline passed anyway.
                if self.is_parked(entry.thread) {
                    self.unpark(entry.thread);
                }
            }
        }
    }

    /// The earliest deadline of a live timer entry (stale ones are dropped).
    fn next_deadline(&self) -> Option<Instant> {
        loop {
            let entry = self.timers.borrow().peek()?;
            if self.timer_is_live(entry.thread, entry.key) {
                return Some(entry.deadline);
            }
            self.timers.borrow_mut().pop();
        }
    }
    // ANCHOR_END: fire_timers

    // ANCHOR: run_one
    /// Resumes one runnable green thread and files it by what it did.
    #[inline(always)]
    fn run_one(&self, id: GreenId, input: Resume) {
        let mut fiber = {
            let mut threads = self.threads.borrow_mut();
            let Some(thread) = threads
                .get_mut(id.slot())
                .filter(|t| t.serial == id.serial())
            else {
                return; // finished meanwhile (possible only during teardown)
            };
            thread.state = State::Running;
            if input == Resume::Cancel && thread.suspender.is_null() {
                // Never started: its entry only drops the closure, already a
                // cancellation, so a blocking destructor there must not be
                // unwound again.
                thread.cancelled = true;
                thread.never_ran = true;
            }
            self.running_suspender.set(thread.suspender);
            match thread.fiber.take() {
                Some(fiber) => fiber,
                // Only a panic out of an earlier `resume` (a bug) can lose a
                // fiber: forget the record rather than loop on it.
                None => {
                    threads.remove(id.slot());
                    return;
                }
            }
        };
        self.running.set(Some(id));
        // No `RefCell` borrow is held across the switch: the green thread
        // freely uses the scheduler while it runs.
        let result = fiber.resume(input);
        self.running.set(None);
        self.running_suspender.set(ptr::null());

        let mut threads = self.threads.borrow_mut();
        match result {
            FiberResult::Yield(why) => {
                let Some(thread) = threads.get_mut(id.slot()) else {
                    unreachable!("a suspended green thread lost its record");
                };
                thread.fiber = Some(fiber);
                match why {
                    Switch::Yield => {
                        thread.state = State::Runnable;
                        drop(threads);
                        self.run_queue.borrow_mut().push_back(id);
                    }
                    // `park` consumed any token before switching, and no one
                    // else ran in between, so there is none now.
                    Switch::Park => thread.state = State::Parked,
                }
            }
            FiberResult::Return(()) => {
                threads.remove(id.slot());
                drop(threads);
                self.stacks.borrow_mut().put(fiber.into_stack());
            }
        }
    }
    // ANCHOR_END: run_one

    // ANCHOR: run_until
    /// The scheduler loop: runs green threads until `done()` (checked after
    /// every switch), sleeping in the driver when nothing is runnable.
    pub(crate) fn run_until(&self, done: impl Fn() -> bool) -> Result<(), Error> {
        // ANCHOR: lab_2_1_run_loop
        let mut switches: u32 = 0;
        loop {
            self.fire_timers();
            let next = self.run_queue.borrow_mut().pop_front();
            if let Some(id) = next {
                // Poll phase: run one green thread until it yields, parks or ends.
                self.run_one(id, Resume::Run);
                if done() {
                    return Ok(());
                }
                switches += 1;
                if switches == POLL_INTERVAL {
                    switches = 0;
                    self.poll_driver(Some(Duration::ZERO))?;
                }
                continue;
            }
            // Nothing runnable. Can anything ever wake a parked thread?
            let next_deadline = self.next_deadline();
            if next_deadline.is_none() && !self.driver.borrow().has_waiters() {
                return Err(Error::Deadlock {
                    parked: self.threads.borrow().len(),
                });
            }
            // Wait phase: block in the driver until an event or the next timer.
            let timeout = next_deadline.map(|d| d.saturating_duration_since(Instant::now()));
            self.poll_driver(timeout)?;
        }
        // ANCHOR_END: lab_2_1_run_loop
    }

    /// Lets the driver block for up to `timeout`; wake phase: every id it
    /// reports is unparked.
    fn poll_driver(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let mut driver = self.driver.borrow_mut();
        if timeout == Some(Duration::ZERO) && !driver.has_waiters() {
            return Ok(());
        }
        driver
            .wait(timeout, &mut |id| {
                self.unpark(id);
            })
            .map_err(Error::Driver)
    }
    // ANCHOR_END: run_until

    // ANCHOR: teardown
    /// Cancels every green thread still alive: each is resumed with
    /// [`Resume::Cancel`], unwinds its stack (dropping its locals) and ends;
    /// its stack goes back to the pool. Threads spawned meanwhile are
    /// cancelled too. (Destructors that wait on each other in a cycle still
    /// spin here forever: that is a deadlock no scheduler can break.)
    pub(crate) fn teardown(&self) {
        let _enter = self.enter();
        self.run_queue.borrow_mut().clear();
        self.timers.borrow_mut().clear();
        loop {
            let alive: Vec<GreenId> = {
                let threads = self.threads.borrow();
                threads
                    .keys()
                    .into_iter()
                    .filter_map(|slot| threads.get(slot).map(|t| GreenId::new(slot, t.serial)))
                    .collect()
            };
            if alive.is_empty() {
                break;
            }
            // One turn each, round after round. A thread whose destructor
            // blocks again (it yields, or joins a thread cancelled later in
            // the round) gets `Cancel` again as a spurious wake-up in the
            // next round, after the others have had their turn: resuming it
            // alone until it ends would spin forever on a thread it waits for.
            for id in alive {
                self.run_one(id, Resume::Cancel);
            }
        }
        self.run_queue.borrow_mut().clear();
    }
    // ANCHOR_END: teardown
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // `block_on` always tears down; this is for a panic that escaped it.
        if self.threads.get_mut().len() > 0 {
            self.teardown();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::with_current;

    /// How many entries the running scheduler's timer queue holds.
    fn timer_entries() -> usize {
        with_current(|s| s.timers.borrow().len()).expect("inside a runtime")
    }

    /// A thread that waits with a long timeout but is always woken early
    /// (a read timeout on a busy socket) leaves an entry behind each time:
    /// the queue must not keep them all until their deadlines pass.
    #[test]
    fn timer_entries_of_waits_ended_early_do_not_pile_up() {
        const WAITS: usize = 10_000;
        let most = crate::Runtime::new()
            .block_on(|| {
                let waiter = crate::current();
                let _waker = crate::spawn(move || {
                    for _ in 0..WAITS {
                        crate::unpark(waiter);
                        crate::yield_now();
                    }
                });
                let mut most = 0;
                for _ in 0..WAITS {
                    crate::park_timeout(Duration::from_secs(3600));
                    most = most.max(timer_entries());
                }
                most
            })
            .expect("block_on");
        assert!(
            most <= 1000,
            "{most} timer entries were queued at once for 2 green threads, each \
             waiting on at most one"
        );
    }
}
