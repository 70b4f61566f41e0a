//! The coordinator: an RPC server around a [`Schedule`].
//!
//! Each worker holds one TCP connection; the coordinator runs one async task
//! per connection on the stage-05 runtime, all on one thread. A task reads a
//! request, asks the schedule, writes the reply, and goes back to reading:
//!
//! ```text
//!   accept loop ──spawn──► connection task (one per worker)
//!                            loop {
//!                              read frame ──► GetTask ──► assign() ─┬─ task ──► reply Map/Reduce
//!                                         │                         ├─ Exit ──► reply Exit
//!                                         │                         └─ Wait ──► await Signal
//!                                         │                                     or deadline, retry
//!                                         └─► Done ──► complete(), notify ──► reply Ack
//!                                             (only of a task handed out on this connection)
//!                            }
//!                            on close or bad frame: worker_lost(), notify
//! ```
//!
//! Nothing here sleeps and asks again: a `GetTask` that finds every task
//! busy waits on the [`Signal`] (a task finished, a worker left) or on the
//! earliest running task's deadline, through the runtime's timer. A
//! malformed, oversized or half-sent frame ends that connection only; its
//! task goes back to the pool at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runtime::net::{TcpListener, TcpStream};
use runtime::time::{sleep, timeout};

use crate::auth::{self, Secret};
use crate::schedule::{Assignment, Phase, Report, Schedule, TaskId, TaskKind, WorkerId};
use crate::signal::Signal;
use crate::wire::{self, FetchReduceTask, MAX_FRAME, MAX_TASKS, Message};

/// Once a frame has started, the rest must arrive within this time; a reply
/// must be accepted by the worker's socket within it too.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// After the last output is in place, how long the coordinator keeps
/// answering so that waiting workers hear `Exit` rather than a closed socket.
pub const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How to run a job.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// The address to listen on (port 0: pick a free one).
    pub listen: SocketAddr,
    /// The input files, one map task each, exactly as given.
    pub files: Vec<String>,
    /// The number of reduce tasks (R).
    pub n_reduce: u32,
    /// How long a worker has to report a task.
    pub task_timeout: Duration,
    /// Print a line per finished task on stderr.
    pub progress: bool,
    /// Hand idle workers copies of the last running tasks (the paper's
    /// backup tasks).
    pub backup_tasks: bool,
    /// If set, every connection must prove it knows this secret first.
    pub secret: Option<Secret>,
    /// Serve-and-fetch: workers keep their map output and serve it; reduce
    /// tasks are told where to fetch it ([`crate::fetch`]).
    pub fetch: bool,
}

/// What the job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// Map tasks (input files).
    pub n_map: u32,
    /// Reduce tasks.
    pub n_reduce: u32,
    /// Tasks taken back from a worker (timeout or lost connection).
    pub reassigned: u64,
    /// Backup copies handed out.
    pub backups: u64,
    /// Serve-and-fetch: where each `mr-out-R` was written (the serve
    /// address of the worker that ran reduce task R).
    pub outputs_at: Vec<Option<SocketAddr>>,
    /// From the start of listening to the last output in place.
    pub elapsed: Duration,
}

/// An input file the coordinator will not start with.
#[derive(Debug)]
pub struct InputError {
    /// The path as given.
    pub file: String,
    /// What is wrong with it.
    pub error: io::Error,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read input file '{}': {}", self.file, self.error)
    }
}

impl std::error::Error for InputError {}

// ANCHOR: check_inputs
/// Checks that every input is a readable file before the job starts, and
/// returns their total size. A typo should stop the job here, with the
/// file's name, not fail a map task on some worker later.
pub fn check_inputs(files: &[String]) -> Result<u64, InputError> {
    if files.len() > MAX_TASKS as usize {
        return Err(InputError {
            file: files[MAX_TASKS as usize].clone(),
            error: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("more than {MAX_TASKS} input files"),
            ),
        });
    }
    let mut total = 0;
    for file in files {
        let fail = |error| InputError {
            file: file.clone(),
            error,
        };
        if file.len() > MAX_FRAME / 2 {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path too long",
            )));
        }
        let (_, len) = crate::files::open_input(Path::new(file)).map_err(fail)?;
        total += len;
    }
    Ok(total)
}
// ANCHOR_END: check_inputs

