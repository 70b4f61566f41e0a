//! `mapreduce`: the command line of stage 06.
//!
//! ```text
//!   mapreduce sequential  --app APP [--dir DIR] FILES...
//!   mapreduce coordinator [--fetch] [--listen ADDR] [--reduce R] [--task-timeout SECS] [--dir DIR]
//!                         [--quiet] [--backup-tasks] [--secret-file PATH] FILES...
//!   mapreduce worker      --app APP [--coordinator ADDR] [--dir DIR] [--connect-timeout SECS]
//!                         [--serve ADDR [--advertise ADDR]] [--secret-file PATH]
//!   mapreduce run         --app APP [--workers N] [--reduce R] [--task-timeout SECS] [--dir DIR]
//!                         [--bytes SIZE] [--quiet] [--backup-tasks] [FILES...]
//!   mapreduce corpus      --bytes N --out DIR [--files K] [--seed S]
//! ```
//!
//! Each subcommand is a thin shell over the library; this file turns its
//! results into lines on stderr and exit statuses (0 done, 1 failed, 2 bad
//! usage), which a library must not do itself.

mod lab_apps;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mapreduce::auth::Secret;
use mapreduce::coordinator::{Coordinator, CoordinatorConfig, check_inputs};
use mapreduce::corpus::{self, CorpusSpec};
use mapreduce::job::{self, JobConfig};
use mapreduce::wire::MAX_FETCH_MAPS;
use mapreduce::worker::{ServeConfig, WorkerConfig, WorkerExit, work};
use mapreduce::{App, Indexer, WordCount};
use runtime::Runtime;

// ANCHOR: registry
/// Every app `--app` can name.
static APPS: &[&dyn App] = &[
    &WordCount,
    &Indexer,
    &lab_apps::MTiming,
    &lab_apps::RTiming,
    &lab_apps::JobCount,
    &lab_apps::EarlyExit,
    &lab_apps::CRASH,
    &lab_apps::NOCRASH,
    &lab_apps::Straggler,
    &lab_apps::ReducePause,
];
// ANCHOR_END: registry

fn app_by_name(name: &str) -> Result<&'static dyn App, String> {
    APPS.iter()
        .copied()
        .find(|app| app.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = APPS.iter().map(|a| a.name()).collect();
            format!("unknown app '{name}' (known apps: {})", known.join(", "))
        })
}

