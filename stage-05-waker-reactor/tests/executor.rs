//! The executor's promises: tasks run to completion, wakes are never lost,
//! panics and cancellations are contained in `JoinError`, shutdown drops
//! every future.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{both_flavours, scaled, within};
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use runtime::{Runtime, spawn, spawn_blocking, yield_now};

#[test]
fn spawned_tasks_run_and_their_outputs_come_back_through_join_handles() {
    for (name, rt) in both_flavours() {
        let sum = rt.block_on(async {
            let handles: Vec<_> = (0..100u64).map(|i| spawn(async move { i * 2 })).collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 9900, "{name}");
    }
}

#[test]
fn a_panicking_task_yields_a_join_error_and_the_others_keep_running() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let bad = spawn(async { panic!("boom in a task") });
            let good = spawn(async {
                yield_now().await;
                7
            });
            let error = bad.await.unwrap_err();
            assert!(error.is_panic() && !error.is_cancelled(), "{name}");
            assert_eq!(error.to_string(), "task panicked: boom in a task");
            let payload = error.into_panic();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a task"));
            assert_eq!(good.await.unwrap(), 7, "{name}");
        });
        assert_eq!(rt.num_alive_tasks(), 0, "{name}");
    }
}

#[test]
fn abort_cancels_an_idle_task_and_drops_its_future() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    for (name, rt) in both_flavours() {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = SetOnDrop(dropped.clone());
        rt.block_on(async move {
            let (_tx, rx) = oneshot::channel::<()>();
            let task = spawn(async move {
                let _flag = flag;
                let _ = rx.await; // never completes: the sender lives on
            });
            yield_now().await; // let it start and go idle
            task.abort();
            let error = task.await.unwrap_err();
            assert!(error.is_cancelled(), "{name}");
        });
        assert!(
            dropped.load(SeqCst),
            "{name}: the aborted future was dropped"
        );
    }
}

#[test]
fn abort_after_completion_keeps_the_output() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let task = spawn(async { 5 });
            while !task.is_finished() {
                yield_now().await;
            }
            task.abort();
            assert_eq!(task.await.unwrap(), 5, "{name}");
        });
    }
}

#[test]
fn a_wake_after_completion_is_harmless() {
    for (name, rt) in both_flavours() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = polls.clone();
        let waker = rt.block_on(async move {
            let task = spawn(std::future::poll_fn(move |cx: &mut Context<'_>| {
                counter.fetch_add(1, SeqCst);
                Poll::Ready(cx.waker().clone())
            }));
            let waker: Waker = task.await.unwrap();
            waker.wake_by_ref();
            #[allow(clippy::waker_clone_wake)] // waking by value is under test
            waker.clone().wake();
            for _ in 0..3 {
                yield_now().await;
            }
            waker
        });
        assert_eq!(
            polls.load(SeqCst),
            1,
            "{name}: a done task is never polled again"
        );
        assert_eq!(rt.num_alive_tasks(), 0, "{name}");
        // After the runtime is gone too: the waker still owns the task's
        // memory, and waking it queues nothing anywhere.
        drop(rt);
        waker.wake_by_ref();
        waker.wake();
        assert_eq!(polls.load(SeqCst), 1, "{name}");
    }
}

/// A future that is woken from another thread exactly when it is being
/// polled (or just after), many times: a lost wake-up fails the test by
/// deadline ("lost wake-up?").
#[test]
fn wakes_from_other_threads_racing_with_polls_are_never_lost() {
    let rounds = scaled(5_000);
    for (name, rt) in both_flavours() {
        let what = format!("{name}: tasks woken during their polls");
        let polls = within(&what, move || {
            rt.block_on(async move {
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        spawn(async move {
                            let mut polls = 0usize;
                            for _ in 0..rounds / 4 {
                                let (tx, rx) = std::sync::mpsc::channel::<Waker>();
                                let waker_thread = std::thread::spawn(move || {
                                    if let Ok(waker) = rx.recv() {
                                        waker.wake();
                                    }
                                });
                                let mut sent = false;
                                let mut tx = Some(tx);
                                std::future::poll_fn(|cx| {
                                    polls += 1;
                                    if sent {
                                        return Poll::Ready(());
                                    }
                                    sent = true;
                                    // The other thread wakes us while we are
                                    // still inside this poll, or right after.
                                    let _ = tx.take().unwrap().send(cx.waker().clone());
                                    std::hint::spin_loop();
                                    Poll::Pending
                                })
                                .await;
                                waker_thread.join().unwrap();
                            }
                            polls
                        })
                    })
                    .collect();
                let mut total = 0;
                for task in tasks {
                    total += task.await.unwrap();
                }
                total
            })
        });
        assert_eq!(
            polls,
            2 * (rounds / 4) * 4,
            "{name}: each round is polled exactly twice"
        );
    }
}

