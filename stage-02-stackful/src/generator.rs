//! A stackful generator: a closure that yields values, from any call depth,
//! consumed as an [`Iterator`].
//!
//! The closure runs on its own stage-01 fiber. `yield_` suspends the whole
//! fiber, however many frames deep it is called, and `next()` resumes it:
//!
//! ```text
//!   consumer stack           generator fiber stack
//!   ┌──────────────┐ resume  ┌───────────────────┐
//!   │ for x in gen │ ──────> │ closure           │
//!   │   ...        │         │  walk(root)       │
//!   │              │         │   walk(left)      │
//!   │              │ <────── │    y.yield_(v)    │  all three frames stay
//!   └──────────────┘ suspend └───────────────────┘  put until the next resume
//! ```
//!
//! A stackless coroutine (an `async fn`, a `gen` block) can only suspend at
//! its own top level: a recursive walk needs one boxed coroutine per level.
//! A stackful one keeps the whole call stack, so plain recursion works.
//!
//! A generator is independent of the runtime: it works on any thread, in or
//! out of a green thread. Inside a green thread it may not block (`park`,
//! `sleep`, `recv`...): it runs on its own fiber, not the green thread's.

use std::fmt;
use std::io;
use std::iter::FusedIterator;
use std::mem::ManuallyDrop;

use fibers::{Fiber, FiberResult, SharedFp, Stack, Suspender};

use crate::scheduler::NestedFiberGuard;

/// What one [`Generator::resume`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorState<Y, R> {
    /// The closure yielded a value and is suspended.
    Yielded(Y),
    /// The closure returned.
    Complete(R),
}

// ANCHOR: yielder
/// Passed to the generator's closure; hand it down to any depth of calls.
pub struct Yielder<'a, Y> {
    suspender: &'a Suspender<(), Y, SharedFp>,
}

impl<Y> Yielder<'_, Y> {
    /// Hands `value` to the consumer and suspends the generator until the
    /// consumer asks for the next value.
    pub fn yield_(&self, value: Y) {
        self.suspender.suspend(value);
    }
}
// ANCHOR_END: yielder

/// A closure on its own stack that yields `Y`s and finally returns an `R`.
pub struct Generator<Y, R = ()> {
    // Dropped by hand, inside a `NestedFiberGuard` (see `Drop`).
    fiber: ManuallyDrop<Fiber<(), Y, R, SharedFp>>,
}

impl<Y: 'static, R: 'static> Generator<Y, R> {
    /// A generator with a stack of stage 01's default size.
    pub fn new<F>(f: F) -> io::Result<Self>
    where
        F: FnOnce(&Yielder<'_, Y>) -> R + 'static,
    {
        Self::with_stack_size(Stack::DEFAULT_SIZE, f)
    }

    /// A generator with a stack of `bytes` usable bytes (rounded up to
    /// pages, at least [`Builder::MIN_STACK_SIZE`](crate::Builder::MIN_STACK_SIZE),
    /// as for a green thread: below it a panic in the body would overflow
    /// the stack and abort instead of reaching the caller of `resume`).
    pub fn with_stack_size<F>(bytes: usize, f: F) -> io::Result<Self>
    where
        F: FnOnce(&Yielder<'_, Y>) -> R + 'static,
    {
        let stack = Stack::new(bytes.max(crate::Builder::MIN_STACK_SIZE))?;
        // A generator is driven like a function its consumer calls again
        // and again, so it shares the consumer's floating-point control
        // state instead of keeping its own (the cheaper switch on x86-64).
        let fiber =
            Fiber::with_shared_fp(stack, move |suspender: &Suspender<(), Y, SharedFp>, ()| {
                f(&Yielder { suspender })
            });
        Ok(Generator {
            fiber: ManuallyDrop::new(fiber),
        })
    }

    // ANCHOR: resume
    /// Runs the closure until it yields or returns. A panic in the closure
    /// is re-raised here. Returns `None` once the closure has returned.
    #[inline]
    pub fn resume(&mut self) -> Option<GeneratorState<Y, R>> {
        if self.fiber.is_finished() {
            return None;
        }
        // Tell the runtime (if any) that a nested fiber runs, so a blocking
        // call inside it fails loudly instead of suspending the wrong fiber.
        let _nested = NestedFiberGuard::enter();
        Some(match self.fiber.resume(()) {
            FiberResult::Yield(value) => GeneratorState::Yielded(value),
            FiberResult::Return(value) => GeneratorState::Complete(value),
        })
    }
    // ANCHOR_END: resume

    /// Whether the closure has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.fiber.is_finished()
    }
}

impl<Y: 'static> Iterator for Generator<Y, ()> {
    type Item = Y;

    #[inline]
    fn next(&mut self) -> Option<Y> {
        match self.resume()? {
            GeneratorState::Yielded(value) => Some(value),
            GeneratorState::Complete(()) => None,
        }
    }
}

impl<Y: 'static> FusedIterator for Generator<Y, ()> {}

impl<Y, R> Drop for Generator<Y, R> {
    fn drop(&mut self) {
        // Dropping a suspended fiber unwinds its stack, running the
        // destructors of the closure's locals on that fiber: mark it nested.
        let _nested = NestedFiberGuard::enter();
        // SAFETY: `drop` runs once, and `self.fiber` is not used after this.
        let fiber = unsafe { ManuallyDrop::take(&mut self.fiber) };
        drop(fiber);
    }
}

impl<Y, R> fmt::Debug for Generator<Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator").finish_non_exhaustive()
    }
}

impl<Y> fmt::Debug for Yielder<'_, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Yielder")
    }
}
