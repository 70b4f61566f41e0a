//! Dropping a runtime runs user code too, and none of its panics may unwind
//! out of `Runtime::drop`.
//!
//! Shutdown drops the future of every task still pending, wakes the
//! `JoinHandle`s of the tasks it cancels, waits for running blocking jobs
//! (whose outputs it may drop), drops the closures of queued ones, and lets
//! go of every waker the reactor still holds for a socket or a timer. Each
//! of these may be user code that panics. A panic that escaped the drop
//! would skip the rest of the teardown (descriptors, threads and tasks
//! would leak), and while the thread is already unwinding from another
//! panic, it would abort the process.
//!
//! Each test below drops runtimes of both flavours with such user code in
//! place and checks that the drop returns normally, that every thread of
//! the runtime is gone, that no descriptor is left open, that every copy
//! of a hand-made waker was let go, and that a fresh runtime still works.
//! Each runs alone in a child process (through `COURSE_EMULATOR` under
//! qemu-user): it counts the process's descriptors and threads, and a
//! runtime that gets this wrong may abort the whole process.

// Join handles and sleeps come out of `block_on` unawaited on purpose: the
// tests look at them after the runtime is gone.
#![allow(clippy::async_yields_async)]

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::{JoinError, JoinHandle, Runtime, spawn, spawn_blocking, yield_now};

mod common;

/// Set in the child process that runs one test's body.
const CHILD: &str = "STAGE05_SHUTDOWN_PANICS_CHILD";

/// Prefix of the names of the runtimes' threads, to find them in
/// `/proc/self/task` (a thread's name there is cut to 15 bytes).
const THREAD_NAME: &str = "shutdown-rt";

/// In the child process, run `body`. Otherwise run the test called `name`
/// alone in a child process and check that it passed (an abort or a hang
/// fails the test here, with the child's stderr).
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let output = test_support::run_this_test_alone(name, CHILD, "1");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let aborted = if output.status.signal() == Some(libc::SIGABRT) {
        " (SIGABRT: a panic unwound out of a destructor during another unwind)"
    } else {
        ""
    };
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name}, in a child process: {}{aborted}\n--- stdout ---\n{stdout}\n--- stderr (last lines) ---\n{}",
        output.status,
        tail.join("\n")
    );
}

#[derive(Clone, Copy, Debug)]
enum Flavour {
    CurrentThread,
    MultiThread,
}

const FLAVOURS: [Flavour; 2] = [Flavour::CurrentThread, Flavour::MultiThread];

fn build(flavour: Flavour) -> Runtime {
    let builder = match flavour {
        Flavour::CurrentThread => Runtime::builder(),
        Flavour::MultiThread => Runtime::builder().multi_thread().worker_threads(2),
    };
    builder
        .max_blocking_threads(2)
        .thread_name(THREAD_NAME)
        .build()
        .expect("a runtime")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Threads of this process that belong to a runtime built by [`build`].
fn runtime_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(THREAD_NAME))
        .count()
}

/// Every thread of the dropped runtime is gone. (A joined thread may stay
/// listed for a moment after `join` returns: the kernel reaps it just
/// after it wakes the joiner. Hence the short wait.)
fn assert_threads_gone(what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while runtime_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: {} thread(s) of the dropped runtime still run",
            runtime_threads()
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a payload that is not a string".to_string())
}

/// Sockets, timers, tasks and blocking jobs, on a runtime of `flavour`:
/// what a runtime must still do after another one was dropped.
fn still_works(flavour: Flavour) {
    let rt = build(flavour);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"ok").await.unwrap();
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 2];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
        server.await.unwrap();
        runtime::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(spawn(async { 6 * 7 }).await.unwrap(), 42);
        assert_eq!(spawn_blocking(|| 7).await.unwrap(), 7);
    });
    drop(rt);
    assert_threads_gone(&format!("{flavour:?}, a fresh runtime"));
}

