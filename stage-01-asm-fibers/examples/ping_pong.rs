//! Two fibers taking turns, driven by `main`: each prints a line and
//! suspends, and `main` resumes them alternately until both are done.
//!
//! Run: `cargo run -p stage-01-asm-fibers --example ping_pong`

use fibers::{Fiber, FiberResult};

fn player(name: &'static str, rounds: u32) -> Fiber<(), u32, &'static str> {
    Fiber::new(move |suspender, ()| {
        for round in 1..=rounds {
            println!("{name:>5}: round {round} (on the fiber's own stack)");
            // Give control back to main; we continue right here next time.
            suspender.suspend(round);
        }
        name
    })
    .expect("mmap a fiber stack")
}

fn main() {
    let mut players = [player("ping", 3), player("pong", 3)];
    let mut finished = 0;
    while finished < players.len() {
        for fiber in players.iter_mut().filter(|fiber| !fiber.is_finished()) {
            match fiber.resume(()) {
                FiberResult::Yield(round) => {
                    println!(" main: resumed a player, it finished round {round}")
                }
                FiberResult::Return(name) => {
                    println!(" main: {name} is done");
                    finished += 1;
                }
            }
        }
    }
}
