//! `many_green_threads [THREADS] [STACK_KIB]` on bad arguments: one clear
//! line on stderr and a non-zero exit, never a panic, and never a silent
//! run with the defaults instead (100,000 threads).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use test_support::{command, hang_limit, output_within};

/// The example's binary: cargo builds examples beside the test binaries.
fn many_green_threads() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/");
    profile.join("examples").join("many_green_threads")
}

fn run(args: &[&OsStr]) -> Output {
    let program = many_green_threads();
    assert!(
        program.exists(),
        "{} is not built: `cargo test -p stage-02-stackful` builds the examples, or \
         `cargo build -p stage-02-stackful --examples` before this test alone",
        program.display()
    );
    let mut child = command(program);
    child.args(args).env("RUST_BACKTRACE", "0");
    output_within(&mut child, hang_limit()).expect("many_green_threads runs")
}

/// Checks the one-line error, and returns it.
fn one_clear_line(args: &[&OsStr]) -> String {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success() && output.status.code().is_some(),
        "{args:?}: expected a non-zero exit, got {:?}; stderr: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{args:?}: a panic: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?}: ran anyway: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

#[test]
fn a_non_utf8_thread_count_is_one_clear_error_line() {
    let line = one_clear_line(&[OsStr::from_bytes(b"10\xff")]);
    assert!(line.contains("THREADS"), "names the argument: {line}");
}

#[test]
fn a_thread_count_that_is_not_a_number_is_refused_not_replaced_by_the_default() {
    let line = one_clear_line(&[OsStr::new("ten")]);
    assert!(line.contains("ten"), "names the argument: {line}");
}

#[test]
fn a_stack_size_larger_than_the_address_space_is_one_clear_error_line() {
    // 2^54 KiB is 2^64 bytes: one more than a usize holds.
    let line = one_clear_line(&[OsStr::new("10"), OsStr::new("18014398509481984")]);
    assert!(line.contains("STACK_KIB"), "names the argument: {line}");
}

#[test]
fn a_stack_size_no_mapping_can_hold_is_one_clear_error_line() {
    // 2^40 KiB (a PiB) per stack: mmap refuses it.
    let line = one_clear_line(&[OsStr::new("10"), OsStr::new("1099511627776")]);
    assert!(line.contains("stack"), "says what failed: {line}");
}

#[test]
fn a_third_argument_is_refused_with_the_usage() {
    let line = one_clear_line(&[OsStr::new("10"), OsStr::new("16"), OsStr::new("x")]);
    assert!(line.contains("usage"), "says how to call it: {line}");
}