/// The longest `--task-timeout` or `--connect-timeout` (about 11 days):
/// longer is as good as none, and a deadline absurdly far away would
/// overflow `Instant`.
const MAX_SECS: f64 = 1e6;

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: '{s}'"))?;
    if !(secs > 0.0 && secs <= MAX_SECS) {
        return Err(format!(
            "seconds must be above 0 and at most {MAX_SECS}: '{s}'"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{s}': {e}"))
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
}

#[derive(Debug, Parser)]
#[command(
    name = "mapreduce",
    version,
    about = "MapReduce (MIT 6.824 lab 1): a coordinator and worker processes over TCP, on the course's own async runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The reference: map every file and reduce every key in this process; writes mr-out-0.
    Sequential {
        /// The application (wc, indexer, ...).
        #[arg(long)]
        app: String,
        /// Directory for the output.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Input files.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Hand out one map task per file, then R reduce tasks, to workers over TCP.
    Coordinator {
        /// Address to listen on (port 0 picks a free port and prints it).
        #[arg(long, default_value = "127.0.0.1:6824")]
        listen: SocketAddr,
        /// Number of reduce tasks (R).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        reduce: u32,
        /// Seconds a worker has to finish a task before it goes to another.
        #[arg(long, default_value = "10", value_parser = parse_secs)]
        task_timeout: Duration,
        /// Directory where the workers write (checked for outputs at the end).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// No per-task progress lines.
        #[arg(long)]
        quiet: bool,
        /// Near the end of a phase, hand idle workers copies of the tasks still running.
        #[arg(long)]
        backup_tasks: bool,
        /// The job's secret (the same file for the coordinator and every worker).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Serve-and-fetch: workers keep their map output (they run with --serve); reducers fetch it.
        #[arg(long)]
        fetch: bool,
        /// Input files, one map task each.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Ask the coordinator for tasks and run them until the job is done.
    Worker {
        /// The application (wc, indexer, ...).
        #[arg(long)]
        app: String,
        /// Where the coordinator listens.
        #[arg(long, default_value = "127.0.0.1:6824")]
        coordinator: SocketAddr,
        /// Directory for intermediate and output files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Seconds to keep retrying a refused connection.
        #[arg(long, default_value = "1", value_parser = parse_secs)]
        connect_timeout: Duration,
        /// The job's secret (the same file as the coordinator's).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Serve-and-fetch: keep map output in --dir and serve it on this address (port 0 picks one).
        #[arg(long)]
        serve: Option<SocketAddr>,
        /// The address others reach --serve at, if not the --serve address itself.
        #[arg(long, requires = "serve")]
        advertise: Option<SocketAddr>,
    },
    /// A whole job on this machine: a coordinator and N worker processes.
    Run {
        /// The application (wc, indexer, ...).
        #[arg(long)]
        app: String,
        /// Number of worker processes [default: number of CPUs].
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: Option<u16>,
        /// Number of reduce tasks (R).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        reduce: u32,
        /// Seconds a worker has to finish a task before it goes to another.
        #[arg(long, default_value = "10", value_parser = parse_secs)]
        task_timeout: Duration,
        /// Directory for intermediate and output files [default: a directory under the system temp dir].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Size of the generated corpus used when no FILES are given.
        #[arg(long, default_value = "8M", value_parser = corpus::parse_size)]
        bytes: u64,
        /// No per-task progress lines.
        #[arg(long)]
        quiet: bool,
        /// Near the end of a phase, hand idle workers copies of the tasks still running.
        #[arg(long)]
        backup_tasks: bool,
        /// Input files; without any, a generated corpus is counted.
        files: Vec<String>,
    },
    /// Write a deterministic synthetic text corpus (Zipf-like word frequencies).
    Corpus {
        /// Total size, e.g. 100k, 64M, 1G.
        #[arg(long, value_parser = corpus::parse_size)]
        bytes: u64,
        /// Directory to write corpus-NNN.txt files into.
        #[arg(long)]
        out: PathBuf,
        /// Number of files [default: one per 2 MiB, 1 to 64].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        files: Option<u32>,
        /// Seed of the generator.
        #[arg(long, default_value_t = 6824)]
        seed: u64,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Sequential { .. } => "sequential",
            Command::Coordinator { .. } => "coordinator",
            Command::Worker { .. } => "worker",
            Command::Run { .. } => "run",
            Command::Corpus { .. } => "corpus",
        }
    }
}

/// A failure and the exit status it earns.
enum Failure {
    Usage(String),
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Failed(e.into())
    }
}

fn main() -> ExitCode {
    // A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills
    // the process mid-write, with no message and its temporary file left
    // behind. Ignored, the write fails with EFBIG like on a full disk: the
    // error is reported with the file's name and the temporary file is
    // removed. (Worker processes started by `run` run this line too.)
    // SAFETY: setting a signal to SIG_IGN installs no handler, so nothing
    // can run in signal context; no other thread exists yet.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let cli = Cli::parse();
    let name = cli.command.name();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("mapreduce {name}: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("mapreduce {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn app(name: &str) -> Result<&'static dyn App, Failure> {
    app_by_name(name).map_err(Failure::Usage)
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Sequential {
            app: name,
            dir,
            files,
        } => {
            let app = app(&name)?;
            let started = Instant::now();
            let outcome = mapreduce::sequential::run_sequential(app, &dir, &files)?;
            let output = dir.join("mr-out-0");
            eprintln!(
                "sequential: {} bytes, {} keys in {:.2} s; output in {}",
                outcome.bytes_in,
                outcome.keys,
                started.elapsed().as_secs_f64(),
                output.display()
            );
        }
        Command::Coordinator {
            listen,
            reduce,
            task_timeout,
            dir,
            quiet,
            backup_tasks,
            secret_file,
            fetch,
            files,
        } => {
            check_inputs(&files)?;
            if fetch && files.len() > MAX_FETCH_MAPS as usize {
                return Err(Failure::Usage(format!(
                    "--fetch takes at most {MAX_FETCH_MAPS} input files, not {}",
                    files.len()
                )));
            }
            let config = CoordinatorConfig {
                listen,
                files,
                n_reduce: reduce,
                task_timeout,
                progress: !quiet,
                backup_tasks,
                secret: read_secret(secret_file.as_deref())?,
                fetch,
            };
            let rt = Runtime::new().context("cannot start the runtime")?;
            let report = rt.block_on(async {
                let coordinator = Coordinator::bind(&config)
                    .with_context(|| format!("cannot listen on {listen}"))?;
                eprintln!("coordinator: listening on {}", coordinator.local_addr()?);
                anyhow::Ok(coordinator.run().await)
            })?;
            for (r, at) in report.outputs_at.iter().enumerate() {
                if let Some(at) = at {
                    eprintln!("coordinator: mr-out-{r} is in the --dir of the worker serving {at}");
                }
            }
            let missing: Vec<String> = (0..reduce)
                .map(mapreduce::files::output_name)
                .filter(|name| !dir.join(name).exists())
                .collect();
            if !fetch && !missing.is_empty() {
                eprintln!(
                    "coordinator: note: not in {}: {}",
                    dir.display(),
                    missing.join(" ")
                );
            }
            eprintln!(
                "coordinator: job done: {} map + {} reduce tasks, {} taken back, {} backup copies, {:.2} s",
                report.n_map,
                report.n_reduce,
                report.reassigned,
                report.backups,
                report.elapsed.as_secs_f64()
            );
        }
        Command::Worker {
            app: name,
            coordinator,
            dir,
            connect_timeout,
            secret_file,
            serve,
            advertise,
        } => {
            let app = app(&name)?;
            mapreduce::files::ensure_dir(&dir)?;
            if serve.is_some() {
                // This directory holds this worker's map output only: what
                // an earlier job left in it must not be served as ours.
                job::clean_job_files(&dir)
                    .with_context(|| format!("cannot clean {}", dir.display()))?;
            }
            let config = WorkerConfig {
                coordinator,
                app,
                dir,
                connect_patience: connect_timeout,
                secret: read_secret(secret_file.as_deref())?,
                serve: serve.map(|listen| ServeConfig { listen, advertise }),
            };
            let rt = Runtime::new().context("cannot start the runtime")?;
            let exit: WorkerExit = rt.block_on(work(config))?;
            eprintln!("worker {}: {exit}", std::process::id());
        }
        Command::Run {
            app: name,
            workers,
            reduce,
            task_timeout,
            dir,
            bytes,
            quiet,
            backup_tasks,
            files,
        } => {
            let app = app(&name)?;
            let base = std::env::temp_dir().join("mapreduce");
            let files = if files.is_empty() {
                let paths =
                    job::default_corpus(&base, bytes).context("cannot generate the corpus")?;
                eprintln!(
                    "run: no input files given; counting a generated corpus of {bytes} bytes in {}",
                    paths[0].parent().unwrap_or(Path::new(".")).display()
                );
                paths
                    .iter()
                    .map(|p| {
                        p.to_str()
                            .map(str::to_string)
                            .context("temp dir path is not UTF-8")
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            } else {
                files
            };
            let workers = workers.map(usize::from).unwrap_or_else(default_workers);
            let config = JobConfig {
                app,
                workers,
                n_reduce: reduce,
                task_timeout,
                files,
                dir: dir.unwrap_or_else(|| base.join("run")),
                program: job::self_command().context("cannot find this executable")?,
                progress: !quiet,
                backup_tasks,
            };
            let summary = job::run_job(&config)?;
            eprintln!(
                "run: {} tasks ({} map, {} reduce), {} workers, {:.2} MB in {:.3} s = {:.1} MB/s, {} taken back, {} backup copies",
                summary.tasks(),
                summary.report.n_map,
                summary.report.n_reduce,
                workers,
                summary.input_bytes as f64 / 1e6,
                summary.report.elapsed.as_secs_f64(),
                summary.mb_per_s(),
                summary.report.reassigned,
                summary.report.backups,
            );
            eprintln!("run: outputs in {}/mr-out-*", config.dir.display());
            if app.name() == "wc" {
                print_top_words(&summary.outputs, 10)?;
            }
        }
        Command::Corpus {
            bytes,
            out,
            files,
            seed,
        } => {
            let mut spec = CorpusSpec::new(bytes);
            spec.seed = seed;
            if let Some(files) = files {
                spec.files = files;
            }
            let paths = corpus::generate(&out, &spec)
                .with_context(|| format!("cannot write into {}", out.display()))?;
            let total: u64 = paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            eprintln!(
                "corpus: {} files, {total} bytes in {}",
                paths.len(),
                out.display()
            );
        }
    }
    Ok(())
}

/// Reads `--secret-file`, if given.
fn read_secret(path: Option<&Path>) -> Result<Option<Secret>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let secret = Secret::read(path)
        .with_context(|| format!("cannot use '{}' as the job's secret", path.display()))?;
    Ok(Some(secret))
}

/// Prints the `n` most frequent words of a `wc` job on stdout.
fn print_top_words(outputs: &[PathBuf], n: usize) -> anyhow::Result<()> {
    let mut counts: Vec<(u64, String)> = Vec::new();
    for path in outputs {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines() {
            if let Some((word, count)) = line.rsplit_once(' ') {
                counts.push((count.parse().unwrap_or(0), word.to_string()));
            }
        }
    }
    counts.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    println!("{} distinct words; the {n} most frequent:", counts.len());
    for (count, word) in counts.iter().take(n) {
        println!("{count:>10} {word}");
    }
    Ok(())
}
