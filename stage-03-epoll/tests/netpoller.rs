//! Green threads blocking on sockets, on one OS thread, with the scheduler
//! waiting in epoll: the netpoller.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use netpoll::net::{TcpListener, TcpStream};
use netpoll::netpoller::{self, NetPoller};

#[path = "../examples/green_echo.rs"]
mod green_echo;

/// Fewer under qemu-user, which is 5-20x slower.
const CLIENTS: usize = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
    200
} else {
    1000
};

fn runtime() -> green::Runtime {
    netpoller::builder()
        .expect("netpoller")
        .stack_size(64 * 1024)
        .build()
}

/// How many green threads are parked on a descriptor.
fn parked() -> usize {
    green::with_driver(|np: &mut NetPoller| np.parked()).expect("a NetPoller is installed")
}

// ANCHOR: thousand_clients
#[test]
fn a_thousand_concurrent_green_clients_all_get_their_bytes_back() {
    let server = green_echo::start_in_background().expect("green_echo");
    let mut rt = runtime();
    let echoed = rt
        .block_on(move || {
            // A barrier: every client connects, then waits for all the others,
            // so that all connections are open at the same time.
            let connected = Rc::new(Cell::new(0));
            let waiting = Rc::new(RefCell::new(Vec::new()));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let (connected, waiting) = (connected.clone(), waiting.clone());
                    green::spawn(move || -> io::Result<usize> {
                        let mut stream = TcpStream::connect(server)?;
                        connected.set(connected.get() + 1);
                        if connected.get() == CLIENTS {
                            for id in waiting.borrow_mut().drain(..) {
                                green::unpark(id);
                            }
                        } else {
                            waiting.borrow_mut().push(green::current());
                            while connected.get() < CLIENTS {
                                green::park();
                            }
                        }
                        let mut echoed = 0;
                        for round in 0..3 {
                            let message =
                                format!("client {i} round {round} {}", "x".repeat(i % 300));
                            stream.write_all(message.as_bytes())?;
                            let mut back = vec![0u8; message.len()];
                            stream.read_exact(&mut back)?;
                            assert_eq!(back, message.as_bytes(), "client {i}");
                            echoed += back.len();
                        }
                        Ok(echoed)
                    })
                })
                .collect();
            clients
                .into_iter()
                .map(|c| c.join().expect("client thread").expect("client I/O"))
                .filter(|&n| n > 0)
                .count()
        })
        .expect("runtime");
    assert_eq!(echoed, CLIENTS);
}
// ANCHOR_END: thousand_clients

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A runtime with a green thread parked in `accept` and another asleep.
fn idle_for(nap: Duration) -> (Duration, Duration) {
    let mut rt = runtime();
    let wall = Instant::now();
    let cpu = thread_cpu_time();
    rt.block_on(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        green::spawn(move || listener.accept().map(|_| ())); // parks on epoll
        green::sleep(nap); // parks on a timer
    })
    .expect("runtime");
    (thread_cpu_time() - cpu, wall.elapsed())
}

#[test]
fn an_idle_runtime_sleeps_in_the_kernel_and_uses_almost_no_cpu() {
    idle_for(Duration::from_millis(1)); // warm up (and, under qemu, translate) the code
    let nap = Duration::from_millis(200);
    let (cpu, wall) = idle_for(nap);
    assert!(wall >= nap, "woke early: {wall:?}");
    // A busy-polling scheduler would burn ~200 ms here; sleeping in
    // epoll_wait costs a few system calls. Generous bound.
    assert!(
        cpu < Duration::from_millis(10),
        "idle runtime used {cpu:?} of CPU"
    );
}

#[test]
fn readiness_wakes_exactly_the_green_thread_whose_socket_is_ready() {
    let mut rt = runtime();
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Plain std clients: the kernel completes the handshake without us.
        let mut clients: Vec<_> = (0..10)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();
        let done = Rc::new(RefCell::new(Vec::new()));
        for i in 0..10 {
            let (stream, _) = listener.accept().expect("accept");
            let done = done.clone();
            green::spawn(move || {
                let mut byte = [0u8; 1];
                (&stream).read_exact(&mut byte).expect("read");
                done.borrow_mut().push((i, byte[0]));
            });
        }
        green::yield_now(); // let all ten readers run and park
        assert_eq!(parked(), 10);

        clients[3].write_all(b"!").expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        while done.borrow().is_empty() && Instant::now() < deadline {
            green::sleep(Duration::from_millis(10)); // the scheduler waits in epoll
        }
        assert_eq!(*done.borrow(), [(3, b'!')]);
        assert_eq!(parked(), 9, "the other nine still wait");
        // Returning ends `block_on`, which cancels the nine readers still
        // parked: each unwinds and its `Unlist` guard leaves no entry behind.
        drop(clients);
    })
    .expect("runtime");
}

