//! # Stage 04: stackless coroutines by hand
//!
//! A stackful coroutine (stages 01-02) keeps its suspended state on a stack
//! of its own. A *stackless* coroutine keeps only the values that live across
//! a suspension point, in a value laid out as a state machine. In Rust that
//! value is a [`Future`](std::future::Future): the compiler writes the state
//! machine for an `async fn`, and this crate writes several by hand to show
//! what that means.
//!
//! Map of modules (one concept each):
//!
//! * [`coroutine`]: one coroutine written twice, as an `async fn` and as a
//!   hand-written `enum` state machine; their sizes compared.
//! * [`pinning`]: a self-referential future made sound with `Pin` and
//!   `PhantomPinned`, with its pin projection written by hand.
//! * [`combinators`]: `join_all` and `select`, by hand.
//! * [`reactor`]: the small `Reactor` trait leaf futures talk to, and the
//!   thread-local *current reactor*. Stage 05 implements it over mio.
//! * [`timer`], [`net`]: leaf futures (a timer; TCP connect, read, write)
//!   that try, and on "not yet" register with the current reactor.
//! * [`http`]: an HTTP GET against stage 03's delay server, as an `async fn`
//!   over the leaf futures.
//! * [`naive`]: a deliberately naive executor: a reactor over stage 03's
//!   `netpoll::Poll`, and `block_on_all`, which polls every future whenever
//!   anything happens.
//! * [`count`], [`workload`]: the experiment, reusable by stage 05: count
//!   the polls of N concurrent delayed requests, on any executor.
//! * [`testing`]: a counting waker and a recording fake reactor, for driving
//!   futures by hand in tests.

pub mod combinators;
pub mod coroutine;
pub mod count;
pub mod http;
pub mod naive;
pub mod net;
pub mod pinning;
pub mod reactor;
pub mod testing;
pub mod timer;
pub mod workload;
