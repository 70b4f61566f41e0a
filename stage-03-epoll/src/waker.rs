//! [`Waker`]: ends a blocked [`Poll::poll`](crate::Poll::poll) from any thread.

use std::io;
use std::os::fd::AsRawFd;

use crate::sys::EventFd;
use crate::{Interest, Registry, Token, Trigger};

/// An eventfd registered with a poller; [`wake`](Self::wake) makes the
/// poller's current or next wait return an event carrying this token.
///
/// Wakes coalesce: several wakes before the poller looks yield at least one
/// event. Nothing is lost: a wake before the wait starts ends that wait at
/// once, because the eventfd stays readable.
///
/// Keep the `Waker` alive until the poller has seen its event: dropping it
/// closes the eventfd, and the kernel removes a closed fd from the interest
/// list *and* the ready list, so a wake not yet collected goes with it.
/// (Share it with `Arc<Waker>`; it is `Send + Sync`.)
#[derive(Debug)]
pub struct Waker {
    fd: EventFd,
}

impl Waker {
    /// Registers a new eventfd with `registry` under `token`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Waker> {
        let fd = EventFd::new()?;
        // Edge-triggered: every write to an eventfd is a new edge, so each
        // wake is reported without anyone having to read the counter back.
        registry.register(fd.as_raw_fd(), token, Interest::READABLE, Trigger::Edge)?;
        Ok(Waker { fd })
    }

    // ANCHOR: wake
    /// Makes the poller's wait return with this waker's token.
    pub fn wake(&self) -> io::Result<()> {
        match self.fd.write(1) {
            Ok(()) => Ok(()),
            // The counter is full (after ~2^64 unread wakes): empty it and
            // write again, which is again a fresh edge.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match self.fd.read() {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                self.fd.write(1)
            }
            Err(e) => Err(e),
        }
    }
    // ANCHOR_END: wake
}