#[test]
fn one_green_thread_waiting_on_a_socket_does_not_stop_the_others() {
    let mut rt = runtime();
    let order = rt
        .block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let order = Rc::new(RefCell::new(Vec::new()));
            let o = order.clone();
            let reader = green::spawn(move || {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut buf = [0u8; 5];
                stream.read_exact(&mut buf).expect("read");
                o.borrow_mut().push("reader got its bytes");
            });
            let o = order.clone();
            let writer = green::spawn(move || {
                for _ in 0..3 {
                    green::yield_now();
                }
                o.borrow_mut().push("writer ran while the reader waited");
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.write_all(b"hello").expect("write");
            });
            writer.join().expect("writer");
            reader.join().expect("reader");
            order.take()
        })
        .expect("runtime");
    assert_eq!(
        order,
        ["writer ran while the reader waited", "reader got its bytes"]
    );
}

#[test]
fn a_green_connect_to_a_closed_port_fails_instead_of_hanging() {
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut rt = runtime();
    let err = rt
        .block_on(move || TcpStream::connect(closed).map(|_| ()))
        .expect("runtime")
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_peer_reset_wakes_a_parked_green_reader_with_an_error() {
    let mut rt = runtime();
    let result = rt
        .block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let client = std::net::TcpStream::connect(listener.local_addr().expect("addr"))
                .expect("connect");
            let (stream, _) = listener.accept().expect("accept");
            let reader = green::spawn(move || (&stream).read(&mut [0u8; 16]));
            green::yield_now(); // the reader parks
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and a linger value of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    client.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0);
            drop(client); // sends a reset
            reader.join().expect("reader")
        })
        .expect("runtime");
    assert_eq!(
        result.map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset)
    );
}

#[test]
fn an_early_close_gives_end_of_file_to_a_parked_reader() {
    let mut rt = runtime();
    let n = rt
        .block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let client = std::net::TcpStream::connect(listener.local_addr().expect("addr"))
                .expect("connect");
            let (stream, _) = listener.accept().expect("accept");
            let reader = green::spawn(move || (&stream).read(&mut [0u8; 16]));
            green::yield_now();
            drop(client);
            reader.join().expect("reader")
        })
        .expect("runtime")
        .expect("end of file is not an error");
    assert_eq!(n, 0);
}

#[test]
fn green_sockets_outside_a_netpoller_runtime_are_errors_not_panics() {
    assert!(
        TcpListener::bind("127.0.0.1:0").is_err(),
        "no runtime at all"
    );
    let mut plain = green::Runtime::new(); // the default SleepDriver
    let result = plain
        .block_on(|| TcpListener::bind("127.0.0.1:0").map(|_| ()))
        .expect("runtime");
    assert!(result.is_err(), "a runtime without a NetPoller");
}

/// A connected pair of green sockets made in `rt` (client, server side),
/// with nothing sent yet: a read on either would block.
fn idle_pair(rt: &mut green::Runtime) -> (TcpStream, TcpStream) {
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        Ok::<_, io::Error>((client, server))
    })
    .expect("runtime")
    .expect("a connected pair")
}

#[test]
fn a_green_read_that_would_block_outside_a_runtime_is_an_error_not_a_panic() {
    let mut rt = runtime();
    let (client, _server) = idle_pair(&mut rt);
    let mut buf = [0u8; 16];
    let error = (&client)
        .read(&mut buf)
        .expect_err("nothing to read and no runtime to park in");
    assert!(
        error.to_string().contains("outside a green thread"),
        "unexpected error: {error}"
    );
    // Back inside its own runtime the same stream works again.
    let n = rt
        .block_on(move || {
            (&_server).write_all(b"hi")?;
            (&client).read(&mut buf)
        })
        .expect("runtime")
        .expect("read in its own runtime");
    assert_eq!(n, 2);
}

#[test]
fn a_green_socket_used_under_another_runtime_is_refused_instead_of_parking_forever() {
    let (client, server) = idle_pair(&mut runtime());
    let mut other = runtime();
    let result = other
        .block_on(move || {
            let _keep_open = server;
            let mut buf = [0u8; 16];
            (&client).read(&mut buf)
        })
        .expect("the other runtime must not deadlock");
    let error = result.expect_err("the stream's netpoller is not this runtime's");
    assert!(
        error
            .to_string()
            .contains("a runtime that did not create it"),
        "unexpected error: {error}"
    );
}
