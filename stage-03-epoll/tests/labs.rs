//! The grading tests of this stage's labs (`cargo lab check 3.N`), named
//! `lab_3_N_...`. Each runs on an OS thread of its own and fails after a
//! deadline instead of hanging, saying what was expected.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netpoll::net::{TcpListener, TcpStream};
use netpoll::netpoller::{self, NetPoller};
use netpoll::sys::Epoll;

/// Generous: these finish in milliseconds, but the machine may be loaded
/// and qemu-user is 5-20x slower.
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `test` on a fresh OS thread and returns its value, re-raises its
/// panic, or fails once `DEADLINE` has passed with `hang_hint`.
fn within<T: Send + 'static>(hang_hint: &str, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(panic::catch_unwind(AssertUnwindSafe(test)));
    });
    match result.recv_timeout(DEADLINE) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("not finished after {DEADLINE:?}: {hang_hint}"),
    }
}

// ---------------------------------------------------------------------------
// Lab 3.1: the epoll wrapper (`Epoll::ctl`, `Epoll::wait`).

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn write_byte(fd: &OwnedFd) {
    // SAFETY: writes one byte from a valid buffer to a descriptor we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    assert_eq!(n, 1, "write: {}", io::Error::last_os_error());
}

const NO_EVENT: libc::epoll_event = libc::epoll_event { events: 0, u64: 0 };

/// (events, data) of what one wait reported.
fn reported(epoll: &Epoll, timeout: Duration) -> Vec<(u32, u64)> {
    let mut events = [NO_EVENT; 8];
    let n = epoll.wait(&mut events, Some(timeout)).expect("epoll_wait");
    assert!(
        n <= events.len(),
        "wait said {n} events, but the array holds 8"
    );
    events[..n]
        .iter()
        .map(|e| ({ e.events }, { e.u64 }))
        .collect()
}

#[test]
fn lab_3_1_a_ready_fd_is_reported_with_the_data_it_was_added_with() {
    let got = within("wait with a timeout must return, event or not", || {
        let epoll = Epoll::new().expect("epoll_create1");
        let (read_end, write_end) = pipe();
        epoll
            .add(read_end.as_raw_fd(), libc::EPOLLIN as u32, 42)
            .expect("add");
        write_byte(&write_end);
        reported(&epoll, DEADLINE / 2)
    });
    assert_eq!(
        got.len(),
        1,
        "one ready fd, one event expected; got {got:?}"
    );
    let (events, data) = got[0];
    assert_eq!(
        data, 42,
        "the data given to add must come back with the event"
    );
    assert_ne!(
        events & libc::EPOLLIN as u32,
        0,
        "EPOLLIN expected in {events:#x}"
    );
}

#[test]
fn lab_3_1_modify_changes_the_data_and_delete_stops_the_reports() {
    let (after_modify, after_delete) = within("wait with a timeout must return", || {
        let epoll = Epoll::new().expect("epoll_create1");
        let (read_end, write_end) = pipe();
        let fd = read_end.as_raw_fd();
        epoll.add(fd, libc::EPOLLIN as u32, 1).expect("add");
        write_byte(&write_end); // stays readable: nobody reads it
        epoll.modify(fd, libc::EPOLLIN as u32, 2).expect("modify");
        let after_modify = reported(&epoll, DEADLINE / 4);
        epoll.delete(fd).expect("delete");
        let after_delete = reported(&epoll, Duration::from_millis(20));
        (after_modify, after_delete)
    });
    assert_eq!(
        after_modify
            .iter()
            .map(|&(_, data)| data)
            .collect::<Vec<_>>(),
        [2],
        "after modify the event carries the new data"
    );
    assert!(
        after_delete.is_empty(),
        "a deleted fd was still reported: {after_delete:?}"
    );
}

#[test]
fn lab_3_1_a_timed_wait_with_nothing_ready_returns_no_events_and_not_early() {
    let (n, waited) = within("a wait of 50 ms must end", || {
        let epoll = Epoll::new().expect("epoll_create1");
        let mut events = [NO_EVENT; 4];
        let start = Instant::now();
        let n = epoll
            .wait(&mut events, Some(Duration::from_millis(50)))
            .expect("epoll_wait");
        (n, start.elapsed())
    });
    assert_eq!(n, 0, "nothing is watched, yet {n} events were reported");
    assert!(
        waited >= Duration::from_millis(50),
        "returned after {waited:?}: round a timeout up, never down"
    );
}

#[test]
fn lab_3_1_control_operations_on_a_bad_fd_are_errors() {
    let epoll = Epoll::new().expect("epoll_create1");
    for (what, result) in [
        ("add", epoll.add(-1, libc::EPOLLIN as u32, 0)),
        ("modify", epoll.modify(-1, libc::EPOLLIN as u32, 0)),
        ("delete", epoll.delete(-1)),
    ] {
        let error = result.expect_err(what);
        assert_eq!(error.raw_os_error(), Some(libc::EBADF), "{what}: {error}");
    }
}

// ---------------------------------------------------------------------------
// Lab 3.2: parking a green thread on WouldBlock (`block_on_fd`,
// `Shared::wait_until_ready`).

fn runtime() -> green::Runtime {
    netpoller::builder()
        .expect("netpoller")
        .stack_size(64 * 1024)
        .build()
}

fn parked() -> usize {
    green::with_driver(|np: &mut NetPoller| np.parked()).expect("a NetPoller")
}

