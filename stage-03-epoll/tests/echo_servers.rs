//! The three echo examples (level-triggered, edge-triggered, mio) serve the
//! same conversation: many clients at once, and one message larger than the
//! socket buffers, which forces the server through its back-pressure path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

#[path = "../examples/echo_edge.rs"]
mod echo_edge;
#[path = "../examples/echo_level.rs"]
mod echo_level;
#[path = "../examples/echo_mio.rs"]
mod echo_mio;

const CLIENTS: usize = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
    8
} else {
    32
};
const ROUNDS: usize = 20;
const BIG: usize = 4 << 20; // more than the kernel buffers on both sides
/// A server that loses data makes a read fail after this, instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

fn start(serve: fn(TcpListener) -> std::io::Result<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The server runs until the test process exits.
    thread::spawn(move || serve(listener));
    addr
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

fn round_trips(addr: SocketAddr, id: usize) {
    let mut stream = connect(addr);
    for round in 0..ROUNDS {
        let message = format!("client {id} round {round}\n");
        stream
            .write_all(message.as_bytes())
            .unwrap_or_else(|e| panic!("client {id}, round {round}: write failed: {e}"));
        let mut back = vec![0u8; message.len()];
        if let Err(e) = stream.read_exact(&mut back) {
            panic!(
                "client {id}, round {round}: no full echo of {} bytes within {PATIENCE:?} \
                 ({e}): did the server stop before WouldBlock, or close the connection?",
                message.len()
            );
        }
        assert_eq!(back, message.as_bytes(), "client {id}, round {round}");
    }
}

fn big_message(addr: SocketAddr) {
    let stream = connect(addr);
    let mut writer = stream.try_clone().expect("clone");
    let sent: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    let expected = sent.clone();
    // Write and read at once: a client that first writes everything would
    // deadlock against a server that stops reading while it cannot write.
    let writing = thread::spawn(move || writer.write_all(&sent).expect("write"));
    let mut back = vec![0u8; BIG];
    if let Err(e) = (&stream).read_exact(&mut back) {
        panic!(
            "the 4 MiB message did not come back within {PATIENCE:?} ({e}): a server \
             that stops reading or writing before WouldBlock strands data"
        );
    }
    writing.join().expect("writer");
    assert!(back == expected, "the echo differs from what was sent");
}

fn check(serve: fn(TcpListener) -> std::io::Result<()>) {
    let addr = start(serve);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| thread::spawn(move || round_trips(addr, id)))
        .collect();
    big_message(addr);
    for client in clients {
        client.join().expect("client");
    }
}

#[test]
fn the_level_triggered_server_echoes_every_byte() {
    check(echo_level::serve);
}

#[test]
fn the_edge_triggered_server_echoes_every_byte() {
    check(echo_edge::serve);
}

#[test]
fn the_mio_server_echoes_every_byte() {
    check(echo_mio::serve);
}
