//! Serve-and-fetch: map output stays on the worker that made it.
//!
//! In the lab's mode every worker writes into one shared directory. In the
//! paper's (its section 3.1), a map task writes its partitions to its own
//! worker's disk, and each reduce task fetches its partition of every map
//! task from the worker that holds it:
//!
//! ```text
//!   worker A (--dir a/, --serve)            worker C (--dir c/), reduce task 1
//!     a/mr-0-0  a/mr-0-1  ◄── Fetch{map 0, reduce 1} ──  connect A, prove the secret
//!                         ── Partition{len} ─────────►
//!                         ── len bytes ──────────────►  c/.fetch-PID-1/mr-0-1 (temp name)
//!                         ── SHA-256 of them ────────►  check length and digest,
//!   worker B (--dir b/, --serve)                        then rename into place
//!     b/mr-1-0  b/mr-1-1  ◄── Fetch{map 1, reduce 1} ── ... the same for every map task
//!                                                       merge, reduce: c/mr-out-1
//! ```
//!
//! The file server is async, on the worker's stage-05 runtime, beside its
//! coordinator connection: one task per fetch, the file read in chunks on
//! the blocking pool and streamed, never loaded whole. The fetching side
//! runs inside a reduce task, which is blocking code on the blocking pool
//! anyway: it uses plain blocking sockets with timeouts.
//!
//! Nothing partial is ever merged: a partition is written under a temporary
//! name and renamed into place only after its length and digest checked
//! out. A fetch that fails (the worker died, its address is gone, the bytes
//! are wrong) names the map task, so the coordinator can have it redone.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::executor::block_on;
use futures::io::{AllowStdIo, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::time::timeout;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::{self, Secret};
use crate::coordinator::FRAME_TIMEOUT;
use crate::files::{self, AtomicFile};
use crate::task::{self, ReduceTask, TaskOutcome};
use crate::wire::{self, FetchReduceTask, Message};

/// Bytes moved per read and write while streaming a partition.
pub const CHUNK: usize = 256 * 1024;

/// How long a fetch waits to connect, and for each read or write after.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The length of the digest that follows a partition's bytes.
pub const DIGEST_LEN: usize = 32;

// ANCHOR: serve_files
/// Serves this worker's `mr-M-R` files from `dir` to reducers, forever
/// (the caller aborts it when the job is done). With a secret, each
/// connection must prove it first.
pub async fn serve_files(listener: TcpListener, dir: PathBuf, secret: Option<Secret>) {
    let shared = Arc::new((dir, secret));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = Arc::clone(&shared);
                runtime::spawn(async move {
                    let (dir, secret) = &*shared;
                    if let Err(why) = serve_one(stream, dir, secret.as_ref()).await {
                        eprintln!("worker {}: fetch from {peer}: {why}", std::process::id());
                    }
                });
            }
            // Out of file descriptors, say: back off instead of spinning.
            Err(_) => runtime::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// One fetch: prove, read the request, stream the file and its digest.
async fn serve_one(
    mut stream: TcpStream,
    dir: &Path,
    secret: Option<&Secret>,
) -> Result<(), String> {
    if let Some(secret) = secret {
        match timeout(FRAME_TIMEOUT, auth::server_handshake(&mut stream, secret)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("authentication failed: {e}")),
            Err(_) => return Err("authentication failed: no proof in time".into()),
        }
    }
    let request = match timeout(FRAME_TIMEOUT, wire::read_message(&mut stream)).await {
        Ok(Ok(Some(message))) => message,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("no request in time".into()),
    };
    let Message::Fetch { map, reduce } = request else {
        return Err(format!("unexpected {request:?}"));
    };
    let name = files::intermediate_name(map, reduce);
    let path = dir.join(&name);
    let opened = runtime::spawn_blocking(move || {
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        io::Result::Ok((file, len))
    })
    .await
    .map_err(|e| format!("{e:?}"))?;
    let (mut file, len) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let reason = format!("no {name} here: {e}");
            let _ = timeout(
                FRAME_TIMEOUT,
                wire::write_message(
                    &mut stream,
                    &Message::Refuse {
                        reason: reason.clone(),
                    },
                ),
            )
            .await;
            return Err(reason);
        }
    };
    send_all(&mut stream, &Message::Partition { len }.encode()).await?;
    // The file is open: a later rename over its name (a backup copy
    // finishing) does not change what this handle reads.
    let mut digest = Sha256::new();
    let mut sent = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let (back_file, back_buf, n) = runtime::spawn_blocking(move || {
            let n = file.read(&mut buf);
            (file, buf, n)
        })
        .await
        .map_err(|e| format!("{e:?}"))?;
        (file, buf) = (back_file, back_buf);
        let n = n.map_err(|e| format!("reading {name}: {e}"))?;
        if n == 0 {
            break;
        }
        sent += n as u64;
        if sent > len {
            return Err(format!("{name} grew while being sent"));
        }
        digest.update(&buf[..n]);
        send_all(&mut stream, &buf[..n]).await?;
    }
    if sent != len {
        return Err(format!("{name} shrank while being sent"));
    }
    send_all(&mut stream, &digest.finalize()).await?;
    let _ = stream.flush().await;
    Ok(())
}

