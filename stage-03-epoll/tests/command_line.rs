//! The stage's servers on a bad command line (the `delayserver` binary and
//! the four echo examples): one clear line on stderr and a non-zero exit,
//! never a panic or a debug dump of an error value.

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

/// Every server of the stage: its name and its executable.
fn servers() -> Vec<(&'static str, PathBuf)> {
    let mut all = vec![(
        "delayserver",
        PathBuf::from(env!("CARGO_BIN_EXE_delayserver")),
    )];
    all.extend(ECHO_EXAMPLES.map(|name| (name, example(name))));
    all
}

fn run(name: &str, exe: &Path, args: &[&OsStr]) -> Output {
    let mut server = command(exe);
    server.args(args).env("RUST_BACKTRACE", "0");
    output_within(&mut server, hang_limit()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks that `name` failed with one line, prefixed by its name and served
/// nothing; returns the line.
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
    assert!(stderr.starts_with(&format!("{name}: ")), "{name}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{name}: nothing served, nothing printed"
    );
    stderr
}

#[test]
fn a_non_utf8_address_is_one_clear_line_naming_it_not_a_panic() {
    for (name, exe) in servers() {
        let output = run(name, &exe, &[OsStr::from_bytes(b"127.0.0.1:\xff")]);
        let line = one_clear_line(name, &output);
        assert!(line.contains(r"127.0.0.1:\xFF"), "{name} names it: {line}");
    }
}

#[test]
fn an_argument_that_is_not_an_address_is_one_clear_line_naming_it() {
    for (name, exe) in servers() {
        let output = run(name, &exe, &[OsStr::new("nonsense")]);
        let line = one_clear_line(name, &output);
        assert!(line.contains("nonsense"), "{name} names it: {line}");
    }
}

#[test]
fn an_address_that_cannot_be_bound_is_one_clear_line_naming_it() {
    for (name, exe) in servers() {
        // TEST-NET-1: never an address of this machine.
        let output = run(name, &exe, &[OsStr::new("192.0.2.1:80")]);
        let line = one_clear_line(name, &output);
        assert!(line.contains("192.0.2.1:80"), "{name} names it: {line}");
    }
}

#[test]
fn extra_arguments_are_refused_with_the_usage() {
    for (name, exe) in servers() {
        let output = run(
            name,
            &exe,
            &[OsStr::new("127.0.0.1:0"), OsStr::new("extra")],
        );
        let line = one_clear_line(name, &output);
        assert!(line.contains("usage"), "{name} says how to call it: {line}");
    }
}
