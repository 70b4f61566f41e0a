//! An `eventfd`: a kernel counter behind a file descriptor, the cheapest way
//! to make a blocked `epoll_wait` on one thread return from another thread.
//!
//! `write(8 bytes n)` adds `n` to the counter and makes the fd readable;
//! `read(8 bytes)` returns the counter and resets it to zero.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{cvt, cvt_size};

/// An owned, non-blocking, close-on-exec eventfd.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes an initial value and flags; returns a new fd or -1.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just returned by the kernel and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Adds `n` to the counter. Fails with `WouldBlock` if the counter would
    /// reach its maximum (`u64::MAX - 1`).
    pub fn write(&self, n: u64) -> io::Result<()> {
        let buf = n.to_ne_bytes();
        // SAFETY: `buf` is 8 readable bytes, the size eventfd requires.
        cvt_size(unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
        Ok(())
    }

    /// Reads and resets the counter. `WouldBlock` if it is zero.
    pub fn read(&self) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is 8 writable bytes, the size eventfd requires.
        cvt_size(unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })?;
        Ok(u64::from_ne_bytes(buf))
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_add_up_and_a_read_resets_the_counter() {
        let efd = EventFd::new().expect("eventfd");
        assert_eq!(
            efd.read().map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        efd.write(2).expect("write");
        efd.write(3).expect("write");
        assert_eq!(efd.read().expect("read"), 5);
        assert!(efd.read().is_err());
    }
}
