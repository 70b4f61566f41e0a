//! Watch the three phases: each future is wrapped so that it reports when
//! it is polled (poll phase) and when its waker is called (wake phase); in
//! between, the runtime's thread was blocked in the reactor (wait phase).
//!
//! `cargo run -p stage-05-waker-reactor --example phases`

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::{Runtime, spawn};

/// Wraps a future; prints each poll and each wake of its waker.
struct Traced<F> {
    name: &'static str,
    start: Instant,
    inner: Pin<Box<F>>,
}

struct TracedWaker {
    name: &'static str,
    start: Instant,
    inner: Waker,
}

impl Wake for TracedWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        println!(
            "{:>7.2} ms  wake phase: {} woken (its task goes back on the run queue)",
            ms(self.start),
            self.name
        );
        self.inner.wake_by_ref();
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(TracedWaker {
            name: self.name,
            start: self.start,
            inner: cx.waker().clone(),
        }));
        let result = self.inner.as_mut().poll(&mut Context::from_waker(&waker));
        let verdict = if result.is_ready() {
            "Ready"
        } else {
            "Pending (waker left behind; wait phase next)"
        };
        println!(
            "{:>7.2} ms  poll phase: {} -> {verdict}",
            ms(self.start),
            self.name
        );
        result
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn traced<F: Future>(name: &'static str, start: Instant, f: F) -> Traced<F> {
    Traced {
        name,
        start,
        inner: Box::pin(f),
    }
}

fn main() -> std::io::Result<()> {
    let rt = Runtime::new()?;
    let start = Instant::now();
    rt.block_on(async move {
        // A timer: woken by the reactor's timer queue.
        let timer = spawn(traced(
            "sleep(20 ms)",
            start,
            runtime::time::sleep(Duration::from_millis(20)),
        ));

        // A socket read: woken by epoll readiness, 10 ms after it starts.
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        let reader = spawn(traced("read from a socket", start, async move {
            let (mut stream, _) = listener.accept().await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            std::io::Result::Ok(byte[0])
        }));
        let writer = spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            runtime::time::sleep(Duration::from_millis(10)).await;
            stream.write_all(b"!").await
        });

        // A channel: woken by another task's send, from another thread.
        let (tx, rx) = oneshot::channel::<&str>();
        let receiver = spawn(traced("oneshot receive", start, rx));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let _ = tx.send("hello from a plain thread");
        });

        timer.await.unwrap();
        writer.await.unwrap()?;
        println!("read {:?}", reader.await.unwrap()? as char);
        println!("received {:?}", receiver.await.unwrap().unwrap());
        std::io::Result::Ok(())
    })
}
