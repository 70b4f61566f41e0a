//! `mapreduce run`: a whole job on this machine.
//!
//! The process becomes the coordinator (on a free port of 127.0.0.1) and
//! starts N worker processes of its own executable, the way a cluster
//! scheduler would start them on other machines:
//!
//! ```text
//!   mapreduce run ──┬── coordinator (this process, async, stage-05 runtime)
//!                   ├── mapreduce worker --coordinator 127.0.0.1:PORT   (process 1)
//!                   ├── ...                                              (process N)
//!                   └── a blocking task that waits for the workers, so that
//!                       "every worker died" ends the job instead of hanging it
//! ```
//!
//! Under an emulator (the AArch64 tests run under qemu-user, and this machine
//! cannot exec an AArch64 binary directly), `COURSE_EMULATOR` holds the
//! command to put in front of the executable.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::future::{Either, select};
use runtime::Runtime;
use runtime::time::timeout;

use crate::app::App;
use crate::auth::Secret;
use crate::coordinator::{Coordinator, CoordinatorConfig, EXIT_GRACE, JobReport, check_inputs};
use crate::corpus::{self, CorpusSpec};

/// How to run a local job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The application (its name is passed to the workers).
    pub app: &'static dyn App,
    /// How many worker processes.
    pub workers: usize,
    /// How many reduce tasks.
    pub n_reduce: u32,
    /// How long a worker has to report a task.
    pub task_timeout: Duration,
    /// The inputs.
    pub files: Vec<String>,
    /// Where intermediate and output files go.
    pub dir: PathBuf,
    /// The command that starts this program (see [`self_command`]).
    pub program: Vec<OsString>,
    /// Per-task progress lines on stderr.
    pub progress: bool,
    /// Hand idle workers copies of the last running tasks.
    pub backup_tasks: bool,
}

/// What a local job did.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// The coordinator's report.
    pub report: JobReport,
    /// Total size of the inputs.
    pub input_bytes: u64,
    /// The output files, `mr-out-0` first.
    pub outputs: Vec<PathBuf>,
}

impl JobSummary {
    /// Map plus reduce tasks.
    pub fn tasks(&self) -> u32 {
        self.report.n_map + self.report.n_reduce
    }