/// The checks of every test: build a runtime of `flavour`, let `setup` put
/// user code in place (what it returns is kept alive past the drop), drop
/// the runtime and check that the drop returned normally and that every
/// thread is gone; then `after` looks at what was kept and drops it, and
/// no descriptor may be left open. Last, a fresh runtime must still work.
fn shutdown_survives<K>(
    flavour: Flavour,
    setup: impl FnOnce(&Runtime) -> K,
    after: impl FnOnce(K),
) {
    // Whatever the process opens once (std's lazy descriptors) is open
    // before counting.
    still_works(flavour);
    let fds = open_fds();
    let rt = build(flavour);
    if let Flavour::MultiThread = flavour {
        // Or the check that they are gone would prove nothing. (A thread
        // names itself once it runs: wait for that.)
        let deadline = Instant::now() + Duration::from_secs(5);
        while runtime_threads() != 2 {
            assert!(Instant::now() < deadline, "the workers are found by name");
            thread::sleep(Duration::from_millis(1));
        }
    }
    let kept = setup(&rt);
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(rt))) {
        let message = panic_message(&*payload);
        std::mem::forget(payload); // its destructor may panic too
        // The teardown stopped half-way, so the reactor may still hold the
        // hand-made wakers; dropping what was kept (a socket's registration)
        // would drop them while this panic unwinds, and abort. Leak it, so
        // that the test fails with the message below.
        std::mem::forget(kept);
        panic!("{flavour:?}: a panic unwound out of Runtime::drop: {message}");
    }
    assert_threads_gone(&format!("{flavour:?}"));
    after(kept);
    assert_eq!(open_fds(), fds, "{flavour:?}: descriptors left open");
    still_works(flavour);
    assert_eq!(open_fds(), fds, "{flavour:?}: descriptors left open");
}

/// Wait (yielding, and sleeping a little) until `done`: until the tasks of
/// a multi-threaded runtime have got somewhere on their workers, or those
/// of a current-thread one inside this `block_on`.
async fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + common::deadline();
    while !done() {
        assert!(Instant::now() < deadline, "the tasks never got there");
        yield_now().await;
        runtime::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A task that holds `value`, says it started, and waits for ever: only
/// shutdown drops its future (and `value`).
async fn hold_and_wait<T>(value: T, started: Arc<AtomicUsize>) {
    let _value = value;
    started.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
}

fn poll_with<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// The output of a task after its runtime is gone: it must be done.
fn output_of<T>(mut handle: JoinHandle<T>) -> Result<T, JoinError> {
    match poll_with(&mut handle, Waker::noop()) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a task is not done after its runtime was dropped"),
    }
}

/// A value whose destructor panics.
#[derive(Debug)]
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{} dropped", self.0);
    }
}

/// A value whose destructor panics with a payload whose own destructor
/// panics.
struct BombWithABombPayload;

impl Drop for BombWithABombPayload {
    fn drop(&mut self) {
        std::panic::panic_any(Bomb("a destructor's panic payload"));
    }
}

/// Which of its functions a [`Faulty`] waker panics in, once armed.
#[derive(Clone, Copy, Debug)]
enum Faults {
    Wake,
    Drop,
    WakeAndDrop,
}

const ALL_FAULTS: [Faults; 3] = [Faults::Wake, Faults::Drop, Faults::WakeAndDrop];

/// A waker made by hand, as a user may make one: a `RawWakerVTable` over
/// an `Arc<Faulty>`. Once armed, it panics when woken (`wake` or
/// `wake_by_ref`) and/or when dropped. It counts its live copies, so a
/// test can check that the runtime let go of every one.
struct Faulty {
    panic_on_wake: AtomicBool,
    panic_on_drop: AtomicBool,
    live: AtomicUsize,
    wakes: AtomicUsize,
}

static FAULTY_VTABLE: RawWakerVTable =
    RawWakerVTable::new(faulty_clone, faulty_wake, faulty_wake_by_ref, faulty_drop);

impl Faulty {
    fn new() -> Arc<Faulty> {
        Arc::new(Faulty {
            panic_on_wake: AtomicBool::new(false),
            panic_on_drop: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            wakes: AtomicUsize::new(0),
        })
    }

