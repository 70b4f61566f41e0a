//! N concurrent delayed HTTP requests on the naive executor, and what they
//! cost in polls.
//!
//! `cargo run -p stage-04-futures --example naive_requests -- [N] [MAX_DELAY_MS]`
//! (defaults: 100 requests, the slowest delayed 500 ms)

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use netpoll::delayserver::DelayServer;
use stackless::naive;
use stackless::workload::{self, DelayedRequests};

fn main() -> ExitCode {
    // Read as `OsString`s: `std::env::args` panics on one that is not UTF-8.
    let args = std::env::args_os().skip(1);
    match run(args.map(|arg| arg.to_string_lossy().into_owned())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("naive_requests: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> io::Result<()> {
    let plan = DelayedRequests::from_args(args)?;
    let (count, max_ms) = (plan.count, plan.max_delay.as_millis());

    let server = DelayServer::start()?;
    println!(
        "{count} concurrent GETs to the delay server at {}, delays spread up to {max_ms} ms",
        server.addr()
    );
    let started = Instant::now();
    let mut stats = naive::Stats::default();
    let report = workload::run(server.addr(), plan, |requests| {
        let (outputs, run) = naive::block_on_all(requests)?;
        stats = run;
        Ok(outputs)
    })?;
    println!("{report}");
    println!(
        "naive executor: {} wait phases, {} wakers woken (all no-ops), {} polls in {:.0?}",
        stats.waits,
        stats.wakes,
        stats.polls,
        started.elapsed()
    );
    println!(
        "woken precisely, a request needs about 3 polls (start; connected; answer arrived); \
         the rest were polls for somebody else's event"
    );
    Ok(())
}
