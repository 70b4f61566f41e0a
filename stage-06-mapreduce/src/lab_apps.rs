//! The lab's test applications, for showing and testing fault tolerance.
//!
//! They are not word counts: each one makes some property of the framework
//! visible in its output, so a test can check it from the outside.
//!
//! | app | what its output proves |
//! |---|---|
//! | `mtiming` | map tasks ran in parallel (`parallel-PID 2`) on both workers (`times-PID`) |
//! | `rtiming` | reduce tasks ran in parallel (`a 2`) |
//! | `jobcount` | each map task ran exactly once (`a N`, N = number of inputs) |
//! | `early_exit` | no process quit while a slow reduce was still running |
//! | `crash` | killed and stalled workers do not change the result (vs `nocrash`) |
//! | `straggler` | `wc`, with one slow worker: backup tasks finish the job without it |
//! | `reduce_pause` | `wc` whose first reduce call per process pauses: time to kill a worker between the phases |
//!
//! They live in the binary, not the library, because `crash` ends its own
//! process on purpose: it plays a machine failing mid-task, which is exactly
//! what a library must never do to its caller.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mapreduce::corpus::SplitMix64;
use mapreduce::{App, Context, Values};

/// A random number in `0..n`, different in every process and call.
fn random_below(n: u64) -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seed =
        nanos ^ (u64::from(std::process::id()) << 32) ^ CALLS.fetch_add(1, Ordering::Relaxed);
    SplitMix64::new(seed).below(n)
}

/// True if process `pid` exists.
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false; // 0 and negatives name process groups, not processes
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it only checks that the
    // process exists and may be signalled. It touches no memory of ours.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Leaves a marker file `mr-worker-PHASE-PID`, counts the live processes
/// that have one, sleeps a second (so overlapping calls overlap), removes
/// the marker, and returns the count.
fn nparallel(dir: &Path, phase: &str) -> usize {
    let me = dir.join(format!("mr-worker-{phase}-{}", std::process::id()));
    let _ = fs::write(&me, b"x");
    let prefix = format!("mr-worker-{phase}-");
    let mut alive = 0;
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|p| p.parse().ok());
            if pid.is_some_and(process_alive) {
                alive += 1;
            }
        }
    }
    thread::sleep(Duration::from_secs(1));
    let _ = fs::remove_file(&me);
    alive
}

/// Sorted values joined by spaces: a deterministic reduce.
fn join_sorted(values: Values<'_>) -> String {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.join(" ")
}

/// `mtiming`: do map tasks run in parallel?
#[derive(Debug)]
pub struct MTiming;

impl App for MTiming {
    fn name(&self) -> &'static str {
        "mtiming"
    }
    fn map(
        &self,
        cx: &Context<'_>,
        _file: &str,
        _contents: &str,
        emit: &mut dyn FnMut(&str, &str),
    ) {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let pid = std::process::id();
        let n = nparallel(cx.dir, "map");
        emit(&format!("times-{pid}"), &format!("{started:.1}"));
        emit(&format!("parallel-{pid}"), &n.to_string());
    }
    fn reduce(&self, _cx: &Context<'_>, _key: &str, values: Values<'_>) -> String {
        join_sorted(values)
    }
}

/// `rtiming`: do reduce tasks run in parallel?
#[derive(Debug)]
pub struct RTiming;

impl App for RTiming {
    fn name(&self) -> &'static str {
        "rtiming"
    }
    fn map(
        &self,
        _cx: &Context<'_>,
        _file: &str,
        _contents: &str,
        emit: &mut dyn FnMut(&str, &str),
    ) {
        for key in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            emit(key, "1");
        }
    }
    fn reduce(&self, cx: &Context<'_>, _key: &str, _values: Values<'_>) -> String {
        nparallel(cx.dir, "reduce").to_string()
    }
}

/// `jobcount`: does each map task run exactly once?
#[derive(Debug)]
pub struct JobCount;

impl App for JobCount {
    fn name(&self) -> &'static str {
        "jobcount"
    }
    fn map(
        &self,
        cx: &Context<'_>,
        _file: &str,
        _contents: &str,
        emit: &mut dyn FnMut(&str, &str),
    ) {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        let _ = fs::write(
            cx.dir
                .join(format!("mr-worker-jobcount-{}-{n}", std::process::id())),
            b"x",
        );
        thread::sleep(Duration::from_millis(2000 + random_below(3000)));
        emit("a", "x");
    }
    fn reduce(&self, cx: &Context<'_>, _key: &str, _values: Values<'_>) -> String {
        let count = fs::read_dir(cx.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| n.starts_with("mr-worker-jobcount"))
                    })
                    .count()
            })
            .unwrap_or(0);
        count.to_string()
    }
}

/// `early_exit`: does any process leave before the last output is in place?
#[derive(Debug)]
pub struct EarlyExit;

impl App for EarlyExit {
    fn name(&self) -> &'static str {
        "early_exit"
    }
    fn map(
        &self,
        _cx: &Context<'_>,
        file: &str,
        _contents: &str,
        emit: &mut dyn FnMut(&str, &str),
    ) {
        emit(file, "1");
    }
    fn reduce(&self, _cx: &Context<'_>, key: &str, values: Values<'_>) -> String {
        // Some reduce tasks take long: a worker that quits when it finds
        // nothing to do *right now* would leave before they are done.
        if key.contains("sherlock") || key.contains("tom") {
            thread::sleep(Duration::from_secs(3));
        }
        values.len().to_string()
    }
}

