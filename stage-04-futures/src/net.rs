//! TCP leaf futures: connect, read and write on a non-blocking socket.
//!
//! Each future is the same small loop, and it is the heart of readiness I/O
//! with futures:
//!
//! ```text
//!   poll phase:  try the system call (connect / read / write)
//!                  done?          -> Ready(result)
//!                  EWOULDBLOCK?   -> reactor.wake_when_ready(fd, interest, waker)
//!                                    -> Pending
//!   wait phase:  (the executor's reactor waits in epoll / mio)
//!   wake phase:  the reactor wakes our waker; the executor polls us again
//! ```
//!
//! The futures never block and never learn which reactor they run on: they
//! call the current one (see [`reactor`](crate::reactor)). They are `Send`.
//! Dropping a [`TcpStream`] (or a [`Connect`] still in progress) tells the
//! reactor to forget the fd, then closes it: dropping a future cancels it
//! and releases its descriptor.

use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::mem;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::reactor::{self, Interest};

/// A non-blocking TCP connection whose reads and writes are futures.
#[derive(Debug)]
pub struct TcpStream {
    inner: std::net::TcpStream,
}

impl TcpStream {
    /// Connect to `addr` without blocking. The returned future resolves to
    /// the connected stream.
    pub fn connect(addr: SocketAddr) -> Connect {
        Connect {
            state: ConnectState::Start(addr),
        }
    }

    /// Use a connected std stream (for example one from `accept`): it is
    /// switched to non-blocking mode.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream { inner: stream })
    }

    /// Read into `buf`; resolves to the number of bytes read (0: the peer
    /// closed its side).
    pub fn read<'a>(&'a self, buf: &'a mut [u8]) -> Read<'a> {
        Read { stream: self, buf }
    }

    /// Write from `buf`; resolves to the number of bytes written.
    pub fn write<'a>(&'a self, buf: &'a [u8]) -> Write<'a> {
        Write { stream: self, buf }
    }

    /// Write all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Read until the peer closes its side, appending to `buf`; resolves to
    /// the number of bytes appended.
    ///
    /// Cancelling it (dropping the future) keeps what was read so far in
    /// `buf` and nothing else: each read goes into a chunk the future owns,
    /// and only the bytes it got are appended. (Reading straight into
    /// zero-filled spare room of `buf` would leave those zeros behind in
    /// `buf` if the future were dropped while that read was pending.)
    pub async fn read_to_end(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        let mut chunk = vec![0u8; 4096];
        loop {
            match self.read(&mut chunk).await? {
                0 => return Ok(buf.len() - start),
                n => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Like [`read_to_end`](Self::read_to_end), but fails with
    /// `InvalidData` rather than append more than `limit` bytes, so that a
    /// peer that never stops sending cannot make `buf` grow without bound.
    /// What was appended before that stays in `buf`.
    pub async fn read_to_end_at_most(&self, buf: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
        let start = buf.len();
        let mut chunk = vec![0u8; 4096];
        loop {
            let n = self.read(&mut chunk).await?;
            let appended = buf.len() - start;
            if n == 0 {
                return Ok(appended);
            }
            if n > limit - appended {
                let why = format!("more than {limit} bytes before the end of the stream");
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Shut down the reading, writing or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        // Forget before close, so the reactor never watches a reused fd
        // number on our behalf. No reactor (dropped outside an executor):
        // nothing is registered with one from this thread, just close.
        let fd = self.inner.as_raw_fd();
        reactor::try_with_current(|reactor| reactor.forget(fd));
        // `inner` closes the fd when it drops, right after this.
    }
}

/// Ask the current reactor to wake this task when `fd` is ready, then
/// return `Pending` (or the reactor's error).
fn wait_for<T>(fd: RawFd, interest: Interest, cx: &Context<'_>) -> Poll<io::Result<T>> {
    match reactor::with_current(|reactor| reactor.wake_when_ready(fd, interest, cx.waker())) {
        Ok(()) => Poll::Pending,
        Err(error) => Poll::Ready(Err(error)),
    }
}

// ANCHOR: read
/// Future of [`TcpStream::read`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Read<'a> {
    stream: &'a TcpStream,
    buf: &'a mut [u8],
}

impl Future for Read<'_> {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = &mut *self; // Unpin: two references
        loop {
            // Poll phase: just try. The kernel knows best whether data is there.
            match (&this.stream.inner).read(this.buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return wait_for(this.stream.as_raw_fd(), Interest::Readable, cx);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
// ANCHOR_END: read

/// Future of [`TcpStream::write`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Write<'a> {
    stream: &'a TcpStream,
    buf: &'a [u8],
}

impl Future for Write<'_> {
    type Output = io::Result<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            match (&self.stream.inner).write(self.buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return wait_for(self.stream.as_raw_fd(), Interest::Writable, cx);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

// ANCHOR: connect
/// Future of [`TcpStream::connect`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Connect {
    state: ConnectState,
}

#[derive(Debug)]
enum ConnectState {
    /// Not polled yet: no socket exists.
    Start(SocketAddr),
    /// `connect` returned `EINPROGRESS`; the handshake runs in the kernel.
    /// The socket is owned here, so dropping the future closes it.
    Connecting(TcpStream),
    Done,
}

impl Future for Connect {
    type Output = io::Result<TcpStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        match mem::replace(&mut self.state, ConnectState::Done) {
            ConnectState::Start(addr) => match start_connect(addr) {
                Ok((stream, true)) => Poll::Ready(Ok(stream)),
                Ok((stream, false)) => self.wait(stream, cx),
                Err(error) => Poll::Ready(Err(error)),
            },
            ConnectState::Connecting(stream) => {
                // Woken (or polled spuriously): did the handshake end? A
                // failure is reported in SO_ERROR; success means we have a peer.
                match stream.inner.take_error() {
                    Ok(None) => {}
                    Ok(Some(error)) | Err(error) => return Poll::Ready(Err(error)),
                }
                match stream.inner.peer_addr() {
                    Ok(_) => Poll::Ready(Ok(stream)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => self.wait(stream, cx),
                    Err(error) => Poll::Ready(Err(error)),
                }
            }
            ConnectState::Done => panic!("Connect polled after it completed"),
        }
    }
}

impl Connect {
    /// A connecting socket becomes writable when the handshake ends.
    fn wait(&mut self, stream: TcpStream, cx: &Context<'_>) -> Poll<io::Result<TcpStream>> {
        match wait_for::<()>(stream.as_raw_fd(), Interest::Writable, cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)), // drops (closes) the socket
            _ => {
                self.state = ConnectState::Connecting(stream);
                Poll::Pending
            }
        }
    }
}
// ANCHOR_END: connect

/// Create a non-blocking socket and start connecting it to `addr`.
/// Returns the socket and whether the connection is already established.
fn start_connect(addr: SocketAddr) -> io::Result<(TcpStream, bool)> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: `socket` takes no pointers; any arguments are memory safe.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `socket`, is open, and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let stream = TcpStream {
        inner: std::net::TcpStream::from(fd),
    };
    let raw = RawSocketAddr::from(addr);
    // SAFETY: `raw.as_ptr()` points to a properly initialised sockaddr_in or
    // sockaddr_in6 of `raw.len()` bytes that outlives the call.
    let rc = unsafe { libc::connect(stream.as_raw_fd(), raw.as_ptr(), raw.len()) };
    if rc == 0 {
        return Ok((stream, true));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        // In progress. EINTR on a non-blocking connect also means the
        // handshake continues in the background.
        Some(libc::EINPROGRESS) | Some(libc::EINTR) => Ok((stream, false)),
        _ => Err(error), // `stream` drops here and closes the socket
    }
}

/// A `SocketAddr` in the C layout `connect(2)` wants.
enum RawSocketAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl From<SocketAddr> for RawSocketAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_in is plain old data; all-zero bytes are a
                // valid value (and the required zero padding).
                let mut raw: libc::sockaddr_in = unsafe { mem::zeroed() };
                raw.sin_family = libc::AF_INET as libc::sa_family_t;
                raw.sin_port = v4.port().to_be();
                raw.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
                RawSocketAddr::V4(raw)
            }
            SocketAddr::V6(v6) => {
                // SAFETY: as above, for sockaddr_in6.
                let mut raw: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                raw.sin6_port = v6.port().to_be();
                raw.sin6_flowinfo = v6.flowinfo();
                raw.sin6_addr.s6_addr = v6.ip().octets();
                raw.sin6_scope_id = v6.scope_id();
                RawSocketAddr::V6(raw)
            }
        }
    }
}

