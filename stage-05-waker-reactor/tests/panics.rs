//! A panic in user code that the runtime calls never takes the runtime
//! down: not in a task's poll (see `executor.rs`), and not in the three
//! places below, where the runtime calls user code outside any poll:
//!
//! 1. the destructor of a future that returned `Ready` (and of its output,
//!    or of the first panic's payload, when that panics too);
//! 2. the `wake` of a `JoinHandle`'s waker, called when the task completes;
//! 3. the `wake` of a waker left with a timer or a socket, called in the
//!    driver's wake phase.
//!
//! In each, the panic is contained (the panic hook prints it; a task's
//! `JoinError` carries it when it is the task's own), and afterwards the
//! runtime still runs tasks, keeps its blocking-pool slots and, once
//! dropped, leaves no file descriptor open. Every check that would hang on
//! a broken runtime runs under a deadline and fails with a message instead.
//!
//! Alone in its own test binary, because it counts the process's
//! descriptors; its tests take turns through `ONE_AT_A_TIME`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use runtime::{JoinHandle, Runtime, spawn, spawn_blocking};

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Generous: only a broken runtime ever comes near it.
const DEADLINE: Duration = Duration::from_secs(20);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Run `f` on its own thread and wait at most `DEADLINE` for it. A panic in
/// `f` fails the test with `f`'s message; a hang fails it with `what`.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = worker.join().expect_err("no value and no panic");
            std::panic::resume_unwind(payload)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done within {DEADLINE:?}: the runtime stopped running tasks")
        }
    }
}

type Build = fn() -> Runtime;

/// The flavours, each built by a function so a test can build it inside
/// `within` (a `Runtime` made there is also dropped there).
fn flavours() -> [(&'static str, Build); 2] {
    [
        ("current_thread", || Runtime::new().unwrap()),
        ("multi_thread", || {
            Runtime::builder()
                .multi_thread()
                .worker_threads(2)
                .max_blocking_threads(1)
                .build()
                .unwrap()
        }),
    ]
}

/// The runtime still runs tasks, sleeps and blocking jobs (with one
/// blocking thread allowed, a lost slot would hang the blocking job).
async fn still_runs_tasks() {
    assert_eq!(spawn(async { 6 * 7 }).await.unwrap(), 42);
    runtime::time::sleep(Duration::from_millis(5)).await;
    for _ in 0..3 {
        assert_eq!(spawn_blocking(|| 7).await.unwrap(), 7);
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

/// A future that is `Ready` with an output at its first poll, and whose
/// destructor panics (after `Ready`: the runner drops it then).
struct ReadyThenBoom {
    _bomb: Bomb,
    output: Option<Bomb>,
}

impl Future for ReadyThenBoom {
    type Output = Bomb;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Bomb> {
        Poll::Ready(self.output.take().expect("polled once"))
    }
}

/// A future whose poll panics with a payload that panics when dropped, and
/// whose destructor panics too.
struct PanicThenBoom {
    _bomb: Bomb,
}

impl Future for PanicThenBoom {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        std::panic::panic_any(Bomb("the poll's panic payload"))
    }
}

#[test]
fn a_future_whose_destructor_panics_after_ready_leaves_the_runtime_running() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    for (flavour, build) in flavours() {
        within(flavour, move || {
            let rt = build();
            rt.block_on(async {
                let output_dropped = spawn(ReadyThenBoom {
                    _bomb: Bomb("the future"),
                    output: Some(Bomb("the output")),
                });
                let error = output_dropped.await.expect_err("the destructor panicked");
                assert_eq!(error.to_string(), "task panicked: the future dropped");

                let both = spawn(PanicThenBoom {
                    _bomb: Bomb("the future"),
                });
                let error = both.await.expect_err("the poll panicked");
                // The first panic is the task's: the JoinError keeps it.
                let payload = error.into_panic();
                assert!(
                    payload.is::<Bomb>(),
                    "{flavour}: the JoinError lost the poll's panic for the destructor's"
                );
                std::mem::forget(payload); // its destructor panics

                // And with nobody awaiting the handles at all:
                drop(spawn(ReadyThenBoom {
                    _bomb: Bomb("a detached future"),
                    output: Some(Bomb("a detached output")),
                }));
                drop(spawn(PanicThenBoom {
                    _bomb: Bomb("a detached future"),
                }));
                still_runs_tasks().await;
            });
            drop(rt);
        });
    }
    assert_eq!(open_fds(), before, "descriptors left open");
}

/// A waker that panics when woken (and counts its wakes).
struct PanickyWaker;

impl Wake for PanickyWaker {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics when woken");
    }
}

