//! A deliberately naive executor over stage 03's poller.
//!
//! [`block_on_all`] runs a set of futures to completion on this thread. It
//! is honest about the reactor side ([`PollReactor`] keeps every waker it is
//! given and wakes exactly the right ones) but naive about the executor
//! side: it polls with a **no-op waker**, so it never learns *which* future
//! a wake was meant for. All it learns is that *something* happened, and so
//! it polls *every* unfinished future after every wait:
//!
//! ```text
//!   loop {
//!       poll phase:  for every unfinished future: poll it      <- N polls
//!                    (it tries its syscall; Pending registers with the reactor)
//!       wait phase:  epoll_wait until any fd is ready or the next timer is due
//!       wake phase:  the reactor calls the wakers it holds ... which do nothing
//!   }
//! ```
//!
//! With N futures each needing a few events, that is O(N) polls per future:
//! the waste a real waker removes (stage 05). [`Stats`] counts it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use netpoll::{Events, Registry, Token, Trigger};

use crate::reactor::{self, Interest, Reactor};

// ANCHOR: poll_reactor
/// A [`Reactor`] over a `netpoll::Poll`: fds are registered one-shot with
/// the union of the interests that have a waker; timers sit in a map
/// ordered by deadline.
pub struct PollReactor {
    poll: RefCell<netpoll::Poll>,
    registry: Registry,
    events: RefCell<Events>,
    /// The wakers waiting on each fd. The token of an fd is the fd itself.
    fds: RefCell<HashMap<RawFd, FdWaiters>>,
    /// Timers by (deadline, sequence number): the first is due first, and
    /// a dropped timer's entry is found by its deadline.
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer: RefCell<u64>,
}

/// Who waits on one fd, and whether the fd is in epoll's interest list.
#[derive(Default)]
struct FdWaiters {
    readable: Option<Waker>,
    writable: Option<Waker>,
    registered: bool,
}

impl FdWaiters {
    fn interest(&self) -> Option<netpoll::Interest> {
        match (self.readable.is_some(), self.writable.is_some()) {
            (true, true) => Some(netpoll::Interest::READABLE | netpoll::Interest::WRITABLE),
            (true, false) => Some(netpoll::Interest::READABLE),
            (false, true) => Some(netpoll::Interest::WRITABLE),
            (false, false) => None,
        }
    }
}
// ANCHOR_END: poll_reactor

impl fmt::Debug for PollReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollReactor")
            .field("fds", &self.fds.borrow().len())
            .field("timers", &self.timers.borrow().len())
            .finish_non_exhaustive()
    }
}

impl PollReactor {
    /// A reactor with its own epoll instance.
    pub fn new() -> io::Result<PollReactor> {
        let poll = netpoll::Poll::new()?;
        let registry = poll.registry().clone();
        Ok(PollReactor {
            poll: RefCell::new(poll),
            registry,
            events: RefCell::new(Events::with_capacity(256)),
            fds: RefCell::new(HashMap::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer: RefCell::new(0),
        })
    }

    /// Whether any waker is waiting on an fd or a timer. If not, a wait
    /// would block forever.
    pub fn has_waiters(&self) -> bool {
        !self.timers.borrow().is_empty()
            || self.fds.borrow().values().any(|w| w.interest().is_some())
    }

    /// (Re-)arm `fd` one-shot for the interests that have wakers.
    fn arm(&self, fd: RawFd, waiters: &mut FdWaiters) -> io::Result<()> {
        let Some(interest) = waiters.interest() else {
            return Ok(());
        };
        let token = Token(fd as usize);
        // MOD re-arms a one-shot registration, and ADD or MOD both make epoll
        // check the fd's current state: readiness that arrived before this
        // call is reported by the next wait, so no wake-up is lost.
        let result = if waiters.registered {
            self.registry
                .reregister(fd, token, interest, Trigger::OneShot)
        } else {
            self.registry
                .register(fd, token, interest, Trigger::OneShot)
        };
        let result = match result {
            // Our bookkeeping and epoll disagree (an fd closed without
            // `forget` and its number reused): trust epoll and retry.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.registry
                    .register(fd, token, interest, Trigger::OneShot)
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.registry
                    .reregister(fd, token, interest, Trigger::OneShot)
            }
            other => other,
        };
        waiters.registered = result.is_ok();
        result
    }

