//! The green-thread channel: parking receive, disconnection, pipelines.

use green::{RecvError, Runtime, TryRecvError, channel, spawn};

const ROUNDS: u32 = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
    200
} else {
    2_000
};

#[test]
fn ping_pong_between_two_green_threads() {
    let last = Runtime::new()
        .block_on(|| {
            let (ping_tx, ping_rx) = channel::<u32>();
            let (pong_tx, pong_rx) = channel::<u32>();
            let ponger = spawn(move || {
                for n in &ping_rx {
                    pong_tx.send(n + 1).unwrap();
                }
            });
            let mut n = 0;
            for _ in 0..ROUNDS {
                ping_tx.send(n).unwrap();
                n = pong_rx.recv().unwrap();
            }
            drop(ping_tx);
            ponger.join().unwrap();
            n
        })
        .unwrap();
    assert_eq!(last, ROUNDS);
}

#[test]
fn a_multi_stage_pipeline_delivers_every_value_in_order() {
    let out = Runtime::new()
        .block_on(|| {
            let (source_tx, mut rx) = channel::<u64>();
            // Four stages, each adds one and passes the value on.
            for _ in 0..4 {
                let (tx, next_rx) = channel();
                spawn(move || {
                    for v in &rx {
                        tx.send(v + 1).unwrap();
                    }
                });
                rx = next_rx;
            }
            spawn(move || {
                for v in 0..100 {
                    source_tx.send(v).unwrap();
                }
            });
            rx.iter().collect::<Vec<_>>()
        })
        .unwrap();
    assert_eq!(out, (4..104).collect::<Vec<_>>());
}

#[test]
fn many_producers_one_consumer_receives_everything() {
    let total = Runtime::new()
        .block_on(|| {
            let (tx, rx) = channel();
            for p in 0..10u64 {
                let tx = tx.clone();
                spawn(move || {
                    for i in 0..10 {
                        tx.send(p * 10 + i).unwrap();
                        green::yield_now();
                    }
                });
            }
            drop(tx);
            rx.iter().sum::<u64>()
        })
        .unwrap();
    assert_eq!(total, (0..100).sum());
}

#[test]
fn recv_fails_once_the_queue_is_empty_and_every_sender_is_gone() {
    Runtime::new()
        .block_on(|| {
            let (tx, rx) = channel();
            let tx2 = tx.clone();
            tx.send(1).unwrap();
            drop(tx);
            assert_eq!(rx.try_recv(), Ok(1));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "tx2 still lives");
            spawn(move || {
                tx2.send(2).unwrap();
            });
            assert_eq!(rx.recv(), Ok(2), "parks until the value arrives");
            assert_eq!(
                rx.recv(),
                Err(RecvError),
                "parks until the last sender is gone"
            );
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        })
        .unwrap();
}

#[test]
fn send_returns_the_value_when_the_receiver_is_gone() {
    let (tx, rx) = channel();
    drop(rx);
    let error = tx.send(String::from("lost")).unwrap_err();
    assert_eq!(error.0, "lost");
}

#[test]
fn a_channel_can_be_used_without_blocking_outside_a_runtime() {
    let (tx, rx) = channel();
    tx.send(5).unwrap();
    assert_eq!(rx.recv(), Ok(5), "a value is there: no need to park");
}

#[test]
fn a_receiver_shared_by_several_green_threads_wakes_each_of_them() {
    let mut got = Runtime::new()
        .block_on(|| {
            let (tx, rx) = channel::<u32>();
            let rx = std::rc::Rc::new(rx);
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    spawn(move || rx.iter().collect::<Vec<_>>())
                })
                .collect();
            green::yield_now(); // all three park in recv
            for v in 0..30 {
                tx.send(v).unwrap();
                green::yield_now();
            }
            drop(tx); // wakes every consumer, not just one
            consumers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap();
    got.sort();
    assert_eq!(got, (0..30).collect::<Vec<_>>());
}

#[test]
fn a_receiver_woken_by_someone_else_does_not_swallow_the_next_wake_up() {
    // Two green threads wait in `recv` on one shared receiver. The second is
    // woken by a stray `unpark` (allowed: `park` may return spuriously),
    // takes the first value and leaves. The second value must still wake
    // the first thread: a stale entry in the wait list must not absorb it.
    let result = Runtime::new().block_on(|| {
        let (tx, rx) = channel::<u32>();
        let rx = std::rc::Rc::new(rx);
        let first = {
            let rx = rx.clone();
            spawn(move || rx.recv())
        };
        let second = {
            let rx = rx.clone();
            spawn(move || rx.recv())
        };
        green::yield_now(); // both park in recv: first, then second
        assert!(green::unpark(second.id()), "second is alive and parked");
        tx.send(1).unwrap(); // wakes `first`, but `second` runs before it
        let second = second.join().unwrap();
        green::yield_now(); // `first` finds the queue empty and parks again
        tx.send(2).unwrap();
        (first.join().unwrap(), second)
    });
    let (first, second) = result.expect("no deadlock: every value wakes a waiting receiver");
    assert_eq!(second, Ok(1));
    assert_eq!(first, Ok(2));
}
