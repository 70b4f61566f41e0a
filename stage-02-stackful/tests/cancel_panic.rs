//! A destructor that panics, on the two ways a green thread can end.
//!
//! Ending normally, the destructor runs on the normal path: its panic is
//! the thread's panic, caught at the thread's root and returned by `join`.
//! Cancelled at shutdown, the destructor runs during the cancellation's
//! unwind: a second panic in flight, which Rust answers with an abort that
//! no runtime can intercept (chapter 2, "A destructor that panics while its
//! thread is cancelled"). The second test pins that down, in a child
//! process (through `COURSE_EMULATOR` under qemu-user), so that the chapter's
//! account cannot drift from what really happens.

use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use green::{Runtime, park, spawn};

const CHILD_ROLE: &str = "STAGE02_CHILD_ROLE";

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("PanicsOnDrop::drop");
    }
}

fn run_child(test_name: &str, role: &str) -> Output {
    test_support::run_this_test_alone(test_name, CHILD_ROLE, role)
}

#[test]
fn a_destructor_that_panics_when_its_thread_ends_normally_is_a_join_error() {
    let error = Runtime::new()
        .block_on(|| {
            spawn(|| {
                let _guard = PanicsOnDrop;
            })
            .join()
            .expect_err("the destructor's panic is the thread's panic")
        })
        .expect("block_on");
    assert_eq!(error.panic_message(), Some("PanicsOnDrop::drop"));
}

#[test]
fn a_destructor_that_panics_during_cancellation_aborts_with_rusts_cleanup_message() {
    const NAME: &str =
        "a_destructor_that_panics_during_cancellation_aborts_with_rusts_cleanup_message";
    if std::env::var(CHILD_ROLE).as_deref() == Ok("cancel") {
        let _ = Runtime::new().block_on(|| {
            spawn(|| {
                let _guard = PanicsOnDrop;
                park(); // never unparked: cancelled when main returns
            });
            green::yield_now(); // it runs and parks
        });
        unreachable!("the cancellation's unwind aborts in PanicsOnDrop::drop");
    }
    let output = run_child(NAME, "cancel");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(stderr.contains("PanicsOnDrop::drop"), "stderr:\n{stderr}");
    assert!(
        stderr.contains("panic in a destructor during cleanup"),
        "stderr:\n{stderr}"
    );
}
