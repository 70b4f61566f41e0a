//! The delay server as later stages use it: started in-process, many
//! requests in flight at once, bad input answered with 400, stopped on drop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use netpoll::delayserver::{self, DelayServer, Options, parse_response};

/// Fewer under qemu-user, which is 5-20x slower.
const CONCURRENT: usize = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
    50
} else {
    200
};

fn send_raw(server: &DelayServer, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.write_all(request).expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    raw
}

// ANCHOR: in_process
#[test]
fn answers_the_message_no_earlier_than_the_delay() {
    let server = DelayServer::start().expect("start"); // 127.0.0.1, a free port
    let started = Instant::now();
    let reply =
        delayserver::fetch(server.addr(), &delayserver::path(150, "hello world")).expect("fetch");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hello world");
} // dropping `server` stops its thread and joins it
// ANCHOR_END: in_process

#[test]
fn the_response_says_connection_close_and_has_the_right_length() {
    let server = DelayServer::start().expect("start");
    let raw = send_raw(&server, b"GET /0/abc HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8(raw).expect("utf-8");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(text.contains("Content-Length: 3\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nabc"), "{text}");
}

#[test]
fn a_short_delay_sent_later_overtakes_a_long_one_sent_first() {
    // Only a server that waits on many requests at once can do this.
    let server = DelayServer::start().expect("start");
    let addr = server.addr();
    let slow = thread::spawn(move || {
        let reply = delayserver::fetch(addr, &delayserver::path(3000, "slow")).expect("slow");
        (Instant::now(), reply.body)
    });
    thread::sleep(Duration::from_millis(50));
    let fast = delayserver::fetch(addr, &delayserver::path(10, "fast")).expect("fast");
    let fast_done = Instant::now();
    let (slow_done, slow_body) = slow.join().expect("slow thread");
    assert_eq!(fast.body, b"fast");
    assert_eq!(slow_body, b"slow");
    assert!(fast_done < slow_done);
}

#[test]
fn many_concurrent_requests_all_get_their_own_message() {
    let server = DelayServer::start().expect("start");
    // Open every connection and send every request before reading any reply.
    let mut streams = Vec::new();
    for i in 0..CONCURRENT {
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        let path = delayserver::path(100 + (i % 7) as u64 * 10, &format!("msg {i}"));
        write!(stream, "GET {path} HTTP/1.1\r\n\r\n").expect("write");
        streams.push(stream);
    }
    for (i, mut stream) in streams.into_iter().enumerate() {
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let reply = parse_response(&raw).expect("a response");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, format!("msg {i}").as_bytes());
    }
}

#[test]
fn bad_requests_get_400_and_the_server_keeps_serving() {
    let server = DelayServer::start().expect("start");
    let too_big = format!("GET /1/x HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    for request in [
        &b"POST /1/x HTTP/1.1\r\n\r\n"[..],
        b"GET /soon/x HTTP/1.1\r\n\r\n",
        b"GET /1/%zz HTTP/1.1\r\n\r\n",
        b"GET /99999999/x HTTP/1.1\r\n\r\n",
        b"\x00\xff\xfe garbage\r\n\r\n",
        too_big.as_bytes(),
    ] {
        let reply = parse_response(&send_raw(&server, request)).expect("a response");
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(request));
    }
    let reply = delayserver::fetch(server.addr(), "/0/still%20here").expect("fetch");
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"still here"[..])
    );
}

#[test]
fn clients_that_leave_early_do_not_disturb_the_others() {
    let server = DelayServer::start().expect("start");
    // One leaves before sending anything, one half-way through the head,
    // one while its response is pending.
    drop(TcpStream::connect(server.addr()).expect("connect"));
    let mut partial = TcpStream::connect(server.addr()).expect("connect");
    partial.write_all(b"GET /1").expect("write");
    drop(partial);
    let mut waiting = TcpStream::connect(server.addr()).expect("connect");
    waiting
        .write_all(b"GET /50/x HTTP/1.1\r\n\r\n")
        .expect("write");
    waiting.shutdown(Shutdown::Both).expect("shutdown");
    drop(waiting);
    thread::sleep(Duration::from_millis(100));
    let reply = delayserver::fetch(server.addr(), "/0/ok").expect("fetch");
    assert_eq!(reply.body, b"ok");
}

