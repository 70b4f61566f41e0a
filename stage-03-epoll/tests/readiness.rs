//! Readiness as epoll reports it, through `Poll` and `Registry`: pipes and
//! sockets, the three trigger modes, wakers, and peers that go away.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use netpoll::{Events, Interest, Poll, Token, Trigger, Waker};

/// Long enough that an event that should come always comes first, even
/// under qemu on a loaded machine; a test only waits this long on failure.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long we watch for an event that must *not* come.
const QUIET: Duration = Duration::from_millis(50);

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn write_fd(fd: &OwnedFd, bytes: &[u8]) {
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

fn read_fd(fd: &OwnedFd, len: usize) -> io::Result<usize> {
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is valid for writes of `len` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A connected, non-blocking pair of loopback sockets.
fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    client.set_nonblocking(true).expect("nonblocking");
    server.set_nonblocking(true).expect("nonblocking");
    (client, server)
}

fn tokens(events: &Events) -> Vec<Token> {
    events.iter().map(|e| e.token()).collect()
}

#[test]
fn a_pipe_is_readable_once_written_and_its_write_end_is_writable() {
    let (r, w) = pipe();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(r.as_raw_fd(), Token(1), Interest::READABLE, Trigger::Level)
        .expect("register read end");
    poll.poll(&mut events, Some(QUIET)).expect("poll");
    assert!(
        events.is_empty(),
        "an empty pipe is not readable: {events:?}"
    );

    poll.registry()
        .register(w.as_raw_fd(), Token(2), Interest::WRITABLE, Trigger::Level)
        .expect("register write end");
    write_fd(&w, b"x");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    let mut seen: Vec<_> = events
        .iter()
        .map(|e| (e.token(), e.is_readable(), e.is_writable()))
        .collect();
    seen.sort();
    assert_eq!(seen, [(Token(1), true, false), (Token(2), false, true)]);
}

#[test]
fn a_socket_is_writable_when_connected_and_readable_when_the_peer_writes() {
    let (mut client, server) = socket_pair();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(
            server.as_raw_fd(),
            Token(7),
            Interest::READABLE | Interest::WRITABLE,
            Trigger::Level,
        )
        .expect("register");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    let event = events.iter().next().expect("an event");
    assert!(event.is_writable() && !event.is_readable(), "{event:?}");

    client.write_all(b"ping").expect("write");
    let deadline = Instant::now() + PATIENCE;
    loop {
        poll.poll(&mut events, Some(PATIENCE)).expect("poll");
        if events
            .iter()
            .any(|e| e.token() == Token(7) && e.is_readable())
        {
            break;
        }
        assert!(Instant::now() < deadline, "never became readable");
    }
}

#[test]
fn level_triggered_reports_again_while_data_remains_unread() {
    let (r, w) = pipe();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(r.as_raw_fd(), Token(0), Interest::READABLE, Trigger::Level)
        .expect("register");
    write_fd(&w, b"abcd");
    for _ in 0..3 {
        poll.poll(&mut events, Some(PATIENCE)).expect("poll");
        assert_eq!(tokens(&events), [Token(0)]);
        assert_eq!(read_fd(&r, 1).expect("read"), 1); // leave some behind
    }
    assert_eq!(read_fd(&r, 16).expect("read"), 1);
    poll.poll(&mut events, Some(QUIET)).expect("poll");
    assert!(events.is_empty(), "drained, so no longer ready: {events:?}");
}

// ANCHOR: edge_test
#[test]
fn edge_triggered_reports_once_per_edge_so_readers_must_drain() {
    let (r, w) = pipe();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(r.as_raw_fd(), Token(0), Interest::READABLE, Trigger::Edge)
        .expect("register");

    write_fd(&w, b"abcd");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    assert_eq!(tokens(&events), [Token(0)], "the edge is reported");
    assert_eq!(read_fd(&r, 1).expect("read"), 1);

    // Three bytes are still unread, yet no new edge: nothing is reported.
    poll.poll(&mut events, Some(QUIET)).expect("poll");
    assert!(events.is_empty(), "no second report without a new edge");

    // New data is a new edge.
    write_fd(&w, b"e");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    assert_eq!(tokens(&events), [Token(0)]);

    // Draining means reading until WouldBlock.
    let mut total = 0;
    loop {
        match read_fd(&r, 2) {
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    assert_eq!(total, 4);
}
// ANCHOR_END: edge_test

#[test]
fn one_shot_reports_once_until_reregistered() {
    let (r, w) = pipe();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(
            r.as_raw_fd(),
            Token(3),
            Interest::READABLE,
            Trigger::OneShot,
        )
        .expect("register");
    write_fd(&w, b"a");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    assert_eq!(tokens(&events), [Token(3)]);

    // Disabled now: neither unread data nor new data is reported.
    write_fd(&w, b"b");
    poll.poll(&mut events, Some(QUIET)).expect("poll");
    assert!(
        events.is_empty(),
        "a fired one-shot stays quiet: {events:?}"
    );

    // Re-arming reports the readiness that is already there, under the new token.
    poll.registry()
        .reregister(
            r.as_raw_fd(),
            Token(4),
            Interest::READABLE,
            Trigger::OneShot,
        )
        .expect("reregister");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    assert_eq!(tokens(&events), [Token(4)]);
}

#[test]
fn a_deregistered_fd_is_reported_no_more() {
    let (r, w) = pipe();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    let registry = poll.registry().clone();
    registry
        .register(r.as_raw_fd(), Token(0), Interest::READABLE, Trigger::Level)
        .expect("register");
    assert_eq!(
        registry
            .register(r.as_raw_fd(), Token(0), Interest::READABLE, Trigger::Level)
            .map_err(|e| e.raw_os_error()),
        Err(Some(libc::EEXIST)),
        "registering twice is an error"
    );
    write_fd(&w, b"a");
    registry.deregister(r.as_raw_fd()).expect("deregister");
    poll.poll(&mut events, Some(QUIET)).expect("poll");
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_small_events_buffer_loses_nothing() {
    let pipes: Vec<_> = (0..3).map(|_| pipe()).collect();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(1);
    for (i, (r, w)) in pipes.iter().enumerate() {
        poll.registry()
            .register(r.as_raw_fd(), Token(i), Interest::READABLE, Trigger::Edge)
            .expect("register");
        write_fd(w, b"x");
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        poll.poll(&mut events, Some(PATIENCE)).expect("poll");
        assert_eq!(events.len(), 1);
        seen.extend(tokens(&events));
    }
    seen.sort();
    assert_eq!(seen, [Token(0), Token(1), Token(2)]);
}

#[test]
fn a_timeout_with_nothing_ready_returns_no_events_and_never_early() {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    let timeout = Duration::from_micros(20_300);
    let started = Instant::now();
    poll.poll(&mut events, Some(timeout)).expect("poll");
    assert!(events.is_empty());
    assert!(started.elapsed() >= timeout);
}

// ANCHOR: waker_test
#[test]
fn a_wake_from_another_thread_ends_a_blocked_wait() {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    let waker = Waker::new(poll.registry(), Token(99)).expect("waker");
    let started = Instant::now();
    let waking = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        waker.wake().expect("wake");
        waker
    });
    poll.poll(&mut events, None).expect("poll"); // no timeout: only the wake ends it
    assert_eq!(tokens(&events), [Token(99)]);
    assert!(started.elapsed() >= Duration::from_millis(50));
    waking.join().expect("waking thread");
}
// ANCHOR_END: waker_test

#[test]
fn a_wake_before_the_wait_is_not_lost_and_repeated_wakes_coalesce() {
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    let waker = Waker::new(poll.registry(), Token(5)).expect("waker");
    for _ in 0..3 {
        waker.wake().expect("wake");
    }
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    assert_eq!(tokens(&events), [Token(5)]);
    poll.poll(&mut events, Some(QUIET)).expect("poll");
    assert!(events.is_empty(), "one report for three wakes: {events:?}");
    waker.wake().expect("wake");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    assert_eq!(
        tokens(&events),
        [Token(5)],
        "and the next wake is a new event"
    );
}

#[test]
fn a_peer_that_closes_early_is_reported_and_reads_end_of_file() {
    let (client, mut server) = socket_pair();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(
            server.as_raw_fd(),
            Token(1),
            Interest::READABLE,
            Trigger::Edge,
        )
        .expect("register");
    drop(client);
    poll.poll(&mut events, Some(PATIENCE)).expect("poll");
    let event = events
        .iter()
        .next()
        .expect("the close is an event, not a hang");
    assert!(event.is_readable() && event.is_read_closed(), "{event:?}");
    assert_eq!(server.read(&mut [0u8; 16]).expect("read"), 0, "end of file");
}

/// Makes `stream` send a reset instead of a graceful close when dropped.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a `linger` value of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

#[test]
fn a_peer_reset_is_reported_and_surfaces_as_an_error() {
    let (client, mut server) = socket_pair();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(
            server.as_raw_fd(),
            Token(1),
            Interest::READABLE | Interest::WRITABLE,
            Trigger::Edge,
        )
        .expect("register");
    poll.poll(&mut events, Some(PATIENCE)).expect("poll"); // the initial writable edge
    reset_on_close(&client);
    drop(client);

    let deadline = Instant::now() + PATIENCE;
    loop {
        poll.poll(&mut events, Some(PATIENCE)).expect("poll");
        if events.iter().any(|e| e.is_error() || e.is_read_closed()) {
            break;
        }
        assert!(Instant::now() < deadline, "the reset was never reported");
    }
    let err = server
        .read(&mut [0u8; 16])
        .expect_err("a reset is an error");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn registries_wakers_and_delay_servers_can_be_shared_across_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_and_sync::<netpoll::Registry>();
    send_and_sync::<Waker>();
    send_and_sync::<netpoll::delayserver::DelayServer>();
    send::<Poll>();
    send::<Events>();
    // (A compile-time property: this test fails by not compiling.)
    let registry = Poll::new().expect("poll").registry().clone();
    thread::spawn(move || drop(registry))
        .join()
        .expect("thread");
}
