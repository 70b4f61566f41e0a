//! # Stage 01: context switching in assembly
//!
//! A *fiber* is the smallest green thread there is: a closure that runs on a
//! stack of its own and can stop in the middle of any call (suspend), to be
//! continued later exactly where it stopped (resume). The only part of that
//! which Rust cannot express is swapping one stack for another while saving
//! the registers the calling convention says must survive a call; that part
//! is a few lines of assembly per architecture.
//!
//! | module | what it is |
//! |---|---|
//! | [`stack`] | [`Stack`]: memory from `mmap` with a guard page below it |
//! | [`arch`] | `switch_in`/`switch_back` and `init_stack` in assembly, one file per ISA |
//! | [`fiber`] | [`Fiber`], [`Suspender`], [`FiberResult`], [`FpControl`] ([`PerFiberFp`], [`SharedFp`]): the safe API |
//! | `overflow` | the SIGSEGV handler that reports a fiber stack overflow |
//!
//! ```
//! use fibers::{Fiber, FiberResult};
//!
//! let mut counter = Fiber::new(|suspender, start: u32| {
//!     let mut n = start;
//!     loop {
//!         n = n + suspender.suspend(n);
//!     }
//! })
//! .unwrap();
//! assert_eq!(counter.resume(10), FiberResult::<u32, ()>::Yield(10));
//! assert_eq!(counter.resume(5), FiberResult::Yield(15));
//! ```

pub mod arch;
pub mod fiber;
mod overflow;
pub mod stack;

pub use fiber::{Fiber, FiberResult, FpControl, PerFiberFp, SharedFp, Suspender};
pub use stack::Stack;