#[test]
fn dropping_the_server_stops_it_promptly_even_with_requests_pending() {
    let server = DelayServer::start().expect("start");
    let addr = server.addr();
    let mut pending = TcpStream::connect(addr).expect("connect");
    pending
        .write_all(b"GET /60000/never HTTP/1.1\r\n\r\n")
        .expect("write");
    thread::sleep(Duration::from_millis(50));
    server.shutdown().expect("clean shutdown");
    // The pending connection was closed, not answered.
    let mut rest = Vec::new();
    let _ = pending.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

/// A request whose head (up to and including the blank line) is exactly
/// `len` bytes long, padded with one header.
fn head_of_len(len: usize) -> Vec<u8> {
    let start = b"GET /0/fits HTTP/1.1\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let pad = len - start.len() - end.len();
    let mut request = start.to_vec();
    request.resize(start.len() + pad, b'a');
    request.extend_from_slice(end);
    assert_eq!(request.len(), len);
    request
}

#[test]
fn a_request_head_is_limited_to_max_head_bytes_blank_line_included() {
    let server = DelayServer::start().expect("start");
    let status = |len: usize| {
        let raw = send_raw(&server, &head_of_len(len));
        parse_response(&raw).expect("a response").status
    };
    assert_eq!(
        status(delayserver::MAX_HEAD),
        200,
        "a head of exactly MAX_HEAD bytes is served"
    );
    for len in [delayserver::MAX_HEAD + 1, 9_020] {
        assert_eq!(status(len), 400, "a head of {len} bytes must be refused");
    }
}

#[test]
fn a_client_that_never_completes_its_request_is_closed_after_the_idle_timeout() {
    let options = Options::new().idle_timeout(Duration::from_millis(200));
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = DelayServer::bind_with(loopback, options).expect("start");
    let silent = TcpStream::connect(server.addr()).expect("connect");
    let mut half_a_head = TcpStream::connect(server.addr()).expect("connect");
    half_a_head
        .write_all(b"GET /1/x HTTP/1.1\r\nHost:")
        .expect("write");
    for (who, mut stream) in [("a silent client", silent), ("half a head", half_a_head)] {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "{who} got an answer: {rest:?}"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("{who} still held a connection 30 s after the 200 ms idle timeout")
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{who}: {e}"),
        }
    }
    // The timeout is for the client, not for the delay it asked for.
    let reply =
        delayserver::fetch(server.addr(), &delayserver::path(500, "patient")).expect("fetch");
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"patient"[..])
    );
}

/// A one-connection server on a free port that reads the request and
/// answers `response`, then closes.
fn answer_once(response: Vec<u8>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut head = [0u8; 1024];
        let _ = conn.read(&mut head);
        let _ = conn.write_all(&response);
    });
    addr
}

#[test]
fn fetch_refuses_a_response_cut_short_of_its_content_length() {
    let addr = answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec());
    let error = delayserver::fetch(addr, "/0/x").expect_err("3 bytes of 10 is not a response");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
}

#[test]
fn fetch_refuses_a_response_too_long_to_buffer() {
    let mut response = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    response.resize(delayserver::MAX_RESPONSE + 1, b'x');
    let addr = answer_once(response);
    let error = delayserver::fetch(addr, "/0/x").expect_err("more than MAX_RESPONSE bytes");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
}

#[test]
fn fetch_refuses_a_path_that_would_smuggle_a_header_before_connecting() {
    // Port 9 on loopback has no listener: reaching `connect` would fail
    // with another kind of error.
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("address");
    let error = delayserver::fetch(addr, "/1/a HTTP/1.1\r\nX-Injected: yes\r\nX-Rest:")
        .expect_err("refused");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
}