    fn waker(self: &Arc<Faulty>) -> Waker {
        self.live.fetch_add(1, SeqCst);
        let data = Arc::into_raw(self.clone()).cast::<()>();
        // SAFETY: every function of the vtable treats `data` as one strong
        // count of an `Arc<Faulty>`, which this `RawWaker` owns.
        unsafe { Waker::from_raw(RawWaker::new(data, &FAULTY_VTABLE)) }
    }

    /// Arm the faults. Only after the test dropped its own copies: those
    /// would panic in the test itself.
    fn arm(&self, faults: Faults) {
        let (wake, drop) = match faults {
            Faults::Wake => (true, false),
            Faults::Drop => (false, true),
            Faults::WakeAndDrop => (true, true),
        };
        self.panic_on_wake.store(wake, SeqCst);
        self.panic_on_drop.store(drop, SeqCst);
    }

    fn live(&self) -> usize {
        self.live.load(SeqCst)
    }
}

unsafe fn faulty_clone(data: *const ()) -> RawWaker {
    let ptr = data.cast::<Faulty>();
    // SAFETY: the waker being cloned owns a strong count, so the `Arc` is live.
    unsafe { Arc::increment_strong_count(ptr) };
    // SAFETY: as above.
    unsafe { &*ptr }.live.fetch_add(1, SeqCst);
    RawWaker::new(data, &FAULTY_VTABLE)
}

unsafe fn faulty_wake(data: *const ()) {
    // `wake` consumes the waker: its count is given back before the panic,
    // so a panicking wake does not also leak.
    // SAFETY: the waker owns this strong count, and gives it up here.
    let faulty = unsafe { Arc::from_raw(data.cast::<Faulty>()) };
    faulty.live.fetch_sub(1, SeqCst);
    faulty.wakes.fetch_add(1, SeqCst);
    let panics = faulty.panic_on_wake.load(SeqCst);
    drop(faulty);
    if panics {
        panic!("a hand-made waker panics when woken");
    }
}

unsafe fn faulty_wake_by_ref(data: *const ()) {
    // SAFETY: the waker owns a strong count, so the `Arc` is live.
    let faulty = unsafe { &*data.cast::<Faulty>() };
    faulty.wakes.fetch_add(1, SeqCst);
    if faulty.panic_on_wake.load(SeqCst) {
        panic!("a hand-made waker panics when woken");
    }
}

unsafe fn faulty_drop(data: *const ()) {
    // SAFETY: the waker owns this strong count, and gives it up here.
    let faulty = unsafe { Arc::from_raw(data.cast::<Faulty>()) };
    faulty.live.fetch_sub(1, SeqCst);
    let panics = faulty.panic_on_drop.load(SeqCst);
    drop(faulty);
    if panics {
        panic!("a hand-made waker panics when dropped");
    }
}

// ---------------------------------------------------------------------------

#[test]
fn futures_whose_destructors_panic_when_shutdown_drops_them() {
    isolated(
        "futures_whose_destructors_panic_when_shutdown_drops_them",
        || {
            for flavour in FLAVOURS {
                shutdown_survives(
                    flavour,
                    |rt| {
                        rt.block_on(async {
                            let started = Arc::new(AtomicUsize::new(0));
                            let awaited = spawn(hold_and_wait(
                                Bomb("a pending task's future"),
                                started.clone(),
                            ));
                            drop(spawn(hold_and_wait(
                                Bomb("a detached pending task's future"),
                                started.clone(),
                            )));
                            drop(spawn(hold_and_wait(BombWithABombPayload, started.clone())));
                            until(|| started.load(SeqCst) == 3).await;
                            awaited
                        })
                    },
                    |awaited| {
                        // The destructor's panic is what the task did last.
                        let error = output_of(awaited).expect_err("shutdown dropped the future");
                        assert_eq!(
                            error.to_string(),
                            "task panicked: a pending task's future dropped",
                            "{flavour:?}"
                        );
                    },
                );
            }
        },
    );
}

