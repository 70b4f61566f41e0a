//! `echo/*`: request/response round trips over 100 concurrent loopback
//! connections, against four servers:
//!
//! | id | server |
//! |---|---|
//! | `echo/ours_green` | `examples/green_echo.rs`: a green thread per connection on the netpoller |
//! | `echo/ours_epoll` | `examples/echo_edge.rs`: a raw edge-triggered loop on our `Poll` |
//! | `echo/mio`        | `examples/echo_mio.rs`: the same loop on mio |
//! | `echo/os_thread`  | an OS thread per connection, blocking std sockets |
//!
//! The client is the same for all: one OS thread driving all 100 connections
//! through one edge-triggered `Poll`, each connection sending a 64-byte
//! message and waiting for its echo, `ROUNDS` times. One iteration is
//! `CONNECTIONS * ROUNDS` round trips.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netpoll::{Events, Interest, Poll, Token, Trigger};

#[path = "../examples/echo_edge.rs"]
mod echo_edge;
#[path = "../examples/echo_mio.rs"]
mod echo_mio;
#[path = "../examples/green_echo.rs"]
mod green_echo;

const CONNECTIONS: usize = 100;
const ROUNDS: usize = 10;
const MESSAGE: [u8; 64] = [b'e'; 64];

fn spawn_std_server(serve: fn(TcpListener) -> io::Result<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || serve(listener)); // runs until the process exits
    addr
}

/// The peer that needs no event loop at all: a thread per connection.
fn os_thread_serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        thread::spawn(move || -> io::Result<()> {
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                stream.write_all(&buf[..n])?;
            }
        });
    }
    Ok(())
}

/// 100 connections driven from one thread by one edge-triggered poller.
struct Client {
    poll: Poll,
    events: Events,
    conns: Vec<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let poll = Poll::new().expect("poll");
        let conns: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                stream.set_nonblocking(true).expect("nonblocking");
                poll.registry()
                    .register(
                        stream.as_raw_fd(),
                        Token(i),
                        Interest::READABLE,
                        Trigger::Edge,
                    )
                    .expect("register");
                stream
            })
            .collect();
        Client {
            poll,
            events: Events::with_capacity(CONNECTIONS),
            conns,
        }
    }

    /// `ROUNDS` round trips on every connection, all connections at once.
    fn run(&mut self) {
        let mut rounds_left = [ROUNDS; CONNECTIONS];
        let mut received = [0usize; CONNECTIONS];
        for conn in &mut self.conns {
            send(conn);
        }
        let mut active = CONNECTIONS;
        let mut buf = [0u8; 4096];
        while active > 0 {
            self.poll
                .poll(&mut self.events, Some(Duration::from_secs(10)))
                .expect("poll");
            assert!(!self.events.is_empty(), "the server stopped answering");
            for event in &self.events {
                let Token(i) = event.token();
                loop {
                    match self.conns[i].read(&mut buf) {
                        Ok(0) => panic!("the server closed connection {i}"),
                        Ok(n) => received[i] += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
                while received[i] >= MESSAGE.len() && rounds_left[i] > 0 {
                    received[i] -= MESSAGE.len();
                    rounds_left[i] -= 1;
                    if rounds_left[i] > 0 {
                        send(&mut self.conns[i]);
                    } else {
                        active -= 1;
                    }
                }
            }
        }
    }
}

/// One message into an (empty) send buffer: never blocks in this protocol.
fn send(conn: &mut TcpStream) {
    let mut sent = 0;
    while sent < MESSAGE.len() {
        match conn.write(&MESSAGE[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::yield_now(),
            Err(e) => panic!("write: {e}"),
        }
    }
}

fn echo(c: &mut Criterion) {
    let servers = [
        (
            "ours_green",
            green_echo::start_in_background().expect("green_echo"),
        ),
        ("ours_epoll", spawn_std_server(echo_edge::serve)),
        ("mio", spawn_std_server(echo_mio::serve)),
        ("os_thread", spawn_std_server(os_thread_serve)),
    ];
    let mut group = c.benchmark_group("echo");
    group.throughput(Throughput::Elements((CONNECTIONS * ROUNDS) as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, addr) in servers {
        let mut client = Client::connect(addr);
        group.bench_function(name, |b| b.iter(|| black_box(&mut client).run()));
    }
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
