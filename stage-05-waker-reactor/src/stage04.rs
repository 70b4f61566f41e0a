//! Stage 04's hand-written leaf futures, unchanged, on this runtime.
//!
//! Stage 04's futures (`stackless::net`, `stackless::timer`, `http::get`)
//! do not know any runtime: they find a [`stackless::reactor::Reactor`]
//! through a thread-local, and call it on every `Pending`. This module
//! implements that trait over our mio reactor and installs it on every
//! thread that polls futures (the `block_on` thread and each worker), so
//! the same futures that stage 04's naive executor re-polled blindly are now
//! woken precisely.
//!
//! ```text
//!   stackless leaf future: syscall -> EWOULDBLOCK
//!     with_current(|r| r.wake_when_ready(fd, Readable, waker))
//!        |
//!        v  (this module)
//!   fd -> slab slot (registered once, edge-triggered)
//!   store the waker as that direction's waiter, then re-arm the fd with
//!   EPOLL_CTL_MOD: if it is ready now, epoll reports it again, so a
//!   readiness that arrived before the call is not lost (the remembered
//!   readiness bits are not used: stage 04's futures retry the syscall
//!   themselves)
//!        |
//!        v  wake phase: Driver::park -> ScheduledIo::set_readiness -> wake
//! ```
//!
//! Stage 04's contract asks for one-shot registrations: the waker is taken
//! when it is woken, and the next `Pending` registers again.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use stackless::reactor as stage04;

use crate::reactor::{Direction, Reactor, ScheduledIo};
use crate::slab::Key;

/// Keeps this runtime's reactor installed as stage 04's current reactor on
/// this thread; restores the previous one on drop.
#[derive(Debug)]
pub(crate) struct Installed(#[allow(dead_code)] stage04::CurrentReactorGuard);

/// Install `reactor` as stage 04's current reactor on this thread.
pub(crate) fn install(reactor: &Arc<Reactor>) -> Installed {
    Installed(stage04::set_current(Rc::new(Stage04Reactor {
        reactor: reactor.clone(),
    })))
}

/// Registrations made through stage 04's interface, by fd. Lives in the
/// shared reactor: a task may move between workers between two polls.
#[derive(Debug, Default)]
pub(crate) struct FdTable {
    fds: Mutex<HashMap<RawFd, (Key, Arc<ScheduledIo>)>>,
}

impl FdTable {
    /// Forget every fd (runtime shutdown). Its waiting wakers are dropped
    /// here, each on its own with its panic contained: they are user code
    /// (a stage 04 future polled with a hand-made waker), and this entry
    /// holds the last reference to their slot.
    pub(crate) fn clear(&self, reactor: &Reactor) {
        let entries: Vec<_> = self.lock().drain().collect();
        for (fd, (key, scheduled)) in entries {
            let _ = reactor.registry().deregister(&mut SourceFd(&fd));
            reactor.remove_io(key);
            scheduled.drop_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RawFd, (Key, Arc<ScheduledIo>)>> {
        // No user code runs under this lock.
        self.fds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Stage04Reactor {
    reactor: Arc<Reactor>,
}

// ANCHOR: stage04_reactor
impl stage04::Reactor for Stage04Reactor {
    fn wake_when_ready(
        &self,
        fd: RawFd,
        interest: stage04::Interest,
        waker: &Waker,
    ) -> io::Result<()> {
        let direction = match interest {
            stage04::Interest::Readable => Direction::Read,
            stage04::Interest::Writable => Direction::Write,
        };
        let both = Interest::READABLE | Interest::WRITABLE;
        let reactor = &self.reactor;
        loop {
            // Cloning and dropping a waker run user code, which may call
            // back into this reactor (a task's last waker drops the task,
            // whose streams `forget` their fds), so neither may happen
            // under the lock. The clone is made before it; what is let go
            // of is kept in `let_go`, declared before the guard: locals
            // drop in reverse order, so it drops after the guard unlocks.
            let waker = waker.clone();
            let mut let_go: (Option<Waker>, Option<Arc<ScheduledIo>>) = (None, None);
            let mut fds = reactor.stage04_fds.lock();
            if let Some((key, scheduled)) = fds.get(&fd) {
                // Known fd: hand over the waker first, then re-arm, so the
                // event the re-arm may raise finds it.
                let_go.0 = scheduled.set_waiter(direction, waker);
                let token = Token(key.to_usize());
                match reactor
                    .registry()
                    .reregister(&mut SourceFd(&fd), token, both)
                {
                    Ok(()) => return Ok(()),
                    // The fd was closed without `forget` and its number
                    // reused: start over with a fresh registration.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        let (key, scheduled) = fds.remove(&fd).expect("just found");
                        reactor.remove_io(key);
                        let_go.1 = Some(scheduled);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            // New fd: registering an edge-triggered fd that is ready already
            // raises an event at once, so nothing is lost here either.
            let scheduled = Arc::new(ScheduledIo::default());
            let_go.0 = scheduled.set_waiter(direction, waker); // None: a new slot
            let key = match reactor.insert_io(scheduled.clone()) {
                Ok(key) => key,
                Err(error) => {
                    let_go.1 = Some(scheduled); // it holds our waker
                    return Err(error);
                }
            };
            let token = Token(key.to_usize());
            if let Err(error) = reactor.registry().register(&mut SourceFd(&fd), token, both) {
                reactor.remove_io(key);
                let_go.1 = Some(scheduled);
                return Err(error);
            }
            fds.insert(fd, (key, scheduled));
            return Ok(());
        }
    }

    fn forget(&self, fd: RawFd) {
        let removed = self.reactor.stage04_fds.lock().remove(&fd);
        if let Some((key, _)) = removed {
            let _ = self.reactor.registry().deregister(&mut SourceFd(&fd));
            self.reactor.remove_io(key);
        }
    }

    fn wake_at(&self, deadline: Instant, waker: &Waker) {
        // No key is kept: if the future is dropped, the timer still fires
        // once at its deadline and wakes a stale waker, which stage 04's
        // contract allows.
        self.reactor.add_timer(deadline, waker.clone());
    }
}
// ANCHOR_END: stage04_reactor
