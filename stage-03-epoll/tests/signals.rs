//! A signal that lands during `epoll_wait` makes the system call fail with
//! `EINTR`. The poller retries with what is left of the timeout, so callers
//! see neither an error nor an early, empty return.
//!
//! (A test binary of its own: it installs a process-wide signal handler.)

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use netpoll::{Events, Poll, Token, Waker};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigusr1(_signal: libc::c_int) {
    // Only async-signal-safe work here: one atomic add.
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// Installs the handler *without* `SA_RESTART`, so the wait is interrupted.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
        // the handler only touches an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
    });
}

/// Sends SIGUSR1 to the calling thread `count` times, `every` apart, from
/// another thread.
fn signal_me(count: usize, every: Duration) -> thread::JoinHandle<()> {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    thread::spawn(move || {
        for _ in 0..count {
            thread::sleep(every);
            // SAFETY: `me` is alive: it joins this thread before returning.
            let rc = unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            assert_eq!(rc, 0);
        }
    })
}

#[test]
fn signals_during_a_timed_wait_are_neither_errors_nor_early_returns() {
    install_handler();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4);
    let before = HANDLED.load(Ordering::SeqCst);
    let timeout = Duration::from_millis(400);
    let sender = signal_me(3, Duration::from_millis(50));
    let started = Instant::now();
    let result = poll.poll(&mut events, Some(timeout));
    let elapsed = started.elapsed();
    sender.join().expect("signal sender");
    assert!(result.is_ok(), "EINTR leaked out: {result:?}");
    assert!(events.is_empty());
    assert!(elapsed >= timeout, "returned early, after {elapsed:?}");
    assert!(
        HANDLED.load(Ordering::SeqCst) >= before + 3,
        "the signals did arrive"
    );
}

#[test]
fn a_signal_during_an_untimed_wait_does_not_end_it_only_an_event_does() {
    install_handler();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4);
    let waker = Waker::new(poll.registry(), Token(1)).expect("waker");
    let before = HANDLED.load(Ordering::SeqCst);
    let sender = signal_me(1, Duration::from_millis(30));
    let waking = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        waker.wake().expect("wake");
        waker // kept alive: closing an eventfd takes its pending event with it
    });
    poll.poll(&mut events, None).expect("poll");
    sender.join().expect("signal sender");
    waking.join().expect("waking thread");
    assert!(
        HANDLED.load(Ordering::SeqCst) > before,
        "the signal did arrive"
    );
    assert_eq!(
        events.iter().map(|e| e.token()).collect::<Vec<_>>(),
        [Token(1)],
        "the wait ended because of the wake, not the signal"
    );
}
