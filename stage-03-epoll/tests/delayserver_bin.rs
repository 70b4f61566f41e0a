//! The `delayserver` binary on bad input: one clear line on stderr and a
//! non-zero exit, never a panic or a debug dump of an error value.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Output;

use test_support::{command, hang_limit, output_within};

fn run(args: &[&OsStr]) -> Output {
    let mut delayserver = command(env!("CARGO_BIN_EXE_delayserver"));
    delayserver.args(args).env("RUST_BACKTRACE", "0");
    output_within(&mut delayserver, hang_limit()).expect("delayserver runs")
}

/// Checks the one-line error, and returns it.
fn assert_one_clear_line(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success() && output.status.code().is_some(),
        "{what}: expected a non-zero exit, got {:?}; stderr: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{what}: a panic: {stderr}");
    assert!(
        !stderr.contains("Custom {") && !stderr.contains("Os {"),
        "{what}: an error printed with Debug: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{what}: nothing served, nothing printed"
    );
    stderr
}

#[test]
fn a_non_utf8_address_argument_is_one_clear_error_line_not_a_panic() {
    let output = run(&[OsStr::from_bytes(b"127.0.0.1:\xff")]);
    let line = assert_one_clear_line(&output, "non-UTF-8 argument");
    assert!(
        line.contains(r"127.0.0.1:\xFF"),
        "names the argument: {line}"
    );
}

#[test]
fn an_argument_that_is_not_an_address_is_one_clear_error_line() {
    let output = run(&[OsStr::new("nonsense")]);
    let line = assert_one_clear_line(&output, "not an address");
    assert!(line.contains("nonsense"), "names the argument: {line}");
}

#[test]
fn an_address_that_cannot_be_bound_is_one_clear_error_line_naming_it() {
    // TEST-NET-1: never an address of this machine.
    let output = run(&[OsStr::new("192.0.2.1:80")]);
    let line = assert_one_clear_line(&output, "cannot bind");
    assert!(line.contains("192.0.2.1:80"), "names the address: {line}");
}

#[test]
fn extra_arguments_are_refused_with_the_usage() {
    let output = run(&[OsStr::new("127.0.0.1:0"), OsStr::new("extra")]);
    let line = assert_one_clear_line(&output, "two arguments");
    assert!(line.contains("usage"), "says how to call it: {line}");
}
