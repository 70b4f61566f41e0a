//! Dropping a future cancels it and closes its descriptors.
//!
//! These tests count this process's open descriptors (`/proc/self/fd`), so
//! they take a lock: no other test of this binary opens or closes an fd
//! while one of them counts.
#![cfg(not(miri))] // real sockets

use std::io::Write;
use std::net::TcpListener;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use stackless::combinators::{Either, select};
use stackless::naive::block_on;
use stackless::net::TcpStream;
use stackless::reactor::set_current;
use stackless::testing::{CountingWaker, ReactorCall, RecordingReactor, poll_once};
use stackless::timer::sleep;

static FD_COUNTING: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("procfs").count()
}

#[test]
fn dropping_a_connect_in_progress_forgets_and_closes_its_socket() {
    let _lock = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let before = open_fds();

    let (_, waker) = CountingWaker::new();
    let mut connect = TcpStream::connect(listener.local_addr().expect("addr"));
    assert!(poll_once(Pin::new(&mut connect), &waker).is_pending());
    assert_eq!(
        open_fds(),
        before + 1,
        "the socket is open while connecting"
    );
    let [ReactorCall::WakeWhenReady(fd, _)] = reactor.calls()[..] else {
        panic!("expected one registration, got {:?}", reactor.calls());
    };
    drop(connect);
    assert_eq!(open_fds(), before, "dropping the future closed the socket");
    assert_eq!(
        reactor.calls().last(),
        Some(&ReactorCall::Forget(fd)),
        "forgotten before close"
    );
}

#[test]
fn select_cancels_the_losing_request_and_closes_its_socket() {
    let _lock = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    // A listener that never accepts: the kernel completes the handshake from
    // its backlog, and then the read waits forever.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let before = open_fds();

    let never_answered = async move {
        let stream = TcpStream::connect(addr).await?;
        let mut buf = [0; 1];
        stream.read(&mut buf).await
    };
    let count_while_both_live = async {
        sleep(Duration::from_millis(50)).await;
        open_fds()
    };
    let winner = block_on(select(never_answered, count_while_both_live)).expect("poller");
    let Either::Right(during) = winner else {
        panic!("the read cannot finish: nobody writes");
    };
    assert_eq!(
        during,
        before + 2,
        "the executor's epoll fd and the request's socket"
    );
    assert_eq!(
        open_fds(),
        before,
        "the loser's socket and the epoll fd are closed"
    );
}

#[test]
fn a_cancelled_read_to_end_leaves_only_the_bytes_it_read_in_the_buffer() {
    let _lock = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let ours = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (mut peer, _) = listener.accept().expect("accept");
    let ours = TcpStream::from_std(ours).expect("non-blocking");
    peer.write_all(b"partial").expect("write");
    // Loopback delivers during the write; the peer stays open, so after the
    // seven bytes the read is pending.
    let (_, waker) = CountingWaker::new();
    let mut buf = b"kept:".to_vec();
    {
        let mut read_all = Box::pin(ours.read_to_end(&mut buf));
        assert!(poll_once(read_all.as_mut(), &waker).is_pending());
    } // cancelled here, while a read waits
    assert_eq!(buf, b"kept:partial");
}
