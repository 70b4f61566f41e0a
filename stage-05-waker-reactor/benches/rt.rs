//! The runtime beside tokio and futures' `LocalPool`, in the shapes of
//! tokio's own runtime benchmarks.
//!
//! Groups: `spawn_many`, `yield_many`, `ping_pong`, `chained_spawn`, `echo`.
//! Ids: `GROUP/ours` (current-thread), `GROUP/tokio` (current-thread),
//! `GROUP/futures` (`LocalPool`; it has no sockets, so not in `echo`),
//! `GROUP/ours_mt` and `GROUP/tokio_mt` (multi-threaded, 2 workers).
//! Every implementation runs the same shape with `futures::channel` where a
//! channel is needed, so the runtimes are compared, not their channels.
//!
//! Run: `cargo bench -p stage-05-waker-reactor`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::channel::oneshot;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

const NUM_SPAWN: usize = 10_000;
const NUM_YIELD: usize = 1_000;
const YIELD_TASKS: usize = 200;
const NUM_PINGS: usize = 1_000;
const CHAIN: usize = 1_000;
const CONNECTIONS: usize = 100;
const ROUND_TRIPS: usize = 10;
const MESSAGE: usize = 64;

fn ours() -> runtime::Runtime {
    runtime::Runtime::new().unwrap()
}
fn ours_mt() -> runtime::Runtime {
    runtime::Runtime::builder()
        .multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}
fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
fn tokio_mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A yield that any executor understands (for `LocalPool`).
async fn plain_yield() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// One shape, written once per runtime API through this macro.
macro_rules! shapes {
    ($mod:ident, $spawn:path, $yield_now:path) => {
        mod $mod {
            use super::*;

            pub async fn spawn_many() {
                let handles: Vec<_> = (0..NUM_SPAWN)
                    .map(|i| $spawn(async move { black_box(i) }))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            }

            pub async fn yield_many() {
                let handles: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        $spawn(async {
                            for _ in 0..NUM_YIELD {
                                $yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            }

            pub async fn ping_pong() {
                let (done_tx, done_rx) = oneshot::channel();
                let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
                let remaining = Arc::new(AtomicUsize::new(NUM_PINGS));
                for _ in 0..NUM_PINGS {
                    let done_tx = done_tx.clone();
                    let remaining = remaining.clone();
                    $spawn(async move {
                        let (tx1, rx1) = oneshot::channel::<()>();
                        let (tx2, rx2) = oneshot::channel::<()>();
                        $spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        });
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if remaining.fetch_sub(1, SeqCst) == 1 {
                            let _ = done_tx.lock().unwrap().take().unwrap().send(());
                        }
                    });
                }
                done_rx.await.unwrap();
            }

            fn chain(done: oneshot::Sender<()>, n: usize) {
                if n == 0 {
                    let _ = done.send(());
                } else {
                    $spawn(async move { chain(done, n - 1) });
                }
            }

            pub async fn chained_spawn() {
                let (done_tx, done_rx) = oneshot::channel();
                $spawn(async move { chain(done_tx, CHAIN) });
                done_rx.await.unwrap();
            }
        }
    };
}

shapes!(ours_shapes, runtime::spawn, runtime::yield_now);
shapes!(tokio_shapes, tokio::spawn, tokio::task::yield_now);

mod futures_shapes {
    use super::*;
    use futures::executor::LocalSpawner;

    pub async fn spawn_many(s: LocalSpawner) {
        let handles: Vec<_> = (0..NUM_SPAWN)
            .map(|i| {
                s.spawn_local_with_handle(async move { black_box(i) })
                    .unwrap()
            })
            .collect();
        for h in handles {
            h.await;
        }
    }

    pub async fn yield_many(s: LocalSpawner) {
        let handles: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                s.spawn_local_with_handle(async {
                    for _ in 0..NUM_YIELD {
                        plain_yield().await;
                    }
                })
                .unwrap()
            })
            .collect();
        for h in handles {
            h.await;
        }
    }

    pub async fn ping_pong(s: LocalSpawner) {
        let (done_tx, done_rx) = oneshot::channel();
        let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
        let remaining = Arc::new(AtomicUsize::new(NUM_PINGS));
        for _ in 0..NUM_PINGS {
            let done_tx = done_tx.clone();
            let remaining = remaining.clone();
            let inner = s.clone();
            s.spawn_local(async move {
                let (tx1, rx1) = oneshot::channel::<()>();
                let (tx2, rx2) = oneshot::channel::<()>();
                inner
                    .spawn_local(async move {
                        rx1.await.unwrap();
                        tx2.send(()).unwrap();
                    })
                    .unwrap();
                tx1.send(()).unwrap();
                rx2.await.unwrap();
                if remaining.fetch_sub(1, SeqCst) == 1 {
                    let _ = done_tx.lock().unwrap().take().unwrap().send(());
                }
            })
            .unwrap();
        }
        done_rx.await.unwrap();
    }

    fn chain(s: LocalSpawner, done: oneshot::Sender<()>, n: usize) {
        if n == 0 {
            let _ = done.send(());
        } else {
            let inner = s.clone();
            s.spawn_local(async move { chain(inner, done, n - 1) })
                .unwrap();
        }
    }

    pub async fn chained_spawn(s: LocalSpawner) {
        let (done_tx, done_rx) = oneshot::channel();
        chain(s, done_tx, CHAIN);
        done_rx.await.unwrap();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

macro_rules! group {
    ($c:expr, $name:literal, $shape:ident) => {{
        let mut group = $c.benchmark_group($name);
        let rt = ours();
        group.bench_function("ours", |b| b.iter(|| rt.block_on(ours_shapes::$shape())));
        drop(rt);
        let rt = tokio_ct();
        group.bench_function("tokio", |b| b.iter(|| rt.block_on(tokio_shapes::$shape())));
        drop(rt);
        let mut pool = LocalPool::new();
        let spawner = pool.spawner();
        group.bench_function("futures", |b| {
            b.iter(|| pool.run_until(futures_shapes::$shape(spawner.clone())))
        });
        drop(pool);
        let rt = ours_mt();
        group.bench_function("ours_mt", |b| b.iter(|| rt.block_on(ours_shapes::$shape())));
        drop(rt);
        let rt = tokio_mt();
        group.bench_function("tokio_mt", |b| {
            b.iter(|| rt.block_on(tokio_shapes::$shape()))
        });
        drop(rt);
        group.finish();
    }};
}

fn spawn_many(c: &mut Criterion) {
    group!(c, "spawn_many", spawn_many);
}
fn yield_many(c: &mut Criterion) {
    group!(c, "yield_many", yield_many);
}
fn ping_pong(c: &mut Criterion) {
    group!(c, "ping_pong", ping_pong);
}
fn chained_spawn(c: &mut Criterion) {
    group!(c, "chained_spawn", chained_spawn);
}

// ---- echo: ROUND_TRIPS round trips of MESSAGE bytes on each of CONNECTIONS
// loopback connections, all concurrently. The connections and the server
// tasks are set up once per runtime; each iteration reuses them.

mod echo_ours {
    use super::*;
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    use runtime::net::{TcpListener, TcpStream};

    pub fn setup(rt: &runtime::Runtime) -> Vec<TcpStream> {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.local_addr().unwrap();
            runtime::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    runtime::spawn(async move {
                        let mut buf = [0u8; MESSAGE];
                        while s.read_exact(&mut buf).await.is_ok() {
                            if s.write_all(&buf).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            let mut streams = Vec::new();
            for _ in 0..CONNECTIONS {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                streams.push(s);
            }
            streams
        })
    }

    pub async fn round(streams: Vec<TcpStream>) -> Vec<TcpStream> {
        let handles: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                runtime::spawn(async move {
                    let mut buf = [7u8; MESSAGE];
                    for _ in 0..ROUND_TRIPS {
                        s.write_all(&buf).await.unwrap();
                        s.read_exact(&mut buf).await.unwrap();
                    }
                    s
                })
            })
            .collect();
        let mut back = Vec::with_capacity(CONNECTIONS);
        for h in handles {
            back.push(h.await.unwrap());
        }
        back
    }
}

