//! A profiler may unwind at any instruction, the switch's included.
//!
//! Sampling profilers interrupt a thread with a signal and walk its stack
//! from the handler (`_Unwind_Backtrace`). At every instruction of the
//! switch the walk must either follow correct unwind information or find
//! none and stop; it must never read a saved register as a return address.
//!
//! The test sets the x86-64 trap flag (TF) around one round trip, so the CPU
//! raises SIGTRAP after *every* instruction; the handler unwinds each time
//! and judges the walk. It runs in a child process, so that a walk that
//! crashes fails this test with a message instead of killing the harness.
//! (AArch64 and RISC-V have no user-mode single-step; there the switch's
//! inline part never moves the stack pointer, see the chapter.)
#![cfg(target_arch = "x86_64")]

use std::ffi::{c_int, c_void};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common {
    pub mod report;
    pub mod single_step;
    pub mod walk;
}

use common::report::{self, report_of};
use common::single_step::{Walk, has_unwind_info, install, trap_flag};
use fibers::{Fiber, Suspender};

const CHILD_ROLE: &str = "STAGE01_CHILD_ROLE";

/// Where the walks end up. Filled by the handler with atomics only.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static STOPPED_AT_NO_UNWIND_INFO: AtomicUsize = AtomicUsize::new(0);
static REACHED_KNOWN_FRAME: AtomicUsize = AtomicUsize::new(0);
static BAD_WALKS: AtomicUsize = AtomicUsize::new(0);
static FIRST_BAD_PC: AtomicUsize = AtomicUsize::new(0);
static FIRST_BAD_RETURN: AtomicUsize = AtomicUsize::new(0);
static KNOWN_FRAMES: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

extern "C" fn on_trap(_: c_int, _: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: on_trap is an SA_SIGINFO handler.
    let pc = unsafe { common::single_step::interrupted_pc(context) };
    SIGNALS.fetch_add(1, Ordering::Relaxed);
    let walk = Walk::from_here();
    let frames = walk.frames();
    // The walk crosses the signal frame into the interrupted instruction.
    let Some(interrupted) = frames.iter().position(|&(ip, _)| ip == pc) else {
        note_bad_walk(pc, 0);
        return;
    };
    let known = KNOWN_FRAMES
        .each_ref()
        .map(|frame| frame.load(Ordering::Relaxed));
    let rest = &frames[interrupted..];
    if rest.iter().any(|&(_, start)| known.contains(&start)) {
        // Followed correct unwind information out to a frame we know.
        REACHED_KNOWN_FRAME.fetch_add(1, Ordering::Relaxed);
    } else if rest.len() == 1 && !has_unwind_info(pc) {
        // The interrupted code has no unwind information: a clean stop.
        STOPPED_AT_NO_UNWIND_INFO.fetch_add(1, Ordering::Relaxed);
    } else {
        note_bad_walk(pc, rest.get(1).map_or(0, |&(ip, _)| ip));
    }
}

fn note_bad_walk(pc: usize, return_address: usize) {
    if BAD_WALKS.fetch_add(1, Ordering::Relaxed) == 0 {
        FIRST_BAD_PC.store(pc, Ordering::Relaxed);
        FIRST_BAD_RETURN.store(return_address, Ordering::Relaxed);
    }
}

#[inline(never)]
fn fiber_side(suspender: &Suspender<(), ()>) {
    suspender.suspend(());
}

/// A known frame on the fiber's side: a walk from inside `fiber_side`
/// must reach it.
#[inline(never)]
fn fiber_outer(suspender: &Suspender<(), ()>) {
    fiber_side(black_box(suspender));
    black_box(());
}

/// The fiber's whole body: a known frame too.
fn fiber_body(suspender: &Suspender<(), ()>, (): ()) {
    loop {
        fiber_outer(suspender);
    }
}

/// A known frame on the resumer's side.
#[inline(never)]
fn resumer_outer(fiber: &mut Fiber<(), (), ()>) {
    trap_flag(true);
    black_box(fiber.resume(()));
    trap_flag(false);
}

fn single_step_one_round_trip() {
    KNOWN_FRAMES[0].store(fiber_outer as *const () as usize, Ordering::Relaxed);
    KNOWN_FRAMES[1].store(fiber_body as *const () as usize, Ordering::Relaxed);
    KNOWN_FRAMES[2].store(resumer_outer as *const () as usize, Ordering::Relaxed);
    let mut fiber = Fiber::new(fiber_body).unwrap();
    fiber.resume(()); // started and suspended, outside the stepped part
    install(on_trap);
    resumer_outer(&mut fiber);
    resumer_outer(&mut fiber);
}

#[test]
fn an_unwind_from_a_signal_at_any_instruction_of_a_round_trip_never_goes_astray() {
    if std::env::var(CHILD_ROLE).as_deref() == Ok("single_step") {
        single_step_one_round_trip();
        let bad = BAD_WALKS.load(Ordering::Relaxed);
        eprintln!(
            "signals: {}, walks that reached a known frame: {}, stopped at code without \
             unwind information: {}, went astray: {bad}",
            SIGNALS.load(Ordering::Relaxed),
            REACHED_KNOWN_FRAME.load(Ordering::Relaxed),
            STOPPED_AT_NO_UNWIND_INFO.load(Ordering::Relaxed),
        );
        if bad > 0 {
            eprintln!(
                "first walk astray: interrupted at {:#x}, the unwinder took {:#x} for its \
                 return address (a saved register or a local, not a caller)",
                FIRST_BAD_PC.load(Ordering::Relaxed),
                FIRST_BAD_RETURN.load(Ordering::Relaxed),
            );
            std::process::exit(1);
        }
        return;
    }
    let output = test_support::run_this_test_alone(
        "an_unwind_from_a_signal_at_any_instruction_of_a_round_trip_never_goes_astray",
        CHILD_ROLE,
        "single_step",
    );
    let stderr = report_of(&output);
    let count = |what: &str| report::count(&stderr, what);
    assert!(
        count("signals:") >= 40,
        "the round trip was not single-stepped:\n{stderr}"
    );
    assert!(
        count("known frame:") > 0 && count("unwind information:") > 0,
        "both kinds of instruction were stepped:\n{stderr}"
    );
}
