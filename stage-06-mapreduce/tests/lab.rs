//! The lab's test script (6.824 `test-mr.sh`), as Rust tests that start the
//! real binary: a coordinator process and worker processes over TCP.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use mapreduce::schedule::{TaskId, TaskKind};
use mapreduce::wire::Message;

/// Per-book size: big enough for thousands of distinct words, small enough
/// for a debug build under qemu.
const BOOK_BYTES: u64 = 24_000;

#[test]
fn wc_on_three_workers_equals_sequential() {
    let dir = TestDir::new("wc");
    let files = books(dir.path(), 8, BOOK_BYTES);
    let expected = sequential(&dir, "wc", &files);
    assert!(
        expected.len() > 1000,
        "a real vocabulary: {}",
        expected.len()
    );
    distributed(&dir, "wc", 3, &[], &files);
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
}

#[test]
fn every_key_is_in_exactly_one_output_and_sorted_within_it() {
    let dir = TestDir::new("layout");
    let files = books(dir.path(), 4, BOOK_BYTES);
    distributed(&dir, "wc", 2, &["--reduce", "5"], &files);
    let outputs = output_files(dir.path());
    assert_eq!(outputs.len(), 5, "one output per reduce task");
    let mut seen = HashSet::new();
    for path in outputs {
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<&str> = text.lines().map(|l| l.split_once(' ').unwrap().0).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{} not sorted",
            path.display()
        );
        for key in keys {
            assert!(seen.insert(key.to_string()), "{key} in two outputs");
        }
    }
    assert!(
        !dir.path()
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_str().unwrap().contains(".tmp.") }),
        "no temporary files left behind"
    );
}

#[test]
fn indexer_on_two_workers_equals_sequential() {
    let dir = TestDir::new("indexer");
    let files = books(dir.path(), 8, BOOK_BYTES / 2);
    let expected = sequential(&dir, "indexer", &files);
    distributed(&dir, "indexer", 2, &[], &files);
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
}

#[test]
fn map_tasks_run_in_parallel_on_two_workers() {
    let dir = TestDir::new("mtiming");
    let files = books(dir.path(), 8, 1000);
    distributed(&dir, "mtiming", 2, &[], &files);
    let lines = sorted_outputs(dir.path());
    let times = lines.iter().filter(|l| l.starts_with("times-")).count();
    assert_eq!(times, 2, "both workers ran map tasks: {lines:?}");
    let parallel = lines
        .iter()
        .filter(|l| l.starts_with("parallel-") && l.split(' ').skip(1).any(|n| n == "2"));
    assert!(parallel.count() > 0, "two map calls overlapped: {lines:?}");
}

#[test]
fn reduce_tasks_run_in_parallel_on_two_workers() {
    let dir = TestDir::new("rtiming");
    let files = books(dir.path(), 8, 1000);
    distributed(&dir, "rtiming", 2, &[], &files);
    let lines = sorted_outputs(dir.path());
    let two = lines
        .iter()
        .filter(|l| l.len() == 3 && l.ends_with(" 2"))
        .count();
    assert!(two >= 2, "reduce calls overlapped: {lines:?}");
}

#[test]
fn each_map_task_runs_exactly_once() {
    let dir = TestDir::new("jobcount");
    let files = books(dir.path(), 4, 1000);
    distributed(&dir, "jobcount", 2, &[], &files);
    assert_eq!(sorted_outputs(dir.path()), ["a 4"]);
}

