//! Green sockets: `TcpListener` and `TcpStream` with ordinary, blocking-style
//! `accept`, `connect`, [`Read`] and [`Write`], for green threads running on
//! a [`netpoller::runtime`](crate::netpoller::runtime).
//!
//! Underneath, every socket is non-blocking. Each operation is the same loop:
//!
//! ```text
//!   loop {
//!       match syscall() {
//!           Err(WouldBlock) => park this green thread until the fd is ready,
//!           result          => return result,
//!       }
//!   }
//! ```
//!
//! so the green thread blocks and the OS thread does not: while one green
//! thread waits for its client, the scheduler runs the others, and when all
//! of them wait it sleeps in `epoll_wait`.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::mem;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::Interest;
use crate::netpoller::Shared;

/// How many connections the kernel queues before we accept them. std asks
/// for 128; a thousand clients connecting at once would overflow that.
const BACKLOG: libc::c_int = 1024;

// ANCHOR: blocking_loop
/// Runs a non-blocking `op` until it stops saying `WouldBlock`, parking the
/// green thread on `fd`'s readiness for `interest` in between.
fn block_on_fd<T>(
    netpoller: &Shared,
    fd: RawFd,
    interest: Interest,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    // ANCHOR: lab_3_2_retry
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                netpoller.wait_until_ready(fd, interest, None)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
    // ANCHOR_END: lab_3_2_retry
}
// ANCHOR_END: blocking_loop

/// A green TCP listener: `accept` parks the green thread, not the OS thread.
pub struct TcpListener {
    inner: std::net::TcpListener,
    netpoller: Rc<Shared>,
}

impl TcpListener {
    /// Binds, as `std::net::TcpListener::bind` does, and registers the
    /// socket with the current runtime's netpoller.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let netpoller = Shared::current()?;
        let inner = std::net::TcpListener::bind(addr)?;
        // listen() on a listening socket just updates its backlog.
        // SAFETY: listen on a socket fd we own; failure is returned as -1.
        crate::sys::cvt(unsafe { libc::listen(inner.as_raw_fd(), BACKLOG) })?;
        inner.set_nonblocking(true)?;
        netpoller.register(inner.as_raw_fd())?;
        Ok(TcpListener { inner, netpoller })
    }

    /// Waits (parking the green thread) for a connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = block_on_fd(
            &self.netpoller,
            self.inner.as_raw_fd(),
            Interest::READABLE,
            || self.inner.accept(),
        )?;
        Ok((
            TcpStream::from_std(stream, Rc::clone(&self.netpoller))?,
            peer,
        ))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        // Before `inner` closes: see `Registry::deregister`.
        self.netpoller.deregister(self.inner.as_raw_fd());
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpListener").field(&self.inner).finish()
    }
}

/// A green TCP stream: `Read` and `Write` park the green thread until the
/// socket is ready. Shared as `&TcpStream`, one green thread can read while
/// another writes.
///
/// A stream belongs to the runtime that created it. Used anywhere else (after
/// `block_on` returned, or under another runtime), an operation that can
/// complete at once still does, and one that would block returns an
/// `io::Error` saying why: there it could only park on a netpoller that no
/// scheduler waits in.
pub struct TcpStream {
    inner: std::net::TcpStream,
    netpoller: Rc<Shared>,
    /// How long a read may wait for data (`None`: for ever).
    read_timeout: Cell<Option<Duration>>,
}

impl TcpStream {
    fn from_std(inner: std::net::TcpStream, netpoller: Rc<Shared>) -> io::Result<TcpStream> {
        inner.set_nonblocking(true)?;
        netpoller.register(inner.as_raw_fd())?;
        Ok(TcpStream {
            inner,
            netpoller,
            read_timeout: Cell::new(None),
        })
    }

    // ANCHOR: connect
    /// Connects to `addr`, parking the green thread while the handshake runs.
    ///
    /// A non-blocking `connect` returns `EINPROGRESS` at once; the socket
    /// turns writable when the handshake ends, and `SO_ERROR` then says
    /// whether it succeeded. (`EINTR` means the same: a signal interrupted
    /// the call, but the handshake goes on in the kernel. Calling `connect`
    /// again would fail with `EALREADY`.)
    pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let netpoller = Shared::current()?;
        let inner = std::net::TcpStream::from(nonblocking_socket(&addr)?);
        let fd = inner.as_raw_fd();
        netpoller.register(fd)?;
        let stream = TcpStream {
            inner,
            netpoller,
            read_timeout: Cell::new(None),
        };
        let (raw, len) = sockaddr_of(&addr);
        // SAFETY: `raw` holds a valid sockaddr of `len` bytes for this family.
        let rc = unsafe { libc::connect(fd, (&raw as *const libc::sockaddr_storage).cast(), len) };
        if rc == -1 {
            let err = io::Error::last_os_error();
            if !matches!(err.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) {
                return Err(err);
            }
            // Writable means "handshake over"; a refused connect also
            // reports EPOLLERR, which wakes writers too.
            block_on_fd(&stream.netpoller, fd, Interest::WRITABLE, || {
                match stream.inner.take_error()? {
                    Some(e) => Err(e),
                    None => match stream.inner.peer_addr() {
                        Ok(_) => Ok(()),
                        // Not connected yet: a spurious wake-up.
                        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                            Err(io::ErrorKind::WouldBlock.into())
                        }
                        Err(e) => Err(e),
                    },
                }
            })?;
        }
        Ok(stream)
    }
    // ANCHOR_END: connect

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down reading, writing or both (never blocks).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Limits how long each read waits for data: after `timeout` without any,
    /// the read fails with [`io::ErrorKind::TimedOut`]. `None` (the default)
    /// waits for ever; `Some(Duration::ZERO)` is refused, as std refuses it.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zero read timeout is not allowed (use None to wait for ever)",
            ));
        }
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// The read timeout set by [`set_read_timeout`](Self::set_read_timeout).
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    // ANCHOR: read_timeout
    /// A read that parks at most `timeout` in all, then gives up.
    fn read_with_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // ANCHOR: lab_3_4_read_timeout
        // A deadline too far for `Instant` is no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let fd = self.inner.as_raw_fd();
        loop {
            match (&self.inner).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = match deadline {
                        Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                        None => Duration::MAX,
                    };
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
                    }
                    // Woken by data, by the timer, or spuriously: try again.
                    self.netpoller
                        .wait_until_ready(fd, Interest::READABLE, Some(left))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
        // ANCHOR_END: lab_3_4_read_timeout
    }
    // ANCHOR_END: read_timeout

    /// Sets `TCP_NODELAY` (send small writes at once, no Nagle delay).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(timeout) = self.read_timeout.get() {
            return self.read_with_timeout(buf, timeout);
        }
        let fd = self.inner.as_raw_fd();
        block_on_fd(&self.netpoller, fd, Interest::READABLE, || {
            (&self.inner).read(buf)
        })
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        block_on_fd(&self.netpoller, fd, Interest::WRITABLE, || {
            (&self.inner).write(buf)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // nothing is buffered in user space
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.netpoller.deregister(self.inner.as_raw_fd());
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(&self.inner).finish()
    }
}

/// A non-blocking, close-on-exec TCP socket of `addr`'s family.
fn nonblocking_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes plain integers and returns a new fd or -1.
    let fd = crate::sys::cvt(unsafe { libc::socket(family, kind, 0) })?;
    // SAFETY: `fd` was just created and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `addr` as the C `sockaddr_in`/`sockaddr_in6` that `connect` takes.
fn sockaddr_of(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: as above.
            let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}
