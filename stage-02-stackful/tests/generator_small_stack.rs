//! A generator asked for a tiny stack still gets one a panic fits on, as
//! a green thread does (`Builder::MIN_STACK_SIZE`): its panic reaches the
//! caller of `resume` instead of overflowing the stack and aborting. The
//! check runs in a child process, so that an abort fails this test instead
//! of killing the harness.

use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};

use green::Generator;

const CHILD_ROLE: &str = "STAGE02_SMALL_STACK_CHILD";

#[test]
fn a_generator_asked_for_a_tiny_stack_can_still_panic_to_its_caller() {
    if std::env::var_os(CHILD_ROLE).is_some() {
        for bytes in [0, 1, 4096] {
            let mut generator = Generator::<u32>::with_stack_size(bytes, move |yielder| {
                yielder.yield_(1);
                panic!("a panic on a stack asked to be {bytes} bytes");
            })
            .expect("a stack");
            assert_eq!(generator.next(), Some(1));
            let panicked = panic::catch_unwind(AssertUnwindSafe(|| generator.next()));
            assert!(panicked.is_err(), "the panic reached the caller");
        }
        println!("every panic was caught");
        return;
    }
    let output = test_support::run_this_test_alone(
        "a_generator_asked_for_a_tiny_stack_can_still_panic_to_its_caller",
        CHILD_ROLE,
        "child",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("every panic was caught"),
        "the child ended with {:?} (signal {:?}) instead of catching each panic; stderr:\n{stderr}",
        output.status,
        output.status.signal()
    );
}
