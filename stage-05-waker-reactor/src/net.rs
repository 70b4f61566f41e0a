//! Asynchronous TCP: [`TcpListener`] and [`TcpStream`] over mio sockets
//! registered with the runtime's reactor.
//!
//! Every operation has the same shape (see `PollEvented::poll_io`): try
//! the non-blocking syscall; on `WouldBlock`, clear the remembered
//! readiness and return `Pending`, leaving the task's waker with the
//! reactor; the reactor wakes the task when epoll reports the socket ready.
//!
//! `TcpStream` implements `futures::io::AsyncRead` and `AsyncWrite`, so the
//! extension traits (`read_exact`, `write_all`, `copy`, `split`, `lines`, ...)
//! work on it. Sockets are created inside a runtime and belong to its
//! reactor.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};

use crate::reactor::{Direction, PollEvented};

/// The accept queue's length asked for by [`TcpListener::bind`].
const LISTEN_BACKLOG: libc::c_int = 1024;

/// Linux's `IOV_MAX`: `sendmsg` refuses more buffers than this, so a
/// vectored write sends at most this many at a time.
const IOV_MAX: usize = 1024;

/// A non-blocking, close-on-exec socket bound to `addr` (with
/// `SO_REUSEADDR`, as mio and std do) and listening with
/// `LISTEN_BACKLOG`. Written out rather than taken from mio, whose `bind`
/// listens with a backlog of 128: a burst of more connections than that
/// overflows the accept queue, and the kernel drops SYNs that clients retry
/// only after a second. Calling `listen` a second time to raise it works on
/// Linux but not everywhere (Miri refuses it), so we listen once.
fn listen_on(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: a plain system call; no memory is passed.
    let fd = unsafe { libc::socket(domain, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else; the
    // `OwnedFd` closes it if a step below fails.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: `one` lives across the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let (storage, len) = socket_address(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes for the
    // socket's family, and lives across the call.
    let rc = unsafe { libc::bind(fd, (&raw const storage).cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `listen` on a socket fd we own; no memory is passed.
    let rc = unsafe { libc::listen(fd, LISTEN_BACKLOG) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(socket))
}

/// `addr` as the C `sockaddr_in` / `sockaddr_in6` the kernel expects
/// (network byte order), in a `sockaddr_storage`, and its length.
fn socket_address(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: all-zero bytes are a valid `sockaddr_in`.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: `sockaddr_storage` is large and aligned enough for
            // every socket address type (that is its purpose).
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero bytes are a valid `sockaddr_in6`.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A TCP socket listening for connections.
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl TcpListener {
    /// Bind to `addr` (port 0 picks a free port) and listen. Must be called
    /// inside a runtime (panics otherwise): the socket joins its reactor.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let listener = listen_on(addr)?;
        Ok(TcpListener {
            io: PollEvented::new(mio::net::TcpListener::from_std(listener))?,
        })
    }

    /// Adopt a bound, listening std socket (it is set non-blocking).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: PollEvented::new(mio::net::TcpListener::from_std(listener))?,
        })
    }

    /// Wait for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll for the next connection.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, addr) =
            std::task::ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(TcpStream::from_mio(stream).map(|s| (s, addr)))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

/// A TCP connection. Read and write with `futures::io::AsyncReadExt` /
/// `AsyncWriteExt`.
pub struct TcpStream {
    io: PollEvented<mio::net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl TcpStream {
    // ANCHOR: connect
    /// Open a connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        // Non-blocking connect: returns at once, the handshake goes on.
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        {
            // Writable means the handshake finished, one way or the other.
            std::future::poll_fn(|cx| {
                stream
                    .io
                    .poll_io(cx, Direction::Write, |s| match s.peer_addr() {
                        // Not connected and no error yet: not finished.
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            match s.take_error()? {
                                Some(error) => Err(error),
                                None => Err(io::ErrorKind::WouldBlock.into()),
                            }
                        }
                        Err(e) => Err(e),
                        Ok(_) => Ok(()),
                    })
            })
            .await?;
        }
        Ok(stream)
    }
    // ANCHOR_END: connect

    fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::new(stream)?,
        })
    }

    /// Adopt a connected std socket (it is set non-blocking).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The remote address of the connection.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Shut down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Disable (or enable) Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        // Nothing to read into: `Ok(0)` now, as `std`'s `Read` and
        // `read(2)` answer. Waiting for readiness first would leave the task
        // pending for as long as the peer stays quiet.
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        self.io
            .poll_transfer(cx, Direction::Read, len, |mut s| s.read(buf))
    }

    fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // As for reads: an empty write has nothing to wait for. (`std`'s
        // `TcpStream::write` sends with `MSG_NOSIGNAL`: no `SIGPIPE`.)
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.io
            .poll_transfer(cx, Direction::Write, buf.len(), |mut s| s.write(buf))
    }

    fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // One call sends at most `IOV_MAX` buffers. `poll_transfer` takes a
        // write shorter than `len` for a full socket, and waits for it to
        // drain; so `len` counts only what this call can send, or a socket
        // with room to spare would wait for an event that never comes.
        let bufs = &bufs[..bufs.len().min(IOV_MAX)];
        let len = bufs.iter().map(|b| b.len()).sum();
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        self.io
            .poll_transfer(cx, Direction::Write, len, |s| send_vectored(s, bufs))
    }
}

/// `write_vectored` that cannot raise `SIGPIPE`. `std` (and so mio) writes
/// a vector of buffers with `writev`, which has no flags: on a socket whose
/// peer is gone it raises `SIGPIPE`, whose default action kills the process.
/// A Rust `main` ignores the signal, but a library cannot count on that (a C
/// program may call it, a program may restore the default), so this uses
/// `sendmsg` with `MSG_NOSIGNAL`, like `std`'s plain `write` does: the
/// write fails with `BrokenPipe` instead.
fn send_vectored(stream: &mio::net::TcpStream, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero bytes are a valid `msghdr` (no address, no control
    // data, no buffers yet).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix (std guarantees it),
    // and `sendmsg` only reads the buffers.
    message.msg_iov = bufs.as_ptr().cast::<libc::iovec>().cast_mut();
    message.msg_iovlen = bufs.len().min(IOV_MAX) as _;
    // SAFETY: `message` points at `bufs`, which outlive the call; the fd is
    // the stream's own, open for as long as `stream` is borrowed.
    let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &message, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

// ANCHOR: async_read
impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}
// ANCHOR_END: async_read

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // TCP has no user-space buffer here
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

/// Reading through a shared reference lets one task read while another
/// writes the same stream. One reader and one writer at a time: the reactor
/// keeps one waker per direction, so if two tasks wait to read the same
/// stream, the second one's waker replaces the first one's, and the first
/// is not woken by the next event.
impl AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}
