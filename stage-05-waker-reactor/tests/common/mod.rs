//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use runtime::Runtime;

/// Scale a count down under AArch64 or RISC-V emulation (qemu-user is 5-20x slower).
pub fn scaled(count: usize) -> usize {
    if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
        (count / 5).max(1)
    } else {
        count
    }
}

/// One runtime of each flavour, named for assertion messages.
pub fn both_flavours() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current_thread",
            Runtime::new().expect("current-thread runtime"),
        ),
        (
            "multi_thread",
            Runtime::builder()
                .multi_thread()
                .worker_threads(2)
                .build()
                .expect("multi-thread runtime"),
        ),
    ]
}

/// How long a test waits for work that a correct runtime finishes in well
/// under a second; only a lost wake-up (or a dead worker) comes near it.
pub fn deadline() -> std::time::Duration {
    // qemu-user runs AArch64 and RISC-V code 5-20x slower.
    let secs = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
        120
    } else {
        30
    };
    std::time::Duration::from_secs(secs)
}

/// Run `f` on its own thread and wait for it at most [`deadline`]. A panic
/// in `f` fails the test with `f`'s own message; a hang fails it with
/// "`what` did not finish within ...: lost wake-up?" instead of hanging the
/// test run (the stuck thread is left behind; the test has failed anyway).
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::sync::mpsc;
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(deadline()) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = worker.join().expect_err("no value and no panic");
            std::panic::resume_unwind(payload)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{what} did not finish within {:?}: the wake-up never came (lost wake-up?)",
            deadline()
        ),
    }
}
