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

pub use netpoll::delayserver::{MAX_RESPONSE, Response, path};

use crate::net::TcpStream;

// ANCHOR: get
/// `GET path` from the HTTP server at `addr`; resolves to the response once
/// the server has closed the connection (the delay server always does).
/// A `path` that would break the request line is `InvalidInput` (see
/// stage 3's `request`); a response longer than [`MAX_RESPONSE`], or one
/// whose body is not as long as its `Content-Length` says, is
/// `InvalidData`.
pub async fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let request = netpoll::delayserver::request(addr, path)?;
    let stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end_at_most(&mut raw, MAX_RESPONSE).await?;
    netpoll::delayserver::parse_response(&raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response"))
}
// ANCHOR_END: get

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
