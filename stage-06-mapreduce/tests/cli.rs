//! Bad input gets one clear line, and the right exit status.

mod common;

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use common::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_coordinator_refuses_a_missing_input_and_names_it() {
    let dir = TestDir::new("missing");
    std::fs::write(dir.path().join("here.txt"), "a b").unwrap();
    let out = dir
        .mapreduce()
        .args([
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "here.txt",
            "not-here.txt",
        ])
        .output_in_time()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("not-here.txt"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_busy_listen_address_is_one_clear_line() {
    let dir = TestDir::new("busy");
    std::fs::write(dir.path().join("in.txt"), "a b").unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = dir
        .mapreduce()
        .args(["coordinator", "--listen", &addr, "in.txt"])
        .output_in_time()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot listen") && err.contains(&addr),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_worker_without_a_coordinator_exits_0_and_says_why() {
    let dir = TestDir::new("unreachable");
    // A port that was free a moment ago; nobody listens on it now.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = dir
        .mapreduce()
        .args([
            "worker",
            "--app",
            "wc",
            "--coordinator",
            &addr,
            "--connect-timeout",
            "0.2",
        ])
        .output_in_time()
        .unwrap();
    assert!(out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("cannot reach the coordinator") && err.contains(&addr),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_worker_exits_0_when_the_coordinator_goes_away() {
    let dir = TestDir::new("gone");
    let files = books(dir.path(), 2, 1000);
    let mut c = start_coordinator(&dir, &[], &files);
    let mut w = start_worker(&dir, "jobcount", c.addr);
    // jobcount's map leaves a marker and then sleeps 2-5 s: kill the
    // coordinator while the worker is inside it.
    let deadline = std::time::Instant::now() + job_limit();
    while !std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .starts_with("mr-worker-jobcount")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never started a map task"
        );
        if let Some(status) = w.child.try_wait().unwrap() {
            // Give its last lines a moment to arrive through the pipe.
            w.log.wait_until(Duration::from_secs(2), |l| !l.is_empty());
            panic!(
                "the worker exited ({status}) before it started a map task:\n{}",
                w.log.joined()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    let status = wait_for(&mut w.child, Duration::from_secs(60), "worker");
    assert!(status.success(), "{status}: {}", w.log.joined());
    assert!(
        w.log
            .wait_for("coordinator went away", Duration::from_secs(30)),
        "{}",
        w.log.joined()
    );
}

#[test]
fn an_unknown_app_is_one_line_listing_the_known_ones() {
    let dir = TestDir::new("unknown");
    for args in [
        &["worker", "--app", "nope"][..],
        &["sequential", "--app", "nope", "x.txt"][..],
        &["run", "--app", "nope"][..],
    ] {
        let out = dir.mapreduce().args(args).output_in_time().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr_of(&out);
        assert!(err.contains("unknown app 'nope'"), "{err}");
        for known in [
            "wc",
            "indexer",
            "mtiming",
            "rtiming",
            "jobcount",
            "early_exit",
            "crash",
            "nocrash",
        ] {
            assert!(err.contains(known), "{known} missing from: {err}");
        }
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn input_that_is_not_utf8_is_counted_without_a_panic() {
    let dir = TestDir::new("latin1");
    std::fs::write(
        dir.path().join("latin1.txt"),
        b"caf\xe9 caf\xe9 na\xefve \xff\xfe ok ok ok",
    )
    .unwrap();
    std::fs::write(dir.path().join("plain.txt"), "ok caf").unwrap();
    let files = vec!["latin1.txt".to_string(), "plain.txt".to_string()];
    let expected = sequential(&dir, "wc", &files);
    assert_eq!(expected, ["caf 3", "na 1", "ok 4", "ve 1"]);
    distributed(&dir, "wc", 2, &["--reduce", "3"], &files);
    assert_eq!(sorted_outputs(dir.path()), expected);
}

#[test]
fn run_without_files_counts_a_generated_corpus_outside_the_working_directory() {
    let dir = TestDir::new("run");
    let out_dir = dir.path().join("job");
    let out = dir
        .mapreduce()
        .args([
            "run",
            "--app",
            "wc",
            "--workers",
            "2",
            "--bytes",
            "200k",
            "--quiet",
            "--dir",
        ])
        .arg(&out_dir)
        .stdin(Stdio::null())
        .output_in_time()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("most frequent") && stdout.contains(" the\n"),
        "{stdout}"
    );
    assert!(err.contains("MB/s") && err.contains("18 tasks"), "{err}");
    assert_eq!(output_files(&out_dir).len(), 10);
    let litter: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mr-"))
        .collect();
    assert!(
        litter.is_empty(),
        "files in the working directory: {litter:?}"
    );
}

#[test]
fn run_with_files_equals_sequential() {
    let dir = TestDir::new("runfiles");
    let files = books(dir.path(), 3, 20_000);
    let expected = sequential(&dir, "wc", &files);
    let out = dir
        .mapreduce()
        .args([
            "run",
            "--app",
            "wc",
            "--workers",
            "2",
            "--reduce",
            "4",
            "--dir",
            "job",
        ])
        .args(&files)
        .output_in_time()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(sorted_outputs(&dir.path().join("job")), sorted(expected));
}

#[test]
fn the_corpus_command_is_deterministic() {
    let dir = TestDir::new("corpus");
    for out in ["a", "b"] {
        let status = dir
            .mapreduce()
            .args(["corpus", "--bytes", "64k", "--files", "2", "--out", out])
            .output_in_time()
            .unwrap()
            .status;
        assert!(status.success());
    }
    for f in ["corpus-000.txt", "corpus-001.txt"] {
        let a = std::fs::read(dir.path().join("a").join(f)).unwrap();
        assert!(a.len() > 30_000);
        assert_eq!(a, std::fs::read(dir.path().join("b").join(f)).unwrap());
    }
}

#[test]
fn a_timeout_too_long_or_not_positive_is_a_usage_error_not_a_panic() {
    let dir = TestDir::new("timeouts");
    std::fs::write(dir.path().join("in.txt"), "a b").unwrap();
    for args in [
        &["coordinator", "--task-timeout", "1e19", "in.txt"][..],
        &["coordinator", "--task-timeout", "0", "in.txt"][..],
        &["coordinator", "--task-timeout=-3", "in.txt"][..],
        &["worker", "--app", "wc", "--connect-timeout", "1e19"][..],
        &["run", "--app", "wc", "--task-timeout", "inf", "in.txt"][..],
    ] {
        let out = dir.mapreduce().args(args).output_in_time().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("seconds") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn an_unusable_output_directory_is_one_clear_line() {
    let dir = TestDir::new("baddir");
    std::fs::write(dir.path().join("in.txt"), "a b").unwrap();
    // A regular file where the directory should be.
    std::fs::write(dir.path().join("taken"), "").unwrap();
    for args in [
        &["sequential", "--app", "wc", "--dir", "taken", "in.txt"][..],
        &["run", "--app", "wc", "--dir", "taken/sub", "in.txt"][..],
        &["worker", "--app", "wc", "--dir", "taken"][..],
    ] {
        let out = dir.mapreduce().args(args).output_in_time().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("taken") && err.to_lowercase().contains("not a directory"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}