#[test]
fn futures_channels_join_select_and_streams_work_inside_the_runtime() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let (tx, rx) = mpsc::channel::<u32>(4);
            let producer = spawn(async move {
                let mut tx = tx;
                for i in 0..100 {
                    futures::SinkExt::send(&mut tx, i).await.unwrap();
                }
            });
            let sum = rx.fold(0u32, |acc, x| async move { acc + x }).await;
            producer.await.unwrap();
            assert_eq!(sum, 4950, "{name}");

            let (a, b) = futures::join!(spawn(async { 1 }), async { 2 });
            assert_eq!((a.unwrap(), b), (1, 2));

            let (_keep, never) = oneshot::channel::<()>();
            let mut never = never;
            let mut soon = futures::FutureExt::fuse(runtime::time::sleep(Duration::from_millis(5)));
            let winner = futures::select! {
                _ = never => "never",
                _ = soon => "sleep",
            };
            assert_eq!(winner, "sleep", "{name}");
        });
    }
}

#[test]
fn dropping_a_runtime_drops_the_futures_of_all_pending_tasks() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    for (name, rt) in both_flavours() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let mut keep_alive = Vec::new();
        let handles = rt.block_on(async {
            let mut handles = Vec::new();
            for i in 0..50 {
                let counted = Counted(dropped.clone());
                let started = started.clone();
                let (tx, rx) = oneshot::channel::<()>();
                keep_alive.push(tx);
                handles.push(spawn(async move {
                    let _counted = counted;
                    started.fetch_add(1, SeqCst);
                    if i % 2 == 0 {
                        let _ = rx.await; // idle, waiting on a channel
                    } else {
                        runtime::time::sleep(Duration::from_secs(3600)).await; // on a timer
                    }
                }));
            }
            // Let all 50 reach their wait (on the current-thread flavour,
            // `block_on` would otherwise return before polling any).
            while started.load(SeqCst) < 50 || rt.num_pending_timers() < 25 {
                yield_now().await;
            }
            // And tasks never polled at all (on the current-thread flavour;
            // a worker may get to some of them first).
            for _ in 0..10 {
                let counted = Counted(dropped.clone());
                handles.push(spawn(async move {
                    let _counted = counted;
                }));
            }
            handles
        });
        assert_eq!(rt.num_pending_timers(), 25, "{name}: half wait on a timer");
        drop(rt);
        assert_eq!(dropped.load(SeqCst), 60, "{name}");
        // Their handles report cancellation (or completion for the quick ones).
        let outcomes = futures::executor::block_on(futures::future::join_all(handles));
        let cancelled = outcomes
            .iter()
            .filter(|r| matches!(r, Err(e) if e.is_cancelled()))
            .count();
        assert!(cancelled >= 50, "{name}: {cancelled} cancelled");
        if name == "current_thread" {
            assert_eq!(cancelled, 60, "{name}: never polled, then cancelled");
        }
    }
}

#[test]
fn spawn_blocking_runs_on_another_thread_and_returns_its_value() {
    for (name, rt) in both_flavours() {
        let (value, thread) = rt.block_on(async {
            let here = std::thread::current().id();
            spawn_blocking(move || (41 + 1, std::thread::current().id() != here))
                .await
                .unwrap()
        });
        assert_eq!(value, 42, "{name}");
        assert!(thread, "{name}");
        let error = rt
            .block_on(async { spawn_blocking(|| panic!("blocking boom")).await })
            .unwrap_err();
        assert!(error.is_panic(), "{name}");
    }
}

#[test]
fn yield_now_lets_other_tasks_run_in_between() {
    let rt = Runtime::new().unwrap();
    let order = rt.block_on(async {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..2)
            .map(|id| {
                let log = log.clone();
                spawn(async move {
                    for step in 0..3 {
                        log.lock().unwrap().push((id, step));
                        yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(log).unwrap().into_inner().unwrap()
    });
    assert_eq!(order, vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
}

#[test]
fn many_runtimes_run_side_by_side_on_many_threads() {
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let rt = if i % 2 == 0 {
                    Runtime::new().unwrap()
                } else {
                    Runtime::builder()
                        .multi_thread()
                        .worker_threads(2)
                        .build()
                        .unwrap()
                };
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..100)
                        .map(|j| spawn(async move { i * 1000 + j }))
                        .collect();
                    let mut sum = 0;
                    for t in tasks {
                        sum += t.await.unwrap();
                    }
                    sum
                })
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), i * 100_000 + 4950);
    }
}