/// State every connection task shares.
#[derive(Debug)]
struct Shared {
    schedule: Mutex<Schedule>,
    /// Notified when a task finishes or is taken back, and when a
    /// connection closes.
    changed: Signal,
    connections: Mutex<usize>,
    progress: bool,
    secret: Option<Secret>,
    /// Serve-and-fetch bookkeeping; `None` in the shared-directory mode.
    fetch: Option<Mutex<FetchState>>,
    /// When the coordinator started listening, for the progress lines.
    started: Instant,
}

/// Where map output lives, in serve-and-fetch mode.
#[derive(Debug)]
struct FetchState {
    /// The serve address of each joined connection.
    serving: HashMap<WorkerId, SocketAddr>,
    /// For each done map task: the connection that did it and where its
    /// output is served.
    map_source: Vec<Option<(WorkerId, SocketAddr)>>,
    /// For each done reduce task: where its output was written.
    output_at: Vec<Option<SocketAddr>>,
    /// Serve addresses a reducer could not fetch from: workers serving
    /// there get no more tasks (their output could not be used).
    unreachable: HashSet<SocketAddr>,
}

impl Shared {
    fn fetch_state(&self) -> Option<MutexGuard<'_, FetchState>> {
        let state = self.fetch.as_ref()?;
        Some(state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Serve-and-fetch: the map output served at `lost` is gone (its
    /// worker left, or a reducer could not fetch from it). Every map task
    /// whose output was there runs again: the paper's rule for completed
    /// map tasks of a failed worker.
    fn redo_maps_at(&self, lost: impl Fn(WorkerId, SocketAddr) -> bool, why: &str) {
        let Some(mut fetch) = self.fetch_state() else {
            return;
        };
        let mut s = self.schedule();
        if s.phase() == Phase::Done {
            return;
        }
        let mut redone = Vec::new();
        for (m, source) in fetch.map_source.iter_mut().enumerate() {
            if let Some((conn, addr)) = *source
                && lost(conn, addr)
            {
                *source = None;
                if s.redo_map(m as u32) {
                    redone.push(m);
                }
            }
        }
        drop((s, fetch));
        if !redone.is_empty() {
            self.log(format_args!("{why}: map tasks {redone:?} run again"));
            self.changed.notify_all();
        }
    }

    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        // Schedule methods do not panic midway, so a poisoned lock (a panic
        // elsewhere while holding it) still guards a consistent schedule.
        self.schedule.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connections(&self) -> MutexGuard<'_, usize> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, line: fmt::Arguments<'_>) {
        if self.progress {
            let t = self.started.elapsed().as_secs_f64();
            eprintln!("coordinator: [{t:7.3}s] {line}");
        }
    }
}

/// A coordinator bound to its address, ready to [`run`](Coordinator::run).
#[derive(Debug)]
pub struct Coordinator {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Coordinator {
    /// Binds the listening socket. Call inside the runtime. Fails if the
    /// address is busy; the inputs should have passed [`check_inputs`].
    pub fn bind(config: &CoordinatorConfig) -> io::Result<Coordinator> {
        let listener = TcpListener::bind(config.listen)?;
        let mut schedule =
            Schedule::new(config.files.clone(), config.n_reduce, config.task_timeout);
        if config.backup_tasks {
            schedule = schedule.with_backups();
        }
        let shared = Shared {
            schedule: Mutex::new(schedule),
            changed: Signal::new(),
            connections: Mutex::new(0),
            progress: config.progress,
            secret: config.secret.clone(),
            fetch: config.fetch.then(|| {
                Mutex::new(FetchState {
                    serving: HashMap::new(),
                    map_source: vec![None; config.files.len()],
                    output_at: vec![None; config.n_reduce.max(1) as usize],
                    unreachable: HashSet::new(),
                })
            }),
            started: Instant::now(),
        };
        Ok(Coordinator {
            listener,
            shared: Arc::new(shared),
        })
    }

