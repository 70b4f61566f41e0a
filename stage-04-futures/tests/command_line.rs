//! The `naive_requests` example on a bad command line: one clear line on
//! stderr and a non-zero exit, never a panic, a debug dump of an error
//! value, or an allocation that aborts the process.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use test_support::{command, hang_limit, output_within};

/// The example's binary: cargo builds examples beside the test binaries.
fn naive_requests() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/");
    profile.join("examples").join("naive_requests")
}

fn run(args: &[&OsStr]) -> Output {
    let mut example = command(naive_requests());
    example.args(args).env("RUST_BACKTRACE", "0");
    output_within(&mut example, hang_limit()).expect("naive_requests runs")
}

/// Checks the one-line error and returns it.
fn one_clear_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.starts_with("naive_requests: ") && stderr.trim_end().lines().count() == 1,
        "one line naming the program: {stderr}"
    );
    assert!(
        !stderr.contains("Custom {") && !stderr.contains("panicked"),
        "no debug dump, no panic: {stderr}"
    );
    stderr
}

#[test]
fn a_count_that_is_not_a_number_is_one_clear_line() {
    let line = one_clear_line(&run(&[OsStr::new("ten")]));
    assert!(line.contains("\"ten\""), "names the argument: {line}");
}

#[test]
fn an_argument_that_is_not_utf8_is_one_clear_line_not_a_panic() {
    one_clear_line(&run(&[OsStr::from_bytes(b"1\xff")]));
}

#[test]
fn a_count_beyond_any_memory_is_one_clear_line_not_an_abort() {
    let line = one_clear_line(&run(&[OsStr::new("999999999999999")]));
    assert!(line.contains("at most"), "says the limit: {line}");
}
