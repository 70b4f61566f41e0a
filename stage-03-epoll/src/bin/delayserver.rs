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

use netpoll::delayserver::DelayServer;

const USAGE: &str = "usage: delayserver [ADDR] (default 127.0.0.1:8080)";

fn main() -> ExitCode {
    match address_argument().and_then(serve) {
        Ok(never) => match never {},
        Err(why) => {
            eprintln!("delayserver: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The address to listen on, from the only (optional) argument. Arguments
/// are read as `OsString`s: `std::env::args` panics on one that is not UTF-8.
fn address_argument() -> Result<SocketAddr, String> {
    let mut args = std::env::args_os().skip(1);
    let (arg, extra) = (args.next(), args.next());
    if extra.is_some() {
        return Err(format!("too many arguments; {USAGE}"));
    }
    let Some(arg) = arg else {
        return Ok(SocketAddr::from(([127, 0, 0, 1], 8080)));
    };
    let text = arg.to_str().ok_or_else(|| {
        format!("{arg:?} is not an address like 127.0.0.1:8080 (not UTF-8); {USAGE}")
    })?;
    text.parse()
        .map_err(|e| format!("{text:?} is not an address like 127.0.0.1:8080: {e}; {USAGE}"))
}

/// Starts the server and serves until the process is killed.
fn serve(addr: SocketAddr) -> Result<std::convert::Infallible, String> {
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
    loop {
        std::thread::park();
    }
}
