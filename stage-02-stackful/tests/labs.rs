//! The grading tests of this stage's labs (`cargo lab check 2.N`), named
//! `lab_2_N_...`. Each runs its runtime on an OS thread of its own and fails
//! after a deadline instead of hanging, saying what was expected.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{Error, Runtime, channel, current, park, sleep, spawn, unpark, yield_now};

mod common;
use common::within;

// ---------------------------------------------------------------------------
// Lab 2.1: the scheduler's run loop (`Scheduler::run_until`).

#[test]
fn lab_2_1_threads_run_in_spawn_order_and_a_yield_goes_to_the_back_of_the_queue() {
    let order = within("does run_until ever return once main is done?", || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        Runtime::new()
            .block_on(move || {
                let threads: Vec<_> = ["a", "b"]
                    .into_iter()
                    .map(|name| {
                        let l = l.clone();
                        spawn(move || {
                            l.borrow_mut().push(format!("{name}1"));
                            yield_now();
                            l.borrow_mut().push(format!("{name}2"));
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("thread");
                }
            })
            .expect("block_on");
        log.take()
    });
    assert_eq!(
        order,
        ["a1", "b1", "a2", "b2"],
        "expected FIFO: a and b each run to their yield in spawn order, then again"
    );
}

#[test]
fn lab_2_1_block_on_returns_as_soon_as_the_main_thread_is_done() {
    let value = within(
        "a thread yields forever; the loop must check done() after every switch",
        || {
            Runtime::new().block_on(|| {
                spawn(|| {
                    loop {
                        yield_now();
                    }
                });
                yield_now();
                7
            })
        },
    );
    assert_eq!(value.expect("block_on"), 7);
}

#[test]
fn lab_2_1_a_sleeping_thread_is_woken_by_its_timer_not_earlier() {
    let slept = within(
        "with nothing runnable, wait in the driver until the next timer, then fire it",
        || {
            Runtime::new().block_on(|| {
                let start = Instant::now();
                sleep(Duration::from_millis(30));
                start.elapsed()
            })
        },
    );
    let slept = slept.expect("block_on");
    assert!(slept >= Duration::from_millis(30), "woke after {slept:?}");
}

#[test]
fn lab_2_1_threads_parked_with_nothing_to_wake_them_are_a_deadlock_error() {
    let result = within(
        "nothing runnable, no timer, no driver waiters: return Err(Deadlock)",
        || {
            Runtime::new()
                .block_on(|| {
                    spawn(park);
                    park();
                })
                .map_err(|e| e.to_string())
        },
    );
    let message = result.expect_err("block_on must report the deadlock");
    assert!(
        message.contains("all 2 green threads are parked"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// Lab 2.2: park and unpark, with a token (`Scheduler::park`, `unpark`).

#[test]
fn lab_2_2_an_unpark_before_park_leaves_a_token_that_park_consumes() {
    let result = within("park with a token waiting must return at once", || {
        Runtime::new()
            .block_on(|| {
                unpark(current());
                park(); // returns at once: the token was waiting
            })
            .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        panic!("the unpark that came before park was lost: park slept and {e}");
    }
}

#[test]
fn lab_2_2_a_token_is_a_flag_not_a_counter() {
    let result = within("the second park has no token and no one to wake it", || {
        Runtime::new().block_on(|| {
            let me = current();
            unpark(me);
            unpark(me);
            park(); // consumes the one token
            park(); // no token left: sleeps, and nothing can wake it
        })
    });
    assert!(
        matches!(result, Err(Error::Deadlock { parked: 1 })),
        "two unparks must leave one token, so the second park sleeps for ever \
         (a deadlock); got {result:?}"
    );
}

#[test]
fn lab_2_2_unpark_makes_a_parked_thread_runnable_again() {
    within("a parked thread must run again once unparked", || {
        Runtime::new()
            .block_on(|| {
                let woken = Rc::new(Cell::new(false));
                let w = woken.clone();
                let sleeper = spawn(move || {
                    park();
                    w.set(true);
                });
                yield_now(); // the sleeper runs and parks
                yield_now();
                assert!(!woken.get(), "park returned with no unpark and no token");
                assert!(unpark(sleeper.id()), "unpark of a live thread answers true");
                sleeper.join().expect("sleeper");
                assert!(woken.get());
            })
            .expect("block_on");
    });
}

#[test]
fn lab_2_2_unpark_of_a_finished_thread_answers_false() {
    within("unpark must not block", || {
        Runtime::new()
            .block_on(|| {
                let done = spawn(|| ());
                let id = done.id();
                done.join().expect("thread");
                assert!(!unpark(id), "the thread is gone: unpark must answer false");
            })
            .expect("block_on");
    });
}

// ---------------------------------------------------------------------------
// Lab 2.3: a channel's wake-up (`Receiver::recv`).

#[test]
fn lab_2_3_recv_parks_until_a_value_arrives_and_gets_them_in_order() {
    let got = within(
        "recv on an empty queue must park, and send must wake it",
        || {
            Runtime::new()
                .block_on(|| {
                    let (tx, rx) = channel();
                    let consumer = spawn(move || {
                        let first = rx.recv().expect("first");
                        let second = rx.recv().expect("second");
                        (first, second)
                    });
                    yield_now(); // the consumer finds the queue empty and parks
                    tx.send(1).expect("send");
                    yield_now();
                    tx.send(2).expect("send");
                    consumer.join().expect("consumer")
                })
                .map_err(|e| e.to_string())
        },
    );
    match got {
        Ok(pair) => assert_eq!(pair, (1, 2)),
        Err(e) => panic!("the receiver was never woken by send: {e}"),
    }
}

#[test]
fn lab_2_3_recv_fails_once_the_queue_is_empty_and_every_sender_is_gone() {
    let got = within("recv must not wait for senders that are gone", || {
        Runtime::new()
            .block_on(|| {
                let (tx, rx) = channel::<u8>();
                let consumer = spawn(move || (rx.recv(), rx.recv()));
                yield_now(); // parked on the empty queue
                tx.send(5).expect("send");
                drop(tx); // wakes the receiver: no more values will come
                consumer.join().expect("consumer")
            })
            .map_err(|e| e.to_string())
    });
    match got {
        Ok((first, second)) => {
            assert_eq!(first, Ok(5));
            assert!(second.is_err(), "expected RecvError, got {second:?}");
        }
        Err(e) => panic!("the receiver slept through the last sender's drop: {e}"),
    }
}

#[test]
fn lab_2_3_each_of_several_waiting_receivers_gets_one_value() {
    let got = within("every send must wake one waiting receiver", || {
        Runtime::new()
            .block_on(|| {
                let (tx, rx) = channel();
                let rx = Rc::new(rx);
                let receivers: Vec<_> = (0..3)
                    .map(|_| {
                        let rx = rx.clone();
                        spawn(move || rx.recv().expect("a value"))
                    })
                    .collect();
                yield_now(); // all three park
                for i in 0..3 {
                    tx.send(i).expect("send");
                }
                let mut got: Vec<i32> = receivers
                    .into_iter()
                    .map(|r| r.join().expect("receiver"))
                    .collect();
                got.sort();
                got
            })
            .map_err(|e| e.to_string())
    });
    match got {
        Ok(values) => assert_eq!(values, [0, 1, 2]),
        Err(e) => panic!("a waiting receiver was never woken: {e}"),
    }
}

#[test]
fn lab_2_3_a_receiver_woken_by_someone_else_leaves_the_wait_queue() {
    // `first` and `second` wait on one shared receiver. A stray unpark
    // wakes `second`, which runs before `first` and takes the value meant
    // for `first`. `second` must then leave the wait queue, or the next
    // send wakes it (no longer waiting) and `first` sleeps for ever.
    let got = within("a stale waiter must not swallow the next wake-up", || {
        Runtime::new()
            .block_on(|| {
                let (tx, rx) = channel::<u32>();
                let rx = Rc::new(rx);
                let (r1, r2) = (rx.clone(), rx.clone());
                let first = spawn(move || r1.recv());
                let second = spawn(move || r2.recv());
                yield_now(); // both park: first, then second
                unpark(second.id()); // a stray wake-up
                tx.send(1).expect("send"); // wakes `first`; `second` runs first
                let second = second.join().expect("second");
                yield_now(); // `first` finds the queue empty and parks again
                tx.send(2).expect("send");
                (first.join().expect("first"), second)
            })
            .map_err(|e| e.to_string())
    });
    match got {
        Ok(pair) => assert_eq!(pair, (Ok(2), Ok(1))),
        Err(e) => panic!(
            "the second value never reached the receiver still waiting (did it wake \
             a receiver that had already left?): {e}"
        ),
    }
}
