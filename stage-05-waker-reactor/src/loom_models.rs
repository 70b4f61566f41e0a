//! Model checks with loom: each test below runs its threads under every
//! interleaving the C++/Rust memory model allows (up to a bound on
//! preemptions), and fails if any of them breaks an assertion, deadlocks,
//! leaks a loom object, or races on a `sync::UnsafeCell` (an access that no
//! happens-before edge orders after the previous write).
//!
//! Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=5 \
//!     cargo test -p stage-05-waker-reactor --release --lib loom_models
//! ```
//!
//! The tasks here are the runtime's real tasks (cell, state word, reference
//! count, waker vtable, `JoinHandle`), scheduled on a [`Queue`] that any
//! thread may run.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::scheduler::parker::Parker;
use crate::task::core::Header;
use crate::task::{self, JoinHandle, Notified, Schedule};

/// A run queue that any thread may run, and a count of freed tasks.
#[derive(Clone, Debug)]
struct Queue {
    tasks: Arc<Mutex<VecDeque<Notified>>>,
    freed: Arc<AtomicUsize>,
}

/// The scheduler a task holds: its drop (in the task's `dealloc`) counts
/// the task as freed.
#[derive(Debug)]
struct Scheduler(Queue);

impl Schedule for Scheduler {
    fn schedule(&self, task: Notified) {
        self.0.tasks.lock().unwrap().push_back(task);
    }
    fn release(&self, _: &Header) -> bool {
        false
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.0.freed.fetch_add(1, SeqCst);
    }
}