#[test]
fn tasks_spawned_from_outside_run_on_the_next_block_on() {
    for (name, rt) in both_flavours() {
        let handle = rt.spawn(async { "ran" });
        assert_eq!(rt.block_on(handle).unwrap(), "ran", "{name}");
    }
}

#[test]
#[should_panic(expected = "inside a runtime")]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    drop(spawn(async {}));
}

#[test]
fn a_task_woken_from_a_plain_thread_runs_on_a_parked_runtime() {
    for (name, rt) in both_flavours() {
        let what = format!("{name}: a task woken from a plain thread");
        let got = within(&what, move || {
            rt.block_on(async {
                let (tx, rx) = oneshot::channel();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    tx.send(99).unwrap();
                });
                spawn(async move { rx.await.unwrap() }).await.unwrap()
            })
        });
        assert_eq!(got, 99, "{name}");
    }
}

/// Many tasks, each woken over and over by its own plain thread, which
/// bumps a counter and then wakes whatever waker the task left last. The
/// task finishes when it has seen every bump; a single lost wake-up leaves
/// it waiting forever, and the test fails by deadline ("lost wake-up?").
#[test]
fn a_storm_of_cross_thread_wakes_never_strands_a_task() {
    use std::sync::Mutex;
    let bumps = scaled(2_000);
    for (name, rt) in both_flavours() {
        let what = format!("{name}: a storm of cross-thread wakes");
        let finished = within(&what, move || {
            rt.block_on(async move {
                let mut tasks = Vec::new();
                let mut threads = Vec::new();
                for _ in 0..4 {
                    let counter = Arc::new(AtomicUsize::new(0));
                    let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
                    let (c, s) = (counter.clone(), slot.clone());
                    tasks.push(spawn(async move {
                        std::future::poll_fn(|cx| {
                            // Leave the waker first, then look: a bump after
                            // the look finds this waker and wakes it.
                            *s.lock().unwrap() = Some(cx.waker().clone());
                            if c.load(SeqCst) == bumps {
                                Poll::Ready(())
                            } else {
                                Poll::Pending
                            }
                        })
                        .await;
                    }));
                    threads.push(std::thread::spawn(move || {
                        for _ in 0..bumps {
                            counter.fetch_add(1, SeqCst);
                            let waker = slot.lock().unwrap().clone();
                            if let Some(waker) = waker {
                                waker.wake();
                            }
                        }
                    }));
                }
                let mut finished = 0;
                for task in tasks {
                    task.await.unwrap();
                    finished += 1;
                }
                for thread in threads {
                    thread.join().unwrap();
                }
                finished
            })
        });
        assert_eq!(finished, 4, "{name}");
    }
}

#[test]
fn two_threads_can_block_on_one_current_thread_runtime_at_once() {
    // One thread drives the tasks; the other polls its own future and gets
    // its spawned task run by the first (or takes the core over later).
    let rt = Runtime::new().unwrap();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    std::thread::scope(|scope| {
        let rt = &rt;
        let driver = scope.spawn(move || {
            rt.block_on(async move {
                release_rx.await.unwrap();
                "driver done"
            })
        });
        let other = scope.spawn(move || {
            let out = rt.block_on(async { spawn(async { 40 + 2 }).await.unwrap() });
            release_tx.send(()).unwrap();
            out
        });
        assert_eq!(other.join().unwrap(), 42);
        assert_eq!(driver.join().unwrap(), "driver done");
    });
}

/// Nested `block_on` is refused the same way on both flavours, whichever
/// runtime the inner call belongs to.
#[test]
fn block_on_inside_block_on_panics_with_a_clear_message_on_both_flavours() {
    for (name, rt) in both_flavours() {
        let message = rt.block_on(async {
            let inner = Runtime::new().unwrap();
            let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.block_on(async { 1 })
            }));
            let payload = nested.expect_err("a nested block_on must panic");
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        assert!(
            message.contains("inside another `block_on`")
                || message.contains("from inside a runtime's task"),
            "{name}: unexpected message {message:?}"
        );
        // The runtime is still usable afterwards.
        assert_eq!(rt.block_on(async { spawn(async { 2 }).await.unwrap() }), 2);
    }
}

#[test]
#[should_panic(expected = "from inside a runtime's task")]
fn block_on_inside_a_task_panics_with_a_clear_message() {
    let rt = Runtime::new().unwrap();
    let inner = Runtime::new().unwrap();
    rt.block_on(async move {
        spawn(async move { inner.block_on(async {}) })
            .await
            .map_err(|e| e.into_panic())
    })
    .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
}

#[test]
fn a_detached_task_keeps_running_after_its_handle_is_dropped() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let (tx, rx) = oneshot::channel();
            drop(spawn(async move {
                yield_now().await;
                tx.send("still ran").unwrap();
            }));
            assert_eq!(rx.await.unwrap(), "still ran", "{name}");
        });
    }
}

