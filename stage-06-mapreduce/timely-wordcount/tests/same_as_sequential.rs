//! The timely word count writes, byte for byte, what `mapreduce sequential
//! --app wc` writes, with worker threads in one process and with two
//! processes that talk over TCP on 127.0.0.1.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mapreduce::WordCount;
use mapreduce::corpus::{self, CorpusSpec};
use mapreduce::sequential::run_sequential;

/// Long enough for a loaded machine; a hang fails here instead of forever.
const DEADLINE: Duration = Duration::from_secs(120);

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("timely-wc-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A generated corpus of a few files, plus one with accented words, digits,
/// punctuation and bytes that are not UTF-8: the word rule's edge cases.
fn inputs(dir: &Path) -> Vec<String> {
    let spec = CorpusSpec {
        bytes: 3 << 20,
        files: 5,
        seed: 13,
    };
    let mut paths = corpus::generate(&dir.join("corpus"), &spec).unwrap();
    let odd = dir.join("odd.txt");
    fs::write(
        &odd,
        b"Stra\xc3\x9fe caf\xe9 na\xc3\xafve it's 42nd-street \xff\xfe the The the\n",
    )
    .unwrap();
    paths.push(odd);
    paths
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect()
}

/// What `sequential` writes for `files`, through the stage's library.
fn sequential_output(dir: &Path, files: &[String]) -> Vec<u8> {
    let out = dir.join("sequential");
    run_sequential(&WordCount, &out, files).unwrap();
    fs::read(out.join("mr-out-0")).unwrap()
}

fn assert_same_bytes(sequential: &[u8], timely: &[u8], what: &str) {
    if sequential == timely {
        return;
    }
    let (s, t) = (
        String::from_utf8_lossy(sequential),
        String::from_utf8_lossy(timely),
    );
    let first = s.lines().zip(t.lines()).position(|(x, y)| x != y);
    panic!(
        "{what} differs from sequential's mr-out-0: sequential has {} lines, timely {}; \
         first difference at line {:?}: sequential {:?}, timely {:?}",
        s.lines().count(),
        t.lines().count(),
        first.map(|i| i + 1),
        first.and_then(|i| s.lines().nth(i)),
        first.and_then(|i| t.lines().nth(i)),
    );
}

#[test]
fn two_worker_threads_write_what_sequential_writes() {
    let dir = temp_dir("threads");
    let files = inputs(&dir);
    let expect = sequential_output(&dir, &files);
    let counts = timely_wordcount::word_count(timely::Config::process(2), files)
        .unwrap()
        .expect("worker 0 lives in this process");
    let mut ours = Vec::new();
    timely_wordcount::write_counts(&mut ours, &counts).unwrap();
    assert_same_bytes(&expect, &ours, "the timely output (2 threads)");
    fs::remove_dir_all(&dir).unwrap();
}

/// Two ports that were free a moment ago (timely binds them itself).
fn two_free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    [
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    ]
}

/// Waits for `child` until the deadline; kills it and fails after.
fn wait_for(child: &mut Child, name: &str, start: Instant) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_processes_over_tcp_write_what_sequential_writes() {
    let dir = temp_dir("processes");
    let files = inputs(&dir);
    let expect = sequential_output(&dir, &files);
    let [p0, p1] = two_free_ports();
    let hosts = dir.join("hosts.txt");
    fs::write(&hosts, format!("127.0.0.1:{p0}\n127.0.0.1:{p1}\n")).unwrap();
    let out = dir.join("timely-out.txt");

    let start = Instant::now();
    let mut children: Vec<Child> = (0..2)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_timely-wordcount"))
                .args(["-n", "2", "-p", &p.to_string(), "-h"])
                .arg(&hosts)
                .arg("--out")
                .arg(&out)
                .args(&files)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (p, child) in children.iter_mut().enumerate() {
        let status = wait_for(child, &format!("process {p}"), start);
        assert!(status.success(), "process {p}: {status}");
    }
    assert_same_bytes(
        &expect,
        &fs::read(&out).unwrap(),
        "the timely output (2 processes)",
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_input_is_one_clear_line_and_a_failure() {
    let dir = temp_dir("missing");
    let run = Command::new(env!("CARGO_BIN_EXE_timely-wordcount"))
        .args(["--out"])
        .arg(dir.join("out.txt"))
        .arg("no/such/file.txt")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "exit status {}", run.status);
    assert!(stderr.contains("no/such/file.txt"), "stderr: {stderr}");
    assert!(!dir.join("out.txt").exists(), "no output for a failed job");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_input_one_process_cannot_read_fails_the_job_in_process_zero_too() {
    let dir = temp_dir("unreadable");
    let mut files = inputs(&dir);
    // Opening a directory succeeds, reading it fails: the check before the
    // job passes, and the worker that reads it (worker 1, in process 1)
    // fails in the middle of the job.
    fs::create_dir_all(dir.join("a-directory")).unwrap();
    files.insert(1, dir.join("a-directory").to_str().unwrap().to_string());
    let [p0, p1] = two_free_ports();
    let hosts = dir.join("hosts.txt");
    fs::write(&hosts, format!("127.0.0.1:{p0}\n127.0.0.1:{p1}\n")).unwrap();
    let out = dir.join("timely-out.txt");

    let start = Instant::now();
    let mut children: Vec<Child> = (0..2)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_timely-wordcount"))
                .args(["-n", "2", "-p", &p.to_string(), "-h"])
                .arg(&hosts)
                .arg("--out")
                .arg(&out)
                .args(&files)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (p, child) in children.iter_mut().enumerate() {
        let status = wait_for(child, &format!("process {p}"), start);
        assert!(
            !status.success(),
            "process {p} exited with {status}, but the job lost an input"
        );
    }
    assert!(!out.exists(), "process 0 wrote counts that miss an input");
    fs::remove_dir_all(&dir).unwrap();
}
