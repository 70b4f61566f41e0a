//! # Stage 03: readiness I/O on epoll, and a netpoller for green threads
//!
//! A blocking `read` parks the whole OS thread until data arrives. A
//! non-blocking `read` never waits, but then *someone* must learn when to try
//! again. Readiness I/O answers that: hand the kernel a list of descriptors
//! once (the *interest list*), then ask "which of them are ready?" in one
//! system call that sleeps until the answer is not empty. On Linux that is
//! epoll.
//!
//! The stage builds it bottom-up:
//!
//! | module | what it is |
//! |---|---|
//! | [`sys`] | the thin OS layer: `epoll_create1`, `epoll_ctl`, `epoll_wait` (retrying `EINTR`), `eventfd` |
//! | [`Token`], [`Interest`], [`Trigger`] | naming a registration, what to watch, level / edge / one-shot |
//! | [`Poll`], [`Registry`] | mio's shape: wait for events; register, reregister, deregister |
//! | [`Events`], [`Event`] | what one wait returned |
//! | [`Waker`] | end a wait from another thread (an eventfd) |
//! | [`args`] | the servers' command line: an address to listen on, errors as one line |
//! | [`delayserver`] | a small HTTP server that answers after a delay, run in-process by later stages |
//! | [`netpoller`] | a stage-02 [`green::Driver`] that waits in epoll: the netpoller |
//! | [`net`] | green `TcpListener` / `TcpStream` with blocking-style `Read` / `Write` |
//!
//! The examples `echo_level`, `echo_edge` and `echo_mio` are one echo server
//! written three ways; the last one shows that mio is this same API with
//! kqueue and IOCP behind it. `green_echo` is the same server once more, as
//! plain blocking code, one green thread per connection, on the netpoller.

pub mod args;
pub mod delayserver;
mod event;
mod interest;
pub mod net;
pub mod netpoller;
mod poll;
pub mod sys;
mod token;
mod waker;

pub use event::{Event, Events};
pub use interest::{Interest, Trigger};
pub use poll::{Poll, Registry};
pub use token::Token;
pub use waker::Waker;