impl RawSocketAddr {
    fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            RawSocketAddr::V4(raw) => (raw as *const libc::sockaddr_in).cast(),
            RawSocketAddr::V6(raw) => (raw as *const libc::sockaddr_in6).cast(),
        }
    }

    fn len(&self) -> libc::socklen_t {
        let len = match self {
            RawSocketAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
            RawSocketAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
        };
        len as libc::socklen_t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_tcp_futures_are_send() {
        let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
        assert_send(&TcpStream::connect(addr));
        fn check(stream: &TcpStream, buf: &mut [u8]) {
            assert_send(&stream.read(buf));
            assert_send(&stream.write(&[]));
            assert_send(&stream.write_all(&[]));
        }
        let _ = check;
    }

    #[test]
    fn socket_addresses_are_laid_out_in_network_byte_order() {
        let raw = RawSocketAddr::from(SocketAddr::from(([127, 0, 0, 1], 0x1234)));
        let RawSocketAddr::V4(v4) = raw else {
            panic!("an IPv4 address gives a sockaddr_in");
        };
        assert_eq!(v4.sin_port.to_ne_bytes(), [0x12, 0x34]);
        assert_eq!(v4.sin_addr.s_addr.to_ne_bytes(), [127, 0, 0, 1]);
        assert_eq!(
            raw_len(&RawSocketAddr::V4(v4)),
            mem::size_of::<libc::sockaddr_in>()
        );
    }

    fn raw_len(raw: &RawSocketAddr) -> usize {
        raw.len() as usize
    }
}
