//! Timers complete in deadline order and never before their deadline.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{both_flavours, within};
use futures::channel::oneshot;
use futures::{FutureExt, StreamExt};
use runtime::time::{interval, sleep, sleep_until, timeout};
use runtime::{Runtime, spawn};

#[test]
#[cfg_attr(
    miri,
    ignore = "needs every task to register its timer within a 100 ms margin, which Miri is far too slow for"
)]
fn sleeps_wake_in_deadline_order_and_never_early() {
    for (name, rt) in both_flavours() {
        let log = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            // Every task registers its timer before the first can fire: the
            // deadlines count from a base set once all tasks are spawned,
            // with a margin for slow (emulated) machines.
            let (base_tx, base_rx) = oneshot::channel::<Instant>();
            let base_rx = base_rx.shared();
            // Spawned in scrambled order. On the multi-thread flavour two
            // tasks woken close together may be run by different workers in
            // either order, so the deadlines lie further apart than a
            // worker's scheduling jitter: 5 ms natively, 50 ms under qemu
            // (where a stalled worker was seen to run a task 25 ms late).
            let step = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
                50
            } else {
                5
            };
            let delays = [6u64, 1, 4, 0, 9, 2, 5, 3, 8, 7].map(|i| i * step);
            let tasks: Vec<_> = delays
                .iter()
                .map(|&ms| {
                    let log = log.clone();
                    let base_rx = base_rx.clone();
                    spawn(async move {
                        let base = base_rx.await.unwrap();
                        let deadline = base + Duration::from_millis(ms);
                        sleep_until(deadline).await;
                        let woke = Instant::now();
                        assert!(woke >= deadline, "woke {:?} early", deadline - woke);
                        log.lock().unwrap().push(ms);
                    })
                })
                .collect();
            let margin = Duration::from_millis(
                if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
                    500
                } else {
                    100
                },
            );
            base_tx.send(Instant::now() + margin).unwrap();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let log = log.lock().unwrap().clone();
        let mut sorted = log.clone();
        sorted.sort();
        assert_eq!(log, sorted, "{name}: woken in deadline order");
        assert_eq!(rt.num_pending_timers(), 0, "{name}");
    }
}

#[test]
fn sleep_lasts_at_least_its_duration() {
    for (name, rt) in both_flavours() {
        let what = format!("{name}: four sleeps of 1 to 12 ms");
        within(&what, move || {
            rt.block_on(async move {
                for ms in [1u64, 3, 7, 12] {
                    let start = Instant::now();
                    sleep(Duration::from_millis(ms)).await;
                    assert!(
                        start.elapsed() >= Duration::from_millis(ms),
                        "{name}: {ms} ms"
                    );
                }
                // A zero or past deadline completes at once.
                sleep(Duration::ZERO).await;
                sleep_until(Instant::now() - Duration::from_millis(5)).await;
            })
        });
    }
}

#[test]
fn timeout_gives_elapsed_when_the_future_is_too_slow_and_the_output_otherwise() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let start = Instant::now();
            let slow = timeout(Duration::from_millis(20), sleep(Duration::from_secs(3600))).await;
            assert!(slow.is_err(), "{name}");
            assert!(start.elapsed() >= Duration::from_millis(20), "{name}");
            let fast = timeout(Duration::from_secs(3600), async { 5 }).await;
            assert_eq!(fast, Ok(5), "{name}");
            let error = timeout(Duration::ZERO, std::future::pending::<()>())
                .await
                .unwrap_err();
            assert_eq!(error.to_string(), "deadline has elapsed");
        });
        assert_eq!(
            rt.num_pending_timers(),
            0,
            "{name}: dropped sleeps unregister"
        );
    }
}

#[test]
fn interval_ticks_at_multiples_of_its_period() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let period = Duration::from_millis(10);
            let mut ticks = interval(period);
            let first = ticks.tick().await;
            let mut previous = first;
            for _ in 0..4 {
                let at = ticks.tick().await;
                // On time, the next multiple; on a slow (emulated) machine,
                // missed ticks are skipped: a later multiple.
                assert!(at > previous, "{name}");
                assert_eq!((at - first).as_nanos() % period.as_nanos(), 0, "{name}");
                assert!(Instant::now() >= at, "{name}: never early");
                previous = at;
            }
            // And as a stream.
            let more: Vec<Instant> = ticks.take(2).collect().await;
            assert!(more[1] > more[0], "{name}");
            assert_eq!(
                (more[1] - first).as_nanos() % period.as_nanos(),
                0,
                "{name}"
            );
        });
    }
}

#[test]
fn interval_skips_ticks_missed_while_busy() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        // The first tick must be taken within one period of `interval()`
        // for `late` below to be the very next one: a period long enough
        // for a preempted (or emulated) thread.
        let period = Duration::from_millis(20);
        let mut ticks = interval(period);
        let first = ticks.tick().await;
        std::thread::sleep(period * 4 + period / 2); // busy: miss ~4 ticks
        let late = ticks.tick().await; // the one that was due
        let next = ticks.tick().await;
        assert_eq!(late, first + period);
        assert!(next > first + period * 4, "missed ticks are skipped");
        assert_eq!((next - first).as_nanos() % period.as_nanos(), 0);
    });
}

#[test]
fn a_timer_armed_on_a_worker_shortens_another_workers_wait() {
    let rt = Runtime::builder()
        .multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        // One task parks a worker in the reactor with a long timer...
        let long = spawn(sleep(Duration::from_secs(3600)));
        sleep(Duration::from_millis(10)).await;
        // ...then a short one, armed from elsewhere, must still fire on time.
        let start = Instant::now();
        spawn(sleep(Duration::from_millis(15))).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(15));
        long.abort();
    });
}