impl Queue {
    fn new() -> Queue {
        Queue {
            tasks: Arc::new(Mutex::new(VecDeque::new())),
            freed: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (join, first_run) = task::spawn_unowned(future, Scheduler(self.clone()));
        self.tasks.lock().unwrap().push_back(first_run);
        join
    }

    /// Poll phase: run queued tasks until the queue is empty.
    fn run_all(&self) {
        loop {
            let next = self.tasks.lock().unwrap().pop_front();
            match next {
                Some(task) => task.run(),
                None => return,
            }
        }
    }

    fn freed(&self) -> usize {
        self.freed.load(SeqCst)
    }
}

/// Poll a join handle once with `waker`.
fn poll_join<T>(handle: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, crate::JoinError>> {
    Pin::new(handle).poll(&mut Context::from_waker(waker))
}

/// The leaf future of the models: waits for `flag`, leaving its waker in
/// `slot` (store the waker, then look at the flag: the order that makes a
/// wake between the two impossible to lose).
struct WaitFor {
    flag: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for WaitFor {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        if self.flag.load(Acquire) {
            Poll::Ready(5)
        } else {
            Poll::Pending
        }
    }
}

/// Set the flag and wake whatever waker the future left.
fn set_and_wake(flag: &AtomicBool, slot: &Mutex<Option<Waker>>) {
    flag.store(true, Release);
    let waker = slot.lock().unwrap().take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn wait_for() -> (WaitFor, Arc<AtomicBool>, Arc<Mutex<Option<Waker>>>) {
    let flag = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(Mutex::new(None));
    let future = WaitFor {
        flag: flag.clone(),
        slot: slot.clone(),
    };
    (future, flag, slot)
}

#[test]
fn a_wake_during_a_poll_is_never_lost() {
    loom::model(|| {
        let queue = Queue::new();
        let (future, flag, slot) = wait_for();
        let mut handle = queue.spawn(future);
        let waker = thread::spawn(move || set_and_wake(&flag, &slot));
        queue.run_all(); // races with the wake
        waker.join().unwrap();
        queue.run_all();
        assert!(
            handle.is_finished(),
            "the flag is set and the task was woken, yet it is not done: lost wake-up"
        );
        assert!(matches!(
            poll_join(&mut handle, Waker::noop()),
            Poll::Ready(Ok(5))
        ));
        drop(handle);
        assert_eq!(queue.freed(), 1, "the task must be freed exactly once");
    });
}

#[test]
fn a_wake_racing_completion_is_harmless() {
    loom::model(|| {
        let queue = Queue::new();
        let (future, flag, slot) = wait_for();
        flag.store(true, SeqCst); // ready at its first poll
        let mut handle = queue.spawn(future);
        let waker = thread::spawn(move || {
            let waker = slot.lock().unwrap().take();
            if let Some(waker) = waker {
                waker.wake(); // maybe during the poll, maybe after `Ready`
            }
        });
        queue.run_all();
        waker.join().unwrap();
        queue.run_all(); // a stale wake's run must skip the done task
        assert!(matches!(
            poll_join(&mut handle, Waker::noop()),
            Poll::Ready(Ok(5))
        ));
        drop(handle);
        assert_eq!(queue.freed(), 1);
    });
}

/// Counts its drops, so the model can check the future is dropped once.
struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn abort_racing_completion_gives_the_output_or_cancelled_and_drops_the_future_once() {
    loom::model(|| {
        let queue = Queue::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = CountDrop(drops.clone());
        let handle = queue.spawn(async move {
            let _guard = guard;
            5u32
        });
        let aborter = thread::spawn(move || {
            handle.abort();
            handle
        });
        queue.run_all();
        let mut handle = aborter.join().unwrap();
        queue.run_all(); // an abort of an idle task queues it
        match poll_join(&mut handle, Waker::noop()) {
            Poll::Ready(Ok(5)) => {}
            Poll::Ready(Err(error)) => assert!(error.is_cancelled()),
            other => panic!("after abort and run, the handle gave {other:?}"),
        }
        assert_eq!(drops.load(SeqCst), 1, "the future is dropped exactly once");
        drop(handle);
        assert_eq!(queue.freed(), 1);
    });
}

/// A waker that counts its wakes; `Arc::strong_count` tells whether anyone
/// still holds a clone.
#[derive(Default)]
struct CountWakes(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountWakes {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_join_handle_dropped_while_the_task_completes_leaks_neither_output_nor_waker() {
    loom::model(|| {
        let queue = Queue::new();
        let drops = Arc::new(AtomicUsize::new(0));
        let output = CountDrop(drops.clone());
        let mut handle = queue.spawn(async move { output });
        let counter = std::sync::Arc::new(CountWakes::default());
        let waker = Waker::from(counter.clone());
        assert!(poll_join(&mut handle, &waker).is_pending());
        drop(waker);
        let dropper = thread::spawn(move || drop(handle));
        queue.run_all(); // completes while the handle goes away
        dropper.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "the output is dropped exactly once");
        assert_eq!(
            std::sync::Arc::strong_count(&counter),
            1,
            "the join waker was left in its slot"
        );
        assert_eq!(queue.freed(), 1);
    });
}

#[test]
fn a_join_handle_that_changes_its_waker_during_completion_is_still_woken() {
    loom::model(|| {
        let queue = Queue::new();
        let mut handle = queue.spawn(async { 5u32 });
        let first = std::sync::Arc::new(CountWakes::default());
        assert!(poll_join(&mut handle, &Waker::from(first.clone())).is_pending());
        let joiner = thread::spawn(move || {
            // Polled again from another task: a different waker.
            let second = std::sync::Arc::new(CountWakes::default());
            let polled = poll_join(&mut handle, &Waker::from(second.clone()));
            (handle, second, polled)
        });
        queue.run_all();
        let (mut handle, second, polled) = joiner.join().unwrap();
        let output = match polled {
            Poll::Ready(output) => output,
            Poll::Pending => {
                assert_eq!(
                    second.0.load(SeqCst),
                    1,
                    "the second poll was pending, so the task's completion must \
                     wake the second waker: lost wake-up of the join handle"
                );
                match poll_join(&mut handle, Waker::noop()) {
                    Poll::Ready(output) => output,
                    Poll::Pending => panic!("woken, but the output is not there"),
                }
            }
        };
        assert_eq!(output.unwrap(), 5);
        drop(handle);
        assert_eq!(queue.freed(), 1);
    });
}

#[test]
fn the_last_of_many_references_frees_the_task_exactly_once() {
    loom::model(|| {
        let queue = Queue::new();
        let (future, flag, slot) = wait_for();
        let handle = queue.spawn(future);
        queue.run_all(); // pending: its waker is in `slot`
        let waker = slot.lock().unwrap().clone().expect("the poll left a waker");
        let cloner = thread::spawn(move || drop(waker.clone()));
        let waker_thread = thread::spawn(move || set_and_wake(&flag, &slot));
        drop(handle); // a third reference goes away on this thread
        queue.run_all();
        cloner.join().unwrap();
        waker_thread.join().unwrap();
        queue.run_all();
        assert_eq!(queue.freed(), 1, "freed {} times", queue.freed());
    });
}

#[test]
fn a_push_racing_a_parking_worker_always_wakes_it() {
    loom::model(|| {
        let parker = Arc::new(Parker::default());
        let work = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (parker, work) = (parker.clone(), work.clone());
            thread::spawn(move || {
                work.store(true, SeqCst); // the push
                parker.unpark(|| unreachable!("nobody parks in the driver"));
            })
        };
        // The worker: look for work, park, look again. A lost unpark
        // leaves it parked for ever, which loom reports as a deadlock.
        while !work.load(SeqCst) {
            parker.park_on_condvar();
        }
        pusher.join().unwrap();
    });
}

#[test]
fn a_push_racing_a_worker_parking_in_the_driver_always_wakes_it() {
    loom::model(|| {
        let parker = Arc::new(Parker::default());
        let work = Arc::new(AtomicBool::new(false));
        // Stands for the driver's eventfd: a wake before the wait ends it.
        let eventfd = Arc::new((Mutex::new(false), loom::sync::Condvar::new()));
        let pusher = {
            let (parker, work, eventfd) = (parker.clone(), work.clone(), eventfd.clone());
            thread::spawn(move || {
                work.store(true, SeqCst);
                parker.unpark(|| {
                    *eventfd.0.lock().unwrap() = true;
                    eventfd.1.notify_one();
                });
            })
        };
        while !work.load(SeqCst) {
            parker.park_in_driver(|| {
                // epoll_wait, until the eventfd is written
                let mut written = eventfd.0.lock().unwrap();
                while !*written {
                    written = eventfd.1.wait(written).unwrap();
                }
                *written = false;
            });
        }
        pusher.join().unwrap();
    });
}
