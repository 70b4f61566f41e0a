//! The netpoller: stage 02's green-thread scheduler, made to wait in epoll.
//!
//! Stage 02's scheduler knows how to run green threads but not what they
//! wait for; when nothing is runnable it hands the OS thread to a
//! [`green::Driver`]. [`NetPoller`] is that driver, built on this stage's
//! [`Poll`]. This is the idea behind Go's runtime: code is written in
//! blocking style, the runtime turns each "would block" into "park this green
//! thread until its descriptor is ready", and one `epoll_wait` serves them all.
//!
//! ```text
//!   green thread A: stream.read(buf)                 scheduler (one OS thread)
//!     read(fd 7) → EAGAIN
//!     readers[7] += A; park() ─────────────────────▶ run queue empty
//!                                                    wait phase:
//!                                                      driver.wait(timeout)
//!                                                        epoll_wait(.., next timer)
//!   (bytes arrive on fd 7) ───────────────────────────▶   event: Token(7) readable
//!                                                    wake phase:
//!                                                        wake(A) for readers[7]
//!                                                    poll phase: resume A
//!     park() returns; read(fd 7) → n bytes ◀──────────
//! ```
//!
//! Every socket is registered once, when it is created, edge-triggered for
//! both directions, with its fd as the token. (Go's netpoller registers the
//! same way, once and edge-triggered; its token is a pointer to its record
//! of the descriptor.) No `epoll_ctl` happens per wait. Edge-triggering is safe here because a
//! green thread parks only right after its own system call said `WouldBlock`,
//! and no wait can run between that call and the park (one OS thread, and
//! green threads switch only when they park or yield): any edge that comes
//! later is still on epoll's ready list when the scheduler next waits.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use green::{Driver, GreenId};

use crate::{Events, Interest, Poll, Token, Trigger};

/// A [`green::Driver`] that waits in `epoll_wait` and wakes exactly the green
/// threads whose descriptors became ready.
pub struct NetPoller {
    shared: Rc<Shared>,
}

/// What the driver and the green sockets share (all on one OS thread).
pub(crate) struct Shared {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    /// Green threads parked on each fd, indexed by fd (fds are small, dense).
    waiters: RefCell<Vec<FdWaiters>>,
    /// How many entries all `waiters` hold: `has_waiters` in O(1).
    parked: Cell<usize>,
}

#[derive(Default)]
struct FdWaiters {
    readers: Vec<GreenId>,
    writers: Vec<GreenId>,
}

/// Builds a stage-02 runtime with a fresh [`NetPoller`] installed: the
/// runtime in which [`crate::net`]'s green sockets work.
///
/// ```no_run
/// let mut rt = netpoll::netpoller::runtime()?;
/// rt.block_on(|| { /* green threads with netpoll::net sockets */ })
///     .map_err(std::io::Error::other)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn runtime() -> io::Result<green::Runtime> {
    Ok(builder()?.build())
}

/// A stage-02 runtime [`green::Builder`] with a [`NetPoller`] installed, for
/// callers that want to set more (e.g. the stack size).
pub fn builder() -> io::Result<green::Builder> {
    Ok(green::Runtime::builder().driver(Box::new(NetPoller::new()?)))
}

impl NetPoller {
    /// A netpoller with its own epoll instance.
    pub fn new() -> io::Result<NetPoller> {
        Ok(NetPoller {
            shared: Rc::new(Shared {
                poll: RefCell::new(Poll::new()?),
                events: RefCell::new(Events::with_capacity(1024)),
                waiters: RefCell::new(Vec::new()),
                parked: Cell::new(0),
            }),
        })
    }

    /// How many green threads are parked on a descriptor right now.
    pub fn parked(&self) -> usize {
        self.shared.parked.get()
    }
}

impl fmt::Debug for NetPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetPoller")
            .field("parked", &self.shared.parked.get())
            .finish_non_exhaustive()
    }
}

// ANCHOR: driver
impl Driver for NetPoller {
    /// The wait phase, then the wake phase: one `epoll_wait` bounded by the
    /// scheduler's next timer, then `wake(id)` for every green thread parked
    /// on a descriptor that became ready in the direction it waits for.
    fn wait(&mut self, timeout: Option<Duration>, wake: &mut dyn FnMut(GreenId)) -> io::Result<()> {
        let shared = &*self.shared;
        let mut events = shared.events.borrow_mut();
        shared.poll.borrow_mut().poll(&mut events, timeout)?;

        let mut waiters = shared.waiters.borrow_mut();
        for event in events.iter() {
            let Some(fd) = waiters.get_mut(event.token().0) else {
                continue; // a descriptor nobody ever waited on
            };
            // Errors and hang-ups wake both sides: the retried call reports them.
            let failed = event.is_error() || event.is_read_closed() || event.is_write_closed();
            if event.is_readable() || failed {
                shared.parked.set(shared.parked.get() - fd.readers.len());
                fd.readers.drain(..).for_each(&mut *wake);
            }
            if event.is_writable() || failed {
                shared.parked.set(shared.parked.get() - fd.writers.len());
                fd.writers.drain(..).for_each(&mut *wake);
            }
        }
        Ok(())
    }

