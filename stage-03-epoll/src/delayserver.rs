//! The delay server: a tiny HTTP/1.1 server that answers `GET /{ms}/{message}`
//! with `message`, `ms` milliseconds later, then closes the connection.
//!
//! Later stages need something slow to wait on (many requests in flight, each
//! finishing at a known time) without any outside server, so they start this
//! one in-process:
//!
//! ```no_run
//! use netpoll::delayserver::{self, DelayServer};
//! let server = DelayServer::start()?;                 // 127.0.0.1, a free port
//! let reply = delayserver::fetch(server.addr(), &delayserver::path(200, "hi"))?;
//! assert_eq!((reply.status, reply.body.as_slice()), (200, &b"hi"[..]));
//! # Ok::<(), std::io::Error>(())
//! // dropping `server` stops its thread and joins it
//! ```
//!
//! It is also this stage's showcase: one OS thread, one [`Poll`], every
//! connection edge-triggered, and a timer heap whose earliest deadline is the
//! timeout of the next wait.
//!
//! ```text
//!  loop {
//!      timeout = earliest timer - now          ┐
//!      poll.poll(events, timeout)              │ wait phase
//!      listener ready   → accept all           ┐
//!      connection ready → read request,        │
//!                         push (now+ms) timer  │ handle events
//!      timers due       → write the response,  │
//!                         close                ┘
//!  }
//! ```
//!
//! Requests it cannot serve (not `GET`, not `/{ms}/{message}`, a delay over
//! [`MAX_DELAY`], a request head over [`MAX_HEAD`] bytes, bytes that are not
//! HTTP) get a `400 Bad Request` at once. Nothing a client sends can panic the
//! server, and no client can hold a descriptor for ever: a connection whose
//! request head is not complete within the idle timeout, or that does not
//! take its response within it, is closed (see [`Options`]).
//!
//! # Out of descriptors
//!
//! When the process runs out of file descriptors (`accept` fails with
//! `EMFILE`, or `ENFILE` system-wide), the waiting connection stays in the
//! kernel's queue and the listener stays readable. Asking again at once would
//! spin a core for nothing, so the server does what Go's `net/http` does: it
//! stops watching the listener and retries after a pause that doubles from
//! 5 ms up to 1 s, and resets once an `accept` succeeds. The clients wait in
//! the queue meanwhile and are served as soon as descriptors are free.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{Events, Interest, Poll, Token, Trigger, Waker};

/// The longest delay a request may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// The largest request head accepted: the request line, the headers and the
/// blank line that ends them, 8 KiB in all.
pub const MAX_HEAD: usize = 8 * 1024;

/// The first pause after `accept` ran out of descriptors or memory.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause: a server at its limit still retries once a second.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How many not-yet-accepted connections the kernel queues for us. std's
/// `bind` asks for 128; a burst of a thousand concurrent connects (as later
/// stages' examples fire) would overflow that, and the kernel would drop
/// SYNs that the clients then resend only after a second.
const BACKLOG: libc::c_int = 1024;

/// How a [`DelayServer`] treats slow clients.
///
/// ```
/// use std::time::Duration;
/// use netpoll::delayserver::Options;
/// let options = Options::new().idle_timeout(Duration::from_secs(2));
/// assert_eq!(options.get_idle_timeout(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    idle_timeout: Duration,
}

impl Options {
    /// The default idle timeout.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