#[test]
fn spawn_blocking_queues_jobs_beyond_the_thread_limit() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let results = rt.block_on(async {
        let jobs: Vec<_> = (0..5)
            .map(|i| {
                spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    (i, std::thread::current().name().map(str::to_owned))
                })
            })
            .collect();
        let mut results = Vec::new();
        for job in jobs {
            results.push(job.await.unwrap());
        }
        results
    });
    assert_eq!(
        results.iter().map(|r| r.0).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(
        results
            .iter()
            .all(|r| r.1.as_deref() == Some("runtime-blocking")),
        "one named pool thread: {results:?}"
    );
}

#[test]
fn the_public_types_can_be_shared_and_sent_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
    send_sync::<runtime::JoinHandle<String>>();
    send_sync::<runtime::JoinError>();
    send_sync::<runtime::net::TcpStream>();
    send_sync::<runtime::net::TcpListener>();
    send_sync::<runtime::time::Sleep>();
    send_sync::<runtime::time::Interval>();
    send_sync::<runtime::time::Elapsed>();
    // And the futures of the API are `Send`, so they can be spawned on
    // the multi-threaded flavour.
    fn send<T: Send>(_: &T) {}
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let listener = runtime::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        send(&listener.accept());
        send(&runtime::net::TcpStream::connect(addr));
        send(&runtime::time::timeout(Duration::ZERO, async {}));
        send(&yield_now());
    });
}

/// A runtime may be dropped by its own code: from a task on one of its
/// workers, or from one of its `spawn_blocking` closures. The drop cannot
/// join the thread it runs on (that thread finishes its poll or closure and
/// exits by itself), but every other future is still dropped.
#[test]
fn a_runtime_can_be_dropped_from_inside_its_own_task_or_blocking_closure() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    // A current-thread runtime's tasks run only inside `block_on`, which
    // borrows the runtime: none of them can own it.
    let cases = [
        ("current_thread", true),
        ("multi_thread", false),
        ("multi_thread", true),
    ];
    for (name, from_blocking) in cases {
        let rt = match name {
            "current_thread" => Runtime::new().unwrap(),
            _ => Runtime::builder()
                .multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        };
        let dropped = Arc::new(AtomicUsize::new(0));
        let (keep, never) = oneshot::channel::<()>();
        let counted = Counted(dropped.clone());
        rt.spawn(async move {
            let _counted = counted;
            let _ = never.await;
        });
        let slot = Arc::new(std::sync::Mutex::new(Some(rt)));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let taken = slot.clone();
        let drop_it = move || {
            let rt = taken.lock().unwrap().take();
            drop(rt);
            done_tx.send(()).unwrap();
        };
        {
            let guard = slot.lock().unwrap();
            let rt = guard.as_ref().unwrap();
            if from_blocking {
                drop(rt.spawn_blocking(drop_it));
            } else {
                drop(rt.spawn(async move { drop_it() }));
            }
        }
        done_rx.recv().unwrap();
        assert!(slot.lock().unwrap().is_none(), "{name}");
        assert_eq!(
            dropped.load(SeqCst),
            1,
            "{name} (from_blocking: {from_blocking}): the other task's future was dropped"
        );
        drop(keep);
    }
}

/// A waker woken by value on another thread while the runtime is being
/// dropped: the wake may queue the task just before shutdown takes the
/// queue. The future must be dropped either way. (The waking thread must
/// also not touch the task or the runtime after they are freed, which is
/// why `wake` keeps its own reference until `schedule` returns; that window
/// is a few instructions wide, so this test rarely hits it, even under
/// `cargo miri test` with many seeds: the argument is in `task/waker.rs`.)
#[test]
fn a_wake_from_another_thread_racing_with_runtime_drop_still_drops_the_future() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let rounds = scaled(20);
    for round in 0..rounds {
        for (name, rt) in both_flavours() {
            let dropped = Arc::new(AtomicUsize::new(0));
            let counted = Counted(dropped.clone());
            let (tx, rx) = std::sync::mpsc::channel::<Waker>();
            let task = rt.spawn(std::future::poll_fn(move |cx: &mut Context<'_>| {
                let _keep = &counted;
                let _ = tx.send(cx.waker().clone());
                Poll::<()>::Pending
            }));
            drop(task); // detached: the queue's reference may be the last
            let waker = rt.block_on(async {
                loop {
                    if let Ok(waker) = rx.try_recv() {
                        break waker;
                    }
                    yield_now().await;
                }
            });
            let waking = std::thread::spawn(move || waker.wake());
            drop(rt);
            waking.join().unwrap();
            assert_eq!(dropped.load(SeqCst), 1, "{name}, round {round}");
        }
    }
}