/// Poll `future` once with a waker that panics when woken; it must be
/// pending (so the waker stays behind, to be woken later).
fn leave_a_panicky_waker<F: Future + Unpin>(future: &mut F) {
    let waker = Waker::from(Arc::new(PanickyWaker));
    let polled = Pin::new(future).poll(&mut Context::from_waker(&waker));
    assert!(polled.is_pending(), "the future must wait");
}

#[test]
fn a_join_handle_waker_that_panics_leaves_the_runtime_running() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    for (flavour, build) in flavours() {
        within(flavour, move || {
            let rt = build();
            rt.block_on(async {
                // A task: its runner wakes the handle's waker at completion.
                let (tx, rx) = futures::channel::oneshot::channel::<()>();
                let mut task: JoinHandle<u32> = spawn(async move {
                    rx.await.unwrap();
                    7
                });
                leave_a_panicky_waker(&mut task);
                tx.send(()).unwrap();
                while !task.is_finished() {
                    runtime::yield_now().await;
                }
                assert_eq!(task.await.unwrap(), 7, "{flavour}: the output survives");

                // A blocking job: a pool thread completes it and wakes.
                let (tx, rx) = mpsc::channel::<()>();
                let mut job = spawn_blocking(move || rx.recv().unwrap());
                leave_a_panicky_waker(&mut job);
                tx.send(()).unwrap();
                while !job.is_finished() {
                    runtime::time::sleep(Duration::from_millis(1)).await;
                }
                job.await.unwrap();
                still_runs_tasks().await;
            });
            drop(rt);
        });
    }
    assert_eq!(open_fds(), before, "descriptors left open");
}

#[test]
fn a_timer_waker_that_panics_in_the_wake_phase_leaves_the_runtime_running() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    for (flavour, build) in flavours() {
        within(flavour, move || {
            let rt = build();
            rt.block_on(async {
                let mut armed = Box::pin(runtime::time::sleep(Duration::from_millis(1)));
                leave_a_panicky_waker(&mut armed);
                // The driver fires it (and its waker panics) while this
                // task sleeps longer; later sleeps must still end.
                for _ in 0..3 {
                    spawn(runtime::time::sleep(Duration::from_millis(20)))
                        .await
                        .unwrap();
                }
                assert!(armed.is_elapsed());
                still_runs_tasks().await;
            });
            drop(rt);
        });
    }
    assert_eq!(open_fds(), before, "descriptors left open");
}

#[test]
fn a_socket_waker_that_panics_in_the_wake_phase_leaves_the_runtime_running() {
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    use runtime::net::{TcpListener, TcpStream};
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    for (flavour, build) in flavours() {
        within(flavour, move || {
            let rt = build();
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let addr = listener.local_addr().unwrap();
                let mut client = TcpStream::connect(addr).await.unwrap();
                let (mut server, _) = listener.accept().await.unwrap();
                let mut byte = [0u8; 1];
                {
                    let mut read = client.read(&mut byte);
                    leave_a_panicky_waker(&mut read);
                }
                // Readable: the driver wakes the panicky waker.
                server.write_all(b"x").await.unwrap();
                for _ in 0..3 {
                    spawn(runtime::time::sleep(Duration::from_millis(20)))
                        .await
                        .unwrap();
                }
                client.read_exact(&mut byte).await.unwrap();
                assert_eq!(&byte, b"x");
                still_runs_tasks().await;
            });
            drop(rt);
        });
    }
    assert_eq!(open_fds(), before, "descriptors left open");
}