    // ANCHOR: wait
    /// The wait phase and the wake phase: block until a registered fd is
    /// ready or the earliest timer is due (or `max_wait` passed), then wake
    /// the wakers of every ready fd and due timer. Returns how many wakers
    /// were woken.
    pub fn wait(&self, max_wait: Option<Duration>) -> io::Result<usize> {
        let now = Instant::now();
        let next_timer = self
            .timers
            .borrow()
            .first_key_value()
            .map(|((at, _), _)| at.saturating_duration_since(now));
        let timeout = match (next_timer, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Wait phase.
        let mut events = self.events.borrow_mut();
        self.poll.borrow_mut().poll(&mut events, timeout)?;

        // Wake phase. Collect the wakers first, wake them after every borrow
        // is released: a waker may re-enter the reactor.
        let mut to_wake = Vec::new();
        {
            let mut fds = self.fds.borrow_mut();
            for event in events.iter() {
                let fd = event.token().0 as RawFd;
                let Some(waiters) = fds.get_mut(&fd) else {
                    continue;
                };
                let failed = event.is_error();
                if event.is_readable() || event.is_read_closed() || failed {
                    to_wake.extend(waiters.readable.take());
                }
                if event.is_writable() || event.is_write_closed() || failed {
                    to_wake.extend(waiters.writable.take());
                }
                // One-shot disarmed the fd; re-arm it for a waiter still
                // waiting in the other direction. If that fails, wake that
                // waiter too: its retry meets the error, no wake is lost.
                if waiters.interest().is_some() && self.arm(fd, waiters).is_err() {
                    to_wake.extend(waiters.readable.take());
                    to_wake.extend(waiters.writable.take());
                }
            }
        }
        let now = Instant::now();
        {
            let mut timers = self.timers.borrow_mut();
            while let Some(due) = timers.first_entry() {
                if due.key().0 > now {
                    break;
                }
                to_wake.push(due.remove());
            }
        }
        drop(events);
        let woken = to_wake.len();
        // A waker is user code and may panic. The others are no longer in
        // our maps, so wake them all first: a panic must not lose their
        // wake-ups. Then let the first panic go on to the caller.
        let mut panicked = None;
        for waker in to_wake {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                panicked.get_or_insert(payload);
            }
        }
        if let Some(payload) = panicked {
            panic::resume_unwind(payload);
        }
        Ok(woken)
    }
    // ANCHOR_END: wait
}

impl Reactor for PollReactor {
    fn wake_when_ready(&self, fd: RawFd, interest: Interest, waker: &Waker) -> io::Result<()> {
        // Cloning and dropping a waker run user code, which may call back
        // into this reactor (a task's last waker drops the task, whose
        // streams `forget` their fds): do both outside every borrow.
        let new = Some(waker.clone());
        let mut fds = self.fds.borrow_mut();
        let waiters = fds.entry(fd).or_default();
        let slot = match interest {
            Interest::Readable => &mut waiters.readable,
            Interest::Writable => &mut waiters.writable,
        };
        let replaced = std::mem::replace(slot, new);
        let result = self.arm(fd, waiters);
        let mut refused = None;
        if result.is_err() {
            // Not watched for this interest: do not pretend to hold the
            // waker. A waiter in the other direction keeps its place.
            refused = match interest {
                Interest::Readable => waiters.readable.take(),
                Interest::Writable => waiters.writable.take(),
            };
            if waiters.interest().is_none() && !waiters.registered {
                fds.remove(&fd);
            }
        }
        drop(fds);
        drop((replaced, refused));
        result
    }

