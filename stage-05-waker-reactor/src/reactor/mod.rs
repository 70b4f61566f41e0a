//! The reactor: the part of the runtime that waits for events and turns
//! them into wakes.
//!
//! ```text
//!            tasks (poll phase)                      other threads
//!   read() -> WouldBlock                                  |
//!     | poll_ready(): store waker in ScheduledIo          | push a task,
//!     v                                                   | arm a timer
//!   +---------------------------- Reactor (shared, Arc) --v-------------+
//!   |  registry: mio::Registry     io: Slab<Arc<ScheduledIo>>           |
//!   |  timers: deadline -> Waker   waker: mio::Waker (eventfd)          |
//!   +-------------------------------------------------------------------+
//!     ^ Driver::park(): wait phase, one thread at a time
//!     |   mio::Poll::poll(timeout = min(caller's, next timer deadline))
//!     |   for each event: token -> slab key -> (generation ok?) ->
//!     |        set readiness, take the waiting wakers
//!     |   fire expired timers
//!     +-> wake phase: waker.wake() for each of them (outside all locks)
//! ```
//!
//! One mio `Poll` per runtime. Each registered socket has a slot in a slab
//! ([`crate::slab`]); its mio token is the slot's key, generation included,
//! so an event that was already in flight when a socket was deregistered
//! cannot wake the task of the socket that reused the slot.
//!
//! Readiness is *edge-triggered* (mio's only mode): we remember it in the
//! [`ScheduledIo`] until an I/O call says `WouldBlock`, and only then clear
//! it, and only if no new event arrived in between (the `tick` check in
//! [`ScheduledIo::clear_readiness`]). That closes the window where an event
//! lands between the failed syscall and the clearing.

pub(crate) mod timer;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Token};

use crate::slab::{Key, Slab};
use timer::Timers;

/// The token of the reactor's own cross-thread waker. The slab never hands
/// out this value (see [`crate::slab`]).
const WAKE_TOKEN: Token = Token(usize::MAX);

/// The shared half of the reactor: everything tasks and other threads touch.
#[derive(Debug)]
pub(crate) struct Reactor {
    registry: mio::Registry,
    io: Mutex<Slab<Arc<ScheduledIo>>>,
    pub(crate) timers: Timers,
    /// Wakes the thread blocked in `Driver::park` from any other thread.
    waker: mio::Waker,
    /// True while a thread is (about to be) blocked in `mio::Poll::poll`.
    parked: AtomicBool,
    /// Sockets registered by stage 04's leaf futures, by fd.
    pub(crate) stage04_fds: crate::stage04::FdTable,
}

/// The owned half: the `mio::Poll` itself. Whoever holds the driver may
/// block in the wait phase; in the current-thread flavour that is the
/// `block_on` thread, in the multi-threaded one, any idle worker.
#[derive(Debug)]
pub(crate) struct Driver {
    poll: mio::Poll,
    events: Events,
    reactor: Arc<Reactor>,
    /// Reused buffers for the wake phase.
    ready: Vec<(Arc<ScheduledIo>, Ready)>,
    wakers: Vec<Waker>,
}

