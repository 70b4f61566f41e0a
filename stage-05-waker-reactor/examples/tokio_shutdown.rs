//! Graceful shutdown: tell every task to stop, let each finish the job in
//! hand, wait for them with a deadline, and drop whatever is left.
//!
//! `cargo run -p stage-05-waker-reactor --example tokio_shutdown`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};

const JOBS: usize = 20;

/// Prints when the future that owns it is dropped.
struct SaysWhenDropped(&'static str);

impl Drop for SaysWhenDropped {
    fn drop(&mut self) {
        println!("{}: the stubborn task's future is dropped", self.0);
    }
}

// ANCHOR: ours
fn ours() -> std::io::Result<()> {
    let rt = runtime::Runtime::new()?;
    let done = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = stopped.shared(); // one signal, many listeners
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (jobs, mut rx) = mpsc::unbounded::<usize>();
        let (mut stopped, done) = (stopped.clone(), Arc::clone(&done));
        queues.push(jobs);
        workers.push(rt.spawn(async move {
            loop {
                // Wait for a job or the signal; receiving is cancel safe.
                let job = futures::select_biased! {
                    _ = stopped => break,
                    job = rx.next() => job,
                };
                let Some(_job) = job else { break };
                // The job itself is never a select! branch: it runs to the end.
                runtime::time::sleep(Duration::from_millis(2)).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
            let mut left = 0;
            while rx.try_recv().is_ok() {
                left += 1;
            }
            left
        }));
    }
    for job in 0..JOBS {
        queues[job % 3].unbounded_send(job).unwrap();
    }
    let stubborn = rt.spawn(async {
        let _guard = SaysWhenDropped("ours");
        runtime::time::sleep(Duration::from_secs(3600)).await; // ignores the signal
    });
    rt.block_on(async {
        runtime::time::sleep(Duration::from_millis(10)).await;
        stop.send(()).unwrap();
        let mut left = 0;
        for worker in workers {
            left += worker.await.expect("a worker does not panic");
        }
        let done = done.load(Ordering::Relaxed);
        println!(
            "ours: 3 workers stopped; jobs done + jobs left queued = {}",
            done + left
        );
        let waited = runtime::time::timeout(Duration::from_millis(50), stubborn).await;
        println!(
            "ours: the stubborn task after 50 ms: {}",
            waited.map_or("still running", |_| "done")
        );
    });
    drop(rt); // drops every task's future that is still alive
    Ok(())
}
// ANCHOR_END: ours

// ANCHOR: tokio
fn tokio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let done = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let (mut stopped, done) = (stopped.clone(), Arc::clone(&done));
        queues.push(jobs);
        workers.push(rt.spawn(async move {
            loop {
                // watch::Receiver::changed and mpsc recv are both cancel safe.
                let job = tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    job = rx.recv() => job,
                };
                let Some(_job) = job else { break };
                tokio::time::sleep(Duration::from_millis(2)).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
            let mut left = 0;
            while rx.try_recv().is_ok() {
                left += 1;
            }
            left
        }));
    }
    for job in 0..JOBS {
        queues[job % 3].send(job).unwrap();
    }
    rt.spawn(async {
        let _guard = SaysWhenDropped("tokio");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.send(true).unwrap();
        let mut left = 0;
        for worker in workers {
            left += worker.await.expect("a worker does not panic");
        }
        let done = done.load(Ordering::Relaxed);
        println!(
            "tokio: 3 workers stopped; jobs done + jobs left queued = {}",
            done + left
        );
    });
    // Drop the tasks still alive; wait at most 50 ms for blocking work.
    rt.shutdown_timeout(Duration::from_millis(50));
    Ok(())
}
// ANCHOR_END: tokio

fn main() -> std::io::Result<()> {
    ours()?;
    tokio()
}