/// Writes `bytes`, giving a reducer that stops reading [`FETCH_TIMEOUT`].
async fn send_all(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), String> {
    match timeout(FETCH_TIMEOUT, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the reducer stopped reading".to_string()),
    }
}
// ANCHOR_END: serve_files

/// Why a reduce task in serve-and-fetch mode did not finish.
#[derive(Debug)]
pub enum FetchReduceError {
    /// Map task `map`'s partition could not be fetched from `source`.
    Unreachable {
        /// The map task.
        map: u32,
        /// Where it was said to be.
        source: SocketAddr,
        /// What went wrong.
        error: io::Error,
    },
    /// Something failed here (the local disk, the merge).
    Local(io::Error),
}

impl fmt::Display for FetchReduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchReduceError::Unreachable { map, source, error } => {
                write!(f, "cannot fetch map {map}'s output from {source}: {error}")
            }
            FetchReduceError::Local(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FetchReduceError {}

// ANCHOR: fetch_partition
/// Fetches partition `reduce` of map `map` from `source` into
/// `into/mr-MAP-REDUCE`, renamed into place only once its length and
/// SHA-256 match. `Err(Ok(e))`: the source failed; `Err(Err(e))`: the
/// local disk did.
pub fn fetch_partition(
    source: SocketAddr,
    map: u32,
    reduce: u32,
    into: &Path,
    secret: Option<&Secret>,
) -> Result<u64, Result<io::Error, io::Error>> {
    let remote = Ok;
    let stream = std::net::TcpStream::connect_timeout(&source, FETCH_TIMEOUT).map_err(remote)?;
    stream
        .set_read_timeout(Some(FETCH_TIMEOUT))
        .map_err(remote)?;
    stream
        .set_write_timeout(Some(FETCH_TIMEOUT))
        .map_err(remote)?;
    let mut stream = AllowStdIo::new(stream);
    let reply = block_on(async {
        if let Some(secret) = secret {
            auth::client_handshake(&mut stream, secret).await?;
        }
        wire::write_message(&mut stream, &Message::Fetch { map, reduce }).await?;
        wire::read_message(&mut stream).await
    })
    .map_err(remote)?;
    let len = match reply {
        Some(Message::Partition { len }) => len,
        Some(Message::Refuse { reason }) => {
            return Err(Ok(io::Error::new(io::ErrorKind::NotFound, reason)));
        }
        other => {
            return Err(Ok(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected reply {other:?}"),
            )));
        }
    };
    let name = files::intermediate_name(map, reduce);
    let mut out = AtomicFile::create(into, &name).map_err(Err)?;
    let stream = stream.get_mut();
    let mut digest = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = match stream.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Ok(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed {left} bytes before the end of {name}"),
                )));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Ok(e)),
        };
        digest.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(Err)?;
        left -= n as u64;
    }
    let mut theirs = [0u8; DIGEST_LEN];
    stream.read_exact(&mut theirs).map_err(remote)?;
    if digest.finalize()[..] != theirs[..] {
        // `out` is dropped uncommitted: its temporary file goes with it.
        return Err(Ok(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: SHA-256 mismatch, the bytes were damaged on the way"),
        )));
    }
    out.commit().map_err(Err)?;
    Ok(len)
}
// ANCHOR_END: fetch_partition

