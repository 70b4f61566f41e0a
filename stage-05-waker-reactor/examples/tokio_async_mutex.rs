//! An async mutex: `lock()` is a future, so a task that waits for the lock
//! gives its thread back. tokio's is fair (first come, first served).
//!
//! `cargo run -p stage-05-waker-reactor --example tokio_async_mutex`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

// ANCHOR: ours
fn ours() -> std::io::Result<()> {
    let rt = runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    // futures' async mutex: its guard may be held across .await and is
    // Send, so tasks that hold it can be spawned on a multi-thread runtime.
    let log = Arc::new(futures::lock::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let log = Arc::clone(&log);
            rt.spawn(async move {
                let mut guard = log.lock().await;
                guard.push(format!("{i} in"));
                // Nobody else gets in while we sleep with the guard.
                runtime::time::sleep(Duration::from_millis(2)).await;
                guard.push(format!("{i} out"));
            })
        })
        .collect();
    rt.block_on(async {
        for task in tasks {
            task.await.expect("the task does not panic");
        }
    });
    let log = rt.block_on(async { log.lock().await.clone() });
    let paired = log
        .chunks(2)
        .all(|pair| pair[1] == pair[0].replace("in", "out"));
    println!(
        "ours: {} entries, every \"in\" followed by its own \"out\": {paired}",
        log.len()
    );
    Ok(())
}
// ANCHOR_END: ours

// ANCHOR: tokio
fn tokio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let order = rt.block_on(async {
        let lock = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let asked = Arc::new(AtomicUsize::new(0));
        let held = lock.lock().await; // everyone below must queue
        let mut tasks = Vec::new();
        for i in [3, 1, 0, 2] {
            let (lock, mine) = (Arc::clone(&lock), Arc::clone(&asked));
            tasks.push(tokio::spawn(async move {
                mine.fetch_add(1, Ordering::Relaxed);
                // Same poll, same thread: this task joins the queue now.
                lock.lock().await.push(i);
            }));
            // Let that task run up to its lock() before spawning the next.
            let before = tasks.len();
            while asked.load(Ordering::Relaxed) < before {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        lock.lock().await.clone()
    });
    println!("tokio: asked in the order [3, 1, 0, 2], got the lock in the order {order:?}");
    Ok(())
}
// ANCHOR_END: tokio

fn main() -> std::io::Result<()> {
    ours()?;
    tokio()
}