    /// The defaults: an idle timeout of [`Options::DEFAULT_IDLE_TIMEOUT`].
    pub fn new() -> Options {
        Options {
            idle_timeout: Options::DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// How long a client may take to send its whole request head (from the
    /// moment it is accepted), and again to take its whole response (from
    /// the moment it is due). A connection that takes longer is closed. The
    /// requested delay itself is never cut short.
    pub fn idle_timeout(mut self, timeout: Duration) -> Options {
        self.idle_timeout = timeout;
        self
    }

    /// The idle timeout set.
    pub fn get_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

/// A running delay server; stops (and joins its thread) when dropped.
pub struct DelayServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl DelayServer {
    /// Starts a server on `127.0.0.1` at a port the kernel picks.
    pub fn start() -> io::Result<DelayServer> {
        DelayServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a server on `addr`, on a background OS thread.
    pub fn bind(addr: SocketAddr) -> io::Result<DelayServer> {
        DelayServer::bind_with(addr, Options::new())
    }

    /// Starts a server on `addr` with `options`.
    pub fn bind_with(addr: SocketAddr, options: Options) -> io::Result<DelayServer> {
        let listener = TcpListener::bind(addr)?;
        // Calling listen() again on a listening socket just updates its backlog.
        // SAFETY: listen on a socket fd we own; failure is reported as -1.
        crate::sys::cvt(unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;

        let poll = Poll::new()?;
        poll.registry().register(
            listener.as_raw_fd(),
            LISTENER,
            Interest::READABLE,
            // Level-triggered: a connection left waiting (out of fds) is
            // reported again on the next wait after accepting resumes.
            Trigger::Level,
        )?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));

        let server = Server {
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            next_serial: 0,
            stop: Arc::clone(&stop),
            idle_timeout: options.idle_timeout,
            accept_backoff: Duration::ZERO,
            accept_resumes: None,
        };
        let thread = thread::Builder::new()
            .name("delayserver".into())
            .spawn(move || server.run())?;
        Ok(DelayServer {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/{ms}/{message}` for this server, the message
    /// percent-encoded.
    pub fn url(&self, ms: u64, message: &str) -> String {
        format!("http://{}{}", self.addr, path(ms, message))
    }

    /// Stops the server, joins its thread, and returns the error that ended
    /// its loop early, if any. Dropping does the same and ignores the error.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    /// Serves until the server's loop ends by itself, which only a failing
    /// epoll call makes it do, and returns that error: what a program that
    /// does nothing but serve (the `delayserver` binary) waits on.
    pub fn wait(mut self) -> io::Result<()> {
        self.thread.take().map_or(Ok(()), join_server)
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.stop.store(true, Ordering::Release);
        self.waker.wake()?;
        join_server(thread)
    }
}

/// The outcome of the server's thread, a panic of it as an error.
fn join_server(thread: JoinHandle<io::Result<()>>) -> io::Result<()> {
    match thread.join() {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("the delay server thread panicked")),
    }
}

impl Drop for DelayServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

impl fmt::Debug for DelayServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The request path for a delay of `ms` and `message` (percent-encoded
/// except for unreserved characters), e.g. `/200/hello%20world`.
pub fn path(ms: u64, message: &str) -> String {
    let mut path = format!("/{ms}/");
    for &b in message.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path
}

/// A response as [`fetch`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200 or 400.
    pub status: u16,
    /// The body: the message, for a 200.
    pub body: Vec<u8>,
}

/// The most bytes of response a client here reads ([`fetch`], and stage
/// 4's `get`): far more than the delay server sends, and a bound on what a
/// misbehaving server can make a client buffer.
pub const MAX_RESPONSE: usize = 1 << 20;

/// The bytes of `GET path` to `addr`. `InvalidInput` if `path` is empty or
/// not printable ASCII without spaces (percent-encode the rest, as [`path`]
/// does): anything else would break the request line, or smuggle headers
/// into the request.
pub fn request(addr: SocketAddr, path: &str) -> io::Result<String> {
    if path.is_empty() || !path.bytes().all(|b| b.is_ascii_graphic()) {
        let why = format!("HTTP path {path:?} is empty or not printable ASCII without spaces");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ))
}

/// A blocking `GET path` to `addr`, reading until the server closes: a small
/// client for tests and examples (later stages write their own, async).
/// A response longer than [`MAX_RESPONSE`], or one that [`parse_response`]
/// refuses, is `InvalidData`.
pub fn fetch(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let request = request(addr, path)?;
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    // One byte more than allowed tells "too long" from "just fits".
    stream.take(MAX_RESPONSE as u64 + 1).read_to_end(&mut raw)?;
    if raw.len() > MAX_RESPONSE {
        let why = format!("HTTP response longer than {MAX_RESPONSE} bytes");
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    parse_response(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response"))
}

/// Splits an HTTP/1.x response, read to the end of its stream, into status
/// and body. `None` if it is malformed, or if its body is not as long as a
/// `Content-Length` header says: the end of the stream ends the body, so a
/// server that closed early would otherwise pass for one that sent less.
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let head_end = find_head_end(raw)?;
    let head = std::str::from_utf8(&raw[..head_end.0]).ok()?;
    let mut lines = head.lines();
    let mut parts = lines.next()?.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let body = &raw[head_end.1..];
    let length_agrees = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .all(|(_, value)| value.trim().parse() == Ok(body.len()));
    length_agrees.then(|| Response {
        status,
        body: body.to_vec(),
    })
}

// ---------------------------------------------------------------------------
// The server thread.

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` in the table is registered as `Token(i + FIRST_CONN)`.
const FIRST_CONN: usize = 2;

struct Server {
    poll: Poll,
    listener: TcpListener,
    /// The connection table (a small slab): a token is an index into it.
    conns: Vec<Option<Conn>>,
    /// Free slots of `conns`, reused before the table grows.
    free: Vec<usize>,
    /// Min-heap of timers: responses due, timeouts, lingers ending.
    timers: Timers,
    /// Tells a timer's connection from a later one that reused its slot.
    next_serial: u64,
    stop: Arc<AtomicBool>,
    idle_timeout: Duration,
    /// The pause after the last failed `accept` (zero while accepting works).
    accept_backoff: Duration,
    /// While accepting is paused: when to watch the listener again.
    accept_resumes: Option<Instant>,
}

/// A timer: (deadline, connection slot, connection serial, what is due).
type Timer = (Instant, usize, u64, Due);
type Timers = BinaryHeap<Reverse<Timer>>;

/// What a timer means for its connection. A timer whose connection has left
/// the state it was set for (or is gone) is ignored when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// `Waiting`: the delay is over, send the response.
    Respond,
    /// `Reading`: the head did not arrive within the idle timeout.
    HeadTimeout,
    /// `Writing`: the client did not take the response within the idle timeout.
    WriteTimeout,
    /// `Closing`: the client did not close within [`LINGER`].
    LingerEnd,
}

struct Conn {
    stream: TcpStream,
    slot: usize,
    serial: u64,
    state: State,
    idle_timeout: Duration,
}

enum State {
    /// Collecting the request head.
    Reading(Vec<u8>),
    /// Request understood; the response goes out when the timer fires.
    Waiting(Vec<u8>),
    /// Sending the response; `usize` bytes are out already.
    Writing(Vec<u8>, usize),
    /// Response sent and our side shut down; reading (and dropping) input
    /// until the client closes too, or [`LINGER`] passes.
    Closing,
}

/// How long a finished connection waits for the client to close first.
///
/// Closing a socket with unread input makes the kernel send a reset, and a
/// reset can destroy our response before the client has read it. So we
/// close only once the client has (a "lingering close").
const LINGER: Duration = Duration::from_secs(2);

/// What reading and dropping input found.
enum Drained {
    Open,
    Eof,
    Failed,
}

/// What to do with a connection after handling it.
enum Next {
    Keep,
    Close,
}

impl Server {
    // ANCHOR: server_loop
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        while !self.stop.load(Ordering::Acquire) {
            // The earliest deadline bounds the wait: an idle server sleeps in
            // the kernel until a connection or a timer needs it.
            let next_timer = self.timers.peek().map(|Reverse((deadline, ..))| *deadline);
            let timeout = [next_timer, self.accept_resumes]
                .into_iter()
                .flatten()
                .min()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()));
            self.poll.poll(&mut events, timeout)?;

            for event in &events {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {} // `stop` is checked at the top of the loop
                    Token(t) => self.ready(t - FIRST_CONN),
                }
            }
            self.fire_due_timers();
            self.resume_accepting_if_due();
        }
        Ok(())
    }
    // ANCHOR_END: server_loop

    // ANCHOR: accept_all
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.accept_backoff = Duration::ZERO;
                    if let Err(_e) = self.add_conn(stream) {
                        // Could not set it up (out of memory for epoll
                        // entries, ...): the stream is dropped, i.e. closed.
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Interrupted, or a connection that died in the queue
                // (ECONNABORTED, EPROTO): go on with the next one.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO)) => {}
                // EMFILE, ENFILE, ENOBUFS, ENOMEM (or anything unexpected):
                // the connection stays queued and the level-triggered
                // listener would report it again at once, for ever. Pause.
                Err(_) => return self.pause_accepting(),
            }
        }
    }