#[test]
fn outputs_nobody_awaits_whose_destructors_panic_at_shutdown() {
    isolated(
        "outputs_nobody_awaits_whose_destructors_panic_at_shutdown",
        || {
            for flavour in FLAVOURS {
                shutdown_survives(
                    flavour,
                    |rt| {
                        rt.block_on(async {
                            let started = Arc::new(AtomicUsize::new(0));
                            // A finished task's output, in a handle that a
                            // pending task holds: shutdown drops that task's
                            // future, the handle in it, and the output.
                            let finished = spawn(async { Bomb("an output in a dropped handle") });
                            until(|| finished.is_finished()).await;
                            drop(spawn(hold_and_wait(finished, started.clone())));
                            // A detached blocking job that runs at shutdown:
                            // it returns once shutdown drops the task that
                            // holds its channel's sender, and nobody takes
                            // its output.
                            let (tx, rx) = mpsc::channel::<()>();
                            drop(spawn(hold_and_wait(tx, started.clone())));
                            let job_started = Arc::new(AtomicBool::new(false));
                            let job_flag = job_started.clone();
                            drop(spawn_blocking(move || {
                                job_flag.store(true, SeqCst);
                                let _ = rx.recv();
                                Bomb("a detached blocking job's output")
                            }));
                            // An output whose handle outlives the runtime.
                            let kept = spawn(async { Bomb("an output dropped after shutdown") });
                            until(|| {
                                started.load(SeqCst) == 2
                                    && job_started.load(SeqCst)
                                    && kept.is_finished()
                            })
                            .await;
                            kept
                        })
                    },
                    drop,
                );
            }
        },
    );
}

#[test]
fn blocking_jobs_that_panic_or_are_cancelled_with_a_panicking_closure_at_shutdown() {
    isolated(
        "blocking_jobs_that_panic_or_are_cancelled_with_a_panicking_closure_at_shutdown",
        || {
            for flavour in FLAVOURS {
                shutdown_survives(
                    flavour,
                    |rt| {
                        rt.block_on(async {
                            let started = Arc::new(AtomicUsize::new(0));
                            let jobs_started = Arc::new(AtomicUsize::new(0));
                            // Two jobs occupy both blocking threads; each panics
                            // when shutdown drops the task with its sender.
                            let mut running = Vec::new();
                            for _ in 0..2 {
                                let (tx, rx) = mpsc::channel::<()>();
                                drop(spawn(hold_and_wait(tx, started.clone())));
                                let jobs = jobs_started.clone();
                                running.push(spawn_blocking(move || {
                                    jobs.fetch_add(1, SeqCst);
                                    rx.recv().expect("a blocking job's closure panics");
                                }));
                            }
                            until(|| started.load(SeqCst) == 2 && jobs_started.load(SeqCst) == 2)
                                .await;
                            // A third waits in the queue: shutdown cancels
                            // it and drops its closure, which panics.
                            let bomb = Bomb("a queued blocking job's closure");
                            let queued = spawn_blocking(move || drop(bomb));
                            (running, queued)
                        })
                    },
                    |(running, queued)| {
                        for job in running {
                            let error = output_of(job).expect_err("the closure panicked");
                            assert!(error.is_panic(), "{flavour:?}: {error}");
                        }
                        let error = output_of(queued).expect_err("cancelled at shutdown");
                        assert_eq!(
                            error.to_string(),
                            "task panicked: a queued blocking job's closure dropped",
                            "{flavour:?}"
                        );
                    },
                );
            }
        },
    );
}

