//! Check tests for chapter 5's build-something exercises. They are ignored
//! until you do the exercise; run one with
//! `cargo test -p stage-05-waker-reactor --test exercises -- --ignored NAME`.
//! Each starts from a skeleton in `tests/skeletons/` whose bodies are
//! `todo!()`: fill those in (or, for exercise 8, write the method on
//! `Runtime` itself, which then takes the skeleton's place).

mod common;
mod skeletons;

use std::time::Duration;

use futures::channel::oneshot;
use runtime::Runtime;
use skeletons::join_set::JoinSet;
#[allow(unused_imports)] // unused once `Runtime` has its own method
use skeletons::shutdown_timeout::ShutdownTimeout;

#[test]
#[ignore = "exercise 7: write JoinSet in tests/skeletons/join_set.rs"]
fn a_join_set_gives_outputs_in_the_order_the_tasks_finish() {
    for (name, rt) in common::both_flavours() {
        let what = format!("{name}: JoinSet::join_next");
        common::within(&what, move || {
            rt.block_on(async {
                let mut set = JoinSet::new();
                let mut gates = Vec::new();
                for i in 0..3u32 {
                    let (open, gate) = oneshot::channel::<()>();
                    gates.push(Some(open));
                    set.spawn(async move {
                        gate.await.unwrap();
                        i
                    });
                }
                let mut order = Vec::new();
                for i in [2usize, 0, 1] {
                    gates[i].take().unwrap().send(()).unwrap();
                    let done = set.join_next().await.expect("a task left");
                    order.push(done.expect("the task did not panic"));
                }
                assert_eq!(order, [2, 0, 1], "{name}: finished out of spawn order");
                assert!(set.join_next().await.is_none(), "{name}: empty at the end");
            })
        });
    }
}

#[test]
#[ignore = "exercise 8: write Runtime::shutdown_timeout"]
fn shutdown_timeout_returns_although_a_blocking_closure_still_runs() {
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let rt = Runtime::builder()
        .multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (started_tx, started) = std::sync::mpsc::channel();
    drop(rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = blocked.recv(); // stands for an hour of blocking work
    }));
    started.recv().unwrap();
    common::within(
        "shutdown_timeout(50 ms) with a closure still blocked",
        move || {
            rt.shutdown_timeout(Duration::from_millis(50));
        },
    );
    release.send(()).unwrap(); // let the detached thread end
}
