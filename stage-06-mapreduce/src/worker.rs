//! The worker: asks for tasks, runs them, reports them, until told to exit.
//!
//! ```text
//!   connect ──► loop {  send GetTask ──► (the coordinator may hold the reply)
//!                       ◄── Map / Reduce: run it in spawn_blocking,
//!                                         send Done, ◄── Ack
//!                       ◄── Exit: the job is done, leave
//!               }
//! ```
//!
//! The worker is an async program on the stage-05 runtime: its socket is
//! driven by the reactor, while the map or reduce call (CPU and file I/O,
//! seconds long) runs on the runtime's blocking pool through
//! `spawn_blocking`, never on the thread that polls futures.
//!
//! If the coordinator cannot be reached, or hangs up (the job is over, or it
//! crashed), the worker has nothing to do and ends normally, saying why.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use runtime::net::{TcpListener, TcpStream};
use runtime::time::{sleep, timeout};

use crate::app::App;
use crate::auth::{self, Secret};
use crate::coordinator::FRAME_TIMEOUT;
use crate::fetch::{self, FetchReduceError};
use crate::schedule::{TaskId, TaskKind};
use crate::task::{self, TaskOutcome};
use crate::wire::{self, FetchReduceTask, Message, WireError};

/// How to run a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Where the coordinator listens.
    pub coordinator: SocketAddr,
    /// The application, chosen by name on the command line.
    pub app: &'static dyn App,
    /// The job's directory (intermediate and output files).
    pub dir: PathBuf,
    /// How long to keep trying to connect (the coordinator may still be
    /// starting).
    pub connect_patience: Duration,
    /// The job's secret, if the job has one: proved to the coordinator
    /// before the first request.
    pub secret: Option<Secret>,
    /// Serve-and-fetch: keep map output in `dir` and serve it here.
    pub serve: Option<ServeConfig>,
}

/// Where a worker serves its map output (serve-and-fetch mode).
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    /// The address to listen on (port 0: pick one).
    pub listen: SocketAddr,
    /// The address others reach it at, if not `listen` (port 0: the port
    /// picked for `listen`).
    pub advertise: Option<SocketAddr>,
}

/// Aborts a task when dropped: the file server lives as long as `work`.
struct AbortOnDrop(runtime::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a worker stopped, when nothing went wrong on its side.
#[derive(Debug)]
pub enum WorkerExit {
    /// The coordinator said the job is done.
    JobDone {
        /// Tasks this worker ran.
        tasks: u64,
    },
    /// No coordinator at the address.
    Unreachable(SocketAddr, io::Error),
    /// The coordinator hung up (finished, or crashed).
    CoordinatorGone {
        /// Tasks this worker ran.
        tasks: u64,
    },
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerExit::JobDone { tasks } => {
                write!(f, "job done after {tasks} task(s) here; exiting")
            }
            WorkerExit::Unreachable(addr, e) => {
                write!(f, "cannot reach the coordinator at {addr} ({e}); exiting")
            }
            WorkerExit::CoordinatorGone { tasks } => {
                write!(
                    f,
                    "the coordinator went away (after {tasks} task(s) here); exiting"
                )
            }
        }
    }
}

/// Connects, retrying refused connections until `patience` runs out.
async fn connect(addr: SocketAddr, patience: Duration) -> io::Result<TcpStream> {
    // A patience too long to add to `Instant` (which would panic) is
    // a day: far more than any coordinator takes to start.
    let now = Instant::now();
    let give_up = now
        .checked_add(patience)
        .unwrap_or(now + Duration::from_secs(24 * 3600));
    loop {
        let left = give_up
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let err = match timeout(left, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connection attempt timed out"),
        };
        if Instant::now() >= give_up || err.kind() != io::ErrorKind::ConnectionRefused {
            return Err(err);
        }
        // A refused connect is instant; wait a little before the next one.
        sleep(Duration::from_millis(50)).await;
    }
}