    /// Whether a green thread is parked on some descriptor. With no runnable
    /// thread, no timer and no such waiter, the runtime is deadlocked.
    fn has_waiters(&self) -> bool {
        self.shared.parked.get() > 0
    }
}
// ANCHOR_END: driver

impl Shared {
    /// The netpoller of the runtime this green thread runs on.
    pub(crate) fn current() -> io::Result<Rc<Shared>> {
        if green::try_current().is_none() {
            return Err(io::Error::other(
                "green sockets work only inside a green thread (netpoll::netpoller::runtime)",
            ));
        }
        green::with_driver(|np: &mut NetPoller| Rc::clone(&np.shared)).ok_or_else(|| {
            io::Error::other("the green runtime's driver is not a netpoll::netpoller::NetPoller")
        })
    }

    /// Registers a new socket: once, edge-triggered, both directions.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<()> {
        let slot = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        self.poll.borrow().registry().register(
            fd,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
            Trigger::Edge,
        )?;
        let mut waiters = self.waiters.borrow_mut();
        if waiters.len() <= slot {
            waiters.resize_with(slot + 1, FdWaiters::default);
        }
        Ok(())
    }

    /// Forgets a socket before it is closed.
    ///
    /// No green thread can be parked on it any more: a parked thread is
    /// inside a method of the socket, so the socket cannot be dropped (and
    /// a cancelled one removes its own entry while it unwinds). Any entry
    /// left would be stale, so it is simply cleared.
    pub(crate) fn deregister(&self, fd: RawFd) {
        // An error here can only mean the fd is not registered: nothing to undo.
        let _ = self.poll.borrow().registry().deregister(fd);
        let mut waiters = self.waiters.borrow_mut();
        if let Some(w) = usize::try_from(fd)
            .ok()
            .and_then(|slot| waiters.get_mut(slot))
        {
            let stale = w.readers.len() + w.writers.len();
            w.readers.clear();
            w.writers.clear();
            self.parked.set(self.parked.get() - stale);
        }
    }

    /// The green thread that is about to park on this netpoller, or an error
    /// if no wait phase would ever wake it: outside a green thread there is
    /// nothing to park, and under another runtime this netpoller's epoll
    /// instance is not the one the scheduler waits in.
    fn parking_thread(&self) -> io::Result<GreenId> {
        let Some(me) = green::try_current() else {
            return Err(io::Error::other(
                "a green socket would block outside a green thread: use it inside \
                 block_on of the netpoll::netpoller runtime that created it",
            ));
        };
        let ours =
            green::with_driver(|np: &mut NetPoller| std::ptr::eq(Rc::as_ptr(&np.shared), self));
        if ours != Some(true) {
            return Err(io::Error::other(
                "a green socket would block under a runtime that did not create it \
                 (only its own runtime waits in its netpoller)",
            ));
        }
        Ok(me)
    }

    // ANCHOR: wait_until_ready
    /// Parks the current green thread until `fd` may be ready for `interest`
    /// (called after the system call said `WouldBlock`), or `timeout` has
    /// passed. May return spuriously: callers retry the call in a loop.
    pub(crate) fn wait_until_ready(
        &self,
        fd: RawFd,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        // ANCHOR: lab_3_2_park
        let me = self.parking_thread()?;
        let slot = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        {
            let mut waiters = self.waiters.borrow_mut();
            let w = waiters
                .get_mut(slot)
                .ok_or_else(|| io::Error::other("descriptor not registered with the netpoller"))?;
            let list = if interest.is_readable() {
                &mut w.readers
            } else {
                &mut w.writers
            };
            if !list.contains(&me) {
                list.push(me);
                self.parked.set(self.parked.get() + 1);
            }
        }
        // Whether woken, woken spuriously or cancelled (unwound), leave no
        // stale entry behind: `has_waiters` must stay exact.
        let _cleanup = Unlist {
            shared: self,
            slot,
            me,
            interest,
        };
        match timeout {
            Some(timeout) => green::park_timeout(timeout),
            None => green::park(),
        }
        Ok(())
        // ANCHOR_END: lab_3_2_park
    }
    // ANCHOR_END: wait_until_ready
}

/// Removes a green thread from a waiter list when its wait ends.
struct Unlist<'a> {
    shared: &'a Shared,
    slot: usize,
    me: GreenId,
    interest: Interest,
}

impl Drop for Unlist<'_> {
    fn drop(&mut self) {
        let mut waiters = self.shared.waiters.borrow_mut();
        if let Some(w) = waiters.get_mut(self.slot) {
            let list = if self.interest.is_readable() {
                &mut w.readers
            } else {
                &mut w.writers
            };
            if let Some(i) = list.iter().position(|&id| id == self.me) {
                list.swap_remove(i);
                self.shared.parked.set(self.shared.parked.get() - 1);
            }
        }
    }
}