    fn forget(&self, fd: RawFd) {
        let removed = self.fds.borrow_mut().remove(&fd);
        if removed.is_some_and(|waiters| waiters.registered) {
            // The fd is still open (forget comes before close), so this only
            // fails if epoll never knew it: nothing to undo then.
            let _ = self.registry.deregister(fd);
        }
    }

    fn wake_at(&self, deadline: Instant, waker: &Waker) {
        let waker = waker.clone(); // user code: before any borrow
        let mut next = self.next_timer.borrow_mut();
        let id = *next;
        *next += 1;
        self.timers.borrow_mut().insert((deadline, id), waker);
    }

    fn forget_timer(&self, deadline: Instant, waker: &Waker) {
        let removed = {
            let mut timers = self.timers.borrow_mut();
            let key = timers
                .range((deadline, 0)..=(deadline, u64::MAX))
                .find(|(_, held)| held.will_wake(waker))
                .map(|(key, _)| *key);
            key.and_then(|key| timers.remove(&key))
        };
        drop(removed); // user code: after the borrow
    }
}

/// What a run of the naive executor cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Futures run to completion.
    pub completed: usize,
    /// Calls to `Future::poll` on the top-level futures.
    pub polls: u64,
    /// Polls that returned `Ready` (one per future).
    pub ready_polls: u64,
    /// Wait phases (calls to `epoll_wait`).
    pub waits: u64,
    /// Wakers the reactor woke (all no-ops here: nobody listens).
    pub wakes: u64,
}

impl Stats {
    /// Average polls per completed future.
    pub fn polls_per_future(&self) -> f64 {
        if self.completed == 0 {
            0.0
        } else {
            self.polls as f64 / self.completed as f64
        }
    }
}

// ANCHOR: block_on_all
/// Run every future of `futures` to completion on this thread; return their
/// outputs in order and what it cost.
///
/// Fails if the poller fails, or if some futures are pending while nothing
/// is registered with the reactor: with a no-op waker, nothing could ever
/// make progress then (a future that only wakes its waker, like
/// [`ReadyAfter`](crate::coroutine::ReadyAfter), cannot run here).
pub fn block_on_all<F: Future>(
    futures: impl IntoIterator<Item = F>,
) -> io::Result<(Vec<F::Output>, Stats)> {
    let reactor = Rc::new(PollReactor::new()?);
    let _current = reactor::set_current(reactor.clone());
    // Declared after the guard, so dropped before it: a future dropped on
    // an error still finds the reactor to `forget` its fds.
    let mut futures: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut stats = Stats::default();
    let mut cx = Context::from_waker(Waker::noop()); // the naive part
    let mut unfinished = futures.len();
    loop {
        // Poll phase: everybody, every time.
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            let Some(future) = slot else { continue };
            stats.polls += 1;
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                stats.ready_polls += 1;
                *output = Some(value);
                *slot = None; // drop the finished future now: closes its fds
                unfinished -= 1;
            }
        }
        if unfinished == 0 {
            break;
        }
        if !reactor.has_waiters() {
            return Err(io::Error::other(
                "naive executor: futures are pending but none waits on the reactor, \
                 and the no-op waker cannot wake them",
            ));
        }
        // Wait phase and wake phase: we only learn that *something* happened.
        stats.wakes += reactor.wait(None)? as u64;
        stats.waits += 1;
    }
    stats.completed = outputs.len();
    let outputs = outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect();
    Ok((outputs, stats))
}
// ANCHOR_END: block_on_all

/// Run one future to completion on this thread (see [`block_on_all`]).
pub fn block_on<F: Future>(future: F) -> io::Result<F::Output> {
    let (mut outputs, _) = block_on_all([future])?;
    Ok(outputs.pop().expect("one future in, one output out"))
}