/// One request, one reply. A clean close becomes `UnexpectedEof`; a
/// `Refuse` becomes a `PermissionDenied` error carrying its reason.
async fn call(stream: &mut TcpStream, request: &Message) -> io::Result<Message> {
    wire::write_message(stream, request).await?;
    // The coordinator may hold a GetTask reply for as long as every task
    // is busy: no deadline for the reply to start. But a reply that starts
    // and stalls comes from a broken coordinator, and waiting on it would
    // keep this worker alive for ever; the coordinator gives us the same
    // deadline.
    let Some(first) = wire::read_frame_start(stream).await? else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    let payload = match timeout(FRAME_TIMEOUT, wire::read_frame_rest(stream, first)).await {
        Ok(payload) => payload?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reply not finished within {FRAME_TIMEOUT:?}"),
            ));
        }
    };
    match Message::decode(&payload)? {
        Message::Refuse { reason } => Err(io::Error::new(io::ErrorKind::PermissionDenied, reason)),
        reply => Ok(reply),
    }
}

/// `Err` from [`call`]: a protocol violation is our error; anything else
/// means the coordinator is gone.
fn hung_up(e: io::Error) -> anyhow::Result<()> {
    let secret_asked = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<WireError>())
        == Some(&WireError::SecretAsked);
    if secret_asked {
        bail!("the coordinator wants the job's secret: start the worker with --secret-file")
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        bail!("the coordinator refused this worker: {e}")
    } else if e.kind() == io::ErrorKind::InvalidData {
        Err(e).context("the coordinator broke the protocol")
    } else {
        Ok(())
    }
}

/// Connects to the coordinator and, if the job has a secret, proves it;
/// in serve-and-fetch mode, starts the file server and says where it is.
/// `Ok(Err(exit))` if there is no coordinator to work for.
async fn join_job(
    config: &WorkerConfig,
) -> anyhow::Result<Result<(TcpStream, Option<AbortOnDrop>), WorkerExit>> {
    let mut stream = match connect(config.coordinator, config.connect_patience).await {
        Ok(stream) => stream,
        Err(e) => return Ok(Err(WorkerExit::Unreachable(config.coordinator, e))),
    };
    if let Some(secret) = &config.secret {
        let refused = "the coordinator did not let this worker in";
        // No deadline for the challenge to start, as for any reply: a
        // busy coordinator may take a while to accept this connection
        // (one without a secret hangs up on a client that asks nothing).
        let first = auth::await_challenge(&mut stream).await.context(refused)?;
        match timeout(
            FRAME_TIMEOUT,
            auth::finish_client_handshake(&mut stream, secret, first),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e).context(refused),
            Err(_) => {
                bail!("the coordinator's challenge was not finished within {FRAME_TIMEOUT:?}")
            }
        }
    }
    let Some(serve) = config.serve else {
        return Ok(Ok((stream, None)));
    };
    let listener = TcpListener::bind(serve.listen)
        .with_context(|| format!("cannot serve map output on {}", serve.listen))?;
    let bound = listener.local_addr()?;
    let mut advertise = serve.advertise.unwrap_or(bound);
    if advertise.port() == 0 {
        advertise.set_port(bound.port());
    }
    if advertise.ip().is_unspecified() {
        bail!(
            "--serve listens on {bound}, an address others cannot connect to: give --advertise IP:PORT"
        );
    }
    let server = AbortOnDrop(runtime::spawn(fetch::serve_files(
        listener,
        config.dir.clone(),
        config.secret.clone(),
    )));
    match call(&mut stream, &Message::Join { serve: advertise }).await {
        Ok(Message::Ack) => {}
        Ok(other) => bail!("the coordinator answered Join with {other:?}"),
        Err(e) => {
            hung_up(e)?;
            return Ok(Err(WorkerExit::CoordinatorGone { tasks: 0 }));
        }
    }
    eprintln!(
        "worker {}: serving map output from {} at {advertise}",
        std::process::id(),
        config.dir.display()
    );
    Ok(Ok((stream, Some(server))))
}

