//! Echo server 3 of 3: the edge-triggered server again, on mio. Put it next
//! to `echo_edge.rs`: `Poll`, `Registry`, `Events`, `Token`, `Interest` are
//! the same words doing the same jobs. mio is always edge-triggered, takes
//! its own socket types instead of raw fds, and runs on kqueue (BSD, macOS)
//! and IOCP (Windows) as well as epoll.
//!
//! ```text
//! cargo run -p stage-03-epoll --example echo_mio              # 127.0.0.1:7003
//! nc 127.0.0.1 7003
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

#[allow(dead_code)] // also compiled into the tests and benchmarks
fn main() -> ExitCode {
    netpoll::args::exit_status("echo_mio", listen_and_serve())
}

/// Serves on the address of the command line; every error as one line.
#[allow(dead_code)] // also compiled into the tests and benchmarks
fn listen_and_serve() -> Result<(), String> {
    let addr = netpoll::args::listen_address("echo_mio", SocketAddr::from(([127, 0, 0, 1], 7003)))?;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("mio echo on {local}");
    serve(listener).map_err(|e| format!("serving on {local}: {e}"))
}

/// Serves echo on `listener` forever (or until a mio call fails).
pub fn serve(listener: std::net::TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(256);
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(slot),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[slot] = Some(Conn {
                                stream,
                                pending: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // A client that reset while queued: skip it, or the
                        // clients queued behind it wait for the next edge.
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            // Out of descriptors, ...: the queued clients wait
                            // until the next connection makes a new edge.
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let Token(slot) = event.token();
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if drive(conn).is_err() {
                poll.registry().deregister(&mut conn.stream)?;
                conns[slot] = None;
                free.push(slot);
            }
        }
    }
}

/// The same loop as `echo_edge::drive`, line for line.
fn drive(conn: &mut Conn) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
