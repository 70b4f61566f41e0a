//! The reference count of a task, step by step, with schedulers that count
//! and check instead of running a real executor.
//!
//! A wrong count does not fail politely on its own: one reference too few
//! frees the task while a waker still points at it (use after free, then
//! an allocator abort that names no test); one too many leaks it. These
//! tests check the count after every step and fail with the step's name
//! and what each reference is for. On failure they leak what they hold
//! instead of dropping it, so the failure is reported, not an abort.

use std::collections::VecDeque;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::core::Header;
use super::{JoinHandle, Notified, Schedule, spawn_unowned};

/// Holds a value and drops it only if the test has not failed: a failed
/// check means the count is wrong, and dropping could free twice.
struct LeakOnPanic<T>(ManuallyDrop<T>);

impl<T> LeakOnPanic<T> {
    fn new(value: T) -> Self {
        LeakOnPanic(ManuallyDrop::new(value))
    }
    fn into_inner(mut self) -> T {
        // SAFETY: taken once; `self` is forgotten right after.
        let value = unsafe { ManuallyDrop::take(&mut self.0) };
        std::mem::forget(self);
        value
    }
}

impl<T> std::ops::Deref for LeakOnPanic<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for LeakOnPanic<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.0) };
        }
    }
}

#[derive(Default)]
struct Counters {
    freed: AtomicUsize,
}

/// A run queue that the test runs by hand; it counts freed tasks (the
/// scheduler lives in the task's cell and is dropped when the cell is).
#[derive(Clone, Default)]
struct Queue {
    tasks: Arc<Mutex<LeakOnPanic<VecDeque<Notified>>>>,
    counters: Arc<Counters>,
}

struct QueueScheduler(Queue);

impl Schedule for QueueScheduler {
    fn schedule(&self, task: Notified) {
        self.0.tasks.lock().unwrap().0.push_back(task);
    }
    fn release(&self, _: &Header) -> bool {
        false
    }
}

impl Drop for QueueScheduler {
    fn drop(&mut self) {
        self.0.counters.freed.fetch_add(1, SeqCst);
    }
}

impl Default for LeakOnPanic<VecDeque<Notified>> {
    fn default() -> Self {
        LeakOnPanic::new(VecDeque::new())
    }
}

impl Queue {
    fn len(&self) -> usize {
        self.tasks.lock().unwrap().len()
    }
    fn run_next(&self) {
        let task = self.tasks.lock().unwrap().0.pop_front();
        task.expect("a task is queued").run();
    }
    fn freed(&self) -> usize {
        self.counters.freed.load(SeqCst)
    }
}