/// `crash` (with failures) and `nocrash` (the same app, without them).
#[derive(Debug)]
pub struct Crash {
    failures: bool,
}

/// `crash`: a third of the calls kill the process, a third stall.
pub const CRASH: Crash = Crash { failures: true };
/// `nocrash`: the same outputs, no failures.
pub const NOCRASH: Crash = Crash { failures: false };

impl Crash {
    fn maybe_crash(&self) {
        if !self.failures {
            return;
        }
        let roll = random_below(1000);
        if roll < 330 {
            // A machine failing mid-task: no unwinding, no goodbye.
            std::process::exit(1);
        } else if roll < 660 {
            thread::sleep(Duration::from_millis(random_below(10_000)));
        }
    }
}

impl App for Crash {
    fn name(&self) -> &'static str {
        if self.failures { "crash" } else { "nocrash" }
    }
    fn map(&self, _cx: &Context<'_>, file: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.maybe_crash();
        emit("a", file);
        emit("b", &file.len().to_string());
        emit("c", &contents.len().to_string());
        emit("d", "xyzzy");
    }
    fn reduce(&self, _cx: &Context<'_>, _key: &str, values: Values<'_>) -> String {
        self.maybe_crash();
        join_sorted(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not_a_process() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
        assert!(!process_alive(-1));
    }

    #[test]
    fn nocrash_map_emits_the_four_lab_keys() {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut pairs = Vec::new();
        NOCRASH.map(&cx, "dir/x.txt", "hello", &mut |k, v| {
            pairs.push(format!("{k}={v}"))
        });
        assert_eq!(pairs, ["a=dir/x.txt", "b=9", "c=5", "d=xyzzy"]);
    }

    #[test]
    fn random_numbers_stay_below_the_bound_and_vary() {
        let rolls: Vec<u64> = (0..100).map(|_| random_below(1000)).collect();
        assert!(rolls.iter().all(|&r| r < 1000));
        assert!(rolls.iter().any(|&r| r != rolls[0]));
    }
}

/// How long the straggler's map calls take.
pub const STRAGGLER_SLEEP: Duration = Duration::from_secs(3);

/// `straggler`: a word count on which one worker is a slow machine.
///
/// The first worker process to run a map call claims the role by creating
/// `mr-straggler` (holding its pid) in the job's directory; a claim whose
/// process is gone is taken over, so the file left by an earlier job does
/// not matter. Every map call of that process sleeps [`STRAGGLER_SLEEP`]
/// first; everyone else is quick. The output is `wc`'s (compare with
/// `sequential --app wc`: run sequentially, the one process would be the
/// straggler for every file). It is meant for the shared-directory mode:
/// with `--serve`, each worker has a directory of its own, and each would
/// claim the role.
#[derive(Debug)]
pub struct Straggler;

fn claim_straggler(dir: &Path) -> bool {
    let path = dir.join("mr-straggler");
    let me = std::process::id();
    for _ in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write as _;
                let _ = write!(file, "{me}");
                return true;
            }
            Err(_) => {
                let holder: Option<i32> = fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                match holder {
                    Some(pid) if pid == me as i32 => return true,
                    Some(pid) if process_alive(pid) => return false,
                    // Left by a process that is gone (or half written:
                    // then its writer is alive and about to finish, and
                    // a second straggler is harmless).
                    _ => {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
    }
    false
}

impl App for Straggler {
    fn name(&self) -> &'static str {
        "straggler"
    }
    fn map(&self, cx: &Context<'_>, file: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        if claim_straggler(cx.dir) {
            thread::sleep(STRAGGLER_SLEEP);
        }
        mapreduce::WordCount.map(cx, file, contents, emit);
    }
    fn reduce(&self, cx: &Context<'_>, key: &str, values: Values<'_>) -> String {
        mapreduce::WordCount.reduce(cx, key, values)
    }
    fn combines(&self) -> bool {
        true
    }
}

/// How long `reduce_pause` holds the first reduce call of each process.
pub const REDUCE_PAUSE: Duration = Duration::from_secs(3);

/// `reduce_pause`: `wc`, except that the first reduce call of each
/// process waits [`REDUCE_PAUSE`] first. Between the last map task and
/// the first reduce output, a test has that long to kill a worker whose
/// map output nobody has merged yet.
#[derive(Debug)]
pub struct ReducePause;

impl App for ReducePause {
    fn name(&self) -> &'static str {
        "reduce_pause"
    }
    fn map(&self, cx: &Context<'_>, file: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        mapreduce::WordCount.map(cx, file, contents, emit);
    }
    fn reduce(&self, cx: &Context<'_>, key: &str, values: Values<'_>) -> String {
        static PAUSED: std::sync::Once = std::sync::Once::new();
        PAUSED.call_once(|| thread::sleep(REDUCE_PAUSE));
        mapreduce::WordCount.reduce(cx, key, values)
    }
    // No combiner: `reduce` then runs in reduce tasks only, never on the
    // map side, so the pause falls between the phases.
    fn combines(&self) -> bool {
        false
    }
}
