//! The job secret (`--secret-file`): only processes that know it get in,
//! and whoever fails is closed and logged while the job goes on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use mapreduce::auth::{CHALLENGE_LEN, HELLO};
use mapreduce::schedule::{TaskId, TaskKind};
use mapreduce::wire::Message;

fn write_secret(dir: &TestDir, name: &str, byte: u8) -> String {
    std::fs::write(dir.path().join(name), [byte; 32]).unwrap();
    name.to_string()
}

/// Connects without the secret, sends `frame`, and returns every byte the
/// coordinator sent before it hung up.
fn intrude(addr: std::net::SocketAddr, frame: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(job_limit())).unwrap();
    s.write_all(frame).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn clients_without_the_secret_get_nothing_and_the_job_goes_on() {
    let dir = TestDir::new("secret");
    let files = books(dir.path(), 4, 10_000);
    let expected = sequential(&dir, "wc", &files);
    let secret = write_secret(&dir, "job.secret", 7);
    let mut c = start_coordinator(&dir, &["--secret-file", &secret], &files);

    // A client that asks for a task, one that reports a task done, and one
    // that answers the challenge with garbage: each hears the challenge
    // and nothing else, then the coordinator hangs up.
    let get = Message::GetTask { worker: 1 }.encode();
    let done = Message::Done {
        task: TaskId {
            kind: TaskKind::Map,
            index: 0,
        },
        worker: 1,
    }
    .encode();
    let garbage = [0x42u8; 2 * CHALLENGE_LEN];
    for frame in [&get[..], &done[..], &garbage[..]] {
        let got = intrude(c.addr, frame);
        assert_eq!(
            got.len(),
            HELLO.len() + CHALLENGE_LEN,
            "an intruder got more than the challenge: {got:?}"
        );
        assert_eq!(&got[..HELLO.len()], HELLO);
    }

    // The job's own workers get in and finish the job.
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| start_worker_with(&dir, "wc", c.addr, &["--secret-file", &secret]))
        .collect();
    assert!(
        wait_for(&mut c.child, job_limit(), "coordinator").success(),
        "{}",
        c.log.joined()
    );
    for w in &mut workers {
        assert!(wait_for(&mut w.child, Duration::from_secs(30), "worker").success());
    }
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
    let refused = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("authentication failed"))
            .count()
    };
    assert!(
        c.log
            .wait_until(Duration::from_secs(30), |lines| refused(lines) >= 3),
        "each intruder was logged: {}",
        c.log.joined()
    );
    assert!(
        c.log.wait_for("0 taken back", Duration::from_secs(30)),
        "no task was ever handed to an intruder: {}",
        c.log.joined()
    );
}

#[test]
fn a_worker_with_another_secret_is_refused_with_one_clear_line() {
    let dir = TestDir::new("wrong-secret");
    let files = books(dir.path(), 1, 1000);
    let secret = write_secret(&dir, "job.secret", 7);
    let wrong = write_secret(&dir, "other.secret", 8);
    let c = start_coordinator(&dir, &["--secret-file", &secret], &files);
    let mut w = start_worker_with(&dir, "wc", c.addr, &["--secret-file", &wrong]);
    let status = wait_for(&mut w.child, job_limit(), "worker");
    assert!(!status.success(), "a refused worker fails: {status}");
    assert!(
        w.log.wait_for("refused our proof", Duration::from_secs(30)),
        "{}",
        w.log.joined()
    );
    assert!(
        c.log
            .wait_for("authentication failed", Duration::from_secs(30)),
        "{}",
        c.log.joined()
    );
}

#[test]
fn a_worker_without_a_secret_file_is_told_the_coordinator_wants_one() {
    let dir = TestDir::new("no-secret");
    let files = books(dir.path(), 1, 1000);
    let secret = write_secret(&dir, "job.secret", 7);
    let c = start_coordinator(&dir, &["--secret-file", &secret], &files);
    let mut w = start_worker(&dir, "wc", c.addr);
    let status = wait_for(&mut w.child, job_limit(), "worker");
    assert!(!status.success(), "{status}");
    assert!(
        w.log.wait_for("--secret-file", Duration::from_secs(30)),
        "{}",
        w.log.joined()
    );
}

#[test]
fn a_worker_with_a_secret_whose_coordinator_has_none_says_so() {
    let dir = TestDir::new("extra-secret");
    let files = books(dir.path(), 1, 1000);
    let secret = write_secret(&dir, "job.secret", 7);
    let c = start_coordinator(&dir, &[], &files);
    let mut w = start_worker_with(&dir, "wc", c.addr, &["--secret-file", &secret]);
    let status = wait_for(&mut w.child, job_limit(), "worker");
    assert!(!status.success(), "{status}");
    assert!(
        w.log
            .wait_for("without --secret-file", Duration::from_secs(30)),
        "{}",
        w.log.joined()
    );
}

#[test]
fn an_unusable_secret_file_is_one_clear_line() {
    let dir = TestDir::new("bad-secret");
    let files = books(dir.path(), 1, 1000);
    std::fs::write(dir.path().join("short"), b"too short").unwrap();
    for (path, says) in [("short", "must be 16"), ("missing", "No such file")] {
        let out = dir
            .mapreduce()
            .args([
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--secret-file",
                path,
            ])
            .args(&files)
            .output_in_time()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(path) && err.contains(says), "{err}");
    }
}

#[test]
fn a_worker_with_a_secret_whose_coordinator_hangs_up_unasked_says_it_has_none() {
    // A coordinator without a secret closes a connection that sends no
    // request in time; one with a secret would have sent its challenge
    // first. So a worker that is waiting for the challenge and sees the
    // connection close is talking to a coordinator without a secret.
    let dir = TestDir::new("hangup-secret");
    let secret = write_secret(&dir, "job.secret", 7);
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap();
    let mut w = start_worker_with(&dir, "wc", addr, &["--secret-file", &secret]);
    let (conn, _) = fake.accept().unwrap();
    drop(conn);
    let status = wait_for(&mut w.child, job_limit(), "worker");
    assert!(!status.success(), "{status}");
    assert!(
        w.log
            .wait_for("without --secret-file", Duration::from_secs(30)),
        "{}",
        w.log.joined()
    );
}
