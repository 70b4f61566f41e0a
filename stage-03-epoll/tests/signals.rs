//! A signal that lands during `epoll_wait` makes the system call fail with
//! `EINTR`. The poller retries with what is left of the timeout, so callers
//! see neither an error nor an early, empty return.
//!
//! (A test binary of its own: it installs a process-wide signal handler.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use netpoll::{Events, Poll, Token, Waker};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// `HANDLED` counts the signals of the whole process, so the tests take
/// turns: each counts only its own.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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

/// Sends SIGUSR1 to the calling thread every `every`, from another thread,
/// until `stop` is set or `count` signals are sent.
fn signal_me(count: usize, every: Duration, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    thread::spawn(move || {
        for _ in 0..count {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(every);
            // SAFETY: `me` is alive: it sets `stop` and joins this thread
            // before it returns.
            let rc = unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            assert_eq!(rc, 0);
        }
    })
}

#[test]
fn signals_during_a_timed_wait_are_neither_errors_nor_early_returns() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    install_handler();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4);
    let before = HANDLED.load(Ordering::SeqCst);
    let timeout = Duration::from_millis(400);
    let stop = Arc::new(AtomicBool::new(false));
    // A signal every 20 ms while the wait lasts: about 20 of them land
    // inside it, each an EINTR that the poller must retry. (Bounded, so a
    // poller that restarts the full timeout after each one still ends.)
    let sender = signal_me(30, Duration::from_millis(20), stop.clone());
    let started = Instant::now();
    let result = poll.poll(&mut events, Some(timeout));
    let elapsed = started.elapsed();
    let during = HANDLED.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("signal sender");
    assert!(result.is_ok(), "EINTR leaked out: {result:?}");
    assert!(events.is_empty());
    assert!(elapsed >= timeout, "returned early, after {elapsed:?}");
    assert!(during >= 1, "no signal arrived during the wait");
}

#[test]
fn a_signal_during_an_untimed_wait_does_not_end_it_only_an_event_does() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    install_handler();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4);
    let waker = Waker::new(poll.registry(), Token(1)).expect("waker");
    let before = HANDLED.load(Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = signal_me(100, Duration::from_millis(30), stop.clone());
    let waking = thread::spawn(move || {
        // Wake only once a signal has been handled, so the signal surely
        // came first, however slowly this machine runs; then leave time
        // for a few more.
        while HANDLED.load(Ordering::SeqCst) == before {
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(100));
        waker.wake().expect("wake");
        waker // kept alive: closing an eventfd takes its pending event with it
    });
    poll.poll(&mut events, None).expect("poll");
    stop.store(true, Ordering::SeqCst);
    sender.join().expect("signal sender");
    waking.join().expect("waking thread");
    assert_eq!(
        events.iter().map(|e| e.token()).collect::<Vec<_>>(),
        [Token(1)],
        "the wait ended because of the wake, not a signal"
    );
}
