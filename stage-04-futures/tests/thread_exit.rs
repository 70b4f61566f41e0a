//! A thread's locals are destroyed in an order nobody controls: stage 04's
//! own (the current reactor) may go before a user's. Dropping a stream or a
//! reactor guard that a user's thread-local holds must then stay quiet: a
//! panic in a thread-local destructor aborts the whole process.
//!
//! Alone in this binary: if that abort happened, it would end every test
//! that shares the process.
#![cfg(not(miri))] // real sockets

use std::cell::RefCell;
use std::net::TcpListener;
use std::rc::Rc;

use stackless::naive::PollReactor;
use stackless::net::TcpStream;
use stackless::reactor::{self, CurrentReactorGuard};

thread_local! {
    /// What a user might keep for a thread's whole life.
    static KEPT: RefCell<Option<(TcpStream, CurrentReactorGuard)>> = const { RefCell::new(None) };
}

fn keep_a_stream_and_a_guard() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let stream =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let stream = TcpStream::from_std(stream).expect("non-blocking");
    let guard = reactor::set_current(Rc::new(PollReactor::new().expect("epoll")));
    KEPT.with(|kept| *kept.borrow_mut() = Some((stream, guard)));
}

#[test]
fn a_stream_and_a_guard_kept_in_a_thread_local_drop_quietly_at_thread_exit() {
    // Both orders of first use, so that one of them has the current reactor
    // destroyed before the user's thread-local, whichever order std uses.
    let reactor_first = std::thread::spawn(|| {
        assert!(!reactor::is_set());
        keep_a_stream_and_a_guard();
    });
    reactor_first.join().expect("thread");
    let user_first = std::thread::spawn(|| {
        KEPT.with(|_| ());
        keep_a_stream_and_a_guard();
    });
    user_first.join().expect("thread");
}
