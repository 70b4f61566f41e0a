//! A multi-stage pipeline of green threads connected by channels:
//!
//! ```text
//!   source ──> square ──> keep odd ──> sink (main)
//!     │ sleeps 1 ms between batches: the timer queue at work
//! ```
//!
//! ```text
//! cargo run -p stage-02-stackful --example pipeline
//! ```
//!
//! Every stage is plain blocking code (`for v in &rx { tx.send(..) }`), yet
//! all of them share one OS thread: a `recv` on an empty channel parks the
//! green thread and the scheduler runs another.

use std::time::{Duration, Instant};

use green::{Runtime, channel, current, sleep, spawn};

fn main() -> Result<(), green::Error> {
    let started = Instant::now();
    let mut rt = Runtime::new();
    let (sum, count) = rt.block_on(|| {
        // ANCHOR: stages
        let (numbers_tx, numbers_rx) = channel::<u64>();
        let (squares_tx, squares_rx) = channel::<u64>();
        let (odd_tx, odd_rx) = channel::<u64>();

        let source = spawn(move || {
            for batch in 0..5u64 {
                for n in batch * 20..(batch + 1) * 20 {
                    numbers_tx.send(n).unwrap();
                }
                println!("[{}] source: batch {batch} sent, sleeping 1 ms", current());
                sleep(Duration::from_millis(1));
            }
            // `numbers_tx` is dropped here: the next stage's loop ends.
        });
        spawn(move || {
            for n in &numbers_rx {
                squares_tx.send(n * n).unwrap();
            }
            println!("[{}] square: input closed", current());
        });
        spawn(move || {
            for n in squares_rx.iter().filter(|n| n % 2 == 1) {
                odd_tx.send(n).unwrap();
            }
            println!("[{}] keep odd: input closed", current());
        });
        // ANCHOR_END: stages

        let (mut sum, mut count) = (0u64, 0usize);
        for n in &odd_rx {
            sum += n;
            count += 1;
        }
        source.join().unwrap();
        (sum, count)
    })?;
    println!(
        "sink: {count} odd squares below 100², summing to {sum}, in {:?}",
        started.elapsed()
    );
    assert_eq!(sum, (0..100u64).filter(|n| n % 2 == 1).map(|n| n * n).sum());
    Ok(())
}
