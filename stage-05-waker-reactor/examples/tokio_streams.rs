//! Streams: the asynchronous iterator. `futures::Stream` is the trait both
//! runtimes use; our `Interval` implements it, tokio's needs an adapter.
//!
//! `cargo run -p stage-05-waker-reactor --example tokio_streams`

use std::time::Duration;

use futures::stream::{self, StreamExt};

// ANCHOR: ours
fn ours() -> std::io::Result<()> {
    let rt = runtime::Runtime::new()?;
    rt.block_on(async {
        // Our Interval is a Stream: each item is one tick.
        let ticks: Vec<usize> = runtime::time::interval(Duration::from_millis(5))
            .enumerate()
            .map(|(i, _instant)| i)
            .take(3)
            .collect()
            .await;
        println!("ours: interval as a stream -> ticks {ticks:?}");

        // A stream of futures run four at a time, outputs in input order.
        let squares: Vec<u64> = stream::iter(1..=4u64)
            .map(|n| async move {
                runtime::time::sleep(Duration::from_millis(10 * (5 - n))).await;
                n * n
            })
            .buffered(4)
            .collect()
            .await;
        println!("ours: buffered(4) keeps input order -> {squares:?}");

        // A stream from a state machine written as a closure.
        let mut fib = stream::unfold((0u64, 1u64), |(a, b)| async move {
            runtime::yield_now().await;
            Some((a, (b, a + b)))
        })
        .boxed();
        let mut first = Vec::new();
        while let Some(n) = fib.next().await {
            first.push(n);
            if first.len() == 8 {
                break;
            }
        }
        println!("ours: unfold -> {first:?}");
    });
    Ok(())
}
// ANCHOR_END: ours

// ANCHOR: tokio
fn tokio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async {
        // tokio's Interval has poll_tick but is not a Stream; poll_fn makes
        // one (the tokio-stream crate's IntervalStream does the same).
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        let ticks: Vec<usize> = stream::poll_fn(|cx| interval.poll_tick(cx).map(Some))
            .enumerate()
            .map(|(i, _instant)| i)
            .take(3)
            .collect()
            .await;
        println!("tokio: interval through poll_fn -> ticks {ticks:?}");

        // A channel's receiving end, as a stream.
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for word in ["one", "two", "three"] {
                tx.send(word).await.unwrap();
            }
        });
        let words: Vec<&str> = stream::poll_fn(|cx| rx.poll_recv(cx)).collect().await;
        println!("tokio: mpsc receiver through poll_fn -> {words:?}");
    });
    Ok(())
}
// ANCHOR_END: tokio

fn main() -> std::io::Result<()> {
    ours()?;
    tokio()
}
