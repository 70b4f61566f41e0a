//! Asynchronous TCP: many concurrent connections, errors, and a blocked
//! task that costs nothing while it waits.

mod common;

use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use common::{both_flavours, scaled};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use runtime::net::{TcpListener, TcpStream};
use runtime::{Runtime, spawn};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An echo server task: one task per accepted connection.
fn start_echo_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).unwrap();
    let addr = listener.local_addr().unwrap();
    spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                break;
            };
            spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_thousand_concurrent_echo_connections_all_get_their_bytes_back() {
    let connections = scaled(1000);
    for (name, rt) in both_flavours() {
        let echoed = rt.block_on(async move {
            let addr = start_echo_server();
            let clients: Vec<_> = (0..connections)
                .map(|i| {
                    spawn(async move {
                        let mut stream = TcpStream::connect(addr).await?;
                        let message = format!("hello from client {i}, ").repeat(8);
                        let mut back = vec![0u8; message.len()];
                        for _ in 0..3 {
                            stream.write_all(message.as_bytes()).await?;
                            stream.read_exact(&mut back).await?;
                            assert_eq!(back, message.as_bytes());
                        }
                        std::io::Result::Ok(())
                    })
                })
                .collect();
            let mut ok = 0;
            for client in clients {
                client.await.unwrap().unwrap();
                ok += 1;
            }
            ok
        });
        assert_eq!(echoed, connections, "{name}");
    }
}

#[test]
fn connect_to_a_closed_port_fails_with_connection_refused() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            // Bind then drop a listener: its port is now (very likely) closed.
            let addr = TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
            let error = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{name}"
            );
        });
    }
}

#[test]
fn read_returns_zero_after_the_peer_shuts_down_its_write_half() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback()).unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn(async move {
                let (mut stream, peer) = listener.accept().await.unwrap();
                assert_eq!(stream.peer_addr().unwrap(), peer);
                let mut all = Vec::new();
                stream.read_to_end(&mut all).await.unwrap();
                all
            });
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(b"bye").await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            assert_eq!(server.await.unwrap(), b"bye", "{name}");
        });
    }
}

#[test]
fn dropping_sockets_deregisters_them_from_the_reactor() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback()).unwrap();
            let addr = listener.local_addr().unwrap();
            let (a, b) = futures::join!(TcpStream::connect(addr), listener.accept());
            let (a, (b, _)) = (a.unwrap(), b.unwrap());
            drop((a, b, listener));
        });
        assert_eq!(rt.num_registered_sockets(), 0, "{name}");
    }
}

fn thread_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer we pass.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn a_task_blocked_on_a_socket_is_not_polled_and_burns_no_cpu() {
    // The runtime runs on this thread only, so this thread's CPU time is the
    // runtime's. While the task waits for a connection that never comes,
    // the thread sleeps in epoll_wait: the task is polled once, and the CPU
    // used is a sliver of the time waited.
    let rt = Runtime::new().unwrap();
    let wait = Duration::from_millis(300);
    let (polls, cpu) = rt.block_on(async move {
        let listener = TcpListener::bind(loopback()).unwrap();
        let polls = Arc::new(AtomicU32::new(0));
        let counter = polls.clone();
        let cpu_before = thread_cpu_time();
        let blocked = spawn(async move {
            let mut accept = std::pin::pin!(listener.accept());
            std::future::poll_fn(|cx| {
                counter.fetch_add(1, SeqCst);
                accept.as_mut().poll(cx)
            })
            .await
        });
        runtime::time::sleep(wait).await;
        let polls = polls.load(SeqCst);
        let cpu = thread_cpu_time() - cpu_before;
        blocked.abort();
        assert!(blocked.await.unwrap_err().is_cancelled());
        (polls, cpu)
    });
    assert_eq!(polls, 1, "the blocked task was polled again without a wake");
    assert!(cpu < wait / 3, "used {cpu:?} of CPU in {wait:?} of waiting");
}

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

#[test]
fn a_task_reading_an_always_ready_socket_does_not_starve_the_others() {
    // 256 KiB are sent to a socket before the reader starts, so most of its
    // 4,096 small reads succeed at once: it would return Pending only when
    // it happens to outrun the sender. The runtime's budget (128 socket
    // operations per poll) makes it step aside at least that often, and the
    // ticker task runs in between.
    let rt = Runtime::new().unwrap();
    let (longest_run, total) = rt.block_on(async {
        let listener = TcpListener::bind(loopback()).unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(&vec![1u8; 256 * 1024]).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        });
        let (mut stream, _) = listener.accept().await.unwrap();

        let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let ticks = Arc::new(AtomicU32::new(0));
        let (r, t) = (reading.clone(), ticks.clone());
        let ticker = spawn(async move {
            while r.load(SeqCst) {
                t.fetch_add(1, SeqCst);
                runtime::yield_now().await;
            }
        });
        let reader = spawn(async move {
            let (mut total, mut run, mut longest_run) = (0usize, 0u32, 0u32);
            let mut last_tick = u32::MAX;
            let mut buf = [0u8; 64];
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                // Reads in a row without the ticker running in between.
                let tick = ticks.load(SeqCst);
                run = if tick == last_tick { run + 1 } else { 1 };
                last_tick = tick;
                longest_run = longest_run.max(run);
                if n == 0 {
                    break;
                }
                total += n;
            }
            reading.store(false, SeqCst);
            (longest_run, total)
        });
        let out = reader.await.unwrap();
        ticker.await.unwrap();
        runtime::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        out
    });
    assert_eq!(total, 256 * 1024);
    assert!(
        longest_run <= 128,
        "{longest_run} reads in a row without letting the other task run"
    );
}

