//! Tools for driving futures by hand, without an executor.
//!
//! A test (or a learner at a REPL) plays executor: it builds a [`Waker`],
//! calls `poll` itself and looks at what the future asked for. Two tools:
//!
//! * [`CountingWaker`]: a waker that counts how often it was woken, so a
//!   test can check that a future which returned `Pending` arranged a wake.
//! * [`RecordingReactor`]: a fake [`Reactor`] that records what leaf futures
//!   asked of it and keeps their wakers, so a test can fire them.
//!
//! Neither makes a system call, so tests built on them also run under Miri.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use crate::reactor::{Interest, Reactor};

/// A waker that counts its wake-ups.
#[derive(Debug, Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    /// A new counter and a [`Waker`] that increments it.
    pub fn new() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    /// How many times `wake` or `wake_by_ref` was called.
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Poll `future` once with `waker`.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

/// Poll `future` with `waker` until it is ready; returns the output and how
/// many polls it took. Only for futures that wake themselves (or that the
/// caller knows will be ready): it spins, it never waits.
pub fn poll_to_completion<F: Future>(future: F, waker: &Waker) -> (F::Output, u64) {
    let mut future = std::pin::pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = poll_once(future.as_mut(), waker) {
            return (output, polls);
        }
    }
}

/// One request a leaf future made of the reactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactorCall {
    /// `wake_when_ready(fd, interest, _)`.
    WakeWhenReady(RawFd, Interest),
    /// `forget(fd)`.
    Forget(RawFd),
    /// `wake_at(deadline, _)`.
    WakeAt(Instant),
}

/// A fake reactor: records every call and keeps the wakers it was given.
#[derive(Debug, Default)]
pub struct RecordingReactor {
    calls: RefCell<Vec<ReactorCall>>,
    wakers: RefCell<Vec<Waker>>,
}

impl RecordingReactor {
    /// The calls made so far, oldest first.
    pub fn calls(&self) -> Vec<ReactorCall> {
        self.calls.borrow().clone()
    }

    /// Wake every waker handed to the reactor so far, and forget them.
    /// Returns how many were woken.
    pub fn wake_all(&self) -> usize {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        let count = wakers.len();
        wakers.into_iter().for_each(Waker::wake);
        count
    }
}

impl Reactor for RecordingReactor {
    fn wake_when_ready(&self, fd: RawFd, interest: Interest, waker: &Waker) -> io::Result<()> {
        self.calls
            .borrow_mut()
            .push(ReactorCall::WakeWhenReady(fd, interest));
        self.wakers.borrow_mut().push(waker.clone());
        Ok(())
    }
    fn forget(&self, fd: RawFd) {
        self.calls.borrow_mut().push(ReactorCall::Forget(fd));
    }
    fn wake_at(&self, deadline: Instant, waker: &Waker) {
        self.calls.borrow_mut().push(ReactorCall::WakeAt(deadline));
        self.wakers.borrow_mut().push(waker.clone());
    }
}
