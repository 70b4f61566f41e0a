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
//! | `switch/ours_shared_fp` | the same with `FpControl::Shared` |
//! | `switch/corosensei` | the same with corosensei's `Coroutine` |
//! | `switch/os_thread` | a token to another thread and back over rendezvous channels |
//! | `fp_control/save_restore` | one save and one restore of MXCSR and the x87 CW (x86-64) |

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fibers::{Fiber, FpControl, Stack, Suspender};

fn counter(fp_control: FpControl) -> Fiber<u64, u64> {
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    Fiber::with_fp_control(
        stack,
        fp_control,
        |suspender: &Suspender<u64, u64>, mut n: u64| {
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
        let mut fiber = counter(FpControl::PerFiber);
        b.iter(|| black_box(fiber.resume(black_box(1))));
    });

    group.bench_function("ours_shared_fp", |b| {
        let mut fiber = counter(FpControl::Shared);
        b.iter(|| black_box(fiber.resume(black_box(1))));
    });

    group.bench_function("corosensei", |b| {
        let mut coroutine =
            corosensei::Coroutine::new(|yielder: &corosensei::Yielder<u64, u64>, mut n: u64| {
                loop {
                    n = yielder.suspend(n + 1);
                }
            });
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
