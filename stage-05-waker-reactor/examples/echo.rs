//! An echo server and N clients on one runtime, over loopback.
//!
//! `cargo run -p stage-05-waker-reactor --example echo -- [CLIENTS] [multi]`
//! (default 100 clients on the current-thread flavour; add `multi` for the
//! multi-threaded flavour with 2 workers)

use std::io;
use std::time::Instant;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::{Runtime, spawn};

async fn serve(listener: TcpListener) {
    while let Ok((mut stream, _peer)) = listener.accept().await {
        // One task per connection: it sleeps in the reactor between reads.
        spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return, // peer closed
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args
        .next()
        .map_or(Ok(100), |a| a.parse())
        .map_err(io::Error::other)?;
    let multi = args.next().as_deref() == Some("multi");
    let rt = if multi {
        Runtime::builder()
            .multi_thread()
            .worker_threads(2)
            .build()?
    } else {
        Runtime::new()?
    };
    let started = Instant::now();
    let bytes = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
        let addr = listener.local_addr()?;
        spawn(serve(listener));
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                spawn(async move {
                    let mut stream = TcpStream::connect(addr).await?;
                    let message = format!("hello #{i}\n");
                    let mut back = vec![0u8; message.len()];
                    for _ in 0..10 {
                        stream.write_all(message.as_bytes()).await?;
                        stream.read_exact(&mut back).await?;
                        assert_eq!(back, message.as_bytes());
                    }
                    io::Result::Ok(10 * message.len())
                })
            })
            .collect();
        let mut bytes = 0;
        for task in tasks {
            bytes += task.await??;
        }
        io::Result::Ok(bytes)
    })?;
    println!(
        "{clients} clients x 10 round trips, {bytes} bytes echoed in {:.0?} ({} flavour)",
        started.elapsed(),
        if multi {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    Ok(())
}
