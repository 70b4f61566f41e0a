//! Running a lab's grading tests and reading what libtest says about each.
//!
//! One `cargo test` per target triple runs every grading test of the lab:
//!
//! ```text
//! cargo test -p PACKAGE [--target T] --no-fail-fast --lib --test NAME ... \
//!     -- --exact TEST TEST ...
//! ```
//!
//! libtest prints `test NAME ... ok` or `... FAILED` as each test ends, then
//! a `---- NAME stdout ----` section with each failure's message. A test
//! that never reports counts as failed too, with the reason: the deadline
//! passed (a lost wake-up hangs rather than fails), or the test process died
//! (a stub's trap instruction kills it with SIGILL or SIGTRAP).

use crate::registry::Lab;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The verdict on one grading test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub test: String,
    pub passed: bool,
    /// Why it failed, in the test's own words where it gave any.
    pub message: String,
    /// Whether libtest reported it (or it never finished).
    pub reported: bool,
}

/// How to run the tests.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Stop at the first failure (enough for `verify` to know the grader
    /// can fail).
    pub stop_at_first_failure: bool,
    /// Print each verdict as it arrives.
    pub live: bool,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The targets and tests of `lab`, grouped by target triple.
fn plan(lab: &Lab) -> BTreeMap<Option<String>, (Vec<String>, Vec<String>)> {
    let mut plan: BTreeMap<Option<String>, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for grader in &lab.graders {
        let (targets, tests) = plan.entry(grader.target_triple.clone()).or_default();
        let target = if grader.target == "lib" {
            "--lib".to_string()
        } else {
            format!("--test={}", grader.target)
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
        tests.extend(grader.tests.iter().cloned());
    }
    plan
}

fn command(root: &Path, lab: &Lab, triple: &Option<String>, targets: &[String]) -> Command {
    let mut command = cargo();
    command.current_dir(root);
    // Short failure messages: a backtrace buries the test's own words.
    command.env("RUST_BACKTRACE", "0");
    command.args(["test", "-p", &lab.stage.package]);
    if let Some(triple) = triple {
        command.args(["--target", triple]);
    }
    command.args(targets);
    command
}

/// Build everything the lab's tests need. On failure, the compiler's
/// output (shown live when `show` is set, returned otherwise).
pub fn build(root: &Path, lab: &Lab, show: bool) -> Result<(), String> {
    for (triple, (targets, _)) in plan(lab) {
        let mut command = command(root, lab, &triple, &targets);
        command.args(["--no-run", "--quiet"]);
        let output = if show {
            let status = command
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            (status, String::new())
        } else {
            let output = command
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            (
                output.status,
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        if !output.0.success() {
            return Err(output.1);
        }
    }
    Ok(())
}

enum Line {
    Out(String),
    Err(String),
}

fn forward(
    stream: impl Read + Send + 'static,
    wrap: fn(String) -> Line,
    lines: mpsc::Sender<Line>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if lines.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}

/// Kill the test run and everything it started (stage 6's tests start
/// worker processes).
fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals the process group the
    // child leads (it was started with process_group(0)); no memory is
    // touched. A group that already exited gives ESRCH, which is harmless.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Reads libtest's output, test by test.
#[derive(Default)]
struct Reader {
    verdicts: BTreeMap<String, Verdict>,
    /// The test whose failure section is being read.
    section: Option<String>,
    /// Why the run ended early, if it did.
    died: Option<String>,
}

impl Reader {
    /// Take one line of output; returns a verdict that just arrived.
    fn read(&mut self, line: Line) -> Option<Verdict> {
        match line {
            Line::Out(line) => self.read_stdout(&line),
            Line::Err(line) => {
                // cargo: "process didn't exit successfully: `...` (signal: 4, SIGILL: illegal instruction)"
                if let Some(at) = line.find("(signal: ") {
                    self.died = Some(line[at + 1..].trim_end_matches(')').to_string());
                }
                None
            }
        }
    }

    fn read_stdout(&mut self, line: &str) -> Option<Verdict> {
        if let Some(rest) = line.strip_prefix("test ") {
            for (suffix, passed) in [
                (" ... ok", true),
                (" ... FAILED", false),
                (" ... ignored", false),
            ] {
                if let Some(name) = rest.strip_suffix(suffix) {
                    // `#[should_panic]` tests are listed as "NAME - should panic".
                    let name = name.strip_suffix(" - should panic").unwrap_or(name);
                    let message = if suffix == " ... ignored" {
                        "the test is marked #[ignore]".to_string()
                    } else {
                        String::new()
                    };
                    let verdict = Verdict {
                        test: name.to_string(),
                        passed,
                        message,
                        reported: true,
                    };
                    self.verdicts.insert(name.to_string(), verdict.clone());
                    return Some(verdict);
                }
            }
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.section = Some(name.to_string());
            return None;
        }
        if line == "failures:" || line.starts_with("test result:") {
            self.section = None;
            return None;
        }
        if let Some(name) = &self.section {
            if line.starts_with("note: run with `RUST_BACKTRACE") {
                return None;
            }
            if let Some(verdict) = self.verdicts.get_mut(name) {
                verdict.message.push_str(line);
                verdict.message.push('\n');
            }
        }
        None
    }
}

/// Run the lab's grading tests; one verdict per test, in the lab's order.
pub fn run(root: &Path, lab: &Lab, options: &Options) -> Result<Vec<Verdict>, String> {
    let deadline = Instant::now() + Duration::from_secs(lab.timeout_secs);
    let mut reader = Reader::default();
    let mut timed_out = false;
    for (triple, (targets, tests)) in plan(lab) {
        let mut command = command(root, lab, &triple, &targets);
        command
            .arg("--no-fail-fast")
            .arg("--")
            .arg("--exact")
            .args(&tests)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        let (sender, lines) = mpsc::channel();
        forward(
            child.stdout.take().expect("piped"),
            Line::Out,
            sender.clone(),
        );
        forward(child.stderr.take().expect("piped"), Line::Err, sender);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(verdict) = reader.read(line) {
                        if options.live {
                            print_verdict(&verdict);
                        }
                        if !verdict.passed && options.stop_at_first_failure {
                            kill_group(&mut child);
                            return Ok(finish(lab, reader, false));
                        }
                    }
                }
                // Both streams closed: the run is over.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    break;
                }
            }
        }
        kill_group(&mut child);
        if timed_out {
            break;
        }
    }
    Ok(finish(lab, reader, timed_out))
}

