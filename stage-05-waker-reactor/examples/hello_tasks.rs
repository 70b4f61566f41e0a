//! A first tour: spawn tasks, await their `JoinHandle`s, see a panic and an
//! abort come back as `JoinError`s, sleep, and run blocking work aside.
//!
//! `cargo run -p stage-05-waker-reactor --example hello_tasks`

use std::time::{Duration, Instant};

use runtime::time::{sleep, timeout};
use runtime::{Runtime, spawn, spawn_blocking};

fn main() -> std::io::Result<()> {
    // The default panic hook would print a backtrace for the task that
    // panics on purpose below; one line is enough here.
    std::panic::set_hook(Box::new(|info| eprintln!("(panic hook) {info}")));
    let rt = Runtime::new()?; // current-thread flavour
    rt.block_on(async {
        // Three tasks sleeping concurrently: about 30 ms in all, not 60.
        let start = Instant::now();
        let sleepers: Vec<_> = [10u64, 20, 30]
            .into_iter()
            .map(|ms| {
                spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    ms
                })
            })
            .collect();
        for task in sleepers {
            println!("slept {} ms", task.await.unwrap());
        }
        println!("three sleeps took {:.0?} together", start.elapsed());

        // A panic stays inside its task and comes back as a JoinError.
        let error = spawn(async { panic!("this task fails") })
            .await
            .unwrap_err();
        println!("panicked task -> is_panic: {}, {error}", error.is_panic());

        // abort() drops the task's future; the handle reports cancellation.
        let forever = spawn(sleep(Duration::from_secs(3600)));
        forever.abort();
        println!("aborted task -> {}", forever.await.unwrap_err());

        // Blocking work runs on the blocking pool, not on this thread.
        let sum = spawn_blocking(|| (1..=1_000_000u64).sum::<u64>())
            .await
            .unwrap();
        println!("sum computed on the blocking pool: {sum}");

        // timeout() gives up on a future that takes too long.
        let slow = timeout(Duration::from_millis(5), sleep(Duration::from_secs(1))).await;
        println!("timeout -> {slow:?}");
    });
    Ok(())
}
