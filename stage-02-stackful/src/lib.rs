//! # Stage 02: a stackful green-thread runtime
//!
//! Thousands of green threads on one OS thread. Each green thread is a
//! stage-01 [`fibers::Fiber`] with its own [`fibers::Stack`]; a scheduler
//! resumes them one at a time and they hand control back whenever they would
//! block. Blocking code stays plain, synchronous-looking Rust: `recv()`,
//! `sleep()`, `join()` park the green thread, not the OS thread.
//!
//! ```
//! let mut rt = green::Runtime::new();
//! let sum = rt.block_on(|| {
//!     let (tx, rx) = green::channel();
//!     for i in 0..10 {
//!         let tx = tx.clone();
//!         green::spawn(move || tx.send(i).unwrap());
//!     }
//!     drop(tx);
//!     rx.iter().sum::<i32>()
//! });
//! assert_eq!(sum.unwrap(), 45);
//! ```
//!
//! ## Map of the crate
//!
//! | module        | concept                                                           |
//! |---------------|-------------------------------------------------------------------|
//! | [`runtime`]   | `Runtime`, its `Builder`, `block_on`, the `Error` it can return   |
//! | `scheduler`   | run queue, timer queue, park/unpark, the scheduler loop, teardown |
//! | [`thread`]    | free functions: `spawn`, `yield_now`, `sleep`, `current`, `park`  |
//! | [`join`]      | `JoinHandle`, `JoinError`: results and panics of green threads    |
//! | [`driver`]    | the `Driver` hook: what the scheduler does when nothing can run   |
//! | `timer`       | the timer queue (a min-heap of deadlines)                          |
//! | [`channel`](mod@channel) | an unbounded MPSC channel whose `recv` parks                      |
//! | [`generator`] | `Generator`: yield from any call depth, consume as an `Iterator`  |
//! | [`stack_pool`]| stacks reused between green threads                               |
//! | `slab`        | the table of green threads, addressed by `GreenId`                |
//!
//! (`scheduler`, `timer` and `slab` are private: read them in the source or
//! with `cargo doc --document-private-items`.)
//!
//! ## For stage 03: the I/O hook
//!
//! A netpoller plugs in as a [`Driver`] (installed with
//! [`Builder::driver`]); green sockets use [`current`], [`park`] and
//! [`unpark`] (or the `wake` callback of [`Driver::wait`]). See the
//! [`driver`] module for the protocol.

pub mod channel;
pub mod driver;
pub mod generator;
pub mod join;
pub mod runtime;
mod scheduler;
mod slab;
pub mod stack_pool;
pub mod thread;
mod timer;

pub use channel::{Receiver, RecvError, SendError, Sender, TryRecvError, channel};
pub use driver::{Driver, SleepDriver};
pub use generator::{Generator, GeneratorState, Yielder};
pub use join::{JoinError, JoinHandle};
pub use runtime::{Builder, Error, Runtime};
pub use stack_pool::PoolStats;
pub use thread::{
    GreenId, current, park, park_timeout, sleep, sleep_until, spawn, try_current, try_spawn,
    unpark, with_driver, yield_now,
};