    /// Stops watching the listener for a while (doubling each time).
    fn pause_accepting(&mut self) {
        self.accept_backoff =
            (self.accept_backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
        self.accept_resumes = Some(Instant::now() + self.accept_backoff);
        // An error means it is not registered: it is not watched either way.
        let _ = self.poll.registry().deregister(self.listener.as_raw_fd());
    }

    /// Once the pause is over: watch the listener again and accept at once.
    fn resume_accepting_if_due(&mut self) {
        match self.accept_resumes {
            Some(when) if when <= Instant::now() => {}
            _ => return,
        }
        self.accept_resumes = None;
        let registered = self.poll.registry().register(
            self.listener.as_raw_fd(),
            LISTENER,
            Interest::READABLE,
            Trigger::Level,
        );
        match registered {
            Ok(()) => self.accept_all(),
            Err(_) => self.pause_accepting(), // out of memory too: later
        }
    }
    // ANCHOR_END: accept_all

    fn add_conn(&mut self, stream: TcpStream) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        // Edge-triggered for both directions, registered once: a readable
        // edge when request bytes arrive, a writable edge when a full send
        // buffer drains. Each handler works until WouldBlock.
        if let Err(e) = self.poll.registry().register(
            stream.as_raw_fd(),
            Token(slot + FIRST_CONN),
            Interest::READABLE | Interest::WRITABLE,
            Trigger::Edge,
        ) {
            self.free.push(slot);
            return Err(e);
        }
        self.next_serial += 1;
        self.conns[slot] = Some(Conn {
            stream,
            slot,
            serial: self.next_serial,
            state: State::Reading(Vec::new()),
            idle_timeout: self.idle_timeout,
        });
        // The whole head must arrive within the idle timeout (one too long
        // for `Instant` means none).
        if let Some(deadline) = Instant::now().checked_add(self.idle_timeout) {
            let serial = self.next_serial;
            let timer = (deadline, slot, serial, Due::HeadTimeout);
            self.timers.push(Reverse(timer));
        }
        Ok(())
    }

