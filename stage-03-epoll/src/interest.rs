//! [`Interest`] (what to watch for) and [`Trigger`] (how to be told).

use std::fmt;
use std::ops::BitOr;

/// The readiness a registration asks about: readable, writable or both.
///
/// ```
/// use netpoll::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

const READ: u8 = 0b01;
const WRITE: u8 = 0b10;

impl Interest {
    /// Ready to read: data arrived, a connection is waiting to be accepted,
    /// or the peer closed its side (a read then returns 0).
    pub const READABLE: Interest = Interest(READ);
    /// Ready to write: there is room in the send buffer, or a non-blocking
    /// `connect` finished (successfully or not).
    pub const WRITABLE: Interest = Interest(WRITE);

    /// Both interests of `self` and `other`.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Whether this includes [`Interest::READABLE`].
    pub const fn is_readable(self) -> bool {
        self.0 & READ != 0
    }

    /// Whether this includes [`Interest::WRITABLE`].
    pub const fn is_writable(self) -> bool {
        self.0 & WRITE != 0
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(none)"),
        }
    }
}

// ANCHOR: trigger
/// When the kernel reports a registration's readiness.
///
/// ```text
///  bytes in the socket buffer:
///            0 ──┐ 3 ─────────── 3 ──┐ 5 ───── read all ──▶ 0
///                │                   │
///  epoll_wait:   ▼ w1      w2    w3  ▼ w4      w5      w6
///  Level       IN       IN     IN    IN       IN       -     (while data remains)
///  Edge        IN       -      -     IN       -        -     (once per arrival)
///  OneShot     IN       -      -     -        -        -     (once, until re-armed)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Reported by every `epoll_wait` for as long as the fd *is* ready. The
    /// forgiving mode: reading only part of the data is fine, the rest is
    /// reported again. This is what `select` and `poll` do.
    Level,
    /// Reported when the fd *becomes* ready (`EPOLLET`): once per change.
    /// The caller must drain (read or write until `WouldBlock`) before the
    /// next wait, or the leftover is never reported again.
    Edge,
    /// Reported once, then the registration is disabled (`EPOLLONESHOT`)
    /// until [`Registry::reregister`](crate::Registry::reregister) re-arms
    /// it. Lets several threads share one epoll without two of them handling
    /// the same fd at once, and lets a green thread wait for exactly one event.
    OneShot,
}
// ANCHOR_END: trigger

// ANCHOR: to_epoll
/// The `epoll_event.events` bits for an interest and a trigger mode.
pub(crate) fn epoll_events(interest: Interest, trigger: Trigger) -> u32 {
    let mut bits = 0;
    if interest.is_readable() {
        // EPOLLRDHUP: also tell us when the peer shut down its writing half,
        // so a closed connection is seen without another read.
        bits |= libc::EPOLLIN | libc::EPOLLRDHUP;
    }
    if interest.is_writable() {
        bits |= libc::EPOLLOUT;
    }
    bits |= match trigger {
        Trigger::Level => 0,
        Trigger::Edge => libc::EPOLLET,
        Trigger::OneShot => libc::EPOLLONESHOT,
    };
    // EPOLLERR and EPOLLHUP are always reported; no need to ask.
    bits as u32
}
// ANCHOR_END: to_epoll

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_combine_and_report_their_parts() {
        let r = Interest::READABLE;
        let w = Interest::WRITABLE;
        assert!(r.is_readable() && !r.is_writable());
        assert!(!w.is_readable() && w.is_writable());
        assert_eq!(r | w, w | r);
        assert_eq!(format!("{:?}", r | w), "READABLE | WRITABLE");
    }

    #[test]
    fn trigger_modes_map_to_the_epoll_flags() {
        let level = epoll_events(Interest::READABLE, Trigger::Level);
        let edge = epoll_events(Interest::READABLE, Trigger::Edge);
        let once = epoll_events(Interest::WRITABLE, Trigger::OneShot);
        assert_eq!(level, (libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
        assert_eq!(edge, level | libc::EPOLLET as u32);
        assert_eq!(once, (libc::EPOLLOUT | libc::EPOLLONESHOT) as u32);
    }
}
