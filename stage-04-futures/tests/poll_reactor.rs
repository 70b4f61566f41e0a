//! `PollReactor`, the naive executor's reactor, keeps the promises of the
//! `Reactor` trait: the right waker is woken, once, and none is lost.
#![cfg(not(miri))] // epoll and sockets

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
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

/// A waker that appends its name, and the time, to a shared log when woken.
struct Logged {
    name: &'static str,
    log: Arc<Mutex<Vec<(&'static str, Instant)>>>,
}

impl Wake for Logged {
    fn wake(self: Arc<Self>) {
        self.log
            .lock()
            .expect("log")
            .push((self.name, Instant::now()));
    }
}

#[test]
fn timers_wake_in_deadline_order_and_never_early() {
    let reactor = PollReactor::new().expect("epoll");
    let log = Arc::new(Mutex::new(Vec::new()));
    let waker = |name| {
        Waker::from(Arc::new(Logged {
            name,
            log: log.clone(),
        }))
    };
    let start = Instant::now();
    let (late, early) = (
        start + Duration::from_millis(40),
        start + Duration::from_millis(10),
    );
    // Registered latest-first: the reactor must sort them.
    reactor.wake_at(late, &waker("late"));
    reactor.wake_at(early, &waker("early"));
    wait_until(&reactor, || log.lock().expect("log").len() == 2);
    let log = log.lock().expect("log");
    // Even when both fall due in the same wait (a slow machine), the
    // earlier deadline is woken first.
    let names: Vec<_> = log.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, ["early", "late"]);
    assert!(log[0].1 >= early, "woken before its deadline");
    assert!(log[1].1 >= late, "woken before its deadline");
    assert!(!reactor.has_waiters(), "a fired timer is gone");
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

/// A waker that owns a stream, as a real task's waker owns its task and the
/// task its sockets: dropping the last waker closes the stream, whose `Drop`
/// tells the current reactor to forget its fd.
struct OwnsAStream {
    _stream: Mutex<stackless::net::TcpStream>,
}

impl Wake for OwnsAStream {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_replaced_waker_may_call_back_into_the_reactor_when_it_drops() {
    let reactor = std::rc::Rc::new(PollReactor::new().expect("epoll"));
    let _current = stackless::reactor::set_current(reactor.clone());
    let (ours, mut peer) = pair();
    let (owned, _owned_peer) = pair();
    let owned = stackless::net::TcpStream::from_std(owned).expect("non-blocking");
    let owner = Waker::from(Arc::new(OwnsAStream {
        _stream: Mutex::new(owned),
    }));
    reactor
        .wake_when_ready(ours.as_raw_fd(), Interest::Readable, &owner)
        .expect("register");
    drop(owner); // the reactor holds the last reference
    // A new waiter replaces it: the old waker drops, and its stream calls
    // `forget` on this same reactor.
    let (reads, waker) = CountingWaker::new();
    reactor
        .wake_when_ready(ours.as_raw_fd(), Interest::Readable, &waker)
        .expect("register");
    peer.write_all(b"x").expect("write");
    wait_until(&reactor, || reads.wakes() == 1);
}

/// A waker whose `wake` panics.
struct PanicsWhenWoken;

impl Wake for PanicsWhenWoken {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics when woken");
    }
}

#[test]
fn a_waker_that_panics_does_not_cost_the_others_their_wake_up() {
    let reactor = PollReactor::new().expect("epoll");
    let due = Instant::now();
    // Same deadline: the panicking one was registered first, so it is
    // woken first.
    reactor.wake_at(due, &Waker::from(Arc::new(PanicsWhenWoken)));
    let (wakes, waker) = CountingWaker::new();
    reactor.wake_at(due, &waker);
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reactor.wait(Some(Duration::ZERO))
    }));
    assert!(first.is_err(), "the waker's panic reaches the caller");
    // The reactor no longer holds the other waker: woken now, or never.
    assert_eq!(
        wakes.wakes(),
        1,
        "the other due timer was woken all the same"
    );
    assert!(!reactor.has_waiters());
}
