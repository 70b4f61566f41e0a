//! An HTTP GET future against the workspace's delay server (stage 03's
//! `netpoll::delayserver`), written as an `async fn` over the TCP leaf
//! futures.
//!
//! It is where the pieces meet: the compiler turns `get` into a state
//! machine (as [`coroutine`](crate::coroutine) does by hand) whose states
//! hold the leaf futures of [`net`](crate::net), which wait on the current
//! reactor.
//!
//! ```text
//!   get(addr, "/200/hi")
//!     Connect ──► write_all(request) ──► read_to_end_at_most ──► parse
//!     (Writable)   (Writable, if full)   (Readable, until the server closes)
//! ```

use std::io;
use std::net::SocketAddr;

pub use netpoll::delayserver::{Response, path};

use crate::net::TcpStream;

/// The most bytes of response [`get`] reads: far more than the delay server
/// sends, and a bound on what a misbehaving server can make it buffer.
pub const MAX_RESPONSE: usize = 1 << 20;

// ANCHOR: get
/// `GET path` from the HTTP server at `addr`; resolves to the response once
/// the server has closed the connection (the delay server always does).
/// `path` must be printable ASCII without spaces (percent-encode the rest,
/// as [`path`] does): anything else would break the request line or smuggle
/// headers into the request, and is refused as `InvalidInput`.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    if path.is_empty() || !path.bytes().all(|b| b.is_ascii_graphic()) {
        let why = format!("HTTP path {path:?} is empty or not printable ASCII without spaces");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    let stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end_at_most(&mut raw, MAX_RESPONSE).await?;
    let response = netpoll::delayserver::parse_response(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response"))?;
    // The end of the stream ends the body, so a server that closed early
    // would pass for one that sent a short body: the head says which.
    let head = &raw[..raw.len() - response.body.len()];
    if !length_agrees(head, response.body.len()) {
        let why = "HTTP response body does not match its Content-Length (cut short?)";
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    Ok(response)
}
// ANCHOR_END: get

/// Whether every `Content-Length` header of `head` (usually none or one)
/// says `body_len`.
fn length_agrees(head: &[u8], body_len: usize) -> bool {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .all(|(_, value)| value.trim().parse() == Ok(body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_get_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let addr: SocketAddr = ([127, 0, 0, 1], 9).into();
        assert_send(&get(addr, "/1/x"));
    }
}