impl Driver {
    pub(crate) fn new() -> io::Result<Driver> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)?;
        let reactor = Arc::new(Reactor {
            registry,
            io: Mutex::new(Slab::new()),
            timers: Timers::default(),
            waker,
            parked: AtomicBool::new(false),
            stage04_fds: Default::default(),
        });
        Ok(Driver {
            poll,
            events: Events::with_capacity(1024),
            reactor,
            ready: Vec::new(),
            wakers: Vec::new(),
        })
    }

    pub(crate) fn reactor(&self) -> &Arc<Reactor> {
        &self.reactor
    }

    // ANCHOR: park
    /// The wait phase, then the wake phase.
    ///
    /// Blocks until a registered socket is ready, the earliest timer is due,
    /// `timeout` passes, or [`Reactor::unpark`] is called; `Some(ZERO)` only
    /// collects what is ready now. `may_block` is asked *after* the thread
    /// announced that it is parking, so a thread that queues work and then
    /// calls `unpark` cannot slip between the check and the sleep.
    pub(crate) fn park(&mut self, timeout: Option<Duration>, may_block: impl FnOnce() -> bool) {
        let reactor = &*self.reactor;
        let mut timeout = timeout;
        if timeout != Some(Duration::ZERO) {
            reactor.parked.store(true, SeqCst);
            if !may_block() {
                timeout = Some(Duration::ZERO);
            } else if let Some(deadline) = reactor.timers.next_deadline() {
                let until = deadline.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(until, |t| t.min(until)));
            }
        }

        // Wait phase. mio rounds the timeout *up* to whole milliseconds, so
        // we never wake before a deadline (which would only cost a loop).
        let result = self.poll.poll(&mut self.events, timeout);
        reactor.parked.store(false, SeqCst);
        if let Err(error) = result {
            // EINTR is a normal early return. `epoll_wait` fails otherwise
            // only for a bad epoll fd or buffer: the runtime's own invariant.
            assert!(
                error.kind() == io::ErrorKind::Interrupted,
                "the reactor's epoll_wait failed: {error}"
            );
        }

        // Wake phase, I/O: look up every event's slot under one lock...
        {
            let io = reactor.io.lock().unwrap_or_else(|e| e.into_inner());
            for event in self.events.iter() {
                if event.token() == WAKE_TOKEN {
                    continue; // only there to end the wait
                }
                // A stale token (its socket deregistered in the meantime,
                // maybe its slot already reused) finds nothing: ignored.
                if let Some(scheduled) = io.get(Key::from_usize(event.token().0)) {
                    self.ready
                        .push((scheduled.clone(), Ready::from_event(event)));
                }
            }
        }
        // ...then wake the tasks outside it (a woken task may register).
        for (scheduled, ready) in self.ready.drain(..) {
            scheduled.set_readiness(ready, &mut self.wakers);
            // Its socket may have been dropped on another thread since the
            // lookup: then this clone is the last, and the wakers it still
            // holds (user code) are dropped here, one by one, contained.
            if let Some(last) = Arc::into_inner(scheduled) {
                last.drop_waiters();
            }
        }
        for waker in self.wakers.drain(..) {
            // A waker is user code: its panic must not unwind out of the
            // driver (a worker holds the driver's lock here).
            crate::unwind::contain(move || waker.wake());
        }
        // Wake phase, timers.
        reactor
            .timers
            .fire_expired(Instant::now(), &mut self.wakers);
    }
    // ANCHOR_END: park
}

impl Reactor {
    // ANCHOR: unpark
    /// End a wait phase early, from any thread: only if some thread is (about
    /// to be) blocked in `poll`, write to the eventfd.
    pub(crate) fn unpark(&self) {
        if self.parked.swap(false, SeqCst) {
            self.wake();
        }
    }
    // ANCHOR_END: unpark

    /// Always write to the eventfd: the next wait phase (or the current one)
    /// ends at once.
    pub(crate) fn wake(&self) {
        // Fails only if the eventfd counter would overflow, which means a
        // wake is already pending: nothing to do.
        let _ = self.waker.wake();
    }

    /// Register a timer; shortens a running wait phase if it is the earliest.
    pub(crate) fn add_timer(&self, deadline: Instant, waker: Waker) -> timer::TimerKey {
        let (key, earliest) = self.timers.insert(deadline, waker);
        if earliest {
            self.unpark();
        }
        key
    }

    /// Runtime shutdown, after every task's future was dropped: drop every
    /// waker the reactor still holds (timers armed through stage 04's
    /// interface, sockets that outlive the runtime). A waker owns a
    /// reference to its task, and a task to its runtime: keeping them would
    /// keep the runtime's memory and descriptors alive in a cycle.
    ///
    /// A waker's drop is user code (a socket or timer polled with a
    /// hand-made waker) and may panic: each is dropped on its own, its
    /// panic contained, so the others are still dropped and the runtime's
    /// teardown goes on (see [`crate::unwind`]).
    pub(crate) fn shutdown(&self) {
        self.timers.clear();
        let slots = self.io.lock().unwrap_or_else(|e| e.into_inner()).drain();
        for scheduled in &slots {
            scheduled.drop_waiters();
        }
    }

    /// Number of registered sockets (for tests).
    pub(crate) fn num_registrations(&self) -> usize {
        self.io.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub(crate) fn registry(&self) -> &mio::Registry {
        &self.registry
    }

    /// Give `scheduled` a slot; its key is the mio token to register with.
    pub(crate) fn insert_io(&self, scheduled: Arc<ScheduledIo>) -> io::Result<Key> {
        self.io
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scheduled)
            .map_err(|_| io::Error::other("too many registered sockets in one runtime"))
    }

    /// Free a slot (after its fd was deregistered).
    pub(crate) fn remove_io(&self, key: Key) {
        let removed = self
            .io
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        drop(removed); // wakers drop outside the lock
    }

    fn register(
        self: &Arc<Self>,
        source: &mut impl Source,
        interest: Interest,
    ) -> io::Result<Registration> {
        let scheduled = Arc::new(ScheduledIo::default());
        let key = self.insert_io(scheduled.clone())?;
        if let Err(error) = self
            .registry
            .register(source, Token(key.to_usize()), interest)
        {
            self.remove_io(key);
            return Err(error);
        }
        Ok(Registration {
            reactor: self.clone(),
            key,
            scheduled,
        })
    }
}

