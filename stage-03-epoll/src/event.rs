//! [`Event`] and [`Events`]: what one `epoll_wait` reported.

use std::fmt;

use crate::Token;

/// One readiness report: which registration ([`Token`]) and what happened.
///
/// Readiness is a hint, not a promise: the operation it suggests may still
/// return `WouldBlock` (another thread got there first, a spurious wake-up),
/// so callers always handle `WouldBlock` anyway.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Event {
    raw: libc::epoll_event,
}

impl Event {
    fn bits(&self) -> i32 {
        // A copy out of the (on x86-64, packed) struct; never a reference.
        let events = self.raw.events;
        events as i32
    }

    /// The token given at registration.
    pub fn token(&self) -> Token {
        let data = self.raw.u64;
        Token(data as usize)
    }

    /// There is something to read (or accept), or the peer closed.
    pub fn is_readable(&self) -> bool {
        self.bits() & (libc::EPOLLIN | libc::EPOLLPRI) != 0
    }

    /// There is room to write, or a non-blocking connect completed.
    pub fn is_writable(&self) -> bool {
        self.bits() & libc::EPOLLOUT != 0
    }

    /// The descriptor has a pending error (`EPOLLERR`), e.g. a reset or a
    /// refused connect; the next operation on it returns that error.
    pub fn is_error(&self) -> bool {
        self.bits() & libc::EPOLLERR != 0
    }

    /// The peer will send nothing more (`EPOLLRDHUP`, or `EPOLLHUP` for both
    /// directions): reads drain what is buffered, then return 0.
    pub fn is_read_closed(&self) -> bool {
        self.bits() & (libc::EPOLLHUP | libc::EPOLLRDHUP) != 0
    }

    /// Writing can no longer succeed (`EPOLLHUP`, or an error together with
    /// write interest).
    pub fn is_write_closed(&self) -> bool {
        let bits = self.bits();
        bits & libc::EPOLLHUP != 0 || (bits & libc::EPOLLOUT != 0 && bits & libc::EPOLLERR != 0)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token())
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("error", &self.is_error())
            .field("read_closed", &self.is_read_closed())
            .field("write_closed", &self.is_write_closed())
            .finish()
    }
}

/// A reusable buffer that one [`Poll::poll`](crate::Poll::poll) fills.
///
/// Its capacity bounds how many events one wait returns; the rest stay on
/// the kernel's ready list for the next wait, so a small buffer loses nothing.
pub struct Events {
    buf: Vec<Event>,
    len: usize,
}

impl Events {
    /// Room for `capacity` events per wait (at least one).
    pub fn with_capacity(capacity: usize) -> Events {
        let empty = Event {
            raw: libc::epoll_event { events: 0, u64: 0 },
        };
        Events {
            buf: vec![empty; capacity.max(1)],
            len: 0,
        }
    }

    /// How many events one wait can return.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// How many events the last wait returned.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last wait returned nothing (a timeout or a bare wake).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The events of the last wait.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.buf[..self.len].iter()
    }

    /// Forgets the events of the last wait.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole buffer as the kernel's type, for `epoll_wait` to fill.
    pub(crate) fn raw_buffer(&mut self) -> &mut [libc::epoll_event] {
        // The kernel fills our buffer directly: no copy after each wait.
        let ptr = self.buf.as_mut_ptr().cast::<libc::epoll_event>();
        // SAFETY: `Event` is repr(transparent) over `libc::epoll_event`, so a
        // slice of one is a valid slice of the other with the same length;
        // the borrow of `self.buf` lasts as long as the returned slice.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.buf.len()) }
    }

    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len());
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
