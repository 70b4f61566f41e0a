//! `delayserver [ADDR]`: run the delay server in the foreground.
//!
//! ```text
//! cargo run -p stage-03-epoll --bin delayserver             # 127.0.0.1:8080
//! cargo run -p stage-03-epoll --bin delayserver 127.0.0.1:0 # any free port
//! curl http://127.0.0.1:8080/1500/hello                     # "hello", 1.5 s later
//! ```
//!
//! Stop it with Ctrl-C. Bad arguments, or an address that cannot be bound,
//! end it with one line on stderr and exit status 1.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use netpoll::args;
use netpoll::delayserver::DelayServer;

fn main() -> ExitCode {
    let default = SocketAddr::from(([127, 0, 0, 1], 8080));
    let outcome = args::listen_address("delayserver", default).and_then(serve);
    args::exit_status("delayserver", outcome)
}

/// Starts the server and serves until the process is killed (or the
/// server fails).
fn serve(addr: SocketAddr) -> Result<(), String> {
    let server = DelayServer::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
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
    server
        .wait()
        .map_err(|e| format!("the server on {addr} stopped: {e}"))
}
