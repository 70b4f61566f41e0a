//! The echo examples on a bad address argument: one clear line on stderr
//! and a non-zero exit, never a panic or a debug dump of an error value.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use test_support::{command, hang_limit, output_within};

const ECHO_EXAMPLES: [&str; 4] = ["echo_level", "echo_edge", "echo_mio", "green_echo"];

/// An example's binary: cargo builds examples beside the test binaries.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/");
    profile.join("examples").join(name)
}

fn run(name: &str, arg: &OsStr) -> Output {
    let mut child = command(example(name));
    child.arg(arg).env("RUST_BACKTRACE", "0");
    output_within(&mut child, hang_limit()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks the one-line error of `name`, and returns it.
fn one_clear_line(name: &str, output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success() && output.status.code().is_some(),
        "{name}: expected a non-zero exit, got {:?}; stderr: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{name}: a panic: {stderr}");
    assert!(
        !stderr.contains("Custom {") && !stderr.contains("Os {"),
        "{name}: an error printed with Debug: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
    stderr
}

#[test]
fn every_echo_example_answers_a_non_utf8_address_with_one_clear_line() {
    for name in ECHO_EXAMPLES {
        let output = run(name, OsStr::from_bytes(b"127.0.0.1:\xff"));
        let line = one_clear_line(name, &output);
        assert!(line.contains(r"127.0.0.1:\xFF"), "{name} names it: {line}");
    }
}

#[test]
fn every_echo_example_answers_an_argument_that_is_not_an_address_with_one_clear_line() {
    for name in ECHO_EXAMPLES {
        let output = run(name, OsStr::new("nonsense"));
        let line = one_clear_line(name, &output);
        assert!(line.contains("nonsense"), "{name} names it: {line}");
    }
}
