//! What the stages' tests share for running programs.
//!
//! Some tests watch a process die (a stack overflow, an abort) or need one
//! to themselves (single-stepping, counting threads), so they run a test of
//! their own binary again as a child. Others run a stage's binary. Two
//! rules hold for every such child:
//!
//! * Under qemu-user (`cargo test --target aarch64-unknown-linux-gnu`),
//!   a foreign binary cannot be exec'ed directly: the cargo runner exports
//!   the emulator's command line as `COURSE_EMULATOR`, and [`command`]
//!   puts it in front.
//! * A child that hangs fails its test, by name, after a deadline
//!   ([`output_within`]), instead of stalling the whole test run.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A command that runs `program`, through `COURSE_EMULATOR` if it is set.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let emulator = std::env::var("COURSE_EMULATOR").unwrap_or_default();
    let mut words = emulator.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut command = Command::new(emulator);
            command.args(words).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Whether this build runs under an emulator (AArch64 or RISC-V on an
/// x86-64 machine here), where code runs 5-20x slower.
pub const EMULATED: bool = cfg!(any(target_arch = "aarch64", target_arch = "riscv64"));

/// How long a test's child may run before it counts as hung: far longer
/// than any of them needs, even emulated.
pub fn hang_limit() -> Duration {
    Duration::from_secs(if EMULATED { 600 } else { 120 })
}

/// Runs `command` to the end, like [`Command::output`], but kills it and
/// returns a `TimedOut` error naming it if it is not done within `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> io::Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both pipes are read while the child runs, so a chatty child never
    // blocks on a full pipe.
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let why = format!("{command:?}: not done within {limit:?}, killed (a hang?)");
            return Err(io::Error::new(io::ErrorKind::TimedOut, why));
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Runs the test `test_name` of this test binary again, alone, in a child
/// process with `role_var=role` in its environment (so that the test can
/// tell it is the child) and `RUST_BACKTRACE=0`. Panics, failing the
/// calling test, if the child cannot start or is not done within
/// [`hang_limit`].
pub fn run_this_test_alone(test_name: &str, role_var: &str, role: &str) -> Output {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut child = command(exe);
    child
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(role_var, role)
        .env("RUST_BACKTRACE", "0");
    output_within(&mut child, hang_limit())
        .unwrap_or_else(|e| panic!("{test_name}, in a child process: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_outlives_its_limit_is_killed_and_named() {
        let started = Instant::now();
        let error = output_within(Command::new("sleep").arg("30"), Duration::from_millis(200))
            .expect_err("sleep 30 is not done in 200 ms");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("sleep"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "killed, not waited for"
        );
    }

    #[test]
    fn a_child_that_finishes_gives_its_status_and_both_outputs() {
        let output = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(60),
        )
        .expect("sh runs");
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }
}
