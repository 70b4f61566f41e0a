//! A waker is user code: its `clone` and its `drop` may call back into the
//! runtime. The runtime never runs them under one of its own locks, so a
//! waker that asks the runtime something while it is being stored, or
//! replaced, cannot deadlock it.
//!
//! The wakers here are hand-made. The first asks the runtime how many
//! timers are pending (which takes the timers' lock) on every clone and
//! drop. The second owns a stage 04 stream, so dropping its last copy makes
//! the stream tell the runtime to forget its fd (which takes the lock of
//! stage 04's registrations).

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread;
use std::time::Duration;

use runtime::Runtime;

thread_local! {
    /// The runtime the waker asks, and how often it asked.
    static ASKED: Cell<(*const Runtime, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

/// Calls back into the runtime, as a waker built by a framework might.
fn ask_the_runtime() {
    let (runtime, asked) = ASKED.get();
    // SAFETY: the test stores a pointer to a runtime that outlives every
    // waker made from this vtable, and reads it on the same thread.
    let pending = unsafe { (*runtime).num_pending_timers() };
    std::hint::black_box(pending);
    ASKED.set((runtime, asked + 1));
}

fn clone(_: *const ()) -> RawWaker {
    ask_the_runtime();
    RawWaker::new(std::ptr::null(), &VTABLE)
}
fn wake(_: *const ()) {}
fn wake_by_ref(_: *const ()) {}
fn drop_waker(_: *const ()) {
    ask_the_runtime();
}
static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// Fails with `what` instead of hanging if `f` deadlocks.
fn within(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: not done within 20 s (a deadlock?)"));
}

#[test]
fn a_waker_that_calls_the_runtime_from_clone_and_drop_is_stored_and_replaced_without_a_deadlock() {
    within("replacing a timer's waker", || {
        let rt = Runtime::new().expect("runtime");
        ASKED.set((&raw const rt, 0));
        rt.block_on(async {
            let mut sleep = pin!(runtime::time::sleep(Duration::from_secs(3600)));
            // SAFETY: the vtable's functions ignore the data pointer.
            let reentrant = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
            // First poll with the task's own waker, then with ours: the
            // timer must swap one for the other (a clone of ours in, the
            // task's out), then ours for a fresh one from the task.
            poll_fn(|cx| {
                assert!(sleep.as_mut().poll(cx).is_pending());
                let mut ours = Context::from_waker(&reentrant);
                assert!(sleep.as_mut().poll(&mut ours).is_pending());
                assert!(sleep.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
        });
        let (_, asked) = ASKED.get();
        assert!(
            asked >= 2,
            "the waker was cloned into the timer and dropped out of it ({asked} calls)"
        );
        drop(rt);
    });
}

/// A waker that owns a stage 04 stream: when its last copy is dropped, the
/// stream's `Drop` tells the runtime to forget its fd.
mod owns_a_stream {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::task::{RawWaker, RawWakerVTable, Waker};

    type Owned = RefCell<Option<stackless::net::TcpStream>>;

    fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` came from `Rc::into_raw` in `new` and is alive
        // while this copy of the waker is; every copy owns one count.
        unsafe { Rc::increment_strong_count(data as *const Owned) };
        RawWaker::new(data, &VTABLE)
    }
    fn wake(data: *const ()) {
        drop_waker(data);
    }
    fn wake_by_ref(_: *const ()) {}
    fn drop_waker(data: *const ()) {
        // SAFETY: gives back the count this copy owned (see `clone`).
        drop(unsafe { Rc::from_raw(data as *const Owned) });
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

    /// Only for the thread that makes it: the count is an `Rc`.
    pub fn new(stream: stackless::net::TcpStream) -> Waker {
        let data = Rc::into_raw(Rc::new(RefCell::new(Some(stream))));
        // SAFETY: the vtable keeps the `Rc` count as described above, and
        // the test uses every copy on this one thread.
        unsafe { Waker::from_raw(RawWaker::new(data as *const (), &VTABLE)) }
    }
}

#[test]
fn a_stage04_socket_waker_whose_drop_closes_another_stage04_stream_is_replaced_without_a_deadlock()
{
    within("replacing a stage 04 socket's waker", || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let rt = Runtime::new().expect("runtime");
        rt.block_on(async move {
            let watched = stackless::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let owned = stackless::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let _peers = (listener.accept(), listener.accept());
            let ours = owns_a_stream::new(owned);
            let mut buf = [0u8; 8];
            let mut read = pin!(watched.read(&mut buf));
            poll_fn(|_| {
                // The runtime stores a copy of our waker for `watched`...
                let mut with_ours = Context::from_waker(&ours);
                assert!(read.as_mut().poll(&mut with_ours).is_pending());
                // ...which becomes its last copy once `ours` is gone. The
                // next poll replaces it: that drops `owned`, whose `Drop`
                // calls the runtime's `forget`.
                drop(ours.clone());
                Poll::Ready(())
            })
            .await;
            drop(ours);
            poll_fn(|cx| {
                assert!(read.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
        });
        drop(rt);
    });
}
