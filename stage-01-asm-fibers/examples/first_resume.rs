//! One fiber, resumed once: the smallest program to step through in a
//! debugger. `scripts/gdb-walkthrough.sh` stops it at its first
//! `switch_in` and steps, instruction by instruction, into the fiber.
//!
//! Run: `cargo run -p stage-01-asm-fibers --example first_resume`

use fibers::{Fiber, FiberResult};

fn main() {
    let mut fiber = Fiber::new(|_suspender, first: u64| first + 1).expect("mmap a fiber stack");
    match fiber.resume(41) {
        FiberResult::Return(answer) => println!("the fiber returned {answer}"),
        FiberResult::Yield(()) => unreachable!("this fiber never suspends"),
    }
}