    /// The address workers should connect to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    // ANCHOR: run
    /// Serves workers until every output is in place, then returns.
    pub async fn run(self) -> JobReport {
        let shared = self.shared;
        let started = shared.started;
        let acceptor = runtime::spawn(accept_loop(self.listener, Arc::clone(&shared)));

        // Wait phase of the whole job: until the schedule says Done.
        loop {
            let seen = shared.changed.generation();
            if shared.schedule().phase() == Phase::Done {
                break;
            }
            shared.changed.changed(seen).await;
        }
        let elapsed = started.elapsed();

        // Every output is in place. Give connected workers a moment to
        // hear Exit and hang up, but never wait on them for long.
        let grace_end = Instant::now() + EXIT_GRACE;
        loop {
            let seen = shared.changed.generation();
            let now = Instant::now();
            if *shared.connections() == 0 || now >= grace_end {
                break;
            }
            let _ = timeout(grace_end - now, shared.changed.changed(seen)).await;
        }
        acceptor.abort();

        let outputs_at = shared
            .fetch_state()
            .map(|f| f.output_at.clone())
            .unwrap_or_default();
        let s = shared.schedule();
        JobReport {
            outputs_at,
            n_map: s.n_map(),
            n_reduce: s.n_reduce(),
            reassigned: s.reassigned(),
            backups: s.backups_handed(),
            elapsed,
        }
    }
    // ANCHOR_END: run
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id: WorkerId = 0;
    let mut failing = false;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if failing {
                    shared.log(format_args!("accepting connections again"));
                    failing = false;
                }
                next_id += 1;
                *shared.connections() += 1;
                runtime::spawn(serve_connection(stream, peer, Arc::clone(&shared), next_id));
            }
            Err(e) => {
                // Out of file descriptors, say: back off instead of
                // spinning, and say so once, not twenty times a second.
                if !failing {
                    shared.log(format_args!("accept failed: {e}; retrying"));
                    failing = true;
                }
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

// ANCHOR: serve_connection
/// Answers one worker's requests until it hangs up or misbehaves.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    conn: WorkerId,
) {
    // The tasks handed out on this connection: only those may it report.
    // Without this, a confused or hostile client could report a task that
    // another worker is still running, and the reduce phase would start
    // before that map's files exist.
    let mut handed: Vec<TaskId> = Vec::new();
    // With a job secret, nothing is read as a frame before the peer
    // proved it knows the secret.
    let refused = match &shared.secret {
        None => None,
        Some(secret) => {
            match timeout(FRAME_TIMEOUT, auth::server_handshake(&mut stream, secret)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("authentication failed: {e}")),
                Err(_) => Some(format!(
                    "authentication failed: no proof within {FRAME_TIMEOUT:?}"
                )),
            }
        }
    };
    let trouble: Option<String> = if refused.is_some() {
        refused
    } else {
        serve_frames(&mut stream, &shared, conn, &mut handed).await
    };
    if let Some(why) = trouble {
        shared.log(format_args!("closing connection {conn} from {peer}: {why}"));
    }
    let mut lost = shared.schedule().worker_lost(conn);
    if shared.fetch.is_some() {
        // `worker_lost` looks at the current phase only. In serve-and-fetch
        // mode the job can be back in the map phase (lost map output) while
        // this worker still held a reduce task: give that back too, rather
        // than wait for its deadline.
        let mut s = shared.schedule();
        for task in handed.iter().filter(|t| t.kind == TaskKind::Reduce) {
            if s.give_back(*task, conn) {
                lost.push(*task);
            }
        }
    }
    for task in lost {
        shared.log(format_args!(
            "{task}: its worker left; handing it out again"
        ));
    }
    let serving = shared
        .fetch_state()
        .and_then(|mut f| f.serving.remove(&conn));
    if let Some(addr) = serving {
        shared.redo_maps_at(
            |owner, _| owner == conn,
            &format!("the worker serving {addr} left; its map output is gone"),
        );
    }
    *shared.connections() -= 1;
    shared.changed.notify_all();
}

/// The request-reply loop of one connection; `Some(why)` if it ended in
/// trouble, `None` on a clean close.
async fn serve_frames(
    stream: &mut TcpStream,
    shared: &Shared,
    conn: WorkerId,
    handed: &mut Vec<TaskId>,
) -> Option<String> {
    // Serve-and-fetch: where this worker serves its map output, and the
    // sources each reduce task it was handed was told to fetch from.
    let mut joined: Option<SocketAddr> = None;
    let mut sources: HashMap<u32, Vec<SocketAddr>> = HashMap::new();
    let mut asked = false;
    loop {
        // A worker may compute for minutes between requests: no deadline
        // for a frame to start, except the first. A worker asks as soon as
        // it connects; a peer that never does must not keep a descriptor
        // for the whole job.
        let start = wire::read_frame_start(stream);
        let started = if asked {
            start.await
        } else {
            match timeout(FRAME_TIMEOUT, start).await {
                Ok(started) => started,
                Err(_) => return Some(format!("no request within {FRAME_TIMEOUT:?}")),
            }
        };
        asked = true;
        let first = match started {
            Ok(Some(byte)) => byte,
            Ok(None) => return None,
            Err(e) => return Some(e.to_string()),
        };
        // ...but once started, it must finish promptly.
        let payload = match timeout(FRAME_TIMEOUT, wire::read_frame_rest(stream, first)).await {
            Ok(Ok(payload)) => payload,
            Ok(Err(e)) => return Some(e.to_string()),
            Err(_) => return Some(format!("frame not finished within {FRAME_TIMEOUT:?}")),
        };
        let reply = match Message::decode(&payload) {
            Ok(Message::GetTask { .. }) if shared.fetch.is_some() && joined.is_none() => {
                let reason = "this job runs with --fetch: start the worker with --serve ADDR";
                refuse(stream, reason).await;
                return Some(format!("refused: {reason}"));
            }
            Ok(Message::GetTask { .. })
                if joined.is_some_and(|addr| {
                    shared
                        .fetch_state()
                        .is_some_and(|f| f.unreachable.contains(&addr))
                }) =>
            {
                let reason = format!(
                    "reducers cannot fetch map output from {} (is --advertise right?)",
                    joined.map(|a| a.to_string()).unwrap_or_default()
                );
                refuse(stream, &reason).await;
                return Some(format!("refused: {reason}"));
            }
            Ok(Message::GetTask { worker: _ }) => {
                let reply = next_task(shared, conn).await;
                if let Some(task) = reply.task_id() {
                    shared.log(format_args!("{task} handed to connection {conn}"));
                    handed.push(task);
                }
                if let Message::FetchReduce(t) = &reply {
                    sources.insert(t.index, t.sources.clone());
                }
                reply
            }
            Ok(Message::Join { serve }) if joined.is_none() => {
                let Some(mut fetch) = shared.fetch_state() else {
                    let reason = "this job shares one directory: start the worker without --serve";
                    refuse(stream, reason).await;
                    return Some(format!("refused: {reason}"));
                };
                fetch.serving.insert(conn, serve);
                drop(fetch);
                joined = Some(serve);
                shared.log(format_args!(
                    "connection {conn} serves map output at {serve}"
                ));
                Message::Ack
            }
            Ok(Message::FetchFailed { reduce, map })
                if handed.contains(&TaskId {
                    kind: TaskKind::Reduce,
                    index: reduce,
                }) =>
            {
                let task = TaskId {
                    kind: TaskKind::Reduce,
                    index: reduce,
                };
                shared.schedule().give_back(task, conn);
                let failed = sources
                    .get(&reduce)
                    .and_then(|s| s.get(map as usize))
                    .copied();
                if let Some(failed) = failed {
                    // The worker serving there gets no more tasks: what it
                    // makes nobody can fetch. (It is told so at its next
                    // GetTask, and leaves.)
                    if let Some(mut f) = shared.fetch_state() {
                        f.unreachable.insert(failed);
                    }
                    shared.redo_maps_at(
                        |_, addr| addr == failed,
                        &format!("{task} could not fetch map {map}'s output from {failed}"),
                    );
                }
                shared.changed.notify_all();
                Message::Ack
            }
            Ok(Message::Done { task, worker }) if handed.contains(&task) => {
                record_done(shared, task, worker, conn, joined);
                Message::Ack
            }
            Ok(Message::Done { task, .. }) => {
                return Some(format!("it reports {task}, which it was never given"));
            }
            Ok(other) => return Some(format!("unexpected {other:?} from a worker")),
            Err(e) => return Some(e.to_string()),
        };
        match timeout(FRAME_TIMEOUT, wire::write_message(stream, &reply)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Some(e.to_string()),
            Err(_) => return Some("reply not accepted in time".to_string()),
        }
    }
}
// ANCHOR_END: serve_connection

// ANCHOR: next_task
/// The reply to `GetTask`: a task, or `Exit`, after waiting as long as it
/// takes for one of them.
async fn next_task(shared: &Shared, conn: WorkerId) -> Message {
    loop {
        // Read the generation before looking at the schedule, so a change
        // between the look and the wait is not missed.
        let seen = shared.changed.generation();
        let now = Instant::now();
        // `assign` takes back timed-out tasks itself; `expire` first only
        // so that the log can say which ones.
        let (expired, assignment, backups_before) = {
            let mut s = shared.schedule();
            let expired = s.expire(now);
            let before = s.backups_handed();
            (expired, s.assign(conn, now), before)
        };
        if !expired.is_empty() {
            for task in &expired {
                shared.log(format_args!("{task} timed out; handing it out again"));
            }
            shared.changed.notify_all();
        }
        if shared.schedule().backups_handed() > backups_before
            && let Some(task) = task_of(&assignment)
        {
            shared.log(format_args!("{task}: backup copy to connection {conn}"));
        }
        match assignment {
            Assignment::Map(task) => return Message::Map(task),
            Assignment::Reduce(task) => {
                let Some(fetch) = shared.fetch_state() else {
                    return Message::Reduce(task);
                };
                // Every map task is done, so each has a source.
                let sources: Option<Vec<SocketAddr>> = fetch
                    .map_source
                    .iter()
                    .map(|s| s.map(|(_, addr)| addr))
                    .collect();
                match sources {
                    Some(sources) => {
                        return Message::FetchReduce(FetchReduceTask {
                            index: task.index,
                            sources,
                        });
                    }
                    None => {
                        // Cannot happen (a map is Done only with its
                        // source recorded); give the task back rather
                        // than hand out a reduce that cannot run.
                        drop(fetch);
                        shared.schedule().give_back(
                            TaskId {
                                kind: TaskKind::Reduce,
                                index: task.index,
                            },
                            conn,
                        );
                        shared.changed.notify_all();
                        continue;
                    }
                }
            }
            Assignment::Exit => return Message::Exit,
            // Every remaining task is running: wait for a change, or for
            // the first deadline (then the next assign takes that task back).
            Assignment::Wait {
                until: Some(deadline),
            } => {
                let _ = timeout(
                    deadline.saturating_duration_since(now),
                    shared.changed.changed(seen),
                )
                .await;
            }
            Assignment::Wait { until: None } => shared.changed.changed(seen).await,
        }
    }
}
// ANCHOR_END: next_task

/// The task `assignment` hands out, if it hands one out.
fn task_of(assignment: &Assignment) -> Option<TaskId> {
    match assignment {
        Assignment::Map(t) => Some(TaskId {
            kind: TaskKind::Map,
            index: t.index,
        }),
        Assignment::Reduce(t) => Some(TaskId {
            kind: TaskKind::Reduce,
            index: t.index,
        }),
        _ => None,
    }
}

/// Tells a worker why it is not welcome; the caller then hangs up.
async fn refuse(stream: &mut TcpStream, reason: &str) {
    let message = Message::Refuse {
        reason: reason.to_string(),
    };
    let _ = timeout(FRAME_TIMEOUT, wire::write_message(stream, &message)).await;
}

fn record_done(shared: &Shared, task: TaskId, pid: u32, conn: WorkerId, serve: Option<SocketAddr>) {
    // Lock order: fetch state, then schedule (as in `redo_maps_at`).
    let mut fetch = shared.fetch_state();
    let (report, (maps, reduces), (n_map, n_reduce)) = {
        let mut s = shared.schedule();
        let report = s.complete(task);
        (report, s.done_counts(), (s.n_map(), s.n_reduce()))
    };
    if let (Report::Accepted, Some(fetch), Some(serve)) = (report, fetch.as_mut(), serve) {
        let i = task.index as usize;
        match task.kind {
            TaskKind::Map => fetch.map_source[i] = Some((conn, serve)),
            TaskKind::Reduce => fetch.output_at[i] = Some(serve),
        }
    }
    drop(fetch);
    match report {
        Report::Accepted => {
            shared.log(format_args!(
                "{task} done by worker {pid} (maps {maps}/{n_map}, reduces {reduces}/{n_reduce})"
            ));
            shared.changed.notify_all();
        }
        Report::AlreadyDone => shared.log(format_args!(
            "{task}: late report from worker {pid}, ignored"
        )),
        Report::Unknown => shared.log(format_args!(
            "{task}: never handed out, report from worker {pid} ignored"
        )),
    }
}