#[test]
fn hand_made_wakers_left_with_sockets_panic_at_shutdown() {
    isolated(
        "hand_made_wakers_left_with_sockets_panic_at_shutdown",
        || {
            for flavour in FLAVOURS {
                for faults in ALL_FAULTS {
                    let faulty = Faulty::new();
                    let waker_maker = faulty.clone();
                    shutdown_survives(
                        flavour,
                        move |rt| {
                            let kept = rt.block_on(async {
                                let waker = waker_maker.waker();
                                // A read of this runtime's sockets, and an accept.
                                let listener =
                                    TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                                let addr = listener.local_addr().unwrap();
                                let mut client = TcpStream::connect(addr).await.unwrap();
                                let (server, _) = listener.accept().await.unwrap();
                                let mut byte = [0u8; 1];
                                let mut read = client.read(&mut byte);
                                assert!(poll_with(&mut read, &waker).is_pending());
                                drop(read);
                                let mut accept = Box::pin(listener.accept());
                                assert!(
                                    accept
                                        .as_mut()
                                        .poll(&mut Context::from_waker(&waker))
                                        .is_pending()
                                );
                                drop(accept);
                                // A read of a stage 04 socket (registered through
                                // stage 04's reactor interface).
                                let std_listener =
                                    std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                                let peer = std::net::TcpStream::connect(
                                    std_listener.local_addr().unwrap(),
                                )
                                .unwrap();
                                let (accepted, _) = std_listener.accept().unwrap();
                                let stage04 =
                                    stackless::net::TcpStream::from_std(accepted).unwrap();
                                let mut read = stage04.read(&mut byte);
                                assert!(poll_with(&mut read, &waker).is_pending());
                                drop(read);
                                (client, server, listener, stage04, peer)
                            });
                            assert_eq!(waker_maker.live(), 3, "the reactor holds three copies");
                            waker_maker.arm(faults);
                            kept
                        },
                        drop,
                    );
                    assert_eq!(
                        faulty.live(),
                        0,
                        "{flavour:?}, {faults:?}: a copy of the waker leaked"
                    );
                }
            }
        },
    );
}

#[test]
fn hand_made_wakers_left_with_timers_panic_at_shutdown() {
    isolated(
        "hand_made_wakers_left_with_timers_panic_at_shutdown",
        || {
            for flavour in FLAVOURS {
                for faults in ALL_FAULTS {
                    let faulty = Faulty::new();
                    let waker_maker = faulty.clone();
                    shutdown_survives(
                        flavour,
                        move |rt| {
                            let kept = rt.block_on(async {
                                let waker = waker_maker.waker();
                                let mut sleep =
                                    Box::pin(runtime::time::sleep(Duration::from_secs(3600)));
                                assert!(
                                    sleep
                                        .as_mut()
                                        .poll(&mut Context::from_waker(&waker))
                                        .is_pending()
                                );
                                // Stage 04's timers keep no key: the reactor
                                // holds the waker until it fires or shuts down.
                                let mut stage04 =
                                    stackless::timer::sleep(Duration::from_secs(3600));
                                assert!(poll_with(&mut stage04, &waker).is_pending());
                                drop(stage04);
                                sleep
                            });
                            assert_eq!(waker_maker.live(), 2, "the reactor holds two copies");
                            waker_maker.arm(faults);
                            kept
                        },
                        drop,
                    );
                    assert_eq!(
                        faulty.live(),
                        0,
                        "{flavour:?}, {faults:?}: a copy of the waker leaked"
                    );
                }
            }
        },
    );
}