    fn ready(&mut self, slot: usize) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return; // an event for a connection closed earlier in this batch
        };
        let drained = conn.drain_input_unless_reading();
        let next = match (&conn.state, drained) {
            (_, Drained::Failed) => Next::Close, // reset by the peer, ...
            (State::Reading(_), _) => conn.read_request(&mut self.timers),
            (State::Waiting(_), _) => Next::Keep, // a half-closed client may still read
            (State::Writing(..), _) => conn.write_response(&mut self.timers),
            (State::Closing, Drained::Eof) => Next::Close,
            (State::Closing, Drained::Open) => Next::Keep,
        };
        if let Next::Close = next {
            self.close(slot);
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((deadline, slot, serial, due))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.serial != serial {
                continue; // the slot belongs to a newer connection
            }
            let next = match (due, &mut conn.state) {
                (Due::Respond, State::Waiting(response)) => {
                    let response = std::mem::take(response);
                    conn.answer_now(response, &mut self.timers)
                }
                // Too slow to ask, too slow to take the answer, or too slow
                // to close: the descriptor is worth more than the client.
                (Due::HeadTimeout, State::Reading(_))
                | (Due::WriteTimeout, State::Writing(..))
                | (Due::LingerEnd, State::Closing) => Next::Close,
                _ => Next::Keep, // set for a state the connection has left
            };
            if let Next::Close = next {
                self.close(slot);
            }
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::take) {
            // Deregister before the fd closes (see Registry::deregister).
            let _ = self.poll.registry().deregister(conn.stream.as_raw_fd());
            self.free.push(slot);
            // `conn.stream` drops here: close(2).
        }
    }
}

