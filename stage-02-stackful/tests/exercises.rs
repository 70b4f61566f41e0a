//! Check tests for chapter 2's build-something exercises. They are ignored
//! until you do the exercise: write the type in its module below (a
//! skeleton is there, built only on green's public API), then run
//!
//! ```text
//! cargo test -p stage-02-stackful --test exercises -- --ignored exercise_5
//! cargo test -p stage-02-stackful --test exercises -- --ignored exercise_7
//! ```
//!
//! Each test runs its runtime on an OS thread of its own and fails after a
//! deadline instead of hanging.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use green::{Error, Runtime, sleep, spawn, yield_now};

mod common;
use common::within;

/// Exercise 5: a mutex whose `lock` parks the green thread while another
/// holds the lock. Replace the skeleton.
mod mutex {
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};

    pub struct Mutex<T> {
        _value: PhantomData<T>,
    }

    impl<T> Mutex<T> {
        pub fn new(_value: T) -> Self {
            todo!("exercise 5: a Cell<bool> for 'locked', a queue of waiting GreenIds, the value")
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            todo!("exercise 5: park while locked, in a loop; then take the lock")
        }
    }

    pub struct MutexGuard<'a, T> {
        _mutex: &'a Mutex<T>,
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            todo!("exercise 5")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            todo!("exercise 5")
        }
    }

    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            // exercise 5: unlock, and unpark the first waiter
        }
    }
}

#[test]
#[ignore = "exercise 5: write green Mutex in tests/exercises.rs"]
fn exercise_5_increments_with_a_yield_inside_the_lock_are_never_lost() {
    let count = within("a thread waiting for the lock was never woken", || {
        Runtime::new()
            .block_on(|| {
                let counter = Rc::new(mutex::Mutex::new(0));
                let threads: Vec<_> = (0..10)
                    .map(|_| {
                        let counter = counter.clone();
                        spawn(move || {
                            for _ in 0..10 {
                                let mut n = counter.lock();
                                let read = *n;
                                yield_now(); // the others run, and must wait
                                *n = read + 1;
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("thread");
                }
                *counter.lock()
            })
            .expect("block_on")
    });
    assert_eq!(
        count, 100,
        "increments were lost: the lock let two threads in"
    );
}

#[test]
#[ignore = "exercise 5: write green Mutex in tests/exercises.rs"]
fn exercise_5_a_lock_held_across_a_sleep_keeps_the_others_out() {
    let seen = within("the second thread never got the lock", || {
        Runtime::new()
            .block_on(|| {
                let shared = Rc::new(mutex::Mutex::new(String::new()));
                let s = shared.clone();
                let holder = spawn(move || {
                    let mut text = s.lock();
                    sleep(Duration::from_millis(30)); // parks, holding the lock
                    text.push_str("written while locked");
                });
                yield_now(); // the holder takes the lock and sleeps
                let seen = shared.lock().clone();
                holder.join().expect("holder");
                seen
            })
            .expect("block_on")
    });
    assert_eq!(
        seen, "written while locked",
        "lock() returned while another held it"
    );
}

#[test]
#[ignore = "exercise 5: write green Mutex in tests/exercises.rs"]
fn exercise_5_locking_twice_in_one_thread_is_reported_as_a_deadlock() {
    let result = within(
        "a second lock in the same thread must park, not spin",
        || {
            Runtime::new().block_on(|| {
                let m = mutex::Mutex::new(0);
                let _first = m.lock();
                let _second = m.lock(); // parks for ever: nobody can unlock
            })
        },
    );
    assert!(
        matches!(result, Err(Error::Deadlock { .. })),
        "block_on must report the deadlock, got {result:?}"
    );
}

/// Exercise 7: a channel of bounded capacity whose `send` parks while the
/// queue is full. Replace the skeleton.
mod bounded {
    use std::marker::PhantomData;

    pub struct Sender<T> {
        _queue: PhantomData<T>,
    }

    pub struct Receiver<T> {
        _queue: PhantomData<T>,
    }

    pub fn channel<T>(_capacity: usize) -> (Sender<T>, Receiver<T>) {
        todo!("exercise 7: shared queue, capacity, waiting senders and receivers")
    }

    impl<T> Sender<T> {
        /// Parks while `capacity` values are queued; `Err(value)` once the
        /// receiver is gone.
        pub fn send(&self, _value: T) -> Result<(), T> {
            todo!("exercise 7")
        }
    }

    impl<T> Receiver<T> {
        /// Parks while the queue is empty; `None` once it is empty and the
        /// sender is gone. Wakes a sender waiting for room.
        pub fn recv(&self) -> Option<T> {
            todo!("exercise 7")
        }
    }
}

#[test]
#[ignore = "exercise 7: write a bounded channel in tests/exercises.rs"]
fn exercise_7_send_parks_while_the_queue_is_full() {
    let log = within("a sender waiting for room was never woken", || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        Runtime::new()
            .block_on(move || {
                let (tx, rx) = bounded::channel(2);
                let producer_log = l.clone();
                let producer = spawn(move || {
                    for i in 0..5 {
                        tx.send(i).expect("send");
                        producer_log.borrow_mut().push(format!("sent {i}"));
                    }
                });
                yield_now(); // the producer fills the queue and parks
                while let Some(i) = rx.recv() {
                    l.borrow_mut().push(format!("got {i}"));
                }
                producer.join().expect("producer");
            })
            .expect("block_on");
        log.take()
    });
    let sent_before_first_receive = log.iter().take_while(|e| e.starts_with("sent")).count();
    assert_eq!(
        sent_before_first_receive, 2,
        "with capacity 2, the third send must wait for a receive: {log:?}"
    );
    let got: Vec<_> = log.iter().filter(|e| e.starts_with("got")).collect();
    assert_eq!(
        got,
        ["got 0", "got 1", "got 2", "got 3", "got 4"],
        "{log:?}"
    );
}

#[test]
#[ignore = "exercise 7: write a bounded channel in tests/exercises.rs"]
fn exercise_7_a_full_queue_nobody_reads_is_a_deadlock() {
    let result = within("a send on a full queue must park, not spin", || {
        Runtime::new().block_on(|| {
            let (tx, _rx) = bounded::channel(1);
            tx.send(1).expect("room for one");
            let _ = tx.send(2); // parks for ever: the receiver never reads
        })
    });
    assert!(
        matches!(result, Err(Error::Deadlock { .. })),
        "block_on must report the deadlock, got {result:?}"
    );
}