/// Readiness bits, as remembered between an event and the I/O call that
/// consumes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready(usize);

impl Ready {
    const READABLE: usize = 1 << 0;
    const WRITABLE: usize = 1 << 1;
    const READ_CLOSED: usize = 1 << 2;
    const WRITE_CLOSED: usize = 1 << 3;
    const ALL: usize = 0b1111;

    fn from_event(event: &mio::event::Event) -> Ready {
        let mut bits = 0;
        // An error is reported to whoever tries I/O next, in either direction.
        if event.is_readable() || event.is_error() {
            bits |= Ready::READABLE;
        }
        if event.is_writable() || event.is_error() {
            bits |= Ready::WRITABLE;
        }
        if event.is_read_closed() {
            bits |= Ready::READ_CLOSED;
        }
        if event.is_write_closed() {
            bits |= Ready::WRITE_CLOSED;
        }
        Ready(bits)
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Which half of a socket a task waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn mask(self) -> usize {
        match self {
            Direction::Read => Ready::READABLE | Ready::READ_CLOSED,
            Direction::Write => Ready::WRITABLE | Ready::WRITE_CLOSED,
        }
    }
}

/// Readiness seen by a poll, with the tick it was seen at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyEvent {
    tick: usize,
    ready: Ready,
}

/// The reactor's record of one registered socket: remembered readiness and
/// the wakers of the (at most one) reading and (one) writing task.
#[derive(Debug, Default)]
pub(crate) struct ScheduledIo {
    /// `tick << 4 | Ready bits`. The tick counts events.
    readiness: AtomicUsize,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

const TICK_SHIFT: u32 = 4;

impl ScheduledIo {
    fn waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        // No user code runs under this lock: wakers are only moved in and out
        // under it, and cloned, dropped or woken outside it.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Let go of the wakers of both directions (runtime shutdown): outside
    /// the lock, and each on its own, its panic contained.
    pub(crate) fn drop_waiters(&self) {
        let Waiters { reader, writer } = std::mem::take(&mut *self.waiters());
        crate::unwind::drop_each([reader, writer]);
    }

    /// Wake phase for one socket: remember `ready`, collect the wakers of the
    /// tasks waiting for it.
    fn set_readiness(&self, ready: Ready, wakers: &mut Vec<Waker>) {
        let mut waiters = self.waiters();
        // One read-modify-write: a task's `clear_readiness` may run on
        // another thread at the same time, and a plain load and store here
        // could overwrite its clearing with bits it had seen fail.
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |current| {
            let tick = (current >> TICK_SHIFT).wrapping_add(1);
            let bits = (current | ready.0) & Ready::ALL;
            Some((tick << TICK_SHIFT) | bits)
        });
        if ready.0 & Direction::Read.mask() != 0
            && let Some(waker) = waiters.reader.take()
        {
            wakers.push(waker);
        }
        if ready.0 & Direction::Write.mask() != 0
            && let Some(waker) = waiters.writer.take()
        {
            wakers.push(waker);
        }
    }

    // ANCHOR: poll_ready
    /// Poll phase: is the socket ready in `direction`? If not, leave the
    /// task's waker for the reactor. Checked again under the lock that
    /// `set_readiness` holds, so an event cannot slip in between.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<ReadyEvent> {
        if let Some(event) = self.ready_event(direction) {
            return Poll::Ready(event);
        }
        // Cloning the task's waker and dropping the one it replaces are user
        // code (a hand-made waker's vtable): neither runs under the lock.
        let mut new = None;
        loop {
            let mut waiters = self.waiters();
            if let Some(event) = self.ready_event(direction) {
                drop(waiters);
                return Poll::Ready(event);
            }
            let slot = match direction {
                Direction::Read => &mut waiters.reader,
                Direction::Write => &mut waiters.writer,
            };
            if slot
                .as_ref()
                .is_some_and(|stored| stored.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
            match new.take() {
                Some(waker) => {
                    let old = slot.replace(waker);
                    drop(waiters);
                    drop(old);
                    return Poll::Pending;
                }
                None => {
                    drop(waiters);
                    new = Some(cx.waker().clone());
                }
            }
        }
    }
    // ANCHOR_END: poll_ready

