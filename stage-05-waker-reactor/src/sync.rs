//! The synchronisation primitives that the loom model checks replace.
//!
//! Built normally, these are `std`'s. Built for the model checks (`cargo
//! test --lib` with `RUSTFLAGS="--cfg loom"`), they are loom's, which
//! record every access so that loom can run a test under every
//! interleaving of its threads that the memory model allows (see
//! `loom_models`). Only the task's state word and reference count and the
//! worker's parker go through here: those are what the models check.

#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, atomic};

#[cfg(all(loom, test))]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, atomic};

// ANCHOR: unsafe_cell
/// An `UnsafeCell` whose accesses loom checks: built for the models, each
/// access is recorded, and loom reports any two accesses (one a write) that
/// no happens-before edge orders, i.e. a data race that a weaker ordering
/// somewhere would allow. Built normally it is a plain `UnsafeCell`.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T> {
    value: std::cell::UnsafeCell<T>,
    #[cfg(all(loom, test))]
    access: loom::cell::UnsafeCell<()>,
}

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell {
            value: std::cell::UnsafeCell::new(value),
            #[cfg(all(loom, test))]
            access: loom::cell::UnsafeCell::new(()),
        }
    }

    /// # Safety
    /// No other reference to the value exists while the result lives.
    #[allow(clippy::mut_from_ref)] // that is what an `UnsafeCell` is for
    pub(crate) unsafe fn get_mut(&self) -> &mut T {
        #[cfg(all(loom, test))]
        self.access.with_mut(|_| ());
        // SAFETY: exclusive, by the caller's contract.
        unsafe { &mut *self.value.get() }
    }

    /// # Safety
    /// No mutable reference to the value exists while the result lives.
    pub(crate) unsafe fn get_ref(&self) -> &T {
        #[cfg(all(loom, test))]
        self.access.with(|_| ());
        // SAFETY: shared, by the caller's contract.
        unsafe { &*self.value.get() }
    }
}
// ANCHOR_END: unsafe_cell
