//! Echo server 4: plain blocking code, one green thread per connection, one
//! OS thread in all. Compare with `echo_edge.rs`: the state machine is gone.
//! What was "remember where this connection was and return to the event
//! loop" is now "park this green thread": its stack *is* the state.
//!
//! ```text
//! cargo run -p stage-03-epoll --example green_echo            # 127.0.0.1:7004
//! nc 127.0.0.1 7004
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use netpoll::net::{TcpListener, TcpStream};

/// Green threads need little stack here: a 4 KiB buffer and a few frames.
pub const STACK_SIZE: usize = 64 * 1024;

#[allow(dead_code)] // also compiled into the tests and benchmarks
fn main() -> ExitCode {
    netpoll::args::exit_status("green_echo", listen_and_serve())
}

/// Serves on the address of the command line; every error as one line.
#[allow(dead_code)] // also compiled into the tests and benchmarks
fn listen_and_serve() -> Result<(), String> {
    let addr =
        netpoll::args::listen_address("green_echo", SocketAddr::from(([127, 0, 0, 1], 7004)))?;
    let mut runtime = netpoll::netpoller::builder()
        .map_err(|e| format!("cannot create the netpoller: {e}"))?
        .stack_size(STACK_SIZE)
        .build();
    runtime
        .block_on(move || {
            let listener =
                TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            println!("green echo on {local}");
            serve(listener).map_err(|e| format!("serving on {local}: {e}"))
        })
        .map_err(|e| e.to_string())?
}

// ANCHOR: green_echo
/// Accepts forever; each connection gets a green thread of its own.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    let mut pause = Duration::ZERO;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream, // (parked until a client came)
            // A client that reset while still queued: not the server's problem.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            // Out of descriptors or memory: the client stays queued in the
            // kernel. Giving up would reset every queued client; retrying at
            // once would spin (the failing accept returns at once). So this
            // green thread sleeps, 5 ms doubling up to 1 s, and tries again.
            Err(e) if out_of_resources(&e) => {
                pause = (pause * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                green::sleep(pause);
                continue;
            }
            Err(e) => return Err(e),
        };
        pause = Duration::ZERO;
        green::spawn(move || echo(stream));
    }
}

/// `accept` failed for want of descriptors (EMFILE, ENFILE) or memory.
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Reads and writes back until the client closes: ordinary blocking code.
fn echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?; // parks until bytes arrive
        if n == 0 {
            return Ok(()); // the client closed
        }
        stream.write_all(&buf[..n])?; // parks while the send buffer is full
    }
}
// ANCHOR_END: green_echo

/// Starts the server on a new OS thread (its own runtime) at a free
/// loopback port; it runs until the process exits. For tests and benchmarks.
#[allow(dead_code)]
pub fn start_in_background() -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("green_echo".into())
        .spawn(move || -> io::Result<()> {
            let mut runtime = netpoll::netpoller::builder()?
                .stack_size(STACK_SIZE)
                .build();
            runtime
                .block_on(move || {
                    let bound = TcpListener::bind("127.0.0.1:0")
                        .and_then(|listener| Ok((listener.local_addr()?, listener)));
                    match bound {
                        Ok((addr, listener)) => {
                            let _ = tx.send(Ok(addr));
                            serve(listener)
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            Ok(())
                        }
                    }
                })
                .map_err(io::Error::other)?
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("the green_echo thread died before binding"))?
}
