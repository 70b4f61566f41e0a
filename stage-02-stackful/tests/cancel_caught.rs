//! A green thread that catches its own cancellation (a `catch_unwind`
//! around a blocking call, as a supervisor loop has) and then blocks again,
//! outside any unwind, is cancelled again: shutdown still ends, drops its
//! locals and takes its stack back. Only a destructor blocking *during* the
//! unwind gets a spurious wake-up instead. (A thread that catches every
//! cancellation, blocking only inside `catch_unwind`, refuses to end:
//! shutdown waits for it as a join would.)

mod common;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use common::within;
use green::{Runtime, channel, park, sleep, spawn, yield_now};

/// Counts its drops.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_worker_loop_that_catches_a_cancelled_job_is_cancelled_again_in_recv_and_shutdown_ends() {
    let (drops, in_use) = within("teardown spun on a worker that caught Cancelled", || {
        let drops = Rc::new(Cell::new(0));
        let counted = Counted(Rc::clone(&drops));
        let mut rt = Runtime::new();
        rt.block_on(move || {
            let (jobs, queue) = channel::<Box<dyn FnOnce()>>();
            let resubmit = jobs.clone(); // keeps `recv` waiting when idle
            spawn(move || {
                let _local = counted;
                let _resubmit = resubmit;
                // A supervisor: a job that panics must not end the worker.
                while let Ok(job) = queue.recv() {
                    let _ = panic::catch_unwind(AssertUnwindSafe(job));
                }
            });
            jobs.send(Box::new(park)).unwrap(); // a job still blocked at shutdown
            yield_now(); // the worker takes it and parks inside it
        })
        .expect("block_on");
        (drops.get(), rt.stack_stats().in_use)
    });
    assert_eq!(drops, 1, "the worker's local was dropped");
    assert_eq!(in_use, 0, "its stack came back");
}

#[test]
fn a_thread_that_catches_its_cancellation_and_then_sleeps_is_cancelled_again() {
    let in_use = within("teardown spun on a sleep after a caught Cancelled", || {
        let mut rt = Runtime::new();
        rt.block_on(|| {
            spawn(|| {
                let _ = panic::catch_unwind(AssertUnwindSafe(park));
                sleep(Duration::from_secs(3600));
            });
            yield_now();
        })
        .expect("block_on");
        rt.stack_stats().in_use
    });
    assert_eq!(in_use, 0);
}