#[test]
fn a_block_on_future_that_keeps_yielding_does_not_starve_io() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback()).unwrap();
            let addr = listener.local_addr().unwrap();
            let io = spawn(async move {
                let (connected, accepted) =
                    futures::join!(TcpStream::connect(addr), listener.accept());
                let (mut a, (mut b, _)) = (connected.unwrap(), accepted.unwrap());
                a.write_all(b"x").await.unwrap();
                let mut byte = [0u8; 1];
                b.read_exact(&mut byte).await.unwrap();
                byte[0]
            });
            // Busy-wait the async way: the main future is always woken.
            while !io.is_finished() {
                runtime::yield_now().await;
            }
            assert_eq!(io.await.unwrap(), b'x', "{name}");
        });
    }
}

/// `bind` makes its own socket (one `listen`, with the long backlog): both
/// address families work, and a port in use is an error, not a panic.
#[test]
fn bind_listens_on_ipv4_and_ipv6_and_reports_a_port_in_use() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            for addr in ["127.0.0.1:0", "[::1]:0"] {
                let listener = match TcpListener::bind(addr.parse().unwrap()) {
                    Ok(listener) => listener,
                    // A machine (or container) without IPv6.
                    Err(e) if addr.starts_with('[') => {
                        eprintln!("{name}: no IPv6 here ({e}); skipped");
                        continue;
                    }
                    Err(e) => panic!("{name}: bind {addr}: {e}"),
                };
                let local = listener.local_addr().unwrap();
                assert_ne!(local.port(), 0, "{name}: a port was picked");
                let mut client = TcpStream::connect(local).await.unwrap();
                let (mut server, _) = listener.accept().await.unwrap();
                client.write_all(b"hi").await.unwrap();
                let mut buf = [0u8; 2];
                server.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"hi", "{name}: {addr}");
                let again = TcpListener::bind(local).map(|_| ());
                assert_eq!(
                    again.map_err(|e| e.kind()),
                    Err(std::io::ErrorKind::AddrInUse),
                    "{name}: binding {local} twice"
                );
            }
        });
    }
}

/// As with `std`'s `Read` and `Write` (and `read(2)` itself), a read or a
/// write of an empty buffer is `Ok(0)` at once: there is nothing to wait
/// for, so a quiet peer must not keep it pending.
#[test]
fn reads_and_writes_of_an_empty_buffer_complete_at_once_with_zero() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let listener = TcpListener::bind(loopback()).unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let quiet = Duration::from_secs(2);
            let read = runtime::time::timeout(quiet, server.read(&mut [])).await;
            assert_eq!(
                read.map(|r| r.map_err(|e| e.kind())),
                Ok(Ok(0)),
                "{name}: empty read on a quiet socket"
            );
            let write = runtime::time::timeout(quiet, client.write(&[])).await;
            assert_eq!(write.map(|r| r.map_err(|e| e.kind())), Ok(Ok(0)), "{name}");
            // The socket still works, and sees only the real bytes.
            client.write_all(b"ok").await.unwrap();
            let mut buf = [0u8; 2];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ok", "{name}");
        });
    }
}

const CHILD_ROLE: &str = "STAGE05_NET_CHILD_ROLE";

fn run_child(test_name: &str, role: &str) -> std::process::Output {
    test_support::run_this_test_alone(test_name, CHILD_ROLE, role)
}