#[test]
fn hand_made_wakers_left_with_join_handles_panic_at_shutdown() {
    isolated(
        "hand_made_wakers_left_with_join_handles_panic_at_shutdown",
        || {
            for flavour in FLAVOURS {
                for faults in ALL_FAULTS {
                    let faulty = Faulty::new();
                    let waker_maker = faulty.clone();
                    let watcher = faulty.clone();
                    shutdown_survives(
                        flavour,
                        move |rt| {
                            let kept = rt.block_on(async {
                                let waker = waker_maker.waker();
                                let started = Arc::new(AtomicUsize::new(0));
                                // A pending task: shutdown cancels it and wakes
                                // the handle's waker.
                                let (tx, rx) = mpsc::channel::<()>();
                                let mut task = spawn(hold_and_wait(tx, started.clone()));
                                assert!(poll_with(&mut task, &waker).is_pending());
                                // A blocking job that returns during shutdown
                                // (its sender is in the task): the pool thread
                                // wakes the handle's waker.
                                let job_started = Arc::new(AtomicBool::new(false));
                                let job_flag = job_started.clone();
                                let mut job = spawn_blocking(move || {
                                    job_flag.store(true, SeqCst);
                                    let _ = rx.recv();
                                    5
                                });
                                assert!(poll_with(&mut job, &waker).is_pending());
                                // A handle polled with the waker inside a task,
                                // dropped with that task's future at shutdown.
                                let mut inner = spawn(hold_and_wait((), started.clone()));
                                assert!(poll_with(&mut inner, &waker).is_pending());
                                drop(spawn(hold_and_wait(inner, started.clone())));
                                until(|| started.load(SeqCst) == 3 && job_started.load(SeqCst))
                                    .await;
                                (task, job)
                            });
                            waker_maker.arm(faults);
                            kept
                        },
                        |(task, job)| {
                            // Shutdown woke both handles: the task's when it
                            // cancelled it, the job's when the job returned.
                            let wakes = watcher.wakes.load(SeqCst);
                            assert!(
                                wakes >= 2,
                                "{flavour:?}: the handles' waker was woken {wakes} times"
                            );
                            assert!(output_of(task).expect_err("cancelled").is_cancelled());
                            assert_eq!(output_of(job).expect("the job returned"), 5);
                        },
                    );
                    assert_eq!(
                        faulty.live(),
                        0,
                        "{flavour:?}, {faults:?}: a copy of the waker leaked"
                    );
                }
            }
        },
    );
}

#[test]
fn a_runtime_dropped_while_its_thread_is_panicking_does_not_abort() {
    isolated(
        "a_runtime_dropped_while_its_thread_is_panicking_does_not_abort",
        || {
            for flavour in FLAVOURS {
                still_works(flavour);
                let fds = open_fds();
                let faulty = Faulty::new();
                let rt = build(flavour);
                let kept = rt.block_on(async {
                    let waker = faulty.waker();
                    let started = Arc::new(AtomicUsize::new(0));
                    drop(spawn(hold_and_wait(
                        Bomb("a pending task's future"),
                        started.clone(),
                    )));
                    let mut task = spawn(hold_and_wait((), started.clone()));
                    assert!(poll_with(&mut task, &waker).is_pending());
                    let mut sleep = Box::pin(runtime::time::sleep(Duration::from_secs(3600)));
                    assert!(
                        sleep
                            .as_mut()
                            .poll(&mut Context::from_waker(&waker))
                            .is_pending()
                    );
                    let mut stage04 = stackless::timer::sleep(Duration::from_secs(3600));
                    assert!(poll_with(&mut stage04, &waker).is_pending());
                    drop(stage04);
                    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                    let mut accept = Box::pin(listener.accept());
                    assert!(
                        accept
                            .as_mut()
                            .poll(&mut Context::from_waker(&waker))
                            .is_pending()
                    );
                    drop(accept);
                    until(|| started.load(SeqCst) == 2).await;
                    (task, sleep, listener)
                });
                faulty.arm(Faults::WakeAndDrop);
                // The main future panics; `rt` is dropped while that panic
                // unwinds, and shutdown meets every panic above.
                let unwound = catch_unwind(AssertUnwindSafe(move || {
                    let rt = rt;
                    rt.block_on(async { panic!("the main future panics") })
                }));
                let payload = unwound.expect_err("the main future panicked");
                assert_eq!(panic_message(&*payload), "the main future panics");
                assert_threads_gone(&format!("{flavour:?}"));
                drop(kept);
                assert_eq!(faulty.live(), 0, "{flavour:?}: a copy of the waker leaked");
                assert_eq!(open_fds(), fds, "{flavour:?}: descriptors left open");
                still_works(flavour);
                assert_eq!(open_fds(), fds, "{flavour:?}: descriptors left open");
            }
        },
    );
}
