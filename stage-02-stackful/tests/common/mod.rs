//! Shared by the lab and exercise tests: run a test body with a deadline,
//! so that a lost wake-up fails with a hint instead of hanging the run.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Generous: these finish in milliseconds, but the machine may be loaded
/// and qemu-user is 5-20x slower.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `test` on a fresh OS thread and returns its value, re-raises its
/// panic, or fails once `DEADLINE` has passed with `hang_hint`.
pub fn within<T: Send + 'static>(hang_hint: &str, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(panic::catch_unwind(AssertUnwindSafe(test)));
    });
    match result.recv_timeout(DEADLINE) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("not finished after {DEADLINE:?}: {hang_hint}"),
    }
}