#[test]
fn no_process_exits_before_every_output_is_in_place() {
    let dir = TestDir::new("early_exit");
    let files = books(dir.path(), 8, 1000);
    let mut c = start_coordinator(&dir, &[], &files);
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| start_worker(&dir, "early_exit", c.addr))
        .collect();

    // Wait for the first process of the job to exit, whichever it is.
    let deadline = Instant::now() + job_limit();
    'first: loop {
        assert!(
            Instant::now() < deadline,
            "nobody exited: {}",
            c.log.joined()
        );
        if c.child.try_wait().unwrap().is_some() {
            break 'first;
        }
        for w in &mut workers {
            if w.child.try_wait().unwrap().is_some() {
                break 'first;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    let at_first_exit = sorted_outputs(dir.path());

    assert!(wait_for(&mut c.child, job_limit(), "coordinator").success());
    for w in &mut workers {
        assert!(wait_for(&mut w.child, Duration::from_secs(30), "worker").success());
    }
    let at_the_end = sorted_outputs(dir.path());
    assert_eq!(
        at_first_exit, at_the_end,
        "outputs changed after a process exited"
    );
    assert_eq!(
        at_the_end.len(),
        8,
        "one line per input file: {at_the_end:?}"
    );
}

#[test]
fn killed_and_stalled_workers_do_not_change_the_result() {
    let dir = TestDir::new("crash");
    let files = books(dir.path(), 4, 2000);
    let expected = sequential(&dir, "nocrash", &files);

    // A short timeout so that stalled calls (up to 10 s) are taken back
    // quickly; the test's own loop plays the cluster manager that restarts
    // machines as they die, while the coordinator lives.
    let mut c = start_coordinator(&dir, &["--reduce", "3", "--task-timeout", "1"], &files);
    let mut workers: Vec<Worker> = (0..4)
        .map(|_| start_worker(&dir, "crash", c.addr))
        .collect();
    let deadline = Instant::now() + job_limit() * 2;
    let mut restarts = 0;
    while c.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "crash job did not finish: {}",
            c.log.joined()
        );
        for w in &mut workers {
            if w.child.try_wait().unwrap().is_some() {
                *w = start_worker(&dir, "crash", c.addr);
                restarts += 1;
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(c.child.wait().unwrap().success(), "{}", c.log.joined());
    for w in &mut workers {
        let _ = w.child.kill();
        let _ = w.child.wait();
    }
    eprintln!("crash test: {restarts} worker restarts");
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
}

#[test]
fn garbage_sent_to_the_coordinator_port_leaves_the_job_unharmed() {
    let dir = TestDir::new("garbage");
    let files = books(dir.path(), 4, BOOK_BYTES / 2);
    let expected = sequential(&dir, "wc", &files);
    let mut c = start_coordinator(&dir, &[], &files);

    // Four kinds of trouble, each on its own connection.
    let mut oversized = TcpStream::connect(c.addr).unwrap();
    oversized
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .unwrap();
    let mut bad_version = TcpStream::connect(c.addr).unwrap();
    bad_version.write_all(&[0, 0, 0, 2, 99, 1]).unwrap();
    let mut text = TcpStream::connect(c.addr).unwrap();
    text.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Half a frame, then silence, with the connection held open.
    let mut half = TcpStream::connect(c.addr).unwrap();
    half.write_all(&[0, 0, 0, 6, 1]).unwrap();

    let mut workers: Vec<Worker> = (0..2).map(|_| start_worker(&dir, "wc", c.addr)).collect();
    assert!(
        wait_for(&mut c.child, job_limit(), "coordinator").success(),
        "{}",
        c.log.joined()
    );
    for w in &mut workers {
        assert!(wait_for(&mut w.child, Duration::from_secs(30), "worker").success());
    }
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
    let closed = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("closing connection"))
            .count()
    };
    assert!(
        c.log
            .wait_until(Duration::from_secs(30), |lines| closed(lines) >= 3),
        "each bad connection was closed: {}",
        c.log.joined()
    );
    drop((oversized, bad_version, text, half));
}

/// Sends `message` as one frame and reads the reply; `None` if the
/// coordinator closed the connection instead.
fn call(stream: &mut TcpStream, message: &Message) -> Option<Message> {
    stream.write_all(&message.encode()).unwrap();
    let mut len = [0u8; 4];
    if stream.read_exact(&mut len).is_err() {
        return None;
    }
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload).ok()?;
    Some(Message::decode(&payload).expect("a well-formed reply"))
}

#[test]
fn a_report_of_a_task_another_worker_holds_closes_the_reporters_connection() {
    let dir = TestDir::new("false-report");
    let files = books(dir.path(), 1, 1000);
    let c = start_coordinator(&dir, &[], &files);
    let limit = Some(job_limit());

    // An honest client takes map 0 and keeps it.
    let mut holder = TcpStream::connect(c.addr).unwrap();
    holder.set_read_timeout(limit).unwrap();
    let task = call(&mut holder, &Message::GetTask { worker: 1 }).and_then(|m| m.task_id());
    let map0 = TaskId {
        kind: TaskKind::Map,
        index: 0,
    };
    assert_eq!(task, Some(map0));

    // Another client claims to have finished it: refused, by hanging up
    // rather than with an Ack (which would end the map phase early).
    let mut liar = TcpStream::connect(c.addr).unwrap();
    liar.set_read_timeout(limit).unwrap();
    let reply = call(
        &mut liar,
        &Message::Done {
            task: map0,
            worker: 2,
        },
    );
    assert_eq!(reply, None, "{}", c.log.joined());

    // The holder's own report is still welcome.
    assert_eq!(
        call(
            &mut holder,
            &Message::Done {
                task: map0,
                worker: 1
            }
        ),
        Some(Message::Ack)
    );
}

#[test]
fn a_half_sent_frame_is_closed_after_the_frame_timeout_and_the_job_goes_on() {
    let dir = TestDir::new("half-frame");
    let files = books(dir.path(), 2, 1000);
    let c = start_coordinator(&dir, &[], &files);

    // Two bytes of a four-byte length, then silence with the socket open.
    let mut half = TcpStream::connect(c.addr).unwrap();
    half.write_all(&[0, 0]).unwrap();
    half.set_read_timeout(Some(job_limit())).unwrap();
    let mut byte = [0u8; 1];
    let started = Instant::now();
    let n = half.read(&mut byte).unwrap_or(0);
    assert_eq!(n, 0, "the coordinator hung up without a reply");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not before the frame timeout (5 s): {:?}",
        started.elapsed()
    );
    assert!(
        c.log.wait_for("frame not finished", job_limit()),
        "{}",
        c.log.joined()
    );

    // The coordinator still serves a well-behaved client.
    let mut honest = TcpStream::connect(c.addr).unwrap();
    honest.set_read_timeout(Some(job_limit())).unwrap();
    let reply = call(&mut honest, &Message::GetTask { worker: 1 });
    assert!(
        matches!(reply, Some(Message::Map(_))),
        "{reply:?}: {}",
        c.log.joined()
    );
}
