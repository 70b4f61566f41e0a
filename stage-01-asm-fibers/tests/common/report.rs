//! What a test's child process reports: it prints counts as `name: N` on
//! stderr, and the parent judges them. Shared by `unwind.rs` and
//! `signals.rs`.

use std::os::unix::process::ExitStatusExt;
use std::process::Output;

/// The child's stderr, once it has exited successfully; a child that failed
/// or died of a signal fails the test with everything it printed.
pub fn report_of(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the child failed ({:?}, signal {:?}); stderr:\n{stderr}",
        output.status,
        output.status.signal()
    );
    stderr
}

/// The number after `what` (e.g. `"signals:"`) in the child's report.
pub fn count(report: &str, what: &str) -> usize {
    report
        .split(what)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what:?} in the child's report:\n{report}"))
}