impl Conn {
    // ANCHOR: read_request
    /// Reads until `WouldBlock` (edge-triggered: this edge is not reported
    /// again), then parses once the head is complete.
    fn read_request(&mut self, timers: &mut Timers) -> Next {
        let State::Reading(buf) = &mut self.state else {
            return Next::Keep;
        };
        let mut chunk = [0u8; 1024];
        let head_len = loop {
            // The head is everything up to and including the blank line; it
            // may be at most MAX_HEAD bytes, however the bytes arrived.
            match find_head_end(buf) {
                Some((_, head_end)) if head_end > MAX_HEAD => break None,
                Some((head, _)) => break Some(head),
                // No blank line within the first MAX_HEAD bytes: whatever
                // follows, the head is too large.
                None if buf.len() >= MAX_HEAD => break None,
                None => {}
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Close, // the client left before asking
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close, // reset by the peer, ...
            }
        };
        let Some(head_len) = head_len else {
            return self.answer_now(bad_request("request head too large"), timers);
        };
        let request = parse_request(&buf[..head_len]);
        match request {
            Ok((delay, message)) => match Instant::now().checked_add(delay) {
                Some(deadline) => {
                    self.state = State::Waiting(http_response("200 OK", &message));
                    timers.push(Reverse((deadline, self.slot, self.serial, Due::Respond)));
                    Next::Keep
                }
                None => self.answer_now(bad_request("delay out of range"), timers),
            },
            Err(why) => self.answer_now(bad_request(why), timers),
        }
    }
    // ANCHOR_END: read_request

    /// Starts sending `response`, which must be taken within the idle timeout.
    fn answer_now(&mut self, response: Vec<u8>, timers: &mut Timers) -> Next {
        self.state = State::Writing(response, 0);
        // (An idle timeout too long for `Instant` means none.)
        if let Some(deadline) = Instant::now().checked_add(self.idle_timeout) {
            timers.push(Reverse((
                deadline,
                self.slot,
                self.serial,
                Due::WriteTimeout,
            )));
        }
        self.write_response(timers)
    }

    /// Outside `Reading`, reads and drops whatever else the client sends (a
    /// body, a second request): unread input would turn our close into a reset.
    fn drain_input_unless_reading(&mut self) -> Drained {
        if let State::Reading(_) = self.state {
            return Drained::Open;
        }
        let mut chunk = [0u8; 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Drained::Eof,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Drained::Failed,
            }
        }
    }

    /// Writes until done or `WouldBlock` (the writable edge resumes it).
    fn write_response(&mut self, timers: &mut Timers) -> Next {
        let State::Writing(response, written) = &mut self.state else {
            return Next::Keep;
        };
        while *written < response.len() {
            match self.stream.write(&response[*written..]) {
                Ok(0) => return Next::Close,
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close, // the client is gone
            }
        }
        // `Connection: close`: the end of the stream is the end of the body.
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return Next::Close;
        }
        self.state = State::Closing;
        let deadline = Instant::now() + LINGER;
        timers.push(Reverse((deadline, self.slot, self.serial, Due::LingerEnd)));
        // The client may have closed already; its EOF edge may be past.
        match self.drain_input_unless_reading() {
            Drained::Open => Next::Keep,
            Drained::Eof | Drained::Failed => Next::Close,
        }
    }
}

/// Finds the blank line that ends an HTTP head: `(head length without the
/// blank line, offset of the body)`. Accepts bare `\n` line ends too.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

// ANCHOR: parse_request
/// `GET /{ms}/{message} HTTP/1.x` → (delay, decoded message), or why not.
fn parse_request(head: &[u8]) -> Result<(Duration, Vec<u8>), &'static str> {
    let head = std::str::from_utf8(head).map_err(|_| "request is not UTF-8")?;
    let request_line = head.lines().next().ok_or("empty request")?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if method != "GET" {
        return Err("only GET is served");
    }
    if !version.starts_with("HTTP/1.") {
        return Err("only HTTP/1.x is served");
    }
    // Drop a query string; what is left must be /{ms} or /{ms}/{message}.
    let target = target.split('?').next().unwrap_or_default();
    let rest = target.strip_prefix('/').ok_or("target must start with /")?;
    let (ms, message) = rest.split_once('/').unwrap_or((rest, ""));
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected GET /{ms}/{message}");
    }
    let ms: u64 = ms.parse().map_err(|_| "delay out of range")?;
    let delay = Duration::from_millis(ms);
    if delay > MAX_DELAY {
        return Err("delay out of range");
    }
    Ok((
        delay,
        percent_decode(message).ok_or("bad percent-encoding")?,
    ))
}
// ANCHOR_END: parse_request

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Exactly two hex digits: `from_str_radix` alone would also
            // take a sign, and decode `%+1` as byte 1.
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn http_response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