    /// Input megabytes (10^6 bytes) per second of the job.
    pub fn mb_per_s(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.report.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The words that start `program`: `COURSE_EMULATOR` (split on
/// whitespace) first if it is set, since an AArch64 binary under qemu-user
/// cannot be exec'ed directly, then `program` itself.
pub fn emulated(program: impl Into<OsString>) -> Vec<OsString> {
    let mut command: Vec<OsString> = match std::env::var("COURSE_EMULATOR") {
        Ok(emulator) => emulator.split_whitespace().map(OsString::from).collect(),
        Err(_) => Vec::new(),
    };
    command.push(program.into());
    command
}

/// The command that starts this executable again (through the emulator,
/// if any; see [`emulated`]).
pub fn self_command() -> io::Result<Vec<OsString>> {
    Ok(emulated(std::env::current_exe()?))
}

/// Removes the files a previous job left in `dir` (`mr-out-*` and `mr-M-R`,
/// the temporary `.mr-*.tmp.PID.N` files of processes killed while writing
/// them, and the `.fetch-*` directories of reduce tasks that were killed
/// while fetching), so the outputs read afterwards are this job's only.
pub fn clean_job_files(dir: &Path) -> io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(".fetch-") && entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
            continue;
        }
        // A process killed between creating its temporary file and the
        // rename leaves `.NAME.tmp.PID.N` behind, and nobody else ever
        // removes it: a directory reused job after job (run's default)
        // would collect them for ever.
        let temp_of = name
            .strip_prefix('.')
            .and_then(|n| n.split_once(".tmp."))
            .filter(|(_, suffix)| is_numbers(suffix, '.'));
        let job_file = match temp_of {
            Some((base, _)) => base,
            None => name,
        };
        let Some(rest) = job_file.strip_prefix("mr-") else {
            continue;
        };
        if is_numbers(rest.strip_prefix("out-").unwrap_or(rest), '-') {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// `s` is one or more decimal numbers joined by `sep`.
fn is_numbers(s: &str, sep: char) -> bool {
    !s.is_empty()
        && s.split(sep)
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The corpus `run` counts when given no files: `bytes` of generated text
/// in 8 files under `base`, generated once and reused.
pub fn default_corpus(base: &Path, bytes: u64) -> io::Result<Vec<PathBuf>> {
    cached_corpus(
        base,
        &CorpusSpec {
            files: 8,
            ..CorpusSpec::new(bytes)
        },
    )
}

/// The corpus `spec` under `base`, generated on first use and reused after.
pub fn cached_corpus(base: &Path, spec: &CorpusSpec) -> io::Result<Vec<PathBuf>> {
    let dir = base.join(format!(
        "corpus-{}-{}-{}-v1",
        spec.bytes, spec.files, spec.seed
    ));
    let list = |dir: &Path| -> Vec<PathBuf> {
        (0..spec.files)
            .map(|f| dir.join(format!("corpus-{f:03}.txt")))
            .collect()
    };
    if dir.join(".complete").exists() {
        return Ok(list(&dir));
    }
    // Generate beside it and rename the whole directory into place, so a
    // run interrupted here never leaves half a corpus under the final name.
    let temp = base.join(format!(".corpus-tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&temp);
    let generated =
        corpus::generate(&temp, spec).and_then(|_| fs::write(temp.join(".complete"), b""));
    if let Err(e) = generated {
        // A full disk, say: leave nothing half made behind.
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }
    if fs::rename(&temp, &dir).is_err() {
        // Someone else finished first: use theirs.
        let _ = fs::remove_dir_all(&temp);
    }
    Ok(list(&dir))
}

/// Where `run` keeps the job's secret: in the job's directory, readable by
/// its owner only, made afresh for every job.
pub fn secret_path(dir: &Path) -> PathBuf {
    dir.join(".mr-secret")
}

fn spawn_worker(config: &JobConfig, addr: SocketAddr) -> io::Result<Child> {
    let (program, prefix) = config
        .program
        .split_first()
        .ok_or(io::ErrorKind::InvalidInput)?;
    Command::new(program)
        .args(prefix)
        .arg("worker")
        .arg("--app")
        .arg(config.app.name())
        .arg("--coordinator")
        .arg(addr.to_string())
        .arg("--dir")
        .arg(&config.dir)
        .arg("--secret-file")
        .arg(secret_path(&config.dir))
        .stdin(Stdio::null())
        .spawn()
}

fn describe(statuses: &[io::Result<ExitStatus>]) -> String {
    let parts: Vec<String> = statuses
        .iter()
        .map(|s| match s {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        })
        .collect();
    parts.join("; ")
}

/// Blocks until child `pid` has exited, without reaping it: its pid stays
/// ours until `Child::wait` reaps it. False if that cannot be done.
fn wait_exited_unreaped(pid: u32) -> bool {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value (plain integers
        // and a union of them); waitid writes into it and reads nothing.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the call.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return true;
        }
        // EINTR: try again; any other error: let Child::wait handle it.
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// SIGKILLs every worker not yet reaped.
fn stop_workers(pids: &[u32], reaped: &Mutex<Vec<bool>>) {
    let reaped = reaped.lock().unwrap_or_else(|p| p.into_inner());
    for (pid, done) in pids.iter().zip(reaped.iter()) {
        if !done {
            // SAFETY: kill(2) touches no memory of ours. The pid is our
            // child and not reaped (checked under the lock the reaper
            // holds while reaping), so it still names that process.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

// ANCHOR: run_job
/// Runs the job: coordinator here, workers as child processes.
pub fn run_job(config: &JobConfig) -> anyhow::Result<JobSummary> {
    let input_bytes = check_inputs(&config.files)?;
    crate::files::ensure_dir(&config.dir)?;
    clean_job_files(&config.dir)
        .with_context(|| format!("cannot clean {}", config.dir.display()))?;
    // Even on one machine, other users can reach 127.0.0.1: the job gets
    // a secret of its own.
    let secret_file = secret_path(&config.dir);
    let secret = Secret::create(&secret_file)
        .with_context(|| format!("cannot write {}", secret_file.display()))?;
    let coordinator_config = CoordinatorConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        files: config.files.clone(),
        n_reduce: config.n_reduce,
        task_timeout: config.task_timeout,
        progress: config.progress,
        backup_tasks: config.backup_tasks,
        secret: Some(secret),
        fetch: false,
    };

    let rt = Runtime::new().context("cannot start the runtime")?;
    let report = rt.block_on(async {
        let coordinator =
            Coordinator::bind(&coordinator_config).context("cannot listen on 127.0.0.1")?;
        let addr = coordinator.local_addr()?;
        let mut children = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            match spawn_worker(config, addr) {
                Ok(child) => children.push(child),
                Err(e) => {
                    for mut child in children {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    return Err(e).context("cannot start a worker process");
                }
            }
        }
        // Waiting for a child is a blocking call: it goes to the pool.
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        let reaped = Arc::new(Mutex::new(vec![false; children.len()]));
        let reaper = Arc::clone(&reaped);
        let all_exited = runtime::spawn_blocking(move || {
            children
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    let lock = || reaper.lock().unwrap_or_else(|p| p.into_inner());
                    if wait_exited_unreaped(c.id()) {
                        // Reap under the lock that `stop_workers` signals
                        // under, so it never signals a pid already reaped
                        // (which the system may have given to another
                        // process). The child has exited: this is quick.
                        let mut reaped = lock();
                        let status = c.wait();
                        reaped[i] = true;
                        status
                    } else {
                        // Cannot wait without reaping: give up signalling
                        // this child rather than block `stop_workers`.
                        lock()[i] = true;
                        c.wait()
                    }
                })
                .collect::<Vec<_>>()
        });
        match select(pin!(coordinator.run()), pin!(all_exited)).await {
            Either::Left((report, mut all_exited)) => {
                // Workers hear Exit and leave. One still busy with a task
                // that a backup copy finished is a straggler: its work is
                // no longer needed, so it is stopped rather than waited for.
                let statuses = match timeout(EXIT_GRACE * 2, &mut all_exited).await {
                    Ok(statuses) => statuses,
                    Err(_) => {
                        eprintln!(
                            "run: stopping the workers still busy after the job (their tasks were done by others)"
                        );
                        stop_workers(&pids, &reaped);
                        match timeout(Duration::from_secs(10), all_exited).await {
                            Ok(_) => return Ok(report),
                            Err(_) => {
                                eprintln!("run: workers still running after SIGKILL; leaving them");
                                return Ok(report);
                            }
                        }
                    }
                };
                match statuses {
                    Ok(statuses)
                        if statuses.iter().all(|s| matches!(s, Ok(st) if st.success())) => {}
                    Ok(statuses) => {
                        eprintln!("run: some workers ended badly: {}", describe(&statuses))
                    }
                    Err(e) => eprintln!("run: lost track of the workers: {e:?}"),
                }
                Ok(report)
            }
            Either::Right((statuses, coordinator)) => {
                // The workers may have heard Exit and gone while the
                // coordinator is still in its grace period: then it ends
                // in a moment. If it does not, the job was left unfinished.
                let statuses = statuses.map_err(|e| anyhow::anyhow!("{e:?}"))?;
                match timeout(EXIT_GRACE * 2, coordinator).await {
                    Ok(report) => Ok(report),
                    Err(_) => bail!(
                        "every worker exited before the job was done ({})",
                        describe(&statuses)
                    ),
                }
            }
        }
    });
    let _ = fs::remove_file(&secret_file);
    let report = report?;

    let outputs = (0..report.n_reduce)
        .map(|r| config.dir.join(crate::files::output_name(r)))
        .collect();
    Ok(JobSummary {
        report,
        input_bytes,
        outputs,
    })
}
// ANCHOR_END: run_job

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_removes_job_files_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("mr-clean-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let names = [
            "mr-out-0",
            "mr-out-12",
            "mr-3-4",
            "mr-out-",
            "mr-x-1",
            "mr-worker-map-7",
            "notes.txt",
            "mr-1-",
            ".mr-out-3.tmp.1234.0",
            ".mr-2-5.tmp.77.12",
            ".mr-2-5.tmp.x.1",
            ".notes.tmp.1.2",
        ];
        for n in names {
            fs::write(dir.join(n), b"").unwrap();
        }
        fs::create_dir_all(dir.join(".fetch-12-3-0")).unwrap();
        fs::write(dir.join(".fetch-12-3-0/mr-0-3"), b"").unwrap();
        fs::write(dir.join(".fetch-not-a-dir"), b"").unwrap();
        clean_job_files(&dir).unwrap();
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".fetch-not-a-dir",
                ".mr-2-5.tmp.x.1",
                ".notes.tmp.1.2",
                "mr-1-",
                "mr-out-",
                "mr-worker-map-7",
                "mr-x-1",
                "notes.txt"
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_default_corpus_is_generated_once_and_reused() {
        let base = std::env::temp_dir().join(format!("mr-defcorpus-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let a = default_corpus(&base, 40_000).unwrap();
        assert_eq!(a.len(), 8);
        let first = fs::read(&a[0]).unwrap();
        let b = default_corpus(&base, 40_000).unwrap();
        assert_eq!(a, b);
        assert_eq!(fs::read(&b[0]).unwrap(), first);
        fs::remove_dir_all(&base).unwrap();
    }
}
