//! Poll the hand-written state machine and the `async fn` side by side, one
//! poll at a time, and print the state the hand-written one is in.
//!
//! `cargo run -p stage-04-futures --example desugar`

use std::pin::{Pin, pin};

use stackless::coroutine::{LookupThenFetch, Waits, lookup_then_fetch};
use stackless::testing::{CountingWaker, poll_once};

fn main() {
    let (wakes, waker) = CountingWaker::new();
    let waits = Waits {
        lookup: 1,
        fetch: 2,
    };
    let mut by_hand = LookupThenFetch::new(7, waits);
    let mut by_compiler = pin!(lookup_then_fetch(7, waits));
    println!("before any poll: {by_hand:?}");
    for poll in 1.. {
        let hand = poll_once(Pin::new(&mut by_hand), &waker);
        let compiler = poll_once(by_compiler.as_mut(), &waker);
        println!("poll {poll}: hand-written {hand:?}, async fn {compiler:?}");
        println!("        now in {by_hand:?}");
        if hand.is_ready() {
            break;
        }
    }
    println!("the leaf futures woke the task {} times", wakes.wakes());
}
