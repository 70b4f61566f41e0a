//! Sleep, the timer queue, and the park/unpark primitive.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod common;
use common::within;
use green::{Runtime, current, park, park_timeout, sleep, sleep_until, spawn, unpark, yield_now};

/// Each thread takes its deadline at its first run, so the deadlines are
/// ordered like the durations only while the threads start within a few
/// milliseconds of each other (not always true under an emulator on a busy
/// machine): the order is checked against the deadlines themselves.
#[test]
fn sleeps_wake_in_deadline_order_and_never_early() {
    let started = Instant::now();
    let woke = Rc::new(RefCell::new(Vec::new()));
    let seen = woke.clone();
    Runtime::new()
        .block_on(move || {
            let handles: Vec<_> = [40u64, 10, 30, 0, 20]
                .into_iter()
                .map(|ms| {
                    let woke = woke.clone();
                    spawn(move || {
                        let deadline = Instant::now() + Duration::from_millis(ms);
                        sleep_until(deadline);
                        let now = Instant::now();
                        assert!(now >= deadline, "woke {:?} early", deadline - now);
                        woke.borrow_mut().push((deadline, ms));
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
        })
        .unwrap();
    let woke = seen.borrow();
    assert_eq!(woke.len(), 5);
    let order: Vec<u64> = woke.iter().map(|&(_, ms)| ms).collect();
    assert!(
        woke.windows(2).all(|pair| pair[0].0 <= pair[1].0),
        "woke out of deadline order: {order:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(40));
}

#[test]
fn other_threads_run_while_one_sleeps() {
    let turns_during_sleep = Runtime::new()
        .block_on(|| {
            let turns = Rc::new(Cell::new(0u32));
            let main_awake = Rc::new(Cell::new(false));
            let (t, awake) = (turns.clone(), main_awake.clone());
            let busy = spawn(move || {
                while !awake.get() {
                    t.set(t.get() + 1);
                    yield_now();
                }
            });
            // Had `sleep` blocked the OS thread, `busy` (queued before the
            // sleep began) could not have had a single turn by now. (Long
            // enough that a preempted test thread does not find the deadline
            // already past before it ever parks, which it did at 5 ms under
            // qemu on a loaded machine.)
            sleep(Duration::from_millis(200));
            let turns_during_sleep = turns.get();
            main_awake.set(true);
            busy.join().unwrap();
            turns_during_sleep
        })
        .unwrap();
    assert!(
        turns_during_sleep >= 1,
        "busy ran {turns_during_sleep} times"
    );
}

#[test]
fn an_unpark_before_park_is_not_lost() {
    within(
        "is the token of an unpark before park kept for the next park?",
        || {
            Runtime::new()
                .block_on(|| {
                    assert!(unpark(current()), "token left for the running thread");
                    // Returns at once by consuming the token (else: deadlock error).
                    park();
                })
                .unwrap();
        },
    );
}

#[test]
fn unpark_wakes_a_parked_thread_and_ignores_stale_ids() {
    within(
        "does unpark put a parked thread back on the run queue?",
        || {
            Runtime::new()
                .block_on(|| {
                    let flag = Rc::new(Cell::new(false));
                    let f = flag.clone();
                    let sleeper = spawn(move || {
                        while !f.get() {
                            park();
                        }
                        "woken"
                    });
                    let id = sleeper.id();
                    yield_now(); // let it park
                    flag.set(true);
                    assert!(unpark(id));
                    assert_eq!(sleeper.join().unwrap(), "woken");
                    assert!(!unpark(id), "a finished thread's id is stale");
                })
                .unwrap();
        },
    );
}

#[test]
fn park_timeout_returns_after_the_timeout_without_an_unpark() {
    Runtime::new()
        .block_on(|| {
            let t0 = Instant::now();
            park_timeout(Duration::from_millis(10));
            assert!(t0.elapsed() >= Duration::from_millis(10));
        })
        .unwrap();
}

#[test]
fn a_thread_woken_early_leaves_no_timer_that_wakes_it_again_later() {
    // The stale timer entry must not count as "pending" forever, nor
    // wake the thread from its next, unrelated park.
    let result = Runtime::new().block_on(|| {
        let me = current();
        spawn(move || {
            unpark(me);
        });
        park_timeout(Duration::from_secs(2));
        // Now park with nothing that can wake us: a deadlock, detected at once
        // (not after 2 s, and not by a spurious wake from the stale entry).
        park();
    });
    assert!(
        matches!(result, Err(green::Error::Deadlock { parked: 1 })),
        "{result:?}"
    );
}
