//! What `spawn` asks of a future, on our runtime and on tokio: the same two
//! bounds, `Send + 'static`, for the future and for its output.
//!
//! `cargo run -p stage-05-waker-reactor --example tokio_send_static`

use std::rc::Rc;
use std::sync::Arc;

// ANCHOR: ours
fn ours() -> std::io::Result<()> {
    let rt = runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let words = vec!["ready", "set", "go"];
    // block_on asks for neither bound: the future may borrow `words`.
    let letters = rt.block_on(async { words.iter().map(|w| w.len()).sum::<usize>() });
    println!("ours: block_on borrowed a local: {letters} letters");

    // spawn asks for both: the task may outlive this frame and run on
    // another worker, so it owns what it uses (here an Arc clone).
    let shared = Arc::new(words);
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let shared = Arc::clone(&shared);
            rt.spawn(async move { shared[i].to_uppercase() })
        })
        .collect();
    let upper = rt.block_on(async {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("the task does not panic"));
        }
        out
    });
    println!("ours: three tasks own an Arc each: {upper:?}");

    // An Rc is fine inside a task as long as it is gone before an .await:
    // only what lives across an .await is stored in the future.
    let sum = rt.block_on(rt.spawn(async {
        let local = {
            let rc = Rc::new(40);
            *rc + 2
        };
        runtime::yield_now().await;
        local
    }));
    println!("ours: an Rc dropped before the .await: {}", sum.unwrap());
    Ok(())
}
// ANCHOR_END: ours

// ANCHOR: tokio
fn tokio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let shared = Arc::new(vec!["ready", "set", "go"]);
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let shared = Arc::clone(&shared);
            rt.spawn(async move { shared[i].to_uppercase() })
        })
        .collect();
    let upper = rt.block_on(async {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("the task does not panic"));
        }
        out
    });
    println!("tokio: three tasks own an Arc each: {upper:?}");

    // A LocalSet runs !Send tasks on the thread that drives it, so an Rc
    // may live across an .await there; 'static is still required.
    let local = tokio::task::LocalSet::new();
    let count = local.block_on(&rt, async {
        let rc = Rc::new(41);
        let task = tokio::task::spawn_local({
            let rc = Rc::clone(&rc);
            async move {
                tokio::task::yield_now().await;
                *rc + 1
            }
        });
        task.await.unwrap()
    });
    println!("tokio: spawn_local kept an Rc across an .await: {count}");
    Ok(())
}
// ANCHOR_END: tokio

fn main() -> std::io::Result<()> {
    ours()?;
    tokio()
}
