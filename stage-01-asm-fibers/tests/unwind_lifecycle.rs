//! `tests/unwind.rs` steps a steady-state round trip of a default fiber.
//! This steps the rest of a fiber's life: its *first* resume (enter_fiber
//! into the trampoline and fiber_root's start), a middle one, and the one
//! that ends it (fiber_root's final switch), for both fiber kinds. A walk is
//! good if it reaches a known frame, stops at once in code without unwind
//! information, or ends in the trampoline (the bottom of every fiber).
#![cfg(target_arch = "x86_64")]

use std::ffi::{c_int, c_void};
use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};

mod common {
    pub mod single_step;
    pub mod walk;
}

use common::single_step::{Walk, has_unwind_info, install, trap_flag};
use fibers::{Fiber, FiberResult, SharedFp, Stack, Suspender};

const CHILD_ROLE: &str = "UNWIND_LIFECYCLE_CHILD";

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static KNOWN: AtomicUsize = AtomicUsize::new(0);
static NO_INFO: AtomicUsize = AtomicUsize::new(0);
static AT_TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);
static BAD: AtomicUsize = AtomicUsize::new(0);
static FIRST_BAD_PC: AtomicUsize = AtomicUsize::new(0);
static FIRST_BAD_LAST: AtomicUsize = AtomicUsize::new(0);
static KNOWN_FRAMES: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_trap(_: c_int, _: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: on_trap is an SA_SIGINFO handler.
    let pc = unsafe { common::single_step::interrupted_pc(context) };
    SIGNALS.fetch_add(1, Ordering::Relaxed);
    let walk = Walk::from_here();
    let frames = walk.frames();
    let Some(interrupted) = frames.iter().position(|&(ip, _)| ip == pc) else {
        bad(pc, 0);
        return;
    };
    let rest = &frames[interrupted..];
    let known = KNOWN_FRAMES.each_ref().map(|f| f.load(Ordering::Relaxed));
    let tramp = TRAMPOLINE.load(Ordering::Relaxed);
    let last = rest.last().unwrap().0;
    if rest.iter().any(|&(_, start)| known.contains(&start)) {
        KNOWN.fetch_add(1, Ordering::Relaxed);
    } else if rest.len() == 1 && !has_unwind_info(pc) {
        NO_INFO.fetch_add(1, Ordering::Relaxed);
    } else if rest.len() > 1
        && (tramp..tramp + 9).contains(&(last - 1))
        && !has_unwind_info(last - 1)
    {
        AT_TRAMPOLINE.fetch_add(1, Ordering::Relaxed);
    } else {
        bad(pc, last);
    }
}

fn bad(pc: usize, last: usize) {
    if BAD.fetch_add(1, Ordering::Relaxed) == 0 {
        FIRST_BAD_PC.store(pc, Ordering::Relaxed);
        FIRST_BAD_LAST.store(last, Ordering::Relaxed);
    }
}

#[inline(never)]
fn body_per(s: &Suspender<(), ()>, (): ()) -> u64 {
    s.suspend(());
    s.suspend(());
    black_box(7)
}

#[inline(never)]
fn body_shared(s: &Suspender<(), (), SharedFp>, (): ()) -> u64 {
    s.suspend(());
    s.suspend(());
    black_box(7)
}

#[inline(never)]
fn step_per(f: &mut Fiber<(), (), u64>) -> FiberResult<(), u64> {
    trap_flag(true);
    let r = black_box(f.resume(()));
    trap_flag(false);
    r
}

#[inline(never)]
fn step_shared(f: &mut Fiber<(), (), u64, SharedFp>) -> FiberResult<(), u64> {
    trap_flag(true);
    let r = black_box(f.resume(()));
    trap_flag(false);
    r
}

fn child() {
    KNOWN_FRAMES[0].store(body_per as *const () as usize, Ordering::Relaxed);
    KNOWN_FRAMES[1].store(body_shared as *const () as usize, Ordering::Relaxed);
    KNOWN_FRAMES[2].store(step_per as *const () as usize, Ordering::Relaxed);
    KNOWN_FRAMES[3].store(step_shared as *const () as usize, Ordering::Relaxed);
    let mut per = Fiber::new(body_per).unwrap();
    let mut shared = Fiber::with_shared_fp(Stack::new(Stack::DEFAULT_SIZE).unwrap(), body_shared);
    // The fresh frame's resume address (sp + 24) is the trampoline.
    let sp = per.saved_stack_pointer().unwrap();
    TRAMPOLINE.store(
        // SAFETY: a fresh fiber's 6-word frame lies on its live stack.
        unsafe { sp.add(24).cast::<usize>().read() },
        Ordering::Relaxed,
    );
    install(on_trap);
    assert_eq!(step_per(&mut per), FiberResult::Yield(()));
    assert_eq!(step_per(&mut per), FiberResult::Yield(()));
    assert_eq!(step_per(&mut per), FiberResult::Return(7));
    assert_eq!(step_shared(&mut shared), FiberResult::Yield(()));
    assert_eq!(step_shared(&mut shared), FiberResult::Yield(()));
    assert_eq!(step_shared(&mut shared), FiberResult::Return(7));
}

#[test]
fn unwinds_at_every_instruction_of_a_fibers_start_middle_and_end_for_both_kinds() {
    if std::env::var(CHILD_ROLE).as_deref() == Ok("1") {
        child();
        eprintln!(
            "signals: {}, known frame: {}, no unwind info: {}, ended in trampoline: {}, astray: {}",
            SIGNALS.load(Ordering::Relaxed),
            KNOWN.load(Ordering::Relaxed),
            NO_INFO.load(Ordering::Relaxed),
            AT_TRAMPOLINE.load(Ordering::Relaxed),
            BAD.load(Ordering::Relaxed)
        );
        if BAD.load(Ordering::Relaxed) > 0 {
            eprintln!(
                "first astray: pc {:#x}, last frame {:#x}",
                FIRST_BAD_PC.load(Ordering::Relaxed),
                FIRST_BAD_LAST.load(Ordering::Relaxed)
            );
            std::process::exit(1);
        }
        return;
    }
    let output = test_support::run_this_test_alone(
        "unwinds_at_every_instruction_of_a_fibers_start_middle_and_end_for_both_kinds",
        CHILD_ROLE,
        "1",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "child failed ({:?}, signal {:?}):\n{stderr}",
        output.status,
        output.status.signal()
    );
    eprintln!("{stderr}");
    assert!(
        stderr.contains("ended in trampoline: ") && !stderr.contains("ended in trampoline: 0,"),
        "the fiber's start was stepped:\n{stderr}"
    );
}
