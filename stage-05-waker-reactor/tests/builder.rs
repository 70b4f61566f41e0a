//! What the `Builder` does with input that cannot make a runtime: an
//! `io::Error` from `build`, never a panic (nor a thread left running).

mod common;

use std::io::ErrorKind;

use runtime::{Builder, Runtime};

const CHILD_ROLE: &str = "BUILDER_TEST_CHILD";

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// Runs `test` alone in a child process, so that no other test's threads
/// come and go while it counts the process's threads.
fn alone_in_a_child(test: &str) {
    let output = test_support::run_this_test_alone(test, CHILD_ROLE, "1");
    assert!(
        output.status.success(),
        "{test} failed in its child process ({:?}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_thread_name_with_a_nul_byte_is_an_invalid_input_error_for_both_flavours() {
    const NAME: &str = "a_thread_name_with_a_nul_byte_is_an_invalid_input_error_for_both_flavours";
    if std::env::var(CHILD_ROLE).is_err() {
        return alone_in_a_child(NAME);
    }
    let before = threads();
    for builder in [Runtime::builder(), Runtime::builder().multi_thread()] {
        let built = builder.thread_name("worker\0name").build();
        assert_eq!(
            built.map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidInput),
            "a name the OS cannot take is refused up front (the blocking pool \
             would otherwise panic in `spawn_blocking`, much later)"
        );
    }
    assert_eq!(threads(), before, "no thread was started");
}

#[test]
fn an_absurd_number_of_worker_threads_is_an_invalid_input_error() {
    for n in [usize::MAX, Builder::MAX_WORKER_THREADS + 1] {
        let built = Runtime::builder().multi_thread().worker_threads(n).build();
        assert_eq!(
            built.map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidInput),
            "worker_threads({n})"
        );
    }
}

#[test]
fn zero_threads_mean_one_and_the_runtime_works() {
    let rt = Runtime::builder()
        .multi_thread()
        .worker_threads(0)
        .max_blocking_threads(0)
        .build()
        .expect("zero is taken as one");
    let out = rt.block_on(async {
        let task = runtime::spawn(async { 1 });
        let job = runtime::spawn_blocking(|| 2);
        task.await.unwrap() + job.await.unwrap()
    });
    assert_eq!(out, 3);
}
