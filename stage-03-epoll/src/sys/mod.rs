//! The operating-system layer: the few Linux system calls this stage needs,
//! each wrapped once, with its errors returned instead of unwrapped.
//!
//! Nothing here knows about tokens, interests or trigger modes; it speaks the
//! kernel's own vocabulary (`EPOLLIN`, `EPOLL_CTL_ADD`, a `u64` of user data).
//! The portable-looking types ([`crate::Poll`], [`crate::Registry`], ...) sit
//! on top of it, the way mio's `sys::unix::selector::epoll` sits under mio.
//!
//! ```text
//!   Poll / Registry / Events / Waker      portable shape (mio's)
//!   ─────────────────────────────────
//!   sys::Epoll        sys::EventFd        this module: one job each
//!   ─────────────────────────────────
//!   epoll_create1 epoll_ctl epoll_wait eventfd read write    (libc)
//! ```

pub mod epoll;
pub mod eventfd;

pub use epoll::Epoll;
pub use eventfd::EventFd;

use std::io;

/// Turns the C convention "-1 and `errno`" into an `io::Result`.
pub(crate) fn cvt(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Like [`cvt`] for calls that return a byte count (`read`, `write`).
pub(crate) fn cvt_size(result: libc::ssize_t) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        // A non-negative ssize_t always fits in usize.
        Ok(result as usize)
    }
}
