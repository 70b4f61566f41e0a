//! No descriptor leaks: the epoll fd, the eventfd of the cross-thread waker
//! and every socket are closed once a runtime and its sockets are gone.
//!
//! Alone in its own test binary (so no other test opens fds meanwhile); its
//! tests take turns through `ONE_AT_A_TIME` for the same reason.

use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::{Runtime, spawn, spawn_blocking};

/// Held by each test: they count the whole process's descriptors.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn exercise(rt: &Runtime) {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        server.await.unwrap();
        spawn_blocking(|| 1).await.unwrap();
        // A task left waiting on a socket and a timer: shutdown must close both.
        let idle = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        spawn(async move {
            let _ = idle.accept().await;
        });
        spawn(runtime::time::sleep(Duration::from_secs(3600)));
        // And one on a stage 04 timer, whose waker the reactor holds with
        // no key to remove it by: shutdown must still let it go.
        spawn(stackless::timer::sleep(Duration::from_secs(3600)));
        // Let them get that far (a current-thread runtime would otherwise
        // return from `block_on` before polling them even once).
        while rt.num_pending_timers() < 2 {
            runtime::yield_now().await;
        }
    });
}

#[test]
fn runtimes_and_sockets_leave_no_descriptor_open() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Warm up whatever the process opens once (std's lazy fds, etc.).
    exercise(&Runtime::new().unwrap());
    let before = open_fds();
    for _ in 0..5 {
        let rt = Runtime::new().unwrap();
        exercise(&rt);
        drop(rt);
        let rt = Runtime::builder()
            .multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        exercise(&rt);
        drop(rt);
    }
    assert_eq!(open_fds(), before);
}

/// A task that awaits its own `JoinHandle` (a programming error, but one a
/// user can make) and two tasks that await each other: each leaves its
/// waker in the other's join-waker slot. Shutdown drops their futures, and
/// with them the handles; the slots must be emptied too, or the tasks keep
/// each other (and the runtime's epoll fd and eventfd) alive forever.
#[test]
fn tasks_that_join_themselves_or_each_other_do_not_outlive_the_runtime() {
    use futures::channel::oneshot;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    exercise(&Runtime::new().unwrap());
    let before = open_fds();
    for multi_thread in [false, true] {
        let rt = if multi_thread {
            Runtime::builder().multi_thread().worker_threads(2).build()
        } else {
            Runtime::new()
        }
        .unwrap();
        rt.block_on(async {
            let (self_tx, self_rx) = oneshot::channel::<runtime::JoinHandle<()>>();
            let me = spawn(async move {
                let me = self_rx.await.unwrap();
                let _ = me.await; // never finishes: it waits for itself
            });
            self_tx.send(me).unwrap();

            let (a_tx, a_rx) = oneshot::channel::<runtime::JoinHandle<()>>();
            let (b_tx, b_rx) = oneshot::channel::<runtime::JoinHandle<()>>();
            let a = spawn(async move {
                let _ = b_rx.await.unwrap().await;
            });
            let b = spawn(async move {
                let _ = a_rx.await.unwrap().await;
            });
            a_tx.send(a).unwrap();
            b_tx.send(b).unwrap();
            // Let all three reach their `.await` on a handle.
            for _ in 0..10 {
                runtime::yield_now().await;
            }
        });
        drop(rt);
    }
    assert_eq!(open_fds(), before);
}
