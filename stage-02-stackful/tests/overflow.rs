//! What the guard page buys: a green thread gets the stack size it was
//! promised, and running past it stops the process with a report instead
//! of corrupting the neighbouring green thread's stack.
//!
//! The overflow kills the process, so that test re-runs this test binary as
//! a child (through `COURSE_EMULATOR` under qemu-user) and watches it die.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use green::{Runtime, spawn};

const CHILD_ROLE: &str = "STAGE02_CHILD_ROLE";

/// Runs this test binary again, only `test_name`, with the child role set.
fn run_child(test_name: &str, role: &str) -> Output {
    test_support::run_this_test_alone(test_name, CHILD_ROLE, role)
}

/// Recurses until `budget` bytes of stack lie between `start` and the
/// current frame; returns the depth reached.
#[inline(never)]
fn use_stack(start: usize, budget: usize, depth: u64) -> u64 {
    let frame = black_box([depth; 16]);
    let here = frame.as_ptr() as usize;
    if start.saturating_sub(here) >= budget {
        return depth;
    }
    let deeper = use_stack(start, budget, depth + 1);
    black_box(&frame); // keeps this frame alive below the call: no tail call
    deeper
}

#[test]
fn a_green_thread_can_use_most_of_the_stack_size_it_was_given() {
    let mut rt = Runtime::builder().stack_size(128 * 1024).build();
    let depth = rt
        .block_on(|| {
            spawn(|| {
                let start = black_box(0u8);
                use_stack(&start as *const u8 as usize, 96 * 1024, 0)
            })
            .join()
            .unwrap()
        })
        .unwrap();
    assert!(depth > 0);
}

#[test]
fn a_green_thread_that_overflows_its_stack_stops_the_process_with_a_report() {
    if std::env::var(CHILD_ROLE).as_deref() == Ok("overflow") {
        // Twice the stack it was given: if `stack_size` were ignored (the
        // default is 256 KiB) this would return, and the child not abort.
        let mut rt = Runtime::builder().stack_size(64 * 1024).build();
        let _ = rt.block_on(|| {
            spawn(|| {
                let start = black_box(0u8);
                use_stack(&start as *const u8 as usize, 128 * 1024, 0)
            })
            .join()
        });
        unreachable!("the guard page stops the recursion first");
    }
    let output = run_child(
        "a_green_thread_that_overflows_its_stack_stops_the_process_with_a_report",
        "overflow",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(stderr.contains("fiber stack overflow"), "stderr:\n{stderr}");
}
