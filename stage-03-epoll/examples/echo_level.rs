//! Echo server 1 of 3: level-triggered epoll, the forgiving mode.
//!
//! One OS thread, one `Poll`. Each event gets *one* `read`; whatever we leave
//! in the socket is reported again by the next wait, because level-triggered
//! readiness means "is ready", not "became ready". While an echo is stuck
//! (the client reads slowly) we stop asking for READABLE and ask for WRITABLE
//! instead: that is back-pressure, and it is one `reregister` each way.
//!
//! ```text
//! cargo run -p stage-03-epoll --example echo_level            # 127.0.0.1:7001
//! nc 127.0.0.1 7001
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use netpoll::{Event, Events, Interest, Poll, Token, Trigger};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet echoed back.
    pending: Vec<u8>,
}

#[allow(dead_code)] // also compiled into the tests and benchmarks
fn main() -> ExitCode {
    netpoll::args::exit_status("echo_level", listen_and_serve())
}

/// Serves on the address of the command line; every error as one line.
#[allow(dead_code)] // also compiled into the tests and benchmarks
fn listen_and_serve() -> Result<(), String> {
    let addr =
        netpoll::args::listen_address("echo_level", SocketAddr::from(([127, 0, 0, 1], 7001)))?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("level-triggered echo on {local}");
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
        Trigger::Level,
    )?;

    let mut conns: Vec<Option<Conn>> = Vec::new(); // Token(i) is conns[i]
    let mut events = Events::with_capacity(256);
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                // One accept per event is enough: if more are queued, the
                // listener is still readable and the next wait says so.
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(true)?;
                        let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        registry.register(
                            stream.as_raw_fd(),
                            Token(slot),
                            Interest::READABLE,
                            Trigger::Level,
                        )?;
                        conns[slot] = Some(Conn {
                            stream,
                            pending: Vec::new(),
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => eprintln!("accept: {e}"),
                }
                continue;
            }
            let Token(slot) = event.token();
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let keep = handle(conn, event);
            let fd = conn.stream.as_raw_fd();
            let token = event.token();
            match keep {
                Ok(()) => {
                    // Read while nothing is pending; otherwise wait to write.
                    let interest = if conn.pending.is_empty() {
                        Interest::READABLE
                    } else {
                        Interest::WRITABLE
                    };
                    registry.reregister(fd, token, interest, Trigger::Level)?;
                }
                Err(_) => {
                    registry.deregister(fd)?;
                    conns[slot] = None; // closes the socket
                }
            }
        }
    }
}

// ANCHOR: level_handle
/// One read (if readable) and one attempt to flush. `Err` closes.
fn handle(conn: &mut Conn, event: &Event) -> io::Result<()> {
    // A pending error stays reported until someone takes it: take it.
    if event.is_error()
        && let Some(e) = conn.stream.take_error()?
    {
        return Err(e);
    }
    let (readable, writable) = (event.is_readable(), event.is_writable());
    if readable && conn.pending.is_empty() {
        let mut buf = [0u8; 4096];
        match conn.stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => conn.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    if readable || writable {
        match conn.stream.write(&conn.pending) {
            Ok(n) => {
                conn.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
// ANCHOR_END: level_handle
