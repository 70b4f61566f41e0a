//! Echo server 2 of 3: edge-triggered epoll. Each connection is registered
//! once, for READABLE and WRITABLE; an event only says "something changed",
//! so the handler works until `WouldBlock` on both sides. Stop early and the
//! leftover data is never reported again: the connection hangs.
//!
//! ```text
//! cargo run -p stage-03-epoll --example echo_edge             # 127.0.0.1:7002
//! nc 127.0.0.1 7002
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use netpoll::{Events, Interest, Poll, Token, Trigger};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet echoed back.
    pending: Vec<u8>,
}

#[allow(dead_code)] // also compiled into the tests and benchmarks
fn main() -> ExitCode {
    netpoll::args::exit_status("echo_edge", listen_and_serve())
}

/// Serves on the address of the command line; every error as one line.
#[allow(dead_code)] // also compiled into the tests and benchmarks
fn listen_and_serve() -> Result<(), String> {
    let addr =
        netpoll::args::listen_address("echo_edge", SocketAddr::from(([127, 0, 0, 1], 7002)))?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("edge-triggered echo on {local}");
    serve(listener).map_err(|e| format!("serving on {local}: {e}"))
}

/// Serves echo on `listener` forever (or until an epoll call fails).
pub fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut poll = Poll::new()?;
    let registry = poll.registry().clone();
    registry.register(
        listener.as_raw_fd(),
        LISTENER,
        Interest::READABLE,
        Trigger::Edge,
    )?;

    let mut conns: Vec<Option<Conn>> = Vec::new(); // Token(i) is conns[i]
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(256);
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                // Edge-triggered: accept until WouldBlock, or queued
                // connections wait for an edge that never comes.
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true)?;
                            stream.set_nodelay(true)?;
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            registry.register(
                                stream.as_raw_fd(),
                                Token(slot),
                                Interest::READABLE | Interest::WRITABLE,
                                Trigger::Edge,
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
                registry.deregister(conn.stream.as_raw_fd())?;
                conns[slot] = None; // closes the socket
                free.push(slot);
            }
        }
    }
}

// ANCHOR: edge_drive
/// Echo until the socket says `WouldBlock`. `Err` closes the connection.
fn drive(conn: &mut Conn) -> io::Result<()> {
    // ANCHOR: lab_3_3_drive
    let mut buf = [0u8; 4096];
    loop {
        // Flush first: never read more than we could send back.
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                // The send buffer is full: the writable edge resumes us.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        match conn.stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            // Drained: the next readable edge resumes us.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    // ANCHOR_END: lab_3_3_drive
}
// ANCHOR_END: edge_drive
