//! The command line of the stage's servers (the echo examples and the
//! `delayserver` binary): one optional argument, the address to listen on.
//!
//! Every mistake is one line for stderr, never a panic: arguments are read
//! as `OsString`s, because `std::env::args` panics on one that is not UTF-8.

use std::net::SocketAddr;
use std::process::ExitCode;

/// The address `program` listens on: its only argument, or `default`
/// without one.
pub fn listen_address(program: &str, default: SocketAddr) -> Result<SocketAddr, String> {
    let usage = format!("usage: {program} [ADDR] (default {default})");
    let mut args = std::env::args_os().skip(1);
    let (arg, extra) = (args.next(), args.next());
    if extra.is_some() {
        return Err(format!("too many arguments; {usage}"));
    }
    let Some(arg) = arg else {
        return Ok(default);
    };
    let text = arg
        .to_str()
        .ok_or_else(|| format!("{arg:?} is not an address like {default} (not UTF-8); {usage}"))?;
    text.parse()
        .map_err(|e| format!("{text:?} is not an address like {default}: {e}; {usage}"))
}

/// The exit status of a server's `main`: success, or the error as one line
/// on stderr after the program's name, and status 1.
pub fn exit_status(program: &str, outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{program}: {why}");
            ExitCode::FAILURE
        }
    }
}
