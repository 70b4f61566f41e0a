//! Helpers for the tests that drive the real `mapreduce` binary.
//!
//! Every test gets its own directory (removed when the test passes) and its
//! own port (the coordinator listens on port 0 and prints the port it got).
//! Children run with that directory as their working directory, like the
//! lab's script running in `mr-tmp`, and are started through
//! `COURSE_EMULATOR` when the tests run under qemu. A coordinator or worker
//! still running when its handle is dropped (a test failed) is killed.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mapreduce::corpus::{self, CorpusSpec};

/// A command that runs the binary (under the emulator, if any).
pub fn mapreduce() -> Command {
    let words = mapreduce::job::emulated(env!("CARGO_BIN_EXE_mapreduce"));
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    cmd
}

/// A scratch directory, removed on drop unless the test panicked (so a
/// failure can be inspected).
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mr-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A command for the binary, run inside this directory.
    pub fn mapreduce(&self) -> Command {
        let mut cmd = mapreduce();
        cmd.current_dir(&self.0);
        cmd
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Names like the lab's books, so `early_exit`'s slow keys (`sherlock`,
/// `tom`) occur; the text is generated.
pub const BOOKS: [&str; 8] = [
    "pg-being_ernest.txt",
    "pg-dorian_gray.txt",
    "pg-frankenstein.txt",
    "pg-grimm.txt",
    "pg-huckleberry_finn.txt",
    "pg-metamorphosis.txt",
    "pg-sherlock_holmes.txt",
    "pg-tom_sawyer.txt",
];

/// Writes `count` generated books of about `bytes` each into `dir` and
/// returns their names (relative to `dir`).
pub fn books(dir: &Path, count: usize, bytes: u64) -> Vec<String> {
    let tmp = dir.join("gen");
    let spec = CorpusSpec {
        bytes: bytes * count as u64,
        files: count as u32,
        seed: 42,
    };
    let paths = corpus::generate(&tmp, &spec).unwrap();
    let mut names = Vec::new();
    for (path, name) in paths.iter().zip(BOOKS) {
        std::fs::rename(path, dir.join(name)).unwrap();
        names.push(name.to_string());
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    names
}

/// Collects a child's stderr lines in the background.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn joined(&self) -> String {
        self.all().join("\n")
    }
    /// Waits (up to `limit`) until some line contains `text`.
    pub fn wait_for(&self, text: &str, limit: Duration) -> bool {
        self.wait_until(limit, |lines| lines.iter().any(|l| l.contains(text)))
    }
    /// Waits (up to `limit`) until `done(lines)`: the lines arrive through a
    /// pipe and a thread, a little after they are written (even after the
    /// process has exited), so a test must wait for them, not just look.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.all()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn drain(child: &mut Child, lines: Lines, first: Option<mpsc::Sender<String>>) {
    let stderr = child.stderr.take().expect("stderr piped");
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &first {
                let _ = tx.send(line.clone());
            }
            lines.0.lock().unwrap().push(line);
        }
    });
}

/// A running coordinator.
pub struct Coordinator {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Lines,
}

/// Starts `mapreduce coordinator --listen 127.0.0.1:0 ARGS... FILES...` and
/// waits for the port it prints.
pub fn start_coordinator(dir: &TestDir, args: &[&str], files: &[String]) -> Coordinator {
    let mut child = dir
        .mapreduce()
        .arg("coordinator")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .args(files)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the coordinator");
    let log = Lines::default();
    let (tx, rx) = mpsc::channel();
    drain(&mut child, log.clone(), Some(tx));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("coordinator never said where it listens: {}", log.joined())
        });
        if let Some(addr) = line.strip_prefix("coordinator: listening on ") {
            let addr = addr.trim().parse().expect("an address");
            return Coordinator { child, addr, log };
        }
    }
}

/// A running worker.
pub struct Worker {
    pub child: Child,
    pub log: Lines,
}

/// Kills `child` if it still runs, and reaps it.
fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

