//! One round trip (resume, then suspend back) through three mechanisms:
//! our fibers, corosensei's coroutines, and two OS threads handing a token
//! back and forth.
//!
//! Run: `cargo bench -p stage-01-asm-fibers`

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    group.bench_function("ours", |b| {
        let mut fiber =
            fibers::Fiber::new(|suspender: &fibers::Suspender<u64, u64>, mut n: u64| {
                loop {
                    n = suspender.suspend(n + 1);
                }
            })
            .unwrap();
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

criterion_group!(benches, switch);
criterion_main!(benches);
