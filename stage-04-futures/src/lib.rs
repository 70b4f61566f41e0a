//! # Stage 04: stackless coroutines by hand
//!
//! A stackful coroutine (stages 01-02) keeps its suspended state on a stack
//! of its own. A *stackless* coroutine keeps only the values that live across
//! a suspension point, in a value laid out as a state machine. In Rust that
//! value is a [`Future`](std::future::Future): the compiler writes the state
//! machine for an `async fn`, and this crate writes a few by hand to show
//! what that means.
//!
//! Map of modules (one concept each):
//!
//! * [`reactor`]: the small `Reactor` trait leaf futures talk to, and the
//!   thread-local *current reactor*. Stage 05 implements it over mio.

pub mod reactor;