/// Pending at its first poll (leaving a clone of its waker in `slot`),
/// `Ready(7)` at the next.
struct PendingOnce {
    polled: bool,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for PendingOnce {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.polled {
            return Poll::Ready(7);
        }
        self.polled = true;
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn pending_once() -> (PendingOnce, Arc<Mutex<Option<Waker>>>) {
    let slot = Arc::new(Mutex::new(None));
    let future = PendingOnce {
        polled: false,
        slot: slot.clone(),
    };
    (future, slot)
}

/// Check the task's reference count after `step`.
fn expect_refs(header: *const Header, expected: usize, step: &str, owners: &str) {
    // SAFETY: the test holds at least one reference whenever it calls this.
    let found = unsafe { &*header }.ref_count();
    assert_eq!(
        found, expected,
        "after {step}: expected {expected} references ({owners}), found {found}"
    );
}

fn header_of<T>(handle: &JoinHandle<T>) -> *const Header {
    handle.raw_header()
}

#[test]
fn every_step_of_a_task_adds_or_drops_exactly_the_references_it_should() {
    let queue = Queue::default();
    let (future, slot) = pending_once();
    let (handle, first_run) = spawn_unowned(future, QueueScheduler(queue.clone()));
    let handle = LeakOnPanic::new(handle);
    let header = header_of(&handle);
    expect_refs(header, 2, "spawn", "the JoinHandle, the first run");
    QueueScheduler(queue.clone()).schedule(first_run);
    queue.counters.freed.store(0, SeqCst); // that scheduler was a copy

    queue.run_next();
    let waker = LeakOnPanic::new(slot.lock().unwrap().take().expect("a waker"));
    expect_refs(
        header,
        2,
        "the first poll (Pending, the future cloned its waker)",
        "the JoinHandle, the waker's clone; the run consumed the queue's",
    );

    waker.wake_by_ref();
    expect_refs(
        header,
        3,
        "wake_by_ref of an idle task",
        "the JoinHandle, the waker, the run queue's new one",
    );
    assert_eq!(queue.len(), 1, "wake_by_ref of an idle task queues it once");
    waker.wake_by_ref();
    expect_refs(
        header,
        3,
        "a second wake_by_ref (already scheduled)",
        "unchanged: nothing more is queued",
    );
    assert_eq!(queue.len(), 1, "a scheduled task is not queued twice");

    let clone = waker.clone();
    expect_refs(header, 4, "Waker::clone", "one more for the clone");
    drop(clone);
    expect_refs(header, 3, "dropping the clone", "one less");

    queue.run_next();
    expect_refs(
        header,
        2,
        "the second poll (Ready)",
        "the JoinHandle, the waker; the run consumed the queue's",
    );
    assert!(handle.is_finished());

    waker.into_inner().wake();
    expect_refs(
        header,
        1,
        "wake (by value) of a finished task",
        "the JoinHandle only: the wake consumed the waker's, queued nothing",
    );
    assert_eq!(queue.len(), 0, "a finished task is never queued again");

    assert_eq!(
        queue.freed(),
        0,
        "freed while the JoinHandle still holds it"
    );
    drop(handle.into_inner());
    assert_eq!(queue.freed(), 1, "the last reference frees the task, once");
}

/// Runs a woken task right away, inside `schedule`, and then looks whether
/// the task was freed meanwhile.
struct RunInline {
    counters: Arc<Counters>,
    freed_inside_schedule: Arc<AtomicBool>,
}

impl Schedule for RunInline {
    fn schedule(&self, task: Notified) {
        // Copies of what we look at after the run: `self` lives inside the
        // task, and must not be touched if the task was freed.
        let (counters, flag) = (self.counters.clone(), self.freed_inside_schedule.clone());
        task.run(); // completes the task, dropping the queue's reference
        if counters.freed.load(SeqCst) > 0 {
            flag.store(true, SeqCst);
        }
    }
    fn release(&self, _: &Header) -> bool {
        false
    }
}

impl Drop for RunInline {
    fn drop(&mut self) {
        self.counters.freed.fetch_add(1, SeqCst);
    }
}

/// Once a task is on a run queue, another worker may run it, complete it
/// and drop the queue's reference before `schedule` has even returned. If
/// `wake` had handed the waker's own reference to the queue, that could be
/// the last one: the task (and the scheduler `schedule` runs on, which
/// lives in the task) would be freed under `schedule`'s feet.
#[test]
fn wake_keeps_the_wakers_reference_until_schedule_returns() {
    let counters = Arc::new(Counters::default());
    let freed_inside_schedule = Arc::new(AtomicBool::new(false));
    let scheduler = RunInline {
        counters: counters.clone(),
        freed_inside_schedule: freed_inside_schedule.clone(),
    };
    let (future, slot) = pending_once();
    let (handle, first_run) = spawn_unowned(future, scheduler);
    first_run.run(); // Pending: the waker is in `slot`
    drop(handle); // detached: the waker holds the last reference
    let waker = slot.lock().unwrap().take().expect("a waker");
    waker.wake(); // queued and run at once, inside `schedule`
    assert!(
        !freed_inside_schedule.load(SeqCst),
        "the task was freed while `schedule` was still running on it: `wake` \
         must keep the waker's own reference until `schedule` returns (take \
         a new one for the queue)"
    );
    assert_eq!(counters.freed.load(SeqCst), 1, "freed exactly once, after");
}