/// A Rust `main` ignores `SIGPIPE`, but a library cannot count on that: a
/// C program, or one that restored the default, dies of the signal when it
/// writes to a socket whose peer is gone. Every write must say `BrokenPipe`
/// instead, the vectored ones included. Checked in a child process with
/// `SIGPIPE` at its default action.
#[test]
fn writing_to_a_closed_peer_is_a_broken_pipe_error_even_when_sigpipe_is_not_ignored() {
    const NAME: &str =
        "writing_to_a_closed_peer_is_a_broken_pipe_error_even_when_sigpipe_is_not_ignored";
    if std::env::var(CHILD_ROLE).as_deref() == Ok("sigpipe") {
        // SAFETY: restoring a signal's default action; no handler involved.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        for (name, rt) in both_flavours() {
            rt.block_on(async {
                let listener = TcpListener::bind(loopback()).unwrap();
                let mut client = TcpStream::connect(listener.local_addr().unwrap())
                    .await
                    .unwrap();
                let (server, _) = listener.accept().await.unwrap();
                drop(server);
                // The first write may still be accepted (the peer answers it
                // with a reset); the next ones fail.
                let chunk = [7u8; 1024];
                let mut error = None;
                for _ in 0..100 {
                    let slices = [std::io::IoSlice::new(&chunk), std::io::IoSlice::new(&chunk)];
                    if let Err(e) = client.write_vectored(&slices).await {
                        error = Some(e.kind());
                        break;
                    }
                    runtime::time::sleep(Duration::from_millis(5)).await;
                }
                println!("{name}: vectored write error {error:?}");
                let plain = client.write(&chunk).await.map_err(|e| e.kind());
                println!("{name}: plain write {plain:?}");
            });
        }
        println!("child survived");
        return;
    }
    let output = run_child(NAME, "sigpipe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("child survived"),
        "the child died ({:?}, signal {:?}); stdout:\n{stdout}\nstderr:\n{stderr}",
        output.status,
        std::os::unix::process::ExitStatusExt::signal(&output.status)
    );
    for flavour in ["current_thread", "multi_thread"] {
        assert!(
            stdout.contains(&format!("{flavour}: vectored write error Some(BrokenPipe)"))
                || stdout.contains(&format!(
                    "{flavour}: vectored write error Some(ConnectionReset)"
                )),
            "stdout:\n{stdout}"
        );
    }
}

/// `sendmsg` takes at most 1024 buffers, so a vectored write of more sends
/// only the first 1024, however much room the socket has. That is a short
/// write that says nothing about the socket's buffer: the next write must
/// go ahead at once, not wait for a "writable" event that a socket with
/// room to spare never raises.
#[test]
fn a_vectored_write_of_more_buffers_than_sendmsg_takes_does_not_stall_the_next_write() {
    for (name, rt) in both_flavours() {
        let sent = common::within("vectored writes of 3000 one-byte buffers", move || {
            rt.block_on(async {
                let listener = TcpListener::bind(loopback()).unwrap();
                let mut client = TcpStream::connect(listener.local_addr().unwrap())
                    .await
                    .unwrap();
                // The peer stays quiet (it reads nothing until the end), so
                // no event comes from its side either.
                let (mut server, _) = listener.accept().await.unwrap();
                let bytes = vec![7u8; 3000];
                let mut sent = 0;
                while sent < bytes.len() {
                    let slices: Vec<std::io::IoSlice<'_>> =
                        bytes[sent..].chunks(1).map(std::io::IoSlice::new).collect();
                    let n = runtime::time::timeout(
                        Duration::from_secs(5),
                        client.write_vectored(&slices),
                    )
                    .await
                    .expect("a write with room in the socket waited for an event")
                    .unwrap();
                    assert!(n > 0);
                    sent += n;
                }
                let mut back = vec![0u8; bytes.len()];
                server.read_exact(&mut back).await.unwrap();
                assert_eq!(back, bytes);
                sent
            })
        });
        assert_eq!(sent, 3000, "{name}");
    }
}

/// Sends `bytes` on `stream`, as TCP urgent ("out-of-band") data if `urgent`.
fn send_raw(stream: &std::net::TcpStream, bytes: &[u8], urgent: bool) {
    use std::os::fd::AsRawFd;
    let flags = if urgent { libc::MSG_OOB } else { 0 };
    // SAFETY: `bytes` outlives the call, which only reads it; the fd is the
    // stream's own, open while `stream` is borrowed.
    let sent = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            flags,
        )
    };
    assert_eq!(
        sent,
        bytes.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// A read stops short at TCP's urgent mark although more data waits
/// behind it, so a short read does not mean the socket was drained. A peer
/// that sends one urgent byte must not leave the bytes after it unread.
#[test]
fn a_peer_that_sends_urgent_data_does_not_stall_the_reader() {
    for (name, rt) in both_flavours() {
        let read = common::within("a read across an urgent byte", move || {
            rt.block_on(async {
                let listener = TcpListener::bind(loopback()).unwrap();
                let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let (mut stream, _) = listener.accept().await.unwrap();
                send_raw(&peer, b"abc", false);
                send_raw(&peer, b"!", true);
                send_raw(&peer, b"def", false);
                // Let all of it arrive before the first read (the peer then
                // stays quiet, so no later event covers for a lost one).
                runtime::time::sleep(Duration::from_millis(50)).await;
                let mut buf = [0u8; 6];
                runtime::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
                    .await
                    .expect("the bytes after the urgent mark were never read")
                    .unwrap();
                drop(peer);
                buf
            })
        });
        // The urgent byte itself is not part of the stream.
        assert_eq!(&read, b"abcdef", "{name}");
    }
}
