//! 100,000 green threads alive at once, each parked on its own channel, and
//! what they cost in resident memory.
//!
//! ```text
//! cargo run --release -p stage-02-stackful --example many_green_threads [THREADS] [STACK_KIB]
//! ```
//!
//! Why small stacks (16 KiB by default)? Resident memory (RSS) only counts
//! the pages a thread has touched, one or two at the top of its stack
//! whatever the stack's size, so the size barely changes RSS. It changes
//! everything else: 100,000 stacks of 256 KiB reserve 25 GiB of address
//! space and need a page-table page for every 8 stacks (a 2 MiB span),
//! about 50 MiB of page tables; at 16 KiB it is 2 GiB and 4 MiB. The price
//! is depth: a thread that needs more than 16 KiB of stack hits the guard
//! page and the process aborts with "fiber stack overflow".
//!
//! The other limit is the kernel's: every stack is two memory mappings (the
//! guard page and the usable part differ in protection), and Linux allows
//! `vm.max_map_count` mappings per process, 65,530 by default: about 32,000
//! guarded stacks. This example checks that limit first; to run all
//! 100,000, raise it (`sudo sysctl vm.max_map_count=262144`).

use std::cell::Cell;
use std::ffi::OsString;
use std::fs;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use green::{Runtime, channel, try_spawn, yield_now};

/// Mappings the process needs besides the stacks (libraries, heap, ...).
const OTHER_MAPPINGS: usize = 2_000;

const USAGE: &str = "usage: many_green_threads [THREADS] [STACK_KIB] (default 100000 16)";

fn main() -> ExitCode {
    match arguments().and_then(|(wanted, stack_kib)| measure(wanted, stack_kib)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("many_green_threads: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `[THREADS] [STACK_KIB]`, each defaulted when absent and refused when
/// it is not a number (read as `OsString`s: `std::env::args` panics on an
/// argument that is not UTF-8).
fn arguments() -> Result<(usize, usize), String> {
    let mut args = std::env::args_os().skip(1);
    let wanted = number(args.next(), "THREADS", 100_000)?;
    let stack_kib = number(args.next(), "STACK_KIB", 16)?;
    if args.next().is_some() {
        return Err(format!("too many arguments; {USAGE}"));
    }
    if stack_kib.checked_mul(1024).is_none() {
        return Err(format!(
            "STACK_KIB {stack_kib} is larger than the address space; {USAGE}"
        ));
    }
    Ok((wanted, stack_kib))
}

fn number(arg: Option<OsString>, name: &str, default: usize) -> Result<usize, String> {
    let Some(arg) = arg else {
        return Ok(default);
    };
    arg.to_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("{name} must be a whole number, not {arg:?}; {USAGE}"))
}

/// Parks the threads, wakes them, prints what they cost; an error if
/// their stacks cannot be allocated.
fn measure(wanted: usize, stack_kib: usize) -> Result<(), String> {
    let threads = match max_map_count() {
        Some(limit) if wanted.saturating_mul(2).saturating_add(OTHER_MAPPINGS) > limit => {
            let fits = (limit.saturating_sub(OTHER_MAPPINGS) / 2) / 1000 * 1000;
            println!(
                "vm.max_map_count = {limit}: each guarded stack is 2 mappings, so only about \
                 {fits} stacks fit (raise it with `sudo sysctl vm.max_map_count=262144` for {wanted})."
            );
            fits
        }
        _ => wanted,
    };

    let before = memory_status();
    let mut rt = Runtime::builder()
        .stack_size(stack_kib * 1024)
        // Keep every stack after the run: we only measure.
        .max_idle_stacks(threads)
        .build();
    let report = rt
        .block_on(move || {
            let started = Instant::now();
            let parked = Rc::new(Cell::new(0usize));
            let mut gates = Vec::with_capacity(threads);
            let mut handles = Vec::with_capacity(threads);
            for i in 0..threads {
                let (gate, wait_here) = channel::<u64>();
                let parked = parked.clone();
                gates.push(gate);
                let handle = try_spawn(move || {
                    parked.set(parked.get() + 1);
                    // Parks until main sends a value.
                    let value = wait_here.recv().unwrap_or(0);
                    value + i as u64
                })
                .map_err(|e| format!("cannot allocate a stack of {stack_kib} KiB: {e}"))?;
                handles.push(handle);
            }
            yield_now(); // every thread runs once and parks in recv
            let spawn_time = started.elapsed();
            let alive = parked.get();
            let peak = memory_status();

            let woken = Instant::now();
            for gate in &gates {
                gate.send(1).unwrap();
            }
            let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            Ok::<_, String>((alive, spawn_time, peak, woken.elapsed(), sum))
        })
        .map_err(|e| format!("the runtime failed: {e}"))??;
    let (alive, spawn_time, peak, wake_time, sum) = report;
    assert_eq!(sum, (1..=threads as u64).sum::<u64>());

    let per_thread =
        |kib: usize| kib.saturating_sub(before.rss_kib) as f64 * 1024.0 / alive.max(1) as f64;
    println!(
        "green threads alive at once: {alive} (stacks of {stack_kib} KiB usable + a guard page)"
    );
    println!("spawned and parked in:       {spawn_time:?}");
    println!("woken and joined in:         {wake_time:?}");
    println!("RSS before:                  {} KiB", before.rss_kib);
    println!("RSS with all parked:         {} KiB", peak.rss_kib);
    println!("peak RSS (VmHWM):            {} KiB", peak.hwm_kib);
    println!("page tables (VmPTE):         {} KiB", peak.pte_kib);
    println!(
        "RSS per green thread:        {:.0} bytes",
        per_thread(peak.rss_kib)
    );
    if alive < wanted {
        let projected = before.rss_kib as f64 + per_thread(peak.rss_kib) * wanted as f64 / 1024.0;
        println!(
            "projected RSS for {wanted}:    {:.0} MiB",
            projected / 1024.0
        );
    }
    println!("stack pool: {:?}", rt.stack_stats());
    Ok(())
}

fn max_map_count() -> Option<usize> {
    fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[derive(Debug, Clone, Copy, Default)]
struct MemoryStatus {
    rss_kib: usize,
    hwm_kib: usize,
    pte_kib: usize,
}

/// VmRSS, VmHWM (peak RSS) and VmPTE from /proc/self/status.
fn memory_status() -> MemoryStatus {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    MemoryStatus {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        pte_kib: field("VmPTE:"),
    }
}
