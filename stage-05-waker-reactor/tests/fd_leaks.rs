//! No descriptor leaks: the epoll fd, the eventfd of the cross-thread waker
//! and every socket are closed once a runtime and its sockets are gone.
//!
//! Alone in its own test binary (so no other test opens fds meanwhile).

use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::{Runtime, spawn, spawn_blocking};

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
    });
}

#[test]
fn runtimes_and_sockets_leave_no_descriptor_open() {
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