// A test that fails (panics) between starting a process and waiting for it
// must not leave a coordinator listening, or workers running, behind it.
impl Drop for Coordinator {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

pub fn start_worker(dir: &TestDir, app: &str, addr: SocketAddr) -> Worker {
    start_worker_with(dir, app, addr, &[])
}

/// `mapreduce worker --app APP --coordinator ADDR ARGS...`
pub fn start_worker_with(dir: &TestDir, app: &str, addr: SocketAddr, args: &[&str]) -> Worker {
    let mut child = dir
        .mapreduce()
        .args(["worker", "--app", app, "--coordinator", &addr.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a worker");
    let log = Lines::default();
    drain(&mut child, log.clone(), None);
    Worker { child, log }
}

/// Waits for a child, failing the test after `limit`.
pub fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `Command::output` with a deadline: [`job_limit`]. A command that hangs
/// fails the test, with its name, instead of a test run that never ends.
pub trait OutputInTime {
    fn output_in_time(&mut self) -> std::io::Result<Output>;
}

impl OutputInTime for Command {
    fn output_in_time(&mut self) -> std::io::Result<Output> {
        test_support::output_within(self, job_limit())
    }
}

/// A generous bound for a whole job, scaled for emulation.
pub fn job_limit() -> Duration {
    if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(120)
    }
}

/// How long the coordinator may outlive its last worker before the job
/// counts as abandoned (it says `Exit` within a second of the last output).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(10);

/// Runs coordinator + `workers` workers on `files` and waits for all.
///
/// Fails with every process's log if the coordinator does not finish: by
/// [`job_limit`], or soon after the last worker exited (nobody is left to
/// finish the job, so waiting longer could only hang).
pub fn distributed(
    dir: &TestDir,
    app: &str,
    workers: usize,
    coordinator_args: &[&str],
    files: &[String],
) -> Coordinator {
    let mut c = start_coordinator(dir, coordinator_args, files);
    let mut ws: Vec<Worker> = (0..workers)
        .map(|_| start_worker(dir, app, c.addr))
        .collect();
    let logs = |ws: &[Worker], c: &Coordinator| {
        let mut all = format!("coordinator:\n{}", c.log.joined());
        for (i, w) in ws.iter().enumerate() {
            all += &format!("\nworker {i}:\n{}", w.log.joined());
        }
        all
    };
    let deadline = Instant::now() + job_limit();
    let mut orphaned_since: Option<Instant> = None;
    let status = loop {
        if let Some(status) = c.child.try_wait().unwrap() {
            break status;
        }
        let all_gone = ws.iter_mut().all(|w| w.child.try_wait().unwrap().is_some());
        let since = *orphaned_since.get_or_insert_with(Instant::now);
        if !all_gone {
            orphaned_since = None;
        } else if since.elapsed() > ORPHAN_GRACE {
            panic!(
                "every worker exited but the job never finished (the coordinator still \
                 runs {ORPHAN_GRACE:?} later):\n{}",
                logs(&ws, &c)
            );
        }
        if Instant::now() > deadline {
            panic!(
                "the job did not finish within {:?}:\n{}",
                job_limit(),
                logs(&ws, &c)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "coordinator failed: {status}\n{}",
        logs(&ws, &c)
    );
    for w in &mut ws {
        let status = wait_for(&mut w.child, Duration::from_secs(30), "worker");
        assert!(
            status.success(),
            "worker failed: {status}\n{}",
            w.log.joined()
        );
    }
    c
}

/// Runs `mapreduce sequential` into `dir/seq` and returns its lines.
pub fn sequential(dir: &TestDir, app: &str, files: &[String]) -> Vec<String> {
    let out = dir
        .mapreduce()
        .args(["sequential", "--app", app, "--dir", "seq"])
        .args(files)
        .output_in_time()
        .unwrap();
    assert!(
        out.status.success(),
        "sequential failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join("seq/mr-out-0"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `mr-out-*` files of `dir`, in numeric order.
pub fn output_files(dir: &Path) -> Vec<PathBuf> {
    let mut outs: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e
                .file_name()
                .to_str()?
                .strip_prefix("mr-out-")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    outs.sort();
    outs.into_iter().map(|(_, p)| p).collect()
}

/// All lines of all `mr-out-*` files in `dir`, sorted (like `sort mr-out*`).
pub fn sorted_outputs(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for path in output_files(dir) {
        lines.extend(
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    lines.sort();
    lines
}

/// `sort` of the sequential output, for comparison.
pub fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}
