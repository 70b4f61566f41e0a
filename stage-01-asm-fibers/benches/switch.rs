//! One round trip (resume, then suspend back) through three mechanisms:
//! our fibers (keeping their own floating-point control state, and sharing
//! the thread's), corosensei's coroutines, and two OS threads handing a
//! token back and forth; and the price of the floating-point control words
//! on their own.
//!
//! Run: `cargo bench -p stage-01-asm-fibers`
//!
//! | id | what one iteration does |
//! |---|---|
//! | `switch/ours` | resume + suspend of a default fiber (own MXCSR and x87 CW) |
//! | `switch/ours_shared_fp` | the same with a `SharedFp` fiber |
//! | `switch/ours_arch_only` | the same through `arch::switch_in`/`switch_back` alone, no `Fiber` |
//! | `switch/corosensei` | the same with corosensei's `Coroutine` |
//! | `switch/os_thread` | a token to another thread and back over rendezvous channels |
//! | `fp_control/save_restore` | one save and one restore of MXCSR and the x87 CW (x86-64) |

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use std::ptr;

use criterion::{Criterion, criterion_group, criterion_main};
use fibers::{Fiber, FpControl, PerFiberFp, SharedFp, Stack, Suspender, arch};

/// A fiber driven by `arch` alone, for `switch/ours_arch_only`.
mod bare {
    use fibers::arch::{self, StackPointer};

    /// Where the two sides' contexts are saved.
    pub struct Link {
        pub fiber: StackPointer,
        pub resumer: StackPointer,
    }

    /// Answers every switch with its argument plus one, for ever.
    pub unsafe extern "C" fn entry(first: usize, link: *mut u8, _top: *mut u8) -> ! {
        let link = link.cast::<Link>();
        let mut n = first;
        loop {
            // SAFETY: we run on the fiber's stack, resumed by `switch_in`,
            // whose context is in `link.resumer`.
            n = unsafe { arch::switch_back(n + 1, (*link).resumer, &raw mut (*link).fiber) };
        }
    }
}

/// Answers every resume with its input plus one, for ever. Its return type
/// says so (`Infallible`), and so does corosensei's closure below, so both
/// resumes return an 8-byte result.
fn counter<Fp: FpControl>() -> Fiber<u64, u64, Infallible, Fp> {
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    Fiber::with_fp_control(
        stack,
        |suspender: &Suspender<u64, u64, Fp>, mut n: u64| -> Infallible {
            loop {
                n = suspender.suspend(n + 1);
            }
        },
    )
}

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    group.bench_function("ours", |b| {
        let mut fiber = counter::<PerFiberFp>();
        b.iter(|| black_box(fiber.resume(black_box(1))));
    });

    group.bench_function("ours_shared_fp", |b| {
        let mut fiber = counter::<SharedFp>();
        b.iter(|| black_box(fiber.resume(black_box(1))));
    });

    group.bench_function("ours_arch_only", |b| {
        // The same round trip through `arch::switch_in`/`switch_back` alone,
        // without the safe `Fiber` layer (messages, checks): what that layer
        // costs is `switch/ours` minus this.
        let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
        let mut boxed = Box::new(bare::Link {
            fiber: ptr::null_mut(),
            resumer: ptr::null_mut(),
        });
        let top = stack.top();
        let link: *mut bare::Link = &raw mut *boxed;
        // SAFETY: the stack is ours and unused; the Link outlives every
        // switch (it is dropped after the stack), and the fiber never returns.
        unsafe { (*link).fiber = arch::init_stack(top.sub(16), bare::entry, link.cast(), top) };
        // SAFETY: the fiber is suspended in `switch_back` (or fresh) with its
        // context in `link.fiber`; `link.resumer` is valid for the write.
        b.iter(|| unsafe {
            black_box(arch::switch_in(
                black_box(1),
                (*link).fiber,
                &raw mut (*link).resumer,
            ))
        });
        // The fiber stays suspended for ever; nothing on its stack owns
        // anything, so unmapping the stack frees all of it.
        drop(stack);
        drop(boxed);
    });

    group.bench_function("corosensei", |b| {
        let mut coroutine = corosensei::Coroutine::new(
            |yielder: &corosensei::Yielder<u64, u64>, mut n: u64| -> Infallible {
                loop {
                    n = yielder.suspend(n + 1);
                }
            },
        );
        b.iter(|| black_box(coroutine.resume(black_box(1))));
    });

    group.bench_function("os_thread", |b| {
        let (to_thread, thread_inbox) = mpsc::sync_channel::<u64>(0);
        let (to_main, main_inbox) = mpsc::sync_channel::<u64>(0);
        let partner = thread::spawn(move || {
            while let Ok(n) = thread_inbox.recv() {
                if to_main.send(n + 1).is_err() {
                    break;
                }
            }
        });
        b.iter(|| {
            to_thread.send(black_box(1)).unwrap();
            black_box(main_inbox.recv().unwrap())
        });
        drop(to_thread);
        partner.join().unwrap();
    });
    group.finish();
}

/// What keeping per-fiber control words costs on its own: one save and one
/// restore of both, as one switch does.
#[cfg(target_arch = "x86_64")]
fn fp_control(c: &mut Criterion) {
    let mut group = c.benchmark_group("fp_control");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("save_restore", |b| {
        let mut slot = [0u16; 4];
        b.iter(|| {
            // SAFETY: stores into and loads from our own 8-byte slot, writing
            // back exactly the control words that were just read.
            unsafe {
                core::arch::asm!(
                    "stmxcsr [{0}]",
                    "fnstcw [{0} + 4]",
                    "ldmxcsr [{0}]",
                    "fldcw [{0} + 4]",
                    in(reg) black_box(&mut slot).as_mut_ptr(),
                    options(nostack, preserves_flags),
                )
            }
        });
    });
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn fp_control(_: &mut Criterion) {}

criterion_group!(benches, switch, fp_control);
criterion_main!(benches);
