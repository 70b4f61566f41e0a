//! `delayserver [ADDR]`: run the delay server in the foreground.
//!
//! ```text
//! cargo run -p stage-03-epoll --bin delayserver             # 127.0.0.1:8080
//! cargo run -p stage-03-epoll --bin delayserver 127.0.0.1:0 # any free port
//! curl http://127.0.0.1:8080/1500/hello                     # "hello", 1.5 s later
//! ```
//!
//! Stop it with Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;

use netpoll::delayserver::DelayServer;

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{arg:?} is not an address like 127.0.0.1:8080: {e}"),
            )
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let server = DelayServer::bind(addr)?;
    // The address is for whoever reads stdout. If nobody does (a pipe whose
    // reader is gone), the server still serves: `println!` would panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "delay server on http://{}/{{ms}}/{{message}}",
        server.addr()
    );
    let _ = writeln!(out, "try: curl {}", server.url(1000, "hello"));
    let _ = out.flush();
    drop(out);
    // The server runs on its own thread; this one has nothing else to do.
    loop {
        std::thread::park();
    }
}
