//! Runtimes are objects, not globals.

use std::sync::{Arc, Barrier};
use std::thread;

use green::{Runtime, spawn, try_current, yield_now};

fn busy_work(label: u64) -> u64 {
    let handles: Vec<_> = (0..50u64)
        .map(|i| {
            spawn(move || {
                for _ in 0..10 {
                    yield_now();
                }
                label * 1000 + i
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

#[test]
fn two_runtimes_run_on_two_os_threads_at_once() {
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (1..=2u64)
        .map(|label| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                Runtime::new()
                    .block_on(move || {
                        // Both runtimes are inside block_on at this point.
                        barrier.wait();
                        busy_work(label)
                    })
                    .unwrap()
            })
        })
        .collect();
    let sums: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let expect = |label: u64| (0..50).map(|i| label * 1000 + i).sum::<u64>();
    assert_eq!(sums, [expect(1), expect(2)]);
}

#[test]
fn runtimes_run_one_after_another_on_one_os_thread() {
    for label in 1..=3 {
        let mut rt = Runtime::new();
        assert_eq!(
            rt.block_on(move || busy_work(label)).unwrap(),
            (0..50).map(|i| label * 1000 + i).sum()
        );
        assert_eq!(
            try_current(),
            None,
            "the thread-local handle is cleared afterwards"
        );
    }
}

#[test]
fn a_runtime_can_run_inside_a_green_thread_of_another() {
    let inner_value = Runtime::new()
        .block_on(|| {
            let outer_id = green::current();
            let inner = Runtime::new().block_on(move || {
                assert_ne!(green::current(), outer_id);
                busy_work(7)
            });
            assert_eq!(
                green::current(),
                outer_id,
                "the outer runtime is current again"
            );
            inner.unwrap()
        })
        .unwrap();
    assert_eq!(inner_value, (0..50).map(|i| 7000 + i).sum());
}

/// A runtime running inside a green thread of another may hold a sender of
/// the outer runtime's channel: its `send` must wake the outer receiver,
/// which parked before the inner runtime started.
#[test]
fn a_send_from_a_nested_runtime_wakes_a_receiver_parked_in_the_outer_one() {
    let received = Runtime::new()
        .block_on(|| {
            let (tx, rx) = green::channel();
            let receiver = spawn(move || rx.recv());
            yield_now(); // the receiver runs and parks in `recv`
            Runtime::new()
                .block_on(move || tx.send(42).unwrap())
                .unwrap();
            receiver.join().unwrap()
        })
        .expect("the outer runtime finishes: the receiver was woken");
    assert_eq!(received, Ok(42));
}

/// The same for the primitive: `unpark` called under a nested runtime with
/// the id of a thread parked in the outer one makes that thread runnable.
#[test]
fn unpark_from_a_nested_runtime_wakes_a_thread_parked_in_the_outer_one() {
    let outcome = Runtime::new().block_on(|| {
        let parked = spawn(green::park);
        yield_now(); // `parked` runs and parks
        let id = parked.id();
        let found = Runtime::new().block_on(move || green::unpark(id)).unwrap();
        (found, parked.join().is_ok())
    });
    assert_eq!(
        outcome.expect("the outer runtime finishes: the parked thread was woken"),
        (true, true),
        "unpark found the outer thread"
    );
}