/// Serve-and-fetch: runs a reduce task that fetches its inputs. `None`
/// if an input could not be fetched: the task was given back, and the
/// coordinator has that map output redone.
async fn fetch_reduce(
    stream: &mut TcpStream,
    config: &WorkerConfig,
    t: FetchReduceTask,
) -> anyhow::Result<Option<io::Result<TaskOutcome>>> {
    let (app, dir, secret) = (config.app, config.dir.clone(), config.secret.clone());
    let index = t.index;
    let done =
        runtime::spawn_blocking(move || fetch::run_fetch_reduce(app, &dir, &t, secret.as_ref()))
            .await;
    match done {
        Ok(Ok(outcome)) => Ok(Some(Ok(outcome))),
        Ok(Err(FetchReduceError::Local(e))) => Ok(Some(Err(e))),
        Ok(Err(e @ FetchReduceError::Unreachable { map, .. })) => {
            eprintln!("worker {}: reduce {index}: {e}", std::process::id());
            match call(stream, &Message::FetchFailed { reduce: index, map }).await {
                Ok(Message::Ack) => Ok(None),
                Ok(other) => bail!("the coordinator answered FetchFailed with {other:?}"),
                Err(e) => Err(e).context("the coordinator left"),
            }
        }
        Err(e) => bail!("reduce {index} did not finish: {e:?}"),
    }
}

// ANCHOR: worker_loop
/// The worker's whole life, as one future.
pub async fn work(config: WorkerConfig) -> anyhow::Result<WorkerExit> {
    let (mut stream, _file_server) = match join_job(&config).await? {
        Ok(joined) => joined,
        Err(exit) => return Ok(exit),
    };
    // ANCHOR: lab_6_2_loop
    let pid = std::process::id();
    let mut tasks = 0;
    // Lent to each map task and handed back, so tasks reuse its memory.
    let mut scratch = task::Scratch::default();
    loop {
        let reply = match call(&mut stream, &Message::GetTask { worker: pid }).await {
            Ok(reply) => reply,
            Err(e) => return hung_up(e).map(|()| WorkerExit::CoordinatorGone { tasks }),
        };
        let (app, dir) = (config.app, config.dir.clone());
        // The map or reduce call blocks for a long time: off to the
        // blocking pool, so this thread keeps polling futures.
        let (id, result) = match reply {
            Message::Map(t) => {
                let id = TaskId {
                    kind: TaskKind::Map,
                    index: t.index,
                };
                let mut lent = std::mem::take(&mut scratch);
                let done = runtime::spawn_blocking(move || {
                    let result = task::run_map_in(app, &dir, &t, &mut lent);
                    (result, lent)
                });
                let result = done.await.map(|(result, back)| {
                    scratch = back;
                    result
                });
                (id, result)
            }
            Message::Reduce(t) => (
                TaskId {
                    kind: TaskKind::Reduce,
                    index: t.index,
                },
                runtime::spawn_blocking(move || task::run_reduce(app, &dir, &t)).await,
            ),
            Message::FetchReduce(t) => (
                TaskId {
                    kind: TaskKind::Reduce,
                    index: t.index,
                },
                match fetch_reduce(&mut stream, &config, t).await? {
                    Some(result) => Ok(result),
                    None => continue, // given back; ask again
                },
            ),
            Message::Exit => return Ok(WorkerExit::JobDone { tasks }),
            other => bail!("the coordinator answered GetTask with {other:?}"),
        };
        match result {
            Ok(Ok(_outcome)) => tasks += 1,
            Ok(Err(e)) => return Err(e).with_context(|| format!("{id} failed")),
            Err(e) => bail!("{id} did not finish: {e:?}"),
        }
        match call(
            &mut stream,
            &Message::Done {
                task: id,
                worker: pid,
            },
        )
        .await
        {
            Ok(Message::Ack) => {}
            Ok(other) => bail!("the coordinator answered Done with {other:?}"),
            Err(e) => return hung_up(e).map(|()| WorkerExit::CoordinatorGone { tasks }),
        }
    }
    // ANCHOR_END: lab_6_2_loop
}
// ANCHOR_END: worker_loop
