//! The wire protocol between workers and the coordinator.
//!
//! One TCP connection per worker carries requests and replies in turn. Each
//! message travels in a *frame*: a length, then that many bytes of payload.
//!
//! ```text
//!   frame:    ┌──────────────┬──────────────────────────────────┐
//!             │ len: u32 BE  │ payload (len bytes, ≤ MAX_FRAME) │
//!             └──────────────┴──────────────────────────────────┘
//!   payload:  version: u8 (= VERSION) │ tag: u8 │ fields...
//!
//!   tag  message    direction             fields (integers u32 BE)
//!    1   GetTask    worker → coordinator  worker pid
//!    2   Done       worker → coordinator  kind u8 (0 map, 1 reduce), index, worker pid
//!    3   Map        coordinator → worker  index, n_reduce, file (len u32 + UTF-8)
//!    4   Reduce     coordinator → worker  index, n_map
//!    5   Exit       coordinator → worker  (the job is done)
//!    6   Ack        coordinator → worker  (Done, Join or FetchFailed received)
//!
//!   serve-and-fetch (`coordinator --fetch`, `worker --serve`):
//!    7   Join        worker → coordinator  serve address (string): "fetch my map output here"
//!    8   FetchReduce coordinator → worker  index, n_map, then n_map addresses (strings)
//!    9   FetchFailed worker → coordinator  reduce index, map index: that map's output is unreachable
//!   10   Fetch       reducer → file server  map index, reduce index
//!   11   Partition   file server → reducer  length (u64 BE); then that many raw bytes and
//!                                           their SHA-256 (32 bytes), outside any frame
//!   12   Refuse      either way             reason (string); the connection then closes
//! ```
//!
//! Anything unexpected (a length over [`MAX_FRAME`], an unknown version or
//! tag, a payload too short or too long for its tag, invalid UTF-8, a task
//! count out of range) is a [`WireError`], and the connection it came on is
//! closed. Nothing else is affected: the task that connection held goes
//! back to the pool.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::schedule::{TaskId, TaskKind};
use crate::task::{MapTask, ReduceTask};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// The largest payload accepted. A real message is a few dozen bytes plus
/// a file name; anything bigger is garbage, and refusing it up front means a
/// hostile length cannot make the coordinator allocate gigabytes.
pub const MAX_FRAME: usize = 64 * 1024;

/// The most map or reduce tasks a job may have. A worker allocates per
/// task count (one file per partition, one buffer per map task), so a
/// count off the wire is checked before it is believed: a corrupt or
/// hostile `n_reduce` of four billion would otherwise exhaust memory.
pub const MAX_TASKS: u32 = 1_000_000;

// ANCHOR: message
/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Worker asks for work. The reply (a task or `Exit`) may be held back
    /// until there is some: that is how idle workers wait without polling.
    GetTask {
        /// The worker's process id, for progress lines.
        worker: u32,
    },
    /// Worker reports a task finished: its outputs are in place.
    Done {
        /// Which task.
        task: TaskId,
        /// The worker's process id.
        worker: u32,
    },
    /// Coordinator assigns a map task.
    Map(MapTask),
    /// Coordinator assigns a reduce task.
    Reduce(ReduceTask),
    /// Coordinator says the job is done: the worker may exit.
    Exit,
    /// Coordinator acknowledges a `Done`, `Join` or `FetchFailed`.
    Ack,
    /// A serving worker's first message: where its map output can be
    /// fetched.
    Join {
        /// The address its file server is reached at.
        serve: SocketAddr,
    },
    /// Coordinator assigns a reduce task whose inputs must be fetched.
    FetchReduce(FetchReduceTask),
    /// Worker reports that a reduce task could not fetch map `map`'s
    /// partition: the task is given back, and that output must be redone.
    FetchFailed {
        /// The reduce task given back.
        reduce: u32,
        /// The map task whose output could not be fetched.
        map: u32,
    },
    /// A reducer asks a file server for partition `reduce` of map `map`.
    Fetch {
        /// The map task.
        map: u32,
        /// The partition.
        reduce: u32,
    },
    /// The file server's answer: `len` bytes follow, then their SHA-256.
    Partition {
        /// The length of the file.
        len: u64,
    },
    /// A refusal, in words; the connection closes after it.
    Refuse {
        /// Why.
        reason: String,
    },
}
// ANCHOR_END: message

/// A reduce task in serve-and-fetch mode: where each map's output lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReduceTask {
    /// The partition `R`.
    pub index: u32,
    /// `sources[m]` serves the output of map task `m`.
    pub sources: Vec<SocketAddr>,
}

