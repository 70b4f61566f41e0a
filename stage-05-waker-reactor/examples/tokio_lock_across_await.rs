//! Holding a lock across `.await`: a `std::sync::Mutex` guard blocks the
//! thread of anyone else who wants the lock, an async mutex's guard makes
//! them wait as tasks instead.
//!
//! `cargo run -p stage-05-waker-reactor --example tokio_lock_across_await`

use std::sync::Mutex;
use std::time::Duration;

// ANCHOR: ours
fn ours() -> std::io::Result<()> {
    let rt = runtime::Runtime::new()?; // one thread runs every task
    let counter = Mutex::new(0);
    rt.block_on(async {
        // Clippy's await_holding_lock lint flags the mistake shown here.
        #[expect(clippy::await_holding_lock, reason = "the mistake on show")]
        let holder = async {
            let mut guard = counter.lock().unwrap();
            // The guard lives across this .await (any .await that returns
            // Pending): the lock stays taken while the thread runs others.
            runtime::yield_now().await;
            *guard += 1;
        };
        let other = async {
            // lock() here would block the only thread, so the holder could
            // never be polled again: a deadlock. try_lock shows the state.
            match counter.try_lock() {
                Ok(_) => println!("ours: the lock was free"),
                Err(e) => println!("ours: std Mutex held across .await -> try_lock: {e}"),
            }
        };
        futures::join!(holder, other);
    });

    // The usual cure: keep the critical section free of .await.
    rt.block_on(async {
        let add = |n| {
            let counter = &counter;
            async move {
                runtime::time::sleep(Duration::from_millis(n)).await;
                *counter.lock().unwrap() += 1; // locked and released here
            }
        };
        futures::join!(add(10), add(5));
    });
    println!(
        "ours: guard dropped before each .await -> count {}",
        counter.lock().unwrap()
    );
    Ok(())
}
// ANCHOR_END: ours

// ANCHOR: tokio
fn tokio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let counter = tokio::sync::Mutex::new(0);
    rt.block_on(async {
        let holder = async {
            let mut guard = counter.lock().await;
            tokio::task::yield_now().await;
            *guard += 1;
        };
        let other = async {
            // lock().await suspends this future, not the thread: the
            // holder runs on, its guard drops, and we get the lock.
            let mut guard = counter.lock().await;
            *guard += 1;
        };
        tokio::join!(holder, other);
    });
    println!(
        "tokio: async Mutex held across .await -> count {}",
        counter.into_inner()
    );
    Ok(())
}
// ANCHOR_END: tokio

fn main() -> std::io::Result<()> {
    ours()?;
    tokio()
}
