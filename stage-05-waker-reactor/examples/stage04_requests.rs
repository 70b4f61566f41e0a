//! Stage 04's experiment again: N concurrent delayed HTTP requests made of
//! stage 04's hand-written leaf futures, unchanged. First on stage 04's
//! naive executor (every future polled on every event), then as tasks on
//! this runtime, both flavours (a future polled only when its waker fires).
//!
//! `cargo run -p stage-05-waker-reactor --example stage04_requests -- [N] [MAX_DELAY_MS]`
//! (defaults: 100 requests, the slowest delayed 500 ms)

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use netpoll::delayserver::DelayServer;
use runtime::Runtime;
use stackless::workload::{self, DelayedRequests, Outputs, PollReport, Request};

/// Spawn every request as a task; collect the outputs in order.
fn on_runtime(rt: &Runtime, requests: Vec<Request>) -> io::Result<Outputs> {
    rt.block_on(async {
        let tasks: Vec<_> = requests.into_iter().map(runtime::spawn).collect();
        let mut outputs = Vec::with_capacity(tasks.len());
        for task in tasks {
            outputs.push(task.await?);
        }
        Ok(outputs)
    })
}

fn show(label: &str, report: &PollReport, started: Instant) {
    let (min, max) = report.min_max();
    println!(
        "{label:<28} {:>6.1} polls per completed future (min {min}, max {max}), {} done in {:.0?}",
        report.mean(),
        report.completed(),
        started.elapsed()
    );
}

fn main() -> ExitCode {
    // Read as `OsString`s: `std::env::args` panics on one that is not UTF-8.
    let args = std::env::args_os().skip(1);
    match run(args.map(|arg| arg.to_string_lossy().into_owned())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("stage04_requests: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> io::Result<()> {
    let plan = DelayedRequests::from_args(args)?;
    let (count, max_ms) = (plan.count, plan.max_delay.as_millis());
    let server = DelayServer::start()?;
    println!(
        "{count} concurrent GETs to the delay server at {}, delays spread up to {max_ms} ms\n",
        server.addr()
    );

    let started = Instant::now();
    let naive = workload::run(server.addr(), plan, |requests| {
        Ok(stackless::naive::block_on_all(requests)?.0)
    })?;
    show("stage 04, naive executor", &naive, started);

    let rt = Runtime::new()?;
    let started = Instant::now();
    let current = workload::run(server.addr(), plan, |requests| on_runtime(&rt, requests))?;
    show("stage 05, current-thread", &current, started);
    drop(rt);

    let rt = Runtime::builder()
        .multi_thread()
        .worker_threads(2)
        .build()?;
    let started = Instant::now();
    let multi = workload::run(server.addr(), plan, |requests| on_runtime(&rt, requests))?;
    show("stage 05, multi-thread (2)", &multi, started);

    println!(
        "\nwith wakers, a future is polled only when what it waits for happened: \
         {:.0}x fewer polls than the naive executor",
        naive.mean() / current.mean().max(1.0)
    );
    Ok(())
}