/// The most map tasks a serve-and-fetch job may have: its `FetchReduce`
/// frame names one address per map task and must fit in [`MAX_FRAME`].
pub const MAX_FETCH_MAPS: u32 = 1000;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The frame's length is above [`MAX_FRAME`].
    TooLarge(usize),
    /// The payload speaks another protocol version.
    BadVersion(u8),
    /// The tag is not a known message.
    UnknownTag(u8),
    /// A task kind other than 0 (map) or 1 (reduce).
    BadTaskKind(u8),
    /// The payload ended inside a field.
    Truncated,
    /// Bytes left over after the last field.
    TrailingBytes(usize),
    /// A string field is not UTF-8.
    BadUtf8,
    /// A task count (`n_reduce`, `n_map`) outside `1..=MAX_TASKS`
    /// (`0..=MAX_TASKS` for `n_map`: a job may have no inputs).
    BadTaskCount(u32),
    /// An address field that is not `IP:PORT`.
    BadAddress,
    /// The peer sent the job-secret challenge ([`crate::auth::HELLO`])
    /// where a frame should be: it runs with a secret and we without.
    SecretAsked,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLarge(n) => {
                write!(f, "frame of {n} bytes is over the {MAX_FRAME}-byte limit")
            }
            WireError::BadVersion(v) => write!(f, "protocol version {v}, expected {VERSION}"),
            WireError::UnknownTag(t) => write!(f, "unknown message tag {t}"),
            WireError::BadTaskKind(k) => write!(f, "unknown task kind {k}"),
            WireError::Truncated => f.write_str("message ends inside a field"),
            WireError::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the message"),
            WireError::BadUtf8 => f.write_str("string field is not UTF-8"),
            WireError::BadTaskCount(n) => {
                write!(f, "task count {n} is outside 0..={MAX_TASKS}")
            }
            WireError::BadAddress => f.write_str("address field is not IP:PORT"),
            WireError::SecretAsked => {
                f.write_str("the peer asks for the job's secret first (give --secret-file)")
            }
        }
    }
}

impl std::error::Error for WireError {}

impl From<WireError> for io::Error {
    fn from(e: WireError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// Reads fields off the front of a payload.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.bytes(8)?;
        let mut v = [0u8; 8];
        v.copy_from_slice(b);
        Ok(u64::from_be_bytes(v))
    }
    fn string(&mut self) -> Result<String, WireError> {
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::BadUtf8)
    }
    fn addr(&mut self) -> Result<SocketAddr, WireError> {
        self.string()?.parse().map_err(|_| WireError::BadAddress)
    }
}

impl Message {
    /// The task a `Map`, `Reduce` or `FetchReduce` assignment hands out.
    pub fn task_id(&self) -> Option<TaskId> {
        match self {
            Message::Map(t) => Some(TaskId {
                kind: TaskKind::Map,
                index: t.index,
            }),
            Message::Reduce(t) => Some(TaskId {
                kind: TaskKind::Reduce,
                index: t.index,
            }),
            Message::FetchReduce(t) => Some(TaskId {
                kind: TaskKind::Reduce,
                index: t.index,
            }),
            _ => None,
        }
    }

