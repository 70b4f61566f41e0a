//! [`Poll`] and [`Registry`]: mio's shape over one epoll instance.
//!
//! ```text
//!   Registry ── register / reregister / deregister ──▶ epoll_ctl   (interest list)
//!      ▲  (cheap to clone, usable from any thread)
//!      │
//!   Poll ────── poll(&mut Events, timeout) ─────────▶ epoll_wait  (ready list)
//!               (one thread waits at a time: &mut self)
//! ```
//!
//! The split mirrors the kernel's two lists: changing what is watched and
//! waiting for what is ready are separate jobs, often done by different
//! code (a reactor waits; the futures or green threads it serves register).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::interest::epoll_events;
use crate::sys::Epoll;
use crate::{Events, Interest, Token, Trigger};

/// Waits for readiness events: the owner of the wait.
#[derive(Debug)]
pub struct Poll {
    registry: Registry,
}

/// Registers descriptors with a [`Poll`]: the owner of the interest list.
///
/// Clones share the same epoll instance; all methods take `&self` because
/// `epoll_ctl` is safe to call from any thread, even during a wait.
#[derive(Debug, Clone)]
pub struct Registry {
    epoll: Arc<Epoll>,
}

impl Poll {
    /// A new epoll instance with nothing registered.
    pub fn new() -> io::Result<Poll> {
        Ok(Poll {
            registry: Registry {
                epoll: Arc::new(Epoll::new()?),
            },
        })
    }

    /// The registry for this poll's interest list.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    // ANCHOR: poll
    /// The wait phase: blocks until a registered descriptor is ready, a
    /// [`Waker`](crate::Waker) fires, or `timeout` passes (`None` = no limit).
    /// `events` is overwritten with what happened; empty means the timeout.
    ///
    /// Signals do not end the wait early (see [`Epoll::wait`]).
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let n = self.registry.epoll.wait(events.raw_buffer(), timeout)?;
        events.set_len(n);
        Ok(())
    }
    // ANCHOR_END: poll
}

impl AsRawFd for Poll {
    /// The epoll fd itself: an epoll instance is readable when it has events,
    /// so it can be nested inside another poller.
    fn as_raw_fd(&self) -> RawFd {
        self.registry.epoll.as_raw_fd()
    }
}

// ANCHOR: registry
impl Registry {
    /// Starts watching `fd` for `interest`, reported as `trigger` says, with
    /// `token` in each event. The fd should be non-blocking: readiness is a
    /// hint, and a blocking read after a stale hint would stall the thread.
    ///
    /// Registering the same fd twice is an error (`EEXIST`); use
    /// [`reregister`](Self::reregister).
    pub fn register(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.epoll
            .add(fd, epoll_events(interest, trigger), token.0 as u64)
    }

    /// Changes the token, interest or trigger of a registered `fd`. Re-arms
    /// a [`Trigger::OneShot`] registration; if the fd is ready already, the
    /// next wait reports it at once.
    pub fn reregister(
        &self,
        fd: RawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.epoll
            .modify(fd, epoll_events(interest, trigger), token.0 as u64)
    }

    /// Stops watching `fd`. Do this before closing it: the kernel drops an
    /// fd from the interest list only when the *last* descriptor of its open
    /// file closes, so a `dup`ed copy would keep reporting events.
    pub fn deregister(&self, fd: RawFd) -> io::Result<()> {
        self.epoll.delete(fd)
    }
}
// ANCHOR_END: registry
