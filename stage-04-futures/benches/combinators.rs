//! Our hand-written combinators and state machine beside the `futures`
//! crate's, polled by hand with a no-op waker (no executor, no system call).
//!
//! `cargo bench -p stage-04-futures`

use std::hint::black_box;
use std::task::Waker;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use stackless::combinators::{join_all, select};
use stackless::coroutine::{LookupThenFetch, Waits, lookup_then_fetch, ready_after};
use stackless::testing::poll_to_completion;

const CHILDREN: usize = 100;

fn join_all_bench(c: &mut Criterion) {
    let waker = Waker::noop();
    let mut group = c.benchmark_group("join_all");
    group.bench_function("ours", |b| {
        b.iter(|| {
            let children = (0..CHILDREN).map(|i| ready_after((i % 4) as u32, i));
            black_box(poll_to_completion(join_all(children), waker))
        })
    });
    group.bench_function("futures", |b| {
        b.iter(|| {
            let children = (0..CHILDREN).map(|i| ready_after((i % 4) as u32, i));
            black_box(poll_to_completion(
                futures::future::join_all(children),
                waker,
            ))
        })
    });
    group.finish();
}

fn select_bench(c: &mut Criterion) {
    let waker = Waker::noop();
    let mut group = c.benchmark_group("select");
    group.bench_function("ours", |b| {
        b.iter(|| {
            black_box(poll_to_completion(
                select(ready_after(3, 1u32), ready_after(2, 2u32)),
                waker,
            ))
        })
    });
    group.bench_function("futures", |b| {
        b.iter(|| {
            let race = futures::future::select(ready_after(3, 1u32), ready_after(2, 2u32));
            black_box(poll_to_completion(race, waker).1)
        })
    });
    group.finish();
}

/// The hand-written state machine against the compiler's, same coroutine.
fn coroutine_bench(c: &mut Criterion) {
    let waker = Waker::noop();
    let waits = Waits {
        lookup: 2,
        fetch: 2,
    };
    let mut group = c.benchmark_group("lookup_then_fetch");
    group.bench_function("ours", |b| {
        b.iter(|| {
            black_box(poll_to_completion(
                LookupThenFetch::new(black_box(7), waits),
                waker,
            ))
        })
    });
    group.bench_function("rustc", |b| {
        b.iter(|| {
            black_box(poll_to_completion(
                lookup_then_fetch(black_box(7), waits),
                waker,
            ))
        })
    });
    group.finish();
}

fn short() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = short();
    targets = join_all_bench, select_bench, coroutine_bench
}
criterion_main!(benches);
