//! One epoll instance: `epoll_create1`, `epoll_ctl` and `epoll_wait`.
//!
//! An epoll instance is a kernel object with two lists:
//!
//! ```text
//!            epoll_ctl(ADD/MOD/DEL)                 epoll_wait
//!                     │                                 ▲
//!                     ▼                                 │
//!   interest list: { fd 5: IN, fd 7: IN|OUT|ET, ... }   │
//!        (a red-black tree keyed by fd)                 │
//!                     │ the fd's wait-queue callback    │
//!                     │ fires when the fd becomes ready │
//!                     ▼                                 │
//!   ready list:    [ fd 7, fd 5 ]  ─────────────────────┘
//!        (a linked list; epoll_wait copies it out)
//! ```
//!
//! Registering costs `O(log n)` once; after that the *device* pushes the fd on
//! the ready list when something happens, so `epoll_wait` costs in proportion
//! to the number of ready fds, not the number watched. That is why it scales
//! where `select`/`poll` (which rescan every fd on every call) do not.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::cvt;

/// An owned epoll file descriptor; closed on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`: a new, empty interest list.
    ///
    /// Close-on-exec so a child process started with `exec` does not inherit
    /// (and keep alive) our epoll instance.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes only flags and returns a new fd or -1.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by the kernel and nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// `EPOLL_CTL_ADD`: start watching `fd` for `events`; `data` comes back
    /// with every event for it.
    pub fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, data)
    }

    /// `EPOLL_CTL_MOD`: change the events (and data) of a watched `fd`. This
    /// is also how a one-shot registration is re-armed.
    pub fn modify(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, data)
    }

    /// `EPOLL_CTL_DEL`: stop watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        // Kernels before 2.6.9 wanted a non-null event pointer even for DEL;
        // passing one costs nothing.
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        // ANCHOR: lab_3_1_ctl
        let mut event = libc::epoll_event { events, u64: data };
        // SAFETY: `self.fd` is a live epoll fd; `event` is a valid, writable
        // epoll_event for the duration of the call. A bad `fd` is reported by
        // the kernel as EBADF/EPERM, not undefined behaviour.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
        // ANCHOR_END: lab_3_1_ctl
    }

    // ANCHOR: wait
    /// `epoll_wait`: block until at least one watched fd is ready or
    /// `timeout` passes (`None` = forever), then fill `events` from the front.
    /// Returns how many entries were filled (0 on timeout).
    ///
    /// A signal handler running on this thread interrupts the wait with
    /// `EINTR`. That is not an error for the caller: we wait again, for what
    /// is *left* of the timeout, so a stream of signals can neither surface as
    /// an error nor stretch the wait beyond its deadline.
    pub fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        // ANCHOR: lab_3_1_wait
        let deadline = timeout.map(|t| Instant::now().checked_add(t));
        let max_events = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
        let mut timeout_ms = timeout_to_ms(timeout);
        loop {
            // SAFETY: `events` is valid for writes of `max_events` entries;
            // the kernel writes at most that many.
            let n = unsafe {
                libc::epoll_wait(
                    self.fd.as_raw_fd(),
                    events.as_mut_ptr(),
                    max_events,
                    timeout_ms,
                )
            };
            match cvt(n) {
                // Non-negative and at most max_events.
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    // Shrink the timeout to what is left of it.
                    timeout_ms = match deadline {
                        None | Some(None) => -1, // forever (or beyond Instant's range)
                        Some(Some(deadline)) => {
                            timeout_to_ms(Some(deadline.saturating_duration_since(Instant::now())))
                        }
                    };
                }
                Err(e) => return Err(e),
            }
        }
        // ANCHOR_END: lab_3_1_wait
    }
    // ANCHOR_END: wait
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Milliseconds for `epoll_wait`: `-1` for "forever", and sub-millisecond
/// remainders rounded *up*, so a wait never ends before its deadline (rounding
/// down would turn 0.4 ms into a busy-looping 0).
pub(crate) fn timeout_to_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let mut ms = t.as_millis();
            if Duration::from_millis(ms as u64) < t {
                ms += 1;
            }
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds_and_none_means_forever() {
        assert_eq!(timeout_to_ms(None), -1);
        assert_eq!(timeout_to_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_to_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_to_ms(Some(Duration::from_micros(1_500))), 2);
        assert_eq!(timeout_to_ms(Some(Duration::from_millis(7))), 7);
        assert_eq!(timeout_to_ms(Some(Duration::MAX)), libc::c_int::MAX);
    }

    #[test]
    fn an_empty_interest_list_times_out_with_no_events() {
        let epoll = Epoll::new().expect("epoll_create1");
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        let n = epoll
            .wait(&mut events, Some(Duration::from_millis(1)))
            .expect("epoll_wait");
        assert_eq!(n, 0);
    }

    #[test]
    fn the_epoll_fd_is_close_on_exec() {
        let epoll = Epoll::new().expect("epoll_create1");
        // SAFETY: F_GETFD on a live fd only reads its flags.
        let flags = unsafe { libc::fcntl(epoll.as_raw_fd(), libc::F_GETFD) };
        assert!(flags >= 0);
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn control_operations_on_a_bad_fd_are_errors_not_panics() {
        let epoll = Epoll::new().expect("epoll_create1");
        assert!(epoll.add(-1, libc::EPOLLIN as u32, 0).is_err());
        assert!(epoll.modify(-1, libc::EPOLLIN as u32, 0).is_err());
        assert!(epoll.delete(-1).is_err());
    }
}
