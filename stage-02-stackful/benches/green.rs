//! Stage 02 benchmarks: `cargo bench -p stage-02-stackful`.
//!
//! | id                     | one iteration                                              |
//! |------------------------|------------------------------------------------------------|
//! | `spawn_join/ours`      | spawn a green thread that returns at once, join it         |
//! | `spawn_join/os_thread` | the same with `std::thread`                                |
//! | `yield/ours`           | one `yield_now`: green thread A -> scheduler -> thread B   |
//! | `switch/ours`          | stage 01's raw `resume` + `suspend` round trip (2 switches)|
//! | `generator/ours`       | a `Generator` yields one integer, the consumer takes it    |
//! | `generator/corosensei` | the same with corosensei's `Coroutine`                     |
//!
//! A `yield/ours` iteration is two context switches, like `switch/ours`, so
//! the difference between the two is the scheduler's own bookkeeping.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use green::{Generator, Runtime, spawn, yield_now};

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    let mut rt = Runtime::builder().stack_size(64 * 1024).build();
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let start = Instant::now();
                for i in 0..iters {
                    let handle = spawn(move || black_box(i));
                    black_box(handle.join().unwrap());
                }
                start.elapsed()
            })
            .unwrap()
        });
    });
    // The same without the stack pool: every spawn maps a fresh stack and
    // every join unmaps it.
    let mut unpooled = Runtime::builder()
        .stack_size(64 * 1024)
        .max_idle_stacks(0)
        .build();
    group.bench_function("ours_no_pool", |b| {
        b.iter_custom(|iters| {
            unpooled
                .block_on(move || {
                    let start = Instant::now();
                    for i in 0..iters {
                        let handle = spawn(move || black_box(i));
                        black_box(handle.join().unwrap());
                    }
                    start.elapsed()
                })
                .unwrap()
        });
    });
    group.bench_function("os_thread", |b| {
        b.iter(|| std::thread::spawn(|| black_box(1u64)).join().unwrap());
    });
    group.finish();
}

fn yield_and_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    let mut rt = Runtime::new();
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                // A partner that yields straight back: every yield_now of
                // either thread hands the OS thread to the other.
                let done = Rc::new(Cell::new(false));
                let partner_done = done.clone();
                let partner = spawn(move || {
                    while !partner_done.get() {
                        yield_now();
                    }
                });
                yield_now(); // partner started
                // Each loop turn is two yields (ours, then the partner's).
                let turns = iters.div_ceil(2);
                let start = Instant::now();
                for _ in 0..turns {
                    yield_now();
                }
                let elapsed = start.elapsed();
                done.set(true);
                partner.join().unwrap();
                elapsed.mul_f64(iters as f64 / (2 * turns) as f64)
            })
            .unwrap()
        });
    });
    group.finish();

    // Measured right after `yield`, as its baseline.
    let mut group = c.benchmark_group("switch");
    group.bench_function("ours", |b| {
        let mut fiber = fibers::Fiber::<(), (), ()>::new(|suspender, ()| {
            loop {
                suspender.suspend(());
            }
        })
        .unwrap();
        b.iter(|| black_box(fiber.resume(())));
    });
    group.finish();
}

fn generator(c: &mut Criterion) {
    let mut group = c.benchmark_group("generator");
    group.bench_function("ours", |b| {
        let mut numbers = Generator::new(|y| {
            let mut n = 0u64;
            loop {
                y.yield_(n);
                n += 1;
            }
        })
        .unwrap();
        b.iter(|| black_box(numbers.next()));
    });
    group.bench_function("corosensei", |b| {
        let mut numbers = corosensei::Coroutine::new(|y: &corosensei::Yielder<(), u64>, ()| {
            let mut n = 0u64;
            loop {
                y.suspend(n);
                n += 1;
            }
        });
        // What `Generator::next` hands the consumer: an `Option<u64>`.
        b.iter(|| {
            black_box(match numbers.resume(()) {
                corosensei::CoroutineResult::Yield(n) => Some(n),
                corosensei::CoroutineResult::Return(()) => None,
            })
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = spawn_join, yield_and_switch, generator
}
criterion_main!(benches);