    // ANCHOR: encode
    /// The message as a whole frame: length prefix and payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0, VERSION];
        match self {
            Message::GetTask { worker } => {
                out.push(1);
                put_u32(&mut out, *worker);
            }
            Message::Done { task, worker } => {
                out.push(2);
                out.push(match task.kind {
                    TaskKind::Map => 0,
                    TaskKind::Reduce => 1,
                });
                put_u32(&mut out, task.index);
                put_u32(&mut out, *worker);
            }
            Message::Map(t) => {
                out.push(3);
                put_u32(&mut out, t.index);
                put_u32(&mut out, t.n_reduce);
                // File names come from the coordinator's command line; one
                // that does not fit a frame is refused there, before the job.
                put_u32(&mut out, t.file.len() as u32);
                out.extend_from_slice(t.file.as_bytes());
            }
            Message::Reduce(t) => {
                out.push(4);
                put_u32(&mut out, t.index);
                put_u32(&mut out, t.n_map);
            }
            Message::Exit => out.push(5),
            Message::Ack => out.push(6),
            Message::Join { serve } => {
                out.push(7);
                put_str(&mut out, &serve.to_string());
            }
            Message::FetchReduce(t) => {
                out.push(8);
                put_u32(&mut out, t.index);
                put_u32(&mut out, t.sources.len() as u32);
                for source in &t.sources {
                    put_str(&mut out, &source.to_string());
                }
            }
            Message::FetchFailed { reduce, map } => {
                out.push(9);
                put_u32(&mut out, *reduce);
                put_u32(&mut out, *map);
            }
            Message::Fetch { map, reduce } => {
                out.push(10);
                put_u32(&mut out, *map);
                put_u32(&mut out, *reduce);
            }
            Message::Partition { len } => {
                out.push(11);
                out.extend_from_slice(&len.to_be_bytes());
            }
            Message::Refuse { reason } => {
                out.push(12);
                // Reasons are short sentences of ours; cut anything that
                // would not fit a frame rather than send a broken one.
                let mut end = reason.len().min(MAX_FRAME / 2);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                put_str(&mut out, &reason[..end]);
            }
        }
        let len = (out.len() - 4) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        out
    }
    // ANCHOR_END: encode

    /// Decodes a payload (a frame without its length prefix).
    pub fn decode(payload: &[u8]) -> Result<Message, WireError> {
        if payload.len() > MAX_FRAME {
            return Err(WireError::TooLarge(payload.len()));
        }
        let mut f = Fields(payload);
        let version = f.u8()?;
        if version != VERSION {
            return Err(WireError::BadVersion(version));
        }
        let message = match f.u8()? {
            1 => Message::GetTask { worker: f.u32()? },
            2 => {
                let kind = match f.u8()? {
                    0 => TaskKind::Map,
                    1 => TaskKind::Reduce,
                    k => return Err(WireError::BadTaskKind(k)),
                };
                let index = f.u32()?;
                Message::Done {
                    task: TaskId { kind, index },
                    worker: f.u32()?,
                }
            }
            3 => {
                let index = f.u32()?;
                let n_reduce = f.u32()?;
                if !(1..=MAX_TASKS).contains(&n_reduce) {
                    return Err(WireError::BadTaskCount(n_reduce));
                }
                Message::Map(MapTask {
                    index,
                    n_reduce,
                    file: f.string()?,
                })
            }
            4 => {
                let index = f.u32()?;
                let n_map = f.u32()?;
                if n_map > MAX_TASKS {
                    return Err(WireError::BadTaskCount(n_map));
                }
                Message::Reduce(ReduceTask { index, n_map })
            }
            5 => Message::Exit,
            6 => Message::Ack,
            7 => Message::Join { serve: f.addr()? },
            8 => {
                let index = f.u32()?;
                let n_map = f.u32()?;
                if n_map > MAX_FETCH_MAPS {
                    return Err(WireError::BadTaskCount(n_map));
                }
                let sources = (0..n_map)
                    .map(|_| f.addr())
                    .collect::<Result<Vec<_>, _>>()?;
                Message::FetchReduce(FetchReduceTask { index, sources })
            }
            9 => Message::FetchFailed {
                reduce: f.u32()?,
                map: f.u32()?,
            },
            10 => Message::Fetch {
                map: f.u32()?,
                reduce: f.u32()?,
            },
            11 => Message::Partition { len: f.u64()? },
            12 => Message::Refuse {
                reason: f.string()?,
            },
            tag => return Err(WireError::UnknownTag(tag)),
        };
        if !f.0.is_empty() {
            return Err(WireError::TrailingBytes(f.0.len()));
        }
        Ok(message)
    }
}