    /// Leave `waker` to be woken by the next event in `direction` (stage
    /// 04's one-shot registrations). Returns the waker that is no longer
    /// needed (the one replaced, or `waker` itself if the stored one wakes
    /// the same task), for the caller to drop once it holds no lock: a
    /// waker's drop is user code.
    #[must_use = "drop the returned waker outside every lock"]
    pub(crate) fn set_waiter(&self, direction: Direction, waker: Waker) -> Option<Waker> {
        let mut waiters = self.waiters();
        let slot = match direction {
            Direction::Read => &mut waiters.reader,
            Direction::Write => &mut waiters.writer,
        };
        match slot {
            Some(stored) if stored.will_wake(&waker) => Some(waker),
            _ => slot.replace(waker),
        }
    }

    fn ready_event(&self, direction: Direction) -> Option<ReadyEvent> {
        let current = self.readiness.load(Acquire);
        let ready = Ready(current & direction.mask());
        (!ready.is_empty()).then_some(ReadyEvent {
            tick: current >> TICK_SHIFT,
            ready,
        })
    }

    // ANCHOR: clear_readiness
    /// An I/O call said `WouldBlock`: forget the readiness it was based on,
    /// unless an event arrived since it was seen (the tick moved on).
    /// "Closed" bits are never cleared: a hang-up is forever.
    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        let clear = event.ready.0 & (Ready::READABLE | Ready::WRITABLE);
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |current| {
            (current >> TICK_SHIFT == event.tick).then_some(current & !clear)
        });
    }
    // ANCHOR_END: clear_readiness
}

/// A socket's registration with the reactor. Dropping it removes the slab
/// slot; the socket itself is deregistered by its owner ([`PollEvented`]).
#[derive(Debug)]
pub(crate) struct Registration {
    reactor: Arc<Reactor>,
    key: Key,
    scheduled: Arc<ScheduledIo>,
}

impl Registration {
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<ReadyEvent> {
        self.scheduled.poll_ready(cx, direction)
    }

    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        self.scheduled.clear_readiness(event);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.reactor.remove_io(self.key);
    }
}

/// A mio source registered with the reactor of the current runtime:
/// the building block of `net::TcpStream` and `net::TcpListener`.
#[derive(Debug)]
pub(crate) struct PollEvented<E: Source> {
    io: Option<E>,
    registration: Registration,
}

impl<E: Source> PollEvented<E> {
    /// Register `io` for reading and writing with the current runtime's
    /// reactor. Panics outside a runtime.
    pub(crate) fn new(mut io: E) -> io::Result<PollEvented<E>> {
        let reactor = crate::context::current_reactor();
        let registration = reactor.register(&mut io, Interest::READABLE | Interest::WRITABLE)?;
        Ok(PollEvented {
            io: Some(io),
            registration,
        })
    }

    pub(crate) fn get_ref(&self) -> &E {
        self.io.as_ref().expect("the source is only taken in drop")
    }

    // ANCHOR: poll_io
    /// Run the non-blocking operation `op` until it does not say
    /// `WouldBlock`; in between, wait (Pending) for readiness in `direction`.
    /// A task whose budget for this poll is spent is held back first.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&E) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        std::task::ready!(crate::coop::poll_proceed(cx));
        loop {
            let event = std::task::ready!(self.registration.poll_ready(cx, direction));
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.registration.clear_readiness(event);
                }
                result => {
                    crate::coop::spend();
                    return Poll::Ready(result);
                }
            }
        }
    }
    // ANCHOR_END: poll_io

    /// Like [`poll_io`](Self::poll_io) for reads and writes of a buffer. A
    /// short *write* means the socket's buffer filled up (the kernel raises
    /// an event once it drains), so the readiness is cleared right away,
    /// saving the syscall that would only say `WouldBlock`. A short *read*
    /// proves nothing: TCP's `recv` stops at the urgent mark with more data
    /// queued behind it, for which no event will come. Reads clear the
    /// readiness on `WouldBlock` only.
    pub(crate) fn poll_transfer(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        len: usize,
        mut op: impl FnMut(&E) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(crate::coop::poll_proceed(cx));
        loop {
            let event = std::task::ready!(self.registration.poll_ready(cx, direction));
            let result = op(self.get_ref());
            match result {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.registration.clear_readiness(event);
                    continue;
                }
                Ok(n) if direction == Direction::Write && n > 0 && n < len => {
                    self.registration.clear_readiness(event);
                }
                _ => {}
            }
            crate::coop::spend();
            return Poll::Ready(result);
        }
    }
}

impl<E: Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            // Deregister before the fd is closed (by dropping `io`), so the
            // epoll set never holds a closed fd. Failure is harmless here:
            // closing the fd removes it from epoll as well.
            let _ = self.registration.reactor.registry.deregister(&mut io);
        }
    }
}