#[test]
fn lab_3_2_a_read_parks_its_green_thread_until_the_peer_writes() {
    let (waiting_while_parked, got, waiting_after) = within(
        "a reader parked on its socket must be woken when bytes arrive",
        || {
            runtime()
                .block_on(|| {
                    let listener = TcpListener::bind("127.0.0.1:0")?;
                    let client = TcpStream::connect(listener.local_addr()?)?;
                    let (server, _) = listener.accept()?;
                    let reader = green::spawn(move || {
                        let mut buf = [0u8; 16];
                        let n = (&client).read(&mut buf)?;
                        Ok::<_, io::Error>(buf[..n].to_vec())
                    });
                    green::sleep(Duration::from_millis(20)); // the reader parks
                    let waiting_while_parked = parked();
                    (&server).write_all(b"ping")?;
                    let got = reader.join().expect("reader")?;
                    Ok::<_, io::Error>((waiting_while_parked, got, parked()))
                })
                .expect("runtime")
                .expect("socket I/O")
        },
    );
    assert_eq!(
        waiting_while_parked, 1,
        "while its read would block, the reader must be recorded as a waiter"
    );
    assert_eq!(got, b"ping");
    assert_eq!(
        waiting_after, 0,
        "a woken reader must leave no waiter entry behind"
    );
}

#[test]
fn lab_3_2_a_connect_parks_until_the_handshake_ends() {
    let accepted = within("connect must park on WRITABLE and be woken", || {
        runtime()
            .block_on(|| {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let acceptor = green::spawn(move || listener.accept().map(|(_, peer)| peer));
                let client = TcpStream::connect(addr)?;
                let peer = acceptor.join().expect("acceptor")?;
                Ok::<_, io::Error>(peer == client.local_addr()?)
            })
            .expect("runtime")
            .expect("socket I/O")
    });
    assert!(
        accepted,
        "the listener accepted someone other than our client"
    );
}

#[test]
fn lab_3_2_a_read_that_would_block_outside_its_runtime_is_an_error() {
    let mut rt = runtime();
    let (client, _server) = rt
        .block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let client = TcpStream::connect(listener.local_addr()?)?;
            let (server, _) = listener.accept()?;
            Ok::<_, io::Error>((client, server))
        })
        .expect("runtime")
        .expect("a connected pair");
    // block_on has returned: no green thread runs, nothing could wake one.
    let mut buf = [0u8; 4];
    let result = (&client).read(&mut buf);
    assert!(
        result.is_err(),
        "outside block_on nothing can park: the read must fail, got {result:?}"
    );
}

// ---------------------------------------------------------------------------
// Lab 3.4: a read timeout (`TcpStream::read_with_timeout`).

#[test]
fn lab_3_4_a_read_with_a_timeout_gives_up_no_earlier_than_its_deadline() {
    let timeout = Duration::from_millis(100);
    let (result, waited, ticks) = within(
        "a read with a timeout must give up once the timeout has passed",
        move || {
            runtime()
                .block_on(move || {
                    let listener = TcpListener::bind("127.0.0.1:0")?;
                    let client = TcpStream::connect(listener.local_addr()?)?;
                    let (_silent_peer, _) = listener.accept()?;
                    // Another green thread keeps running while the read waits.
                    let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
                    let t = ticks.clone();
                    let ticker = green::spawn(move || {
                        while t.get() < 5 {
                            green::sleep(Duration::from_millis(5));
                            t.set(t.get() + 1);
                        }
                    });
                    client.set_read_timeout(Some(timeout))?;
                    let start = Instant::now();
                    let mut buf = [0u8; 8];
                    let result = (&client).read(&mut buf).map_err(|e| e.kind());
                    let waited = start.elapsed();
                    let ticks_meanwhile = ticks.get();
                    ticker.join().expect("ticker");
                    Ok::<_, io::Error>((result, waited, ticks_meanwhile))
                })
                .expect("runtime")
                .expect("socket set-up")
        },
    );
    assert_eq!(
        result,
        Err(io::ErrorKind::TimedOut),
        "the peer never writes: the read must fail with TimedOut"
    );
    assert!(
        waited >= timeout,
        "gave up after {waited:?}, before the {timeout:?} timeout"
    );
    // Its first 5 ms sleep ends long before the read's deadline (timers
    // fire in deadline order), so it has ticked at least once by then.
    assert!(
        ticks >= 1,
        "the other green thread must keep running while the read waits"
    );
}

#[test]
fn lab_3_4_data_that_arrives_before_the_deadline_is_read() {
    let got = within("a read with a timeout must be woken by data", || {
        runtime()
            .block_on(|| {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let client = TcpStream::connect(listener.local_addr()?)?;
                let (server, _) = listener.accept()?;
                let writer = green::spawn(move || {
                    green::sleep(Duration::from_millis(20));
                    (&server).write_all(b"in time")
                });
                client.set_read_timeout(Some(DEADLINE / 2))?;
                let mut buf = [0u8; 16];
                let n = (&client).read(&mut buf)?;
                writer.join().expect("writer")?;
                Ok::<_, io::Error>(buf[..n].to_vec())
            })
            .expect("runtime")
    });
    match got {
        Ok(bytes) => assert_eq!(bytes, b"in time"),
        Err(e) => panic!("the read failed although data came in time: {e}"),
    }
}

#[test]
fn lab_3_4_a_zero_read_timeout_is_refused_and_none_means_for_ever() {
    runtime()
        .block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let client = TcpStream::connect(listener.local_addr()?)?;
            let error = client
                .set_read_timeout(Some(Duration::ZERO))
                .expect_err("zero is refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(client.read_timeout(), None);
            client.set_read_timeout(Some(Duration::from_secs(1)))?;
            assert_eq!(client.read_timeout(), Some(Duration::from_secs(1)));
            Ok::<_, io::Error>(())
        })
        .expect("runtime")
        .expect("socket set-up");
}