#[test]
fn timers_keep_firing_on_the_multi_thread_flavour_while_one_worker_is_stuck() {
    // A task that blocks its worker thread (which tasks should not do) must
    // not stop the other worker from driving the reactor.
    let rt = Runtime::builder()
        .multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let stuck_for = Duration::from_millis(
        if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
            2000
        } else {
            500
        },
    );
    let timer_done = rt.block_on(async move {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let stuck = spawn(async move {
            std::thread::sleep(stuck_for);
            flag.load(std::sync::atomic::Ordering::SeqCst)
        });
        let timer = spawn(async move {
            sleep(Duration::from_millis(10)).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        timer.await.unwrap();
        stuck.await.unwrap()
    });
    assert!(
        timer_done,
        "the timer fired while the other worker was stuck"
    );
}

#[test]
fn huge_durations_do_not_overflow_they_just_never_fire() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        assert!(
            timeout(Duration::from_millis(5), sleep(Duration::MAX))
                .await
                .is_err()
        );
        let mut ticks = interval(Duration::MAX);
        ticks.tick().await; // the first tick is immediate
        assert!(
            timeout(Duration::from_millis(5), ticks.tick())
                .await
                .is_err()
        );
        assert!(timeout(Duration::MAX, async { 1 }).await.is_ok());
    });
    assert_eq!(rt.num_pending_timers(), 0);
}

#[test]
#[allow(clippy::async_yields_async)] // the sleep is handed out unawaited on purpose
fn a_sleep_that_outlives_its_runtime_never_completes_early() {
    use std::future::Future as _;
    for (name, rt) in both_flavours() {
        // Registered with the reactor (polled once), then the runtime goes.
        let mut sleeping = Box::pin(rt.block_on(async {
            let mut sleeping = sleep(Duration::from_secs(3600));
            let first = futures::poll!(&mut sleeping);
            assert!(first.is_pending(), "{name}");
            sleeping
        }));
        drop(rt);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..2 {
            assert!(
                sleeping.as_mut().poll(&mut cx).is_pending(),
                "{name}: an hour has not passed"
            );
        }
    }
}

/// A waker whose `clone` waits until `fired` has been woken: the reactor
/// fires the timer on a worker while a poll is between reading the clock
/// and handing the reactor its new waker.
struct CloneAfterFire {
    fired: Arc<Woken>,
    woken: Woken,
}

#[derive(Default)]
struct Woken(std::sync::atomic::AtomicBool);

impl Woken {
    fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    /// Whether it gets set within `limit`.
    fn wait(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while !self.is_set() && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.is_set()
    }
}

impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.set();
    }
}

fn clone_after_fire_waker(waker: Arc<CloneAfterFire>) -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);
    fn raw(data: *const ()) -> RawWaker {
        RawWaker::new(data, &VTABLE)
    }
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` came from `Arc::into_raw` and the waker being
        // cloned still owns its count.
        let this = unsafe { &*data.cast::<CloneAfterFire>() };
        assert!(
            this.fired.wait(common::deadline()),
            "the reactor never fired the timer"
        );
        // SAFETY: as above; the new waker owns the new count.
        unsafe { Arc::increment_strong_count(data.cast::<CloneAfterFire>()) };
        raw(data)
    }
    unsafe fn wake(data: *const ()) {
        // SAFETY: as in `clone`.
        unsafe { &*data.cast::<CloneAfterFire>() }.woken.set();
    }
    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: each waker owns one count of the `Arc`.
        unsafe { Arc::decrement_strong_count(data.cast::<CloneAfterFire>()) };
    }
    // SAFETY: the vtable keeps the contract: each waker owns one count of
    // a live `Arc<CloneAfterFire>`, and every function is thread-safe.
    unsafe { Waker::from_raw(raw(Arc::into_raw(waker).cast())) }
}

#[test]
#[allow(clippy::async_yields_async)] // the sleep is handed out unawaited on purpose
fn a_sleep_polled_with_a_new_waker_as_its_timer_fires_wakes_that_waker_or_completes() {
    use std::future::Future as _;
    use std::task::{Context, Waker};
    within("a sleep that changes hands as its timer fires", || {
        let rt = Runtime::builder()
            .multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let mut sleeping = Box::pin(rt.block_on(async { sleep(Duration::from_millis(300)) }));
        // First poll, by one waiter: the timer is registered with its waker.
        let first = Arc::new(Woken::default());
        let first_waker = Waker::from(first.clone());
        let polled = sleeping
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker));
        assert!(polled.is_pending(), "300 ms have not passed yet");
        // Second poll, by another waiter (the sleep moved to another task),
        // just before the deadline: a worker fires the timer (waking the
        // first waiter) after the poll read the clock and before it handed
        // the reactor the second waker.
        let second = Arc::new(CloneAfterFire {
            fired: first.clone(),
            woken: Woken::default(),
        });
        let second_waker = clone_after_fire_waker(second.clone());
        let polled = sleeping
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker));
        assert!(
            polled.is_ready() || second.woken.wait(Duration::from_secs(5)),
            "the sleep said Pending to its second waiter, whose waker nobody \
             will ever wake: the timer fired for the first one"
        );
        assert!(
            sleeping
                .as_mut()
                .poll(&mut Context::from_waker(&second_waker))
                .is_ready()
        );
    });
}
