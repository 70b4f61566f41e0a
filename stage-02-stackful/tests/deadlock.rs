//! Deadlock detection: `block_on` returns an error instead of hanging.

use std::time::Duration;

use green::{Error, Runtime, channel, park, sleep, spawn};

#[test]
fn main_waiting_on_a_channel_only_it_can_feed_is_a_deadlock() {
    let result = Runtime::new().block_on(|| {
        let (tx, rx) = channel::<u8>();
        let _keep = tx; // a sender exists, but no one will use it
        rx.recv()
    });
    let error = result.unwrap_err();
    assert!(matches!(error, Error::Deadlock { parked: 1 }), "{error:?}");
    assert!(error.to_string().contains("deadlock"));
}

#[test]
fn threads_waiting_on_each_other_are_a_deadlock() {
    let result = Runtime::new().block_on(|| {
        let (a_tx, a_rx) = channel::<()>();
        let (b_tx, b_rx) = channel::<()>();
        let first = spawn(move || {
            let _ = b_rx.recv();
            a_tx.send(()).unwrap();
        });
        let second = spawn(move || {
            let _ = a_rx.recv();
            b_tx.send(()).unwrap();
        });
        first.join().unwrap();
        second.join().unwrap();
    });
    assert!(
        matches!(result, Err(Error::Deadlock { parked: 3 })),
        "{result:?}"
    );
}

#[test]
fn a_pending_timer_is_not_a_deadlock() {
    let value = Runtime::new()
        .block_on(|| {
            let (tx, rx) = channel();
            spawn(move || {
                sleep(Duration::from_millis(10));
                tx.send("late but fine").unwrap();
            });
            rx.recv().unwrap()
        })
        .unwrap();
    assert_eq!(value, "late but fine");
}

#[test]
fn a_bare_park_with_no_one_to_unpark_is_a_deadlock() {
    assert!(matches!(
        Runtime::new().block_on(park),
        Err(Error::Deadlock { parked: 1 })
    ));
}

#[test]
fn the_runtime_is_usable_again_after_a_deadlock() {
    let mut rt = Runtime::new();
    assert!(rt.block_on(park).is_err());
    assert_eq!(rt.block_on(|| 3).unwrap(), 3);
    assert_eq!(
        rt.stack_stats().in_use,
        0,
        "the deadlocked thread's stack came back"
    );
}
