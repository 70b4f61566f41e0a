//! Nothing leaks: every stack comes back, every value is dropped.

use std::cell::Cell;
use std::rc::Rc;

use green::{Runtime, channel, park, spawn, yield_now};

/// Counts its drops.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn every_stack_returns_to_the_pool_and_is_reused() {
    let mut rt = Runtime::builder().stack_size(32 * 1024).build();
    rt.block_on(|| {
        for _ in 0..5 {
            let batch: Vec<_> = (0..20).map(|i| spawn(move || i)).collect();
            for handle in batch {
                handle.join().unwrap();
            }
        }
    })
    .unwrap();
    let stats = rt.stack_stats();
    assert_eq!(stats.in_use, 0);
    assert!(
        stats.created <= 21,
        "stacks were reused, not mapped afresh: {stats:?}"
    );
    assert_eq!(stats.idle, stats.created - stats.released);
}

#[test]
fn threads_still_alive_when_main_returns_are_cancelled_and_drop_their_locals() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut rt = Runtime::new();
    let (parked, yielding, never_started) = rt
        .block_on(move || {
            // Parked forever on a channel.
            let (tx, rx) = channel::<()>();
            let local = Counted(d.clone());
            let parked = spawn(move || {
                let _local = local;
                let _ = rx.recv();
            });
            // Busy yielding forever.
            let local = Counted(d.clone());
            let yielding = spawn(move || {
                let _local = local;
                loop {
                    yield_now();
                }
            });
            yield_now(); // both have started
            // Spawned but never run: its closure is dropped unrun.
            let local = Counted(d.clone());
            let never_started = spawn(move || drop(local));
            std::mem::forget(tx); // keep the parked thread parked
            (parked, yielding, never_started)
        })
        .unwrap();
    assert_eq!(drops.get(), 3, "every local was dropped");
    assert!(parked.join().unwrap_err().is_cancelled());
    assert!(yielding.join().unwrap_err().is_cancelled());
    assert!(never_started.join().unwrap_err().is_cancelled());
    assert_eq!(rt.stack_stats().in_use, 0);
}

#[test]
fn the_values_of_detached_threads_and_unreceived_messages_are_dropped() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    Runtime::new()
        .block_on(move || {
            let d2 = d.clone();
            drop(spawn(move || Counted(d2))); // detached: result never joined
            let (tx, rx) = channel();
            tx.send(Counted(d.clone())).unwrap();
            tx.send(Counted(d.clone())).unwrap();
            drop(rx); // two messages no one will receive
            yield_now(); // let the detached thread finish
        })
        .unwrap();
    assert_eq!(drops.get(), 3);
}

#[test]
fn a_deadlock_still_cleans_up_every_thread() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut rt = Runtime::new();
    let result = rt.block_on(move || {
        let _main_local = Counted(d.clone());
        let local = Counted(d);
        spawn(move || {
            let _local = local;
            park();
        });
        park();
    });
    assert!(result.is_err());
    assert_eq!(drops.get(), 2);
    assert_eq!(rt.stack_stats().in_use, 0);
}

/// Yields (a blocking call) in its destructor, then counts the drop.
struct YieldsWhenDropped(Rc<Cell<usize>>);

impl Drop for YieldsWhenDropped {
    fn drop(&mut self) {
        yield_now();
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_destructor_that_blocks_during_cancellation_still_runs_to_the_end() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    Runtime::new()
        .block_on(move || {
            let started = YieldsWhenDropped(d.clone());
            spawn(move || {
                let _local = started;
                park();
            });
            let never_started = YieldsWhenDropped(d);
            yield_now();
            spawn(move || drop(never_started));
        })
        .unwrap();
    assert_eq!(drops.get(), 2);
}

/// Spawns a green thread from its destructor.
struct SpawnsWhenDropped(Rc<Cell<usize>>);

impl Drop for SpawnsWhenDropped {
    fn drop(&mut self) {
        let counter = Counted(self.0.clone());
        spawn(move || {
            let _counter = counter;
            park();
        });
    }
}

#[test]
fn threads_spawned_during_the_cleanup_are_cleaned_up_too() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut rt = Runtime::new();
    rt.block_on(move || {
        let local = SpawnsWhenDropped(d);
        spawn(move || {
            let _local = local;
            park();
        });
        yield_now();
    })
    .unwrap();
    assert_eq!(
        drops.get(),
        1,
        "the thread spawned at cleanup was cancelled and its local dropped"
    );
    assert_eq!(rt.stack_stats().in_use, 0);
}

/// Joins another green thread in its destructor.
struct JoinsWhenDropped(Option<green::JoinHandle<()>>, Rc<Cell<usize>>);

impl Drop for JoinsWhenDropped {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let joined = handle.join();
            assert!(joined.unwrap_err().is_cancelled());
            self.1.set(self.1.get() + 1);
        }
    }
}

#[test]
fn a_destructor_that_joins_a_thread_cancelled_after_it_still_finishes() {
    // The first thread's destructor waits for the second, which comes later
    // in the cleanup: cleanup must take turns between the two, not resume
    // the first one forever.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut rt = Runtime::new();
    rt.block_on(move || {
        let (handle_tx, handle_rx) = channel();
        let (ready_tx, ready_rx) = channel();
        // Spawned first, so the cleanup reaches it first.
        spawn(move || {
            let _guard = JoinsWhenDropped(handle_rx.recv().ok(), d);
            ready_tx.send(()).unwrap();
            park();
        });
        let waiter = spawn(park);
        handle_tx.send(waiter).unwrap();
        ready_rx.recv().unwrap(); // the first thread holds the handle now
    })
    .unwrap();
    assert_eq!(drops.get(), 1, "the joining destructor ran to its end");
    assert_eq!(rt.stack_stats().in_use, 0);
}
