//! Cancellation safety in `select!`: the branch that loses is dropped, and
//! whatever it held in its own locals is lost with it.
//!
//! `cargo run -p stage-05-waker-reactor --example tokio_select_cancel`

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};

// ANCHOR: read_pair
/// Reads two messages and returns them together. Not cancellation safe:
/// after the first `.await` the first message lives only in this future.
async fn read_pair(rx: &mut mpsc::UnboundedReceiver<&'static str>) -> (&'static str, &'static str) {
    let first = rx.next().await.unwrap_or("closed");
    let second = rx.next().await.unwrap_or("closed");
    (first, second)
}
// ANCHOR_END: read_pair

// ANCHOR: ours
fn ours() -> std::io::Result<()> {
    let rt = runtime::Runtime::new()?;
    rt.block_on(async {
        let (data, mut rx) = mpsc::unbounded();
        let (ticks, mut tick_rx) = mpsc::unbounded();
        data.unbounded_send("a").unwrap();
        ticks.unbounded_send(()).unwrap();
        let mut rounds = 0;
        // A new read_pair future each round: the one that loses is dropped.
        while rounds < 2 {
            rounds += 1;
            futures::select_biased! {
                pair = read_pair(&mut rx).fuse() => println!("ours, new future each round: pair {pair:?}"),
                _ = tick_rx.next() => {
                    println!("ours, new future each round: tick");
                    data.unbounded_send("b").unwrap();
                    data.unbounded_send("c").unwrap();
                }
            }
        }

        // The cure: one future for the whole loop, polled by reference.
        data.unbounded_send("a").unwrap();
        ticks.unbounded_send(()).unwrap();
        let pair = read_pair(&mut rx).fuse();
        futures::pin_mut!(pair);
        loop {
            futures::select_biased! {
                pair = pair => { println!("ours, one future kept: pair {pair:?}"); break }
                _ = tick_rx.next() => {
                    println!("ours, one future kept: tick");
                    data.unbounded_send("b").unwrap();
                }
            }
        }
    });
    Ok(())
}
// ANCHOR_END: ours

// ANCHOR: tokio
fn tokio() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        let (data, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (ticks, mut tick_rx) = tokio::sync::mpsc::unbounded_channel();
        data.send("a").unwrap();
        ticks.send(()).unwrap();
        let mut got = Vec::new();
        // recv() is documented cancel safe: a dropped recv() took nothing,
        // so recreating it each round loses no message.
        while got.len() < 2 {
            tokio::select! {
                biased;
                Some(message) = rx.recv() => got.push(message),
                Some(()) = tick_rx.recv() => {
                    println!("tokio, recv() each round: tick");
                    data.send("b").unwrap();
                }
            }
        }
        println!("tokio, recv() each round: got {got:?}");
    });
    Ok(())
}
// ANCHOR_END: tokio

fn main() -> std::io::Result<()> {
    ours()?;
    tokio()
}
