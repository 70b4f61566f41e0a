//! The leaf futures' two paths: ready at once when the operating system can
//! do the work, and pending (registered with the reactor) when it cannot.
//!
//! A `RecordingReactor` stands in for the reactor, so each test sees exactly
//! what the future asked for; the naive executor drives the end-to-end ones.
#![cfg(not(miri))] // real sockets: system calls Miri cannot run

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use stackless::naive::block_on;
use stackless::net::TcpStream;
use stackless::reactor::{Interest, set_current};
use stackless::testing::{CountingWaker, ReactorCall, RecordingReactor, poll_once};
use stackless::timer::sleep;

/// A connected pair on loopback: our non-blocking stream and the std peer.
fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let ours = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    (TcpStream::from_std(ours).expect("non-blocking"), peer)
}

#[test]
fn read_is_ready_at_once_when_data_is_waiting_and_asks_nothing_of_the_reactor() {
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let (ours, mut peer) = pair();
    peer.write_all(b"hello").expect("write");
    // Loopback delivers synchronously, but give the kernel a moment anyway.
    std::thread::sleep(Duration::from_millis(10));
    let (_, waker) = CountingWaker::new();
    let mut buf = [0; 16];
    let mut read = ours.read(&mut buf);
    assert!(matches!(
        poll_once(Pin::new(&mut read), &waker),
        Poll::Ready(Ok(5))
    ));
    assert_eq!(&buf[..5], b"hello");
    assert!(reactor.calls().is_empty());
}

#[test]
fn read_is_pending_and_registers_readable_until_data_arrives() {
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let (ours, mut peer) = pair();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let (_, waker) = CountingWaker::new();
    let mut buf = [0; 16];
    {
        let mut read = ours.read(&mut buf);
        assert!(poll_once(Pin::new(&mut read), &waker).is_pending());
        assert_eq!(
            reactor.calls(),
            [ReactorCall::WakeWhenReady(fd, Interest::Readable)]
        );
        peer.write_all(b"late").expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        let n = loop {
            match poll_once(Pin::new(&mut read), &waker) {
                Poll::Ready(result) => break result.expect("read"),
                Poll::Pending => assert!(Instant::now() < deadline, "data never arrived"),
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(n, 4);
    }
    assert_eq!(&buf[..4], b"late");
}

#[test]
fn read_after_the_peer_closed_is_ready_with_zero_bytes() {
    let _current = set_current(Rc::new(RecordingReactor::default()));
    let (ours, peer) = pair();
    drop(peer);
    let n = block_on_read(&ours);
    assert_eq!(n, 0);
}

fn block_on_read(stream: &TcpStream) -> usize {
    let (_, waker) = CountingWaker::new();
    let mut buf = [0; 8];
    let mut read = stream.read(&mut buf);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(result) = poll_once(Pin::new(&mut read), &waker) {
            return result.expect("read");
        }
        assert!(Instant::now() < deadline, "read never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn write_is_ready_at_once_while_the_send_buffer_has_room() {
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let (ours, mut peer) = pair();
    let (_, waker) = CountingWaker::new();
    let mut write = ours.write(b"ping");
    assert!(matches!(
        poll_once(Pin::new(&mut write), &waker),
        Poll::Ready(Ok(4))
    ));
    assert!(reactor.calls().is_empty());
    let mut got = [0; 4];
    peer.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"ping");
}

#[test]
fn write_is_pending_on_a_full_send_buffer_until_the_peer_reads() {
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let (ours, mut peer) = pair();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let (_, waker) = CountingWaker::new();
    let chunk = vec![7u8; 64 * 1024];
    // Fill our send buffer and the peer's receive buffer.
    let mut sent = 0usize;
    loop {
        let mut write = ours.write(&chunk);
        match poll_once(Pin::new(&mut write), &waker) {
            Poll::Ready(Ok(n)) => sent += n,
            Poll::Ready(Err(e)) => panic!("write failed: {e}"),
            Poll::Pending => break,
        }
    }
    assert_eq!(
        reactor.calls(),
        [ReactorCall::WakeWhenReady(fd, Interest::Writable)]
    );
    // The peer drains; the write goes through.
    let mut write = ours.write(&chunk);
    let mut drained = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    let n = loop {
        let got = peer.read(&mut drained).expect("peer read");
        assert!(got > 0);
        if let Poll::Ready(result) = poll_once(Pin::new(&mut write), &waker) {
            break result.expect("write");
        }
        assert!(Instant::now() < deadline, "the write never found room");
    };
    assert!(n > 0 && sent > 0);
}

#[test]
fn connect_is_pending_and_registers_writable_then_connects() {
    let reactor = Rc::new(RecordingReactor::default());
    let _current = set_current(reactor.clone());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let (_, waker) = CountingWaker::new();
    let mut connect = TcpStream::connect(listener.local_addr().expect("addr"));
    // A non-blocking TCP connect on Linux answers EINPROGRESS, even on loopback.
    assert!(poll_once(Pin::new(&mut connect), &waker).is_pending());
    let calls = reactor.calls();
    assert!(
        matches!(
            calls[..],
            [ReactorCall::WakeWhenReady(_, Interest::Writable)]
        ),
        "{calls:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        if let Poll::Ready(result) = poll_once(Pin::new(&mut connect), &waker) {
            break result.expect("connect");
        }
        assert!(Instant::now() < deadline, "connect never finished");
        std::thread::sleep(Duration::from_millis(1));
    };
    let (accepted, _) = listener.accept().expect("accept");
    assert_eq!(
        stream.local_addr().expect("addr"),
        accepted.peer_addr().expect("peer")
    );
}

#[test]
fn connect_to_a_closed_port_fails_with_connection_refused() {
    let addr: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    }; // closed again: nobody listens there now
    let error = block_on(TcpStream::connect(addr))
        .expect("the poller works")
        .expect_err("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn connected_streams_talk_through_the_naive_executor() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().expect("accept");
        let mut buf = [0; 5];
        peer.read_exact(&mut buf).expect("read");
        peer.write_all(&buf).expect("echo");
    });
    let reply = block_on(async move {
        let stream = TcpStream::connect(addr).await?;
        stream.write_all(b"hello").await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    })
    .expect("poller")
    .expect("echo round trip");
    assert_eq!(reply, b"hello");
    echo.join().expect("echo thread");
}

