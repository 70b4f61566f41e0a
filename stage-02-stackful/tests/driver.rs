//! The `Driver` hook stage 03 builds its netpoller on.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

mod common;
use common::within;
use green::{Driver, Error, GreenId, Runtime, current, park, spawn, with_driver, yield_now};

/// A fake reactor: green threads register; each `wait` "delivers an event"
/// to every registered thread. It logs the timeouts it was given.
#[derive(Default)]
struct FakeReactor {
    registered: Vec<GreenId>,
    timeouts: Rc<RefCell<Vec<Option<Duration>>>>,
    fail: bool,
}

impl Driver for FakeReactor {
    fn wait(&mut self, timeout: Option<Duration>, wake: &mut dyn FnMut(GreenId)) -> io::Result<()> {
        self.timeouts.borrow_mut().push(timeout);
        if self.fail {
            return Err(io::Error::other("epoll exploded"));
        }
        for id in self.registered.drain(..) {
            wake(id);
        }
        Ok(())
    }

    fn has_waiters(&self) -> bool {
        !self.registered.is_empty()
    }
}

/// What a green socket's `read` does on `WouldBlock`.
fn wait_for_event() {
    with_driver(|reactor: &mut FakeReactor| reactor.registered.push(current()))
        .expect("a FakeReactor is installed");
    park();
}

#[test]
fn a_green_thread_parked_on_the_driver_is_woken_by_it() {
    let timeouts = Rc::new(RefCell::new(Vec::new()));
    let reactor = FakeReactor {
        timeouts: timeouts.clone(),
        ..FakeReactor::default()
    };
    let mut rt = Runtime::builder().driver(Box::new(reactor)).build();
    let value = rt
        .block_on(|| {
            wait_for_event();
            "event arrived"
        })
        .unwrap();
    assert_eq!(value, "event arrived");
    assert_eq!(
        *timeouts.borrow(),
        [None],
        "no timer pending: the driver may block indefinitely"
    );
    assert!(rt.driver_mut::<FakeReactor>().is_some());
}

#[test]
fn the_driver_is_given_the_time_until_the_next_timer() {
    // The thread waits for an event *and* has a timer a minute away, so the
    // scheduler must call the driver (only it can wake the thread in time),
    // and must pass it the time left until that timer. (With a short sleep,
    // a slow machine could let the deadline pass before the first wait.)
    let timeouts = Rc::new(RefCell::new(Vec::new()));
    let reactor = FakeReactor {
        timeouts: timeouts.clone(),
        ..FakeReactor::default()
    };
    let mut rt = Runtime::builder().driver(Box::new(reactor)).build();
    let timer = Duration::from_secs(60);
    rt.block_on(move || {
        with_driver(|reactor: &mut FakeReactor| reactor.registered.push(current()))
            .expect("a FakeReactor is installed");
        green::park_timeout(timer);
    })
    .unwrap();
    let timeouts = timeouts.borrow();
    assert!(!timeouts.is_empty(), "the driver was never asked to wait");
    assert!(
        timeouts
            .iter()
            .all(|t| t.is_some_and(|t| t <= timer && t > timer / 2)),
        "each wait must be bounded by the time left until the timer: {timeouts:?}"
    );
}

#[test]
fn a_driver_without_waiters_lets_deadlock_detection_fire() {
    let mut rt = Runtime::builder()
        .driver(Box::new(FakeReactor::default()))
        .build();
    assert!(matches!(
        rt.block_on(park),
        Err(Error::Deadlock { parked: 1 })
    ));
}

#[test]
fn threads_that_keep_yielding_do_not_starve_threads_waiting_on_the_driver() {
    within(
        "does the run loop poll the driver while the run queue never empties?",
        || {
            let mut rt = Runtime::builder()
                .driver(Box::new(FakeReactor::default()))
                .build();
            let spins = rt
                .block_on(|| {
                    let arrived = Rc::new(Cell::new(false));
                    let a = arrived.clone();
                    spawn(move || {
                        wait_for_event();
                        a.set(true);
                    });
                    // Never lets the run queue empty: the driver must be polled anyway.
                    let mut spins = 0u32;
                    while !arrived.get() && spins < 10_000 {
                        yield_now();
                        spins += 1;
                    }
                    assert!(arrived.get(), "the I/O thread starved");
                    spins
                })
                .unwrap();
            assert!(spins <= 2 * green::driver::POLL_INTERVAL, "{spins}");
        },
    );
}

#[test]
fn a_driver_error_ends_block_on_with_that_error() {
    let reactor = FakeReactor {
        fail: true,
        ..FakeReactor::default()
    };
    let mut rt = Runtime::builder().driver(Box::new(reactor)).build();
    let result = rt.block_on(wait_for_event);
    assert!(
        matches!(&result, Err(Error::Driver(e)) if e.to_string() == "epoll exploded"),
        "{result:?}"
    );
}

#[test]
fn with_driver_answers_none_for_another_driver_type() {
    struct Other;
    Runtime::new()
        .block_on(|| {
            assert!(with_driver(|_: &mut FakeReactor| ()).is_none());
            assert!(with_driver(|_: &mut green::SleepDriver| ()).is_some());
            let _ = Other;
        })
        .unwrap();
}

#[test]
fn blocking_inside_with_driver_is_refused_with_a_panic_in_that_thread() {
    // The driver stays borrowed for the length of `with_driver`: had the
    // thread parked there, the scheduler could not use its own driver.
    let error = Runtime::new()
        .block_on(|| {
            spawn(|| with_driver(|_: &mut green::SleepDriver| yield_now()))
                .join()
                .unwrap_err()
        })
        .unwrap();
    assert!(
        error
            .panic_message()
            .unwrap()
            .contains("inside with_driver"),
        "{error}"
    );
}
