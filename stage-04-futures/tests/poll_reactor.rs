//! `PollReactor`, the naive executor's reactor, keeps the promises of the
//! `Reactor` trait: the right waker is woken, once, and none is lost.
#![cfg(not(miri))] // epoll and sockets

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use stackless::naive::PollReactor;
use stackless::reactor::{Interest, Reactor};
use stackless::testing::CountingWaker;

fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let ours = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    (ours, peer)
}

/// Wait until `done` holds, or fail after a generous limit.
fn wait_until(reactor: &PollReactor, done: impl Fn() -> bool) {
    let limit = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < limit, "the expected wake never came");
        reactor
            .wait(Some(Duration::from_millis(100)))
            .expect("wait");
    }
}

#[test]
fn readiness_that_arrived_before_the_registration_still_wakes() {
    let reactor = PollReactor::new().expect("epoll");
    let (ours, mut peer) = pair();
    peer.write_all(b"x").expect("write"); // ready before anyone asks
    let (reads, waker) = CountingWaker::new();
    reactor
        .wake_when_ready(ours.as_raw_fd(), Interest::Readable, &waker)
        .expect("register");
    wait_until(&reactor, || reads.wakes() == 1);
}

#[test]
fn a_reader_and_a_writer_on_one_fd_are_woken_each_for_their_own_readiness() {
    let reactor = PollReactor::new().expect("epoll");
    let (ours, mut peer) = pair();
    let fd = ours.as_raw_fd();
    let (reads, read_waker) = CountingWaker::new();
    let (writes, write_waker) = CountingWaker::new();
    reactor
        .wake_when_ready(fd, Interest::Readable, &read_waker)
        .expect("register");
    reactor
        .wake_when_ready(fd, Interest::Writable, &write_waker)
        .expect("register");
    // A fresh socket has room to write, nothing to read.
    wait_until(&reactor, || writes.wakes() == 1);
    assert_eq!(reads.wakes(), 0);
    // The reader was re-armed after the one-shot event and is woken later.
    peer.write_all(b"now").expect("write");
    wait_until(&reactor, || reads.wakes() == 1);
    assert_eq!(writes.wakes(), 1, "a registration wakes at most once");
    assert!(!reactor.has_waiters());
}

#[test]
fn timers_wake_in_deadline_order_and_never_early() {
    let reactor = PollReactor::new().expect("epoll");
    let (late, late_waker) = CountingWaker::new();
    let (early, early_waker) = CountingWaker::new();
    let start = Instant::now();
    reactor.wake_at(start + Duration::from_millis(40), &late_waker);
    reactor.wake_at(start + Duration::from_millis(10), &early_waker);
    wait_until(&reactor, || early.wakes() == 1);
    assert!(start.elapsed() >= Duration::from_millis(10));
    if late.wakes() == 0 {
        wait_until(&reactor, || late.wakes() == 1);
    }
    assert!(start.elapsed() >= Duration::from_millis(40));
}

#[test]
fn a_forgotten_fd_wakes_nobody_and_an_unpollable_fd_is_an_error() {
    let reactor = PollReactor::new().expect("epoll");
    let (ours, mut peer) = pair();
    let (reads, waker) = CountingWaker::new();
    reactor
        .wake_when_ready(ours.as_raw_fd(), Interest::Readable, &waker)
        .expect("register");
    reactor.forget(ours.as_raw_fd());
    assert!(!reactor.has_waiters());
    peer.write_all(b"x").expect("write");
    reactor.wait(Some(Duration::from_millis(20))).expect("wait");
    assert_eq!(reads.wakes(), 0);

    // A regular file cannot be watched by epoll (EPERM).
    let file = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("a regular file");
    let error = reactor
        .wake_when_ready(file.as_raw_fd(), Interest::Readable, &waker)
        .expect_err("epoll refuses regular files");
    assert_eq!(error.raw_os_error(), Some(libc::EPERM));
    assert!(
        !reactor.has_waiters(),
        "a failed registration holds no waker"
    );
}