/// Every grading test gets a verdict; those that never reported fail, with
/// the reason.
fn finish(lab: &Lab, mut reader: Reader, timed_out: bool) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for test in lab.graders.iter().flat_map(|grader| &grader.tests) {
        let verdict = reader.verdicts.remove(test).unwrap_or_else(|| {
            let message = if timed_out {
                format!(
                    "did not finish within {} s: something waits for ever \
                     (a lost wake-up? a deadlock?)",
                    lab.timeout_secs
                )
            } else if let Some(signal) = &reader.died {
                format!(
                    "never finished: the test process died ({signal}); a stub's \
                     trap instruction does this, and so does a crash in your code"
                )
            } else {
                "did not run (the run stopped early, or no test has this name)".to_string()
            };
            Verdict {
                test: test.clone(),
                passed: false,
                message,
                reported: false,
            }
        });
        verdicts.push(verdict);
    }
    verdicts
}

pub fn print_verdict(verdict: &Verdict) {
    let mark = if verdict.passed { "ok    " } else { "FAILED" };
    println!("  {mark}  {}", verdict.test);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(reader: &mut Reader, text: &str) {
        for line in text.lines() {
            reader.read(Line::Out(line.to_string()));
        }
    }

    #[test]
    fn verdicts_and_failure_messages_are_read_from_libtest_output() {
        let mut reader = Reader::default();
        read_all(
            &mut reader,
            "\nrunning 2 tests\ntest a::b ... ok\ntest c ... FAILED\n\nfailures:\n\n\
             ---- c stdout ----\nthread 'c' panicked at src/x.rs:1:1:\nrbx lost: 0x1 != 0x2\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\
             failures:\n    c\n\ntest result: FAILED. 1 passed; 1 failed\n",
        );
        assert!(reader.verdicts["a::b"].passed);
        let c = &reader.verdicts["c"];
        assert!(!c.passed);
        assert!(c.message.contains("rbx lost: 0x1 != 0x2"), "{c:?}");
        assert!(!c.message.contains("RUST_BACKTRACE"));
    }

    #[test]
    fn a_should_panic_test_is_known_by_its_plain_name() {
        let mut reader = Reader::default();
        read_all(&mut reader, "test m::t - should panic ... ok\n");
        assert!(reader.verdicts["m::t"].passed);
    }

    #[test]
    fn a_process_killed_by_a_signal_is_named() {
        let mut reader = Reader::default();
        reader.read(Line::Err(
            "error: test failed, to rerun pass `--lib`\n\nCaused by:\n  process didn't exit \
             successfully: `/t/x` (signal: 4, SIGILL: illegal instruction)"
                .lines()
                .last()
                .unwrap()
                .to_string(),
        ));
        assert_eq!(
            reader.died.as_deref(),
            Some("signal: 4, SIGILL: illegal instruction")
        );
    }
}