mod echo_tokio {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn setup(rt: &tokio::runtime::Runtime) -> Vec<TcpStream> {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; MESSAGE];
                        while s.read_exact(&mut buf).await.is_ok() {
                            if s.write_all(&buf).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            let mut streams = Vec::new();
            for _ in 0..CONNECTIONS {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                streams.push(s);
            }
            streams
        })
    }

    pub async fn round(streams: Vec<TcpStream>) -> Vec<TcpStream> {
        let handles: Vec<_> = streams
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    let mut buf = [7u8; MESSAGE];
                    for _ in 0..ROUND_TRIPS {
                        s.write_all(&buf).await.unwrap();
                        s.read_exact(&mut buf).await.unwrap();
                    }
                    s
                })
            })
            .collect();
        let mut back = Vec::with_capacity(CONNECTIONS);
        for h in handles {
            back.push(h.await.unwrap());
        }
        back
    }
}

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("echo");
    for (id, rt) in [("ours", ours()), ("ours_mt", ours_mt())] {
        let mut streams = Some(echo_ours::setup(&rt));
        group.bench_function(id, |b| {
            b.iter(|| {
                let s = streams.take().unwrap();
                streams = Some(rt.block_on(echo_ours::round(s)));
            })
        });
        drop(streams);
        drop(rt);
    }
    for (id, rt) in [("tokio", tokio_ct()), ("tokio_mt", tokio_mt())] {
        let mut streams = Some(echo_tokio::setup(&rt));
        group.bench_function(id, |b| {
            b.iter(|| {
                let s = streams.take().unwrap();
                streams = Some(rt.block_on(echo_tokio::round(s)));
            })
        });
        drop(streams);
        drop(rt);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = spawn_many, yield_many, ping_pong, chained_spawn, echo
}
criterion_main!(benches);