fn bad_request(why: &str) -> Vec<u8> {
    http_response(
        "400 Bad Request",
        format!("{why}; expected GET /{{ms}}/{{message}}\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_request_gives_its_delay_and_decoded_message() {
        let head = b"GET /250/hello%20world HTTP/1.1\r\nHost: x";
        assert_eq!(
            parse_request(head),
            Ok((Duration::from_millis(250), b"hello world".to_vec()))
        );
        assert_eq!(
            parse_request(b"GET /0 HTTP/1.0"),
            Ok((Duration::ZERO, Vec::new()))
        );
        assert_eq!(
            parse_request(b"GET /5/a/b?x=1 HTTP/1.1"),
            Ok((Duration::from_millis(5), b"a/b".to_vec()))
        );
    }

    #[test]
    fn malformed_requests_are_rejected_with_a_reason() {
        for head in [
            &b""[..],
            b"GET",
            b"GET /1/x",
            b"POST /1/x HTTP/1.1",
            b"GET /abc/x HTTP/1.1",
            b"GET /-1/x HTTP/1.1",
            b"GET 1/x HTTP/1.1",
            b"GET /99999999999999999999999/x HTTP/1.1",
            b"GET /600001/x HTTP/1.1",
            b"GET /1/%zz HTTP/1.1",
            b"GET /1/% HTTP/1.1",
            b"GET /1/%+1 HTTP/1.1",
            b"GET /1/%-1 HTTP/1.1",
            b"GET /1/x SPDY/3",
            b"GET /1/x HTTP/1.1 extra",
            b"\xff\xfe",
        ] {
            assert!(
                parse_request(head).is_err(),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn paths_percent_encode_what_is_not_unreserved() {
        assert_eq!(path(10, "a b/c~"), "/10/a%20b%2Fc~");
        let (_, decoded) = parse_request(format!("GET {} HTTP/1.1", path(1, "ü ?&")).as_bytes())
            .expect("round trip");
        assert_eq!(decoded, "ü ?&".as_bytes());
    }

    #[test]
    fn responses_parse_back_into_status_and_body() {
        let raw = http_response("200 OK", b"hi");
        assert_eq!(
            parse_response(&raw),
            Some(Response {
                status: 200,
                body: b"hi".to_vec()
            })
        );
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn a_response_whose_body_is_shorter_or_longer_than_its_content_length_is_refused() {
        let whole = http_response("200 OK", b"0123456789");
        let cut = &whole[..whole.len() - 7];
        assert_eq!(parse_response(cut), None, "cut short after 3 of 10 bytes");
        let mut longer = whole.clone();
        longer.extend_from_slice(b"!");
        assert_eq!(parse_response(&longer), None, "one byte too many");
        let without_length = b"HTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(
            parse_response(without_length).map(|r| r.body),
            Some(b"abc".to_vec()),
            "no Content-Length: the end of the stream ends the body"
        );
    }

    #[test]
    fn a_request_path_that_would_break_the_request_line_is_refused() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for path in [
            "",
            "/1/a b",
            "/1/a\r\nX-Injected: yes",
            "/1/\u{e9}",
            "/1/\t",
        ] {
            let error = request(addr, path).expect_err(path);
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{path:?}");
        }
        let line = request(addr, &path(5, "a b\r\n")).expect("an encoded path");
        assert!(
            line.starts_with("GET /5/a%20b%0D%0A HTTP/1.1\r\n"),
            "{line}"
        );
    }
}