// ANCHOR: fetch_reduce
/// Runs a reduce task whose inputs live on other workers: fetches every
/// map task's partition into a private directory under `dir`, merges and
/// reduces them there, and renames `mr-out-R` into `dir`.
pub fn run_fetch_reduce(
    app: &dyn App,
    dir: &Path,
    task: &FetchReduceTask,
    secret: Option<&Secret>,
) -> Result<TaskOutcome, FetchReduceError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let scratch = dir.join(format!(
        ".fetch-{}-{}-{}",
        std::process::id(),
        task.index,
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&scratch).map_err(FetchReduceError::Local)?;
    let result = fetch_then_reduce(app, dir, &scratch, task, secret);
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn fetch_then_reduce(
    app: &dyn App,
    dir: &Path,
    scratch: &Path,
    task: &FetchReduceTask,
    secret: Option<&Secret>,
) -> Result<TaskOutcome, FetchReduceError> {
    for (map, &source) in task.sources.iter().enumerate() {
        let map = map as u32;
        match fetch_partition(source, map, task.index, scratch, secret) {
            Ok(_) => {}
            Err(Ok(error)) => return Err(FetchReduceError::Unreachable { map, source, error }),
            Err(Err(local)) => return Err(FetchReduceError::Local(local)),
        }
    }
    let reduce = ReduceTask {
        index: task.index,
        n_map: task.sources.len() as u32,
    };
    let outcome = task::run_reduce(app, scratch, &reduce).map_err(FetchReduceError::Local)?;
    let name = files::output_name(task.index);
    // Both in `dir`'s file system: an atomic rename, as everywhere else.
    fs::rename(scratch.join(&name), dir.join(&name)).map_err(FetchReduceError::Local)?;
    Ok(outcome)
}
// ANCHOR_END: fetch_reduce

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener as StdListener;
    use std::thread;

    /// A one-shot fake file server: reads the request frame, then sends
    /// `reply` as is.
    fn fake_server(reply: Vec<u8>) -> SocketAddr {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = [0u8; 14]; // a Fetch frame: 4 + 2 + 8 bytes
            s.read_exact(&mut request).unwrap();
            let _ = s.write_all(&reply);
        });
        addr
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mr-fetch-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn reply(body: &[u8], len: u64, digest: [u8; 32]) -> Vec<u8> {
        let mut r = Message::Partition { len }.encode();
        r.extend_from_slice(body);
        r.extend_from_slice(&digest);
        r
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn a_partition_whose_digest_matches_is_renamed_into_place() {
        let dir = scratch("good");
        let body = b"some sorted run".repeat(50_000); // several chunks
        let addr = fake_server(reply(&body, body.len() as u64, sha(&body)));
        let got = fetch_partition(addr, 2, 1, &dir, None).unwrap();
        assert_eq!(got, body.len() as u64);
        assert_eq!(names(&dir), ["mr-2-1"]);
        assert_eq!(fs::read(dir.join("mr-2-1")).unwrap(), body);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_partition_is_refused_and_leaves_no_file() {
        let dir = scratch("damaged");
        let body = b"abcdefgh".repeat(1000);
        let mut damaged = body.clone();
        damaged[4000] ^= 1;
        let addr = fake_server(reply(&damaged, body.len() as u64, sha(&body)));
        let err = fetch_partition(addr, 0, 0, &dir, None)
            .unwrap_err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("SHA-256"), "{err}");
        assert_eq!(names(&dir), Vec::<String>::new(), "nothing partial is left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_partition_cut_short_is_refused_and_leaves_no_file() {
        let dir = scratch("short");
        let body = b"abcdefgh".repeat(1000);
        let mut r = Message::Partition {
            len: body.len() as u64,
        }
        .encode();
        r.extend_from_slice(&body[..5000]); // then the server hangs up
        let addr = fake_server(r);
        let err = fetch_partition(addr, 0, 0, &dir, None)
            .unwrap_err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(names(&dir), Vec::<String>::new());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_refusal_or_a_dead_address_is_the_sources_fault() {
        let dir = scratch("refused");
        let addr = fake_server(
            Message::Refuse {
                reason: "no mr-0-0 here".into(),
            }
            .encode(),
        );
        let err = fetch_partition(addr, 0, 0, &dir, None)
            .unwrap_err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        // A port nobody listens on: bind one, note it, close it.
        let dead = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(fetch_partition(dead, 0, 0, &dir, None).unwrap_err().is_ok());
        assert_eq!(names(&dir), Vec::<String>::new());
        fs::remove_dir_all(&dir).unwrap();
    }
}