#[test]
fn a_pending_timer_is_ready_on_the_naive_executor_and_never_early() {
    let started = Instant::now();
    block_on(sleep(Duration::from_millis(30))).expect("poller");
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[test]
fn an_http_get_fetches_the_delay_servers_answer() {
    let server = netpoll::delayserver::DelayServer::start().expect("server");
    let response = block_on(stackless::http::get(
        server.addr(),
        &stackless::http::path(20, "hi there"),
    ))
    .expect("poller")
    .expect("get");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hi there");
}

#[test]
fn an_http_path_that_would_break_the_request_line_is_refused_before_sending() {
    let server = netpoll::delayserver::DelayServer::start().expect("server");
    // The first one would smuggle a header into a request the server accepts.
    let smuggles = "/1/a HTTP/1.1\r\nX-Injected: yes\r\nX-Rest:";
    for path in [smuggles, "/1/a\nb", "/1/a b", "/1/\u{e9}", ""] {
        let result = block_on(stackless::http::get(server.addr(), path)).expect("poller");
        let error = result.expect_err(&format!("{path:?} must be refused"));
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{path:?}");
    }
}

/// A server on another thread that reads one request head, sends `reply`
/// (as much as the client takes) and closes.
fn answer_once_with(reply: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") && peer.read(&mut byte).expect("read") == 1 {
            head.push(byte[0]);
        }
        let _ = peer.write_all(&reply); // the client may hang up early
    });
    addr
}

#[test]
fn an_http_response_cut_short_of_its_content_length_is_an_error() {
    let addr = answer_once_with(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec());
    let result = block_on(stackless::http::get(addr, "/1/abcdefghij")).expect("poller");
    let error = result.expect_err("3 bytes of 10 is not a response");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    // A whole one is fine.
    let addr = answer_once_with(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc".to_vec());
    let response = block_on(stackless::http::get(addr, "/1/abc"))
        .expect("poller")
        .expect("a complete response");
    assert_eq!((response.status, &response.body[..]), (200, &b"abc"[..]));
}

#[test]
fn an_http_response_too_large_to_buffer_is_an_error_not_an_ever_growing_buffer() {
    const BODY: usize = 4 << 20;
    const _: () = assert!(BODY > stackless::http::MAX_RESPONSE);
    let mut reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    reply.resize(reply.len() + BODY, b'x');
    let addr = answer_once_with(reply);
    let result = block_on(stackless::http::get(addr, "/1/x")).expect("poller");
    let error = result
        .map(|response| response.body.len()) // not 4 MiB of it in a failure message
        .expect_err("a 4 MiB answer is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
}
