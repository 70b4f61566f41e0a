//! A stack overflow in a fiber is reported as one, never silent corruption.
//!
//! The overflow kills the process, so each test re-runs this test binary as
//! a child that only runs the named test with an environment variable set,
//! and watches how the child dies. Under qemu-user the child has to be
//! started through the emulator too: the cargo runner exports it in
//! `COURSE_EMULATOR`.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use fibers::{Fiber, Stack, Suspender};

const CHILD_ROLE: &str = "STAGE01_CHILD_ROLE";

/// Runs this test binary again, only `test_name`, with the child role set.
fn run_child(test_name: &str, role: &str) -> Output {
    test_support::run_this_test_alone(test_name, CHILD_ROLE, role)
}

fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// Recurses until the stack runs out (the limit is never reached, but the
/// compiler cannot know that).
#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if depth == black_box(u64::MAX) {
        return 0;
    }
    recurse_forever(depth + 1).wrapping_add(frame[7])
}

#[test]
fn deep_recursion_in_a_fiber_dies_with_sigabrt_and_reports_a_fiber_stack_overflow() {
    if child_role().as_deref() == Some("overflow") {
        let mut fiber = Fiber::with_stack(
            Stack::new(16 * 1024).unwrap(),
            |_: &Suspender<(), ()>, ()| {
                black_box(recurse_forever(0));
            },
        );
        fiber.resume(());
        unreachable!("the recursion never ends");
    }
    let output = run_child(
        "deep_recursion_in_a_fiber_dies_with_sigabrt_and_reports_a_fiber_stack_overflow",
        "overflow",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "the child should die of SIGABRT after reporting \"fiber stack overflow\" (the \
         guard page turns the overflow into a fault that the handler reports); it ended \
         with {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("fiber stack overflow"),
        "expected \"fiber stack overflow\" on stderr, got:\n{stderr}"
    );
}

#[test]
fn a_fault_outside_any_guard_page_keeps_its_default_behaviour() {
    if child_role().as_deref() == Some("wild_write") {
        // Make sure our handler is installed, then fault somewhere else.
        let mut fiber = Fiber::new(|_: &Suspender<(), ()>, ()| ()).unwrap();
        fiber.resume(());
        let wild = black_box(16usize) as *mut u64;
        // SAFETY: not safe at all: this write faults on purpose.
        unsafe { wild.write_volatile(1) };
        unreachable!("the write faults");
    }
    let output = run_child(
        "a_fault_outside_any_guard_page_keeps_its_default_behaviour",
        "wild_write",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("fiber stack overflow"),
        "stderr:\n{stderr}"
    );
}

/// The first code on a stack entered with `arch::switch_in` directly, with
/// no `Fiber` around it: recurses until the stack runs out.
unsafe extern "C" fn recurse_on_a_bare_stack(_: usize, _: *mut u8, _: *mut u8) -> ! {
    black_box(recurse_forever(0));
    unreachable!("the recursion never ends");
}

#[test]
fn an_overflow_is_reported_on_any_live_stack_whoever_switched_onto_it() {
    if child_role().as_deref() == Some("bare_stack") {
        // No Fiber: a learner's own switch onto a Stack, so no fiber is
        // "running" as far as the library's bookkeeping could know.
        let stack = Stack::new(16 * 1024).unwrap();
        let top = stack.top();
        let mut resumer_sp: fibers::arch::StackPointer = std::ptr::null_mut();
        // SAFETY: the stack is ours and unused; the context built by
        // init_stack is loaded once and never returns here.
        unsafe {
            let sp = fibers::arch::init_stack(
                top.sub(16),
                recurse_on_a_bare_stack,
                std::ptr::null_mut(),
                top,
            );
            fibers::arch::switch_in(0, sp, &raw mut resumer_sp);
        }
        unreachable!("the recursion never ends");
    }
    let output = run_child(
        "an_overflow_is_reported_on_any_live_stack_whoever_switched_onto_it",
        "bare_stack",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "expected death by SIGABRT after a report; status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("fiber stack overflow"),
        "expected \"fiber stack overflow\" on stderr, got:\n{stderr}"
    );
}
