//! Spawn, yield, join, identity: the scheduler's observable behaviour.

use std::cell::RefCell;
use std::rc::Rc;

use green::{Runtime, channel, current, spawn, try_current, yield_now};

/// The issue asks for ten thousand; fast enough even under qemu-user.
const MANY: usize = 10_000;

fn log() -> Rc<RefCell<Vec<String>>> {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn spawned_threads_run_in_fifo_order_and_a_yield_goes_to_the_back_of_the_queue() {
    let events = log();
    let seen = events.clone();
    Runtime::new()
        .block_on(move || {
            for name in ["a", "b", "c"] {
                let events = events.clone();
                spawn(move || {
                    events.borrow_mut().push(format!("{name}1"));
                    yield_now();
                    events.borrow_mut().push(format!("{name}2"));
                });
            }
            events.borrow_mut().push("main1".into());
            yield_now();
            events.borrow_mut().push("main2".into());
            yield_now();
            events.borrow_mut().push("main3".into());
        })
        .unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            "main1", "a1", "b1", "c1", "main2", "a2", "b2", "c2", "main3"
        ]
    );
}

#[test]
fn a_spawned_thread_does_not_run_until_the_spawner_gives_way() {
    let events = log();
    let seen = events.clone();
    Runtime::new()
        .block_on(move || {
            let child_events = events.clone();
            let child = spawn(move || child_events.borrow_mut().push("child".to_string()));
            events.borrow_mut().push("after spawn".into());
            child.join().unwrap();
            events.borrow_mut().push("after join".into());
        })
        .unwrap();
    assert_eq!(*seen.borrow(), ["after spawn", "child", "after join"]);
}

#[test]
fn block_on_returns_the_main_green_threads_value() {
    let mut rt = Runtime::new();
    assert_eq!(rt.block_on(|| 6 * 7).unwrap(), 42);
    assert_eq!(
        rt.block_on(|| "again").unwrap(),
        "again",
        "a runtime can be reused"
    );
}

#[test]
fn join_returns_each_threads_value() {
    let sum = Runtime::new()
        .block_on(|| {
            let handles: Vec<_> = (0..100u64).map(|i| spawn(move || i * i)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
        .unwrap();
    assert_eq!(sum, (0..100u64).map(|i| i * i).sum());
}

#[test]
fn join_reports_a_panic_as_an_error_that_can_be_inspected() {
    let (message, survivor) = Runtime::new()
        .block_on(|| {
            let bad = spawn(|| -> u32 { panic!("boom {}", 7) });
            let good = spawn(|| 5);
            let error = bad.join().unwrap_err();
            assert!(error.is_panic());
            assert!(!error.is_cancelled());
            (
                error.panic_message().map(str::to_owned),
                good.join().unwrap(),
            )
        })
        .unwrap();
    assert_eq!(message.as_deref(), Some("boom 7"));
    assert_eq!(
        survivor, 5,
        "a panicking green thread does not take the runtime down"
    );
}

#[test]
fn a_joined_panic_can_be_re_raised_with_its_original_payload() {
    let caught = std::panic::catch_unwind(|| {
        Runtime::new().block_on(|| {
            let bad = spawn(|| panic!("original"));
            bad.join().unwrap_err().resume_unwind();
        })
    });
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"original"));
}

#[test]
fn a_panic_in_the_main_green_thread_is_re_raised_by_block_on() {
    let mut rt = Runtime::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("in main"))
    }));
    assert!(caught.is_err());
    assert_eq!(
        rt.block_on(|| 1).unwrap(),
        1,
        "the runtime still works afterwards"
    );
    assert_eq!(rt.stack_stats().in_use, 0);
}

#[test]
fn ten_thousand_green_threads_are_alive_at_once() {
    let mut rt = Runtime::builder().stack_size(32 * 1024).build();
    let (alive_together, finished) = rt
        .block_on(|| {
            let alive = Rc::new(RefCell::new(0usize));
            let mut gates = Vec::with_capacity(MANY);
            let mut handles = Vec::with_capacity(MANY);
            for _ in 0..MANY {
                let alive = alive.clone();
                let (gate, wait_here) = channel::<()>();
                gates.push(gate);
                handles.push(spawn(move || {
                    *alive.borrow_mut() += 1;
                    // Everyone parks here until main opens the gate.
                    let _ = wait_here.recv();
                    1usize
                }));
            }
            // Let every thread reach its gate.
            yield_now();
            let alive_together = *alive.borrow();
            drop(gates); // every recv now returns Err: all threads finish
            let finished: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            (alive_together, finished)
        })
        .unwrap();
    assert_eq!(alive_together, MANY);
    assert_eq!(finished, MANY);
    assert_eq!(rt.stack_stats().in_use, 0);
}

#[test]
fn current_names_each_green_thread_distinctly_and_matches_its_join_handle() {
    Runtime::new()
        .block_on(|| {
            let main = current();
            let child = spawn(current);
            let child_id = child.id();
            let seen = child.join().unwrap();
            assert_eq!(seen, child_id);
            assert_ne!(seen, main);
            assert_eq!(current(), main, "identity survives switches");
        })
        .unwrap();
    assert_eq!(try_current(), None, "no green thread outside block_on");
}

#[test]
#[should_panic(expected = "outside a green-thread runtime")]
fn spawn_outside_a_runtime_is_a_clear_programming_error() {
    spawn(|| ());
}

#[test]
fn a_thread_spawned_by_a_green_thread_can_outlive_its_spawner() {
    let value = Runtime::new()
        .block_on(|| {
            let (tx, rx) = channel();
            let middle = spawn(move || {
                spawn(move || {
                    yield_now();
                    tx.send("grandchild").unwrap();
                });
            });
            middle.join().unwrap();
            rx.recv().unwrap()
        })
        .unwrap();
    assert_eq!(value, "grandchild");
}

/// A value whose destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("PanicsWhenDropped was dropped");
    }
}

#[test]
fn a_detached_threads_value_that_panics_when_dropped_does_not_take_the_runtime_down() {
    // No one joins the thread, so its value is dropped on its own stack when
    // it finishes, after its closure's `catch_unwind`.
    let mut rt = Runtime::new();
    let value = rt.block_on(|| {
        drop(spawn(|| PanicsWhenDropped));
        green::yield_now();
        7
    });
    assert_eq!(value.unwrap(), 7);
    assert_eq!(rt.stack_stats().in_use, 0, "its stack came back");
}