// ANCHOR: read_frame
/// Waits for the first byte of the next frame. `None` means the peer closed
/// the connection cleanly, between frames.
///
/// Reading a frame is split in two so the caller can wait as long as it
/// likes for a frame to *start* (a worker may be busy for minutes) but put a
/// deadline on the rest (a frame that starts must finish promptly, or the
/// peer is broken).
pub async fn read_frame_start<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<u8>> {
    let mut first = [0u8; 1];
    loop {
        match r.read(&mut first).await {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(first[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the rest of a frame whose first byte was `first`; returns the
/// payload. A length over [`MAX_FRAME`] is refused before reading it; a
/// connection closed mid-frame is an `UnexpectedEof` error.
pub async fn read_frame_rest<R: AsyncRead + Unpin>(r: &mut R, first: u8) -> io::Result<Vec<u8>> {
    let mut len = [first, 0, 0, 0];
    r.read_exact(&mut len[1..]).await?;
    if len[..] == crate::auth::HELLO[..4] {
        return Err(WireError::SecretAsked.into());
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len).into());
    }
    let mut payload = vec![0; len];
    r.read_exact(&mut payload).await?;
    Ok(payload)
}
// ANCHOR_END: read_frame

/// Reads one whole message; `None` on a clean close between frames.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Message>> {
    match read_frame_start(r).await? {
        None => Ok(None),
        Some(first) => {
            let payload = read_frame_rest(r, first).await?;
            Ok(Some(Message::decode(&payload)?))
        }
    }
}

/// Writes one message as a frame and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, message: &Message) -> io::Result<()> {
    w.write_all(&message.encode()).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn all_messages() -> Vec<Message> {
        vec![
            Message::GetTask { worker: 4242 },
            Message::Done {
                task: TaskId {
                    kind: TaskKind::Map,
                    index: 7,
                },
                worker: 1,
            },
            Message::Done {
                task: TaskId {
                    kind: TaskKind::Reduce,
                    index: 0,
                },
                worker: u32::MAX,
            },
            Message::Map(MapTask {
                index: 3,
                file: "pg-grimm.txt".into(),
                n_reduce: 10,
            }),
            Message::Map(MapTask {
                index: 0,
                file: "dir with space/Straße.txt".into(),
                n_reduce: 1,
            }),
            Message::Reduce(ReduceTask { index: 9, n_map: 8 }),
            Message::Exit,
            Message::Ack,
            Message::Join {
                serve: "10.6.0.2:7001".parse().unwrap(),
            },
            Message::FetchReduce(FetchReduceTask {
                index: 2,
                sources: vec!["10.6.0.2:7001".parse().unwrap(), "[::1]:9".parse().unwrap()],
            }),
            Message::FetchFailed { reduce: 1, map: 3 },
            Message::Fetch { map: 3, reduce: 1 },
            Message::Partition { len: 1 << 40 },
            Message::Refuse {
                reason: "no secret".into(),
            },
        ]
    }

    #[test]
    fn every_message_survives_encode_then_decode() {
        for m in all_messages() {
            let frame = m.encode();
            let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            assert_eq!(len, frame.len() - 4, "length prefix counts the payload");
            assert_eq!(frame[4], VERSION);
            assert_eq!(Message::decode(&frame[4..]), Ok(m));
        }
    }

    #[test]
    fn a_stream_of_frames_reads_back_in_order_and_ends_cleanly() {
        let mut bytes = Vec::new();
        for m in all_messages() {
            bytes.extend(m.encode());
        }
        let mut r = Cursor::new(bytes);
        block_on(async {
            for m in all_messages() {
                assert_eq!(read_message(&mut r).await.unwrap(), Some(m));
            }
            assert_eq!(read_message(&mut r).await.unwrap(), None);
        });
    }

    #[test]
    fn malformed_payloads_are_errors_never_panics() {
        assert_eq!(Message::decode(&[]), Err(WireError::Truncated));
        assert_eq!(
            Message::decode(&[2, 1, 0, 0, 0, 1]),
            Err(WireError::BadVersion(2))
        );
        assert_eq!(
            Message::decode(&[VERSION, 99]),
            Err(WireError::UnknownTag(99))
        );
        assert_eq!(
            Message::decode(&[VERSION, 1, 0, 0]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            Message::decode(&[VERSION, 5, 0]),
            Err(WireError::TrailingBytes(1))
        );
        assert_eq!(
            Message::decode(&[VERSION, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::BadTaskKind(7))
        );
        // Task counts a worker must not believe.
        let n_reduce_0 = [VERSION, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Message::decode(&n_reduce_0),
            Err(WireError::BadTaskCount(0))
        );
        let huge_n_map = [VERSION, 4, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Message::decode(&huge_n_map),
            Err(WireError::BadTaskCount(u32::MAX))
        );
        let bad_utf8 = [VERSION, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xfe];
        assert_eq!(Message::decode(&bad_utf8), Err(WireError::BadUtf8));
        // A string length pointing past the end.
        let long = [VERSION, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Message::decode(&long), Err(WireError::Truncated));
        // Every prefix of every valid payload is an error too.
        for m in all_messages() {
            let frame = m.encode();
            for cut in 0..frame.len() - 4 {
                assert!(
                    Message::decode(&frame[4..4 + cut]).is_err(),
                    "{m:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn pseudo_random_garbage_never_panics_the_decoder() {
        let mut rng = crate::corpus::SplitMix64::new(1);
        for _ in 0..20_000 {
            let len = rng.below(24) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if len > 0 && rng.below(2) == 0 {
                bytes[0] = VERSION;
            }
            let _ = Message::decode(&bytes);
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut r = Cursor::new(vec![0xff, 0xff, 0xff, 0xff]);
        let err = block_on(read_message(&mut r)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn a_half_sent_frame_is_an_unexpected_eof() {
        let frame = Message::GetTask { worker: 1 }.encode();
        for cut in 1..frame.len() {
            let mut r = Cursor::new(frame[..cut].to_vec());
            let err = block_on(read_message(&mut r)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }

    #[test]
    fn write_message_writes_exactly_one_frame() {
        let mut w = Cursor::new(Vec::new());
        block_on(write_message(&mut w, &Message::Ack)).unwrap();
        assert_eq!(w.into_inner(), Message::Ack.encode());
    }
}
