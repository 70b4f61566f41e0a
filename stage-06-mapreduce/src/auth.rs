//! The job secret: only the job's own processes get in.
//!
//! Across hosts, anyone who reaches the coordinator's port could take a
//! task, or report one done without doing it. So a job may have a secret,
//! a file of random bytes that the user gives to the coordinator and every
//! worker (`--secret-file`). Every connection proves, before its first
//! frame, that both ends know it, without ever sending it:
//!
//! ```text
//!   server (coordinator)                          client (worker)
//!     ── HELLO ("MRAUTH1\n") + cs (32 random bytes) ──►
//!     ◄── cc (32 random bytes) + HMAC(k, "client" ‖ cs ‖ cc) ──
//!        verify in constant time; on failure: close, log
//!     ── HMAC(k, "server" ‖ cc ‖ cs) ──►
//!                                        verify; on failure: close, exit
//! ```
//!
//! `k` is the secret and HMAC is HMAC-SHA-256. Each side's challenge is
//! fresh, so a recorded proof is useless on a new connection; the role
//! label ("client", "server") keeps one side's proof from being reflected
//! back as the other's. What this does *not* give: secrecy or integrity of
//! what follows (the frames travel in clear, and someone on the path can
//! read them or, with effort, hijack the connection after the handshake).
//! That needs TLS; the handshake keeps out whoever merely reaches the port.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The first bytes a server sends when it wants the secret. A frame's
/// length can never start with them (they spell a length above
/// [`MAX_FRAME`](crate::wire::MAX_FRAME)), so a client without a secret
/// can tell what happened.
pub const HELLO: &[u8; 8] = b"MRAUTH1\n";

/// Bytes in each challenge, and in each MAC (SHA-256).
pub const CHALLENGE_LEN: usize = 32;

/// Shortest secret accepted: 128 bits.
pub const MIN_SECRET_LEN: usize = 16;

/// Longest secret file read (a secret is a few dozen bytes; this refuses
/// a wrong path to a large file).
pub const MAX_SECRET_LEN: usize = 4096;

/// The job's shared secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Secret {
    /// The secret from raw bytes; at least [`MIN_SECRET_LEN`] of them.
    pub fn from_bytes(bytes: Vec<u8>) -> io::Result<Secret> {
        if bytes.len() < MIN_SECRET_LEN || bytes.len() > MAX_SECRET_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a secret must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes, this one is {}",
                    bytes.len()
                ),
            ));
        }
        Ok(Secret(bytes))
    }

    /// Reads a secret file.
    pub fn read(path: &Path) -> io::Result<Secret> {
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if meta.len() > MAX_SECRET_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("over {MAX_SECRET_LEN} bytes: not a secret file"),
            ));
        }
        Secret::from_bytes(fs::read(path)?)
    }

    /// 32 fresh random bytes from the operating system.
    pub fn generate() -> io::Result<Secret> {
        Secret::from_bytes(random_bytes::<32>()?.to_vec())
    }

    /// Generates a secret and writes it to `path`, readable by its owner
    /// only (any old file there is replaced).
    pub fn create(path: &Path) -> io::Result<Secret> {
        let secret = Secret::generate()?;
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&secret.0)?;
        Ok(secret)
    }

    fn mac(&self, label: &[u8], first: &[u8], second: &[u8]) -> io::Result<HmacSha256> {
        // HMAC takes keys of any length, so this cannot fail; map the
        // error anyway rather than unwrap in a library.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        mac.update(label);
        mac.update(first);
        mac.update(second);
        Ok(mac)
    }
}

fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why.to_string())
}

// ANCHOR: server_handshake
/// The server's side: challenge the client, check its proof, prove back.
/// Put a deadline around it: a client that says nothing must not hold a
/// connection forever. A `PermissionDenied` error means a wrong proof.
pub async fn server_handshake<S>(stream: &mut S, secret: &Secret) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ours = random_bytes::<CHALLENGE_LEN>()?;
    let mut hello = HELLO.to_vec();
    hello.extend_from_slice(&ours);
    stream.write_all(&hello).await?;
    stream.flush().await?;

    let mut answer = [0u8; 2 * CHALLENGE_LEN];
    stream.read_exact(&mut answer).await?;
    let (theirs, proof) = answer.split_at(CHALLENGE_LEN);
    secret
        .mac(b"mapreduce client", &ours, theirs)?
        .verify_slice(proof) // constant time
        .map_err(|_| refused("the client does not know the job's secret"))?;

    let ours_proof = secret
        .mac(b"mapreduce server", theirs, &ours)?
        .finalize()
        .into_bytes();
    stream.write_all(&ours_proof).await?;
    stream.flush().await
}
// ANCHOR_END: server_handshake

/// The client's side: answer the server's challenge, check its proof.
/// A `PermissionDenied` error means the server refused us or could not
/// prove it knows the secret.
pub async fn client_handshake<S>(stream: &mut S, secret: &Secret) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let first = await_challenge(stream).await?;
    finish_client_handshake(stream, secret, first).await
}

/// Waits for the first byte of the server's challenge and returns it. A
/// busy server may take a while to accept, so a caller may wait here
/// without a deadline and put one on [`finish_client_handshake`] only.
pub async fn await_challenge<S>(stream: &mut S) -> io::Result<u8>
where
    S: AsyncRead + Unpin,
{
    let mut first = [0u8; 1];
    match stream.read_exact(&mut first).await {
        // A server with a secret challenges first; one without waits for
        // a request, then closes a client that sends none.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(refused(
            "the server hung up without asking for a secret \
             (does it run without --secret-file, or has its job ended?)",
        )),
        Err(e) => Err(e),
        Ok(()) => Ok(first[0]),
    }
}

/// The rest of [`client_handshake`], once the challenge's `first` byte
/// has come.
pub async fn finish_client_handshake<S>(
    stream: &mut S,
    secret: &Secret,
    first: u8,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hello = [0u8; HELLO.len() + CHALLENGE_LEN];
    hello[0] = first;
    stream.read_exact(&mut hello[1..]).await?;
    let (magic, theirs) = hello.split_at(HELLO.len());
    if magic != HELLO {
        return Err(refused(
            "the server did not ask for a secret (does it run without --secret-file?)",
        ));
    }
    let ours = random_bytes::<CHALLENGE_LEN>()?;
    let proof = secret
        .mac(b"mapreduce client", theirs, &ours)?
        .finalize()
        .into_bytes();
    let mut answer = ours.to_vec();
    answer.extend_from_slice(&proof);
    stream.write_all(&answer).await?;
    stream.flush().await?;

    let mut their_proof = [0u8; CHALLENGE_LEN];
    match stream.read_exact(&mut their_proof).await {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(refused(
                "the server refused our proof: is this the job's secret file?",
            ));
        }
        other => other?,
    }
    secret
        .mac(b"mapreduce server", &ours, theirs)?
        .verify_slice(&their_proof)
        .map_err(|_| refused("the server does not know the job's secret"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use futures::join;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    /// One direction of an in-memory connection.
    #[derive(Default)]
    struct Pipe {
        bytes: std::collections::VecDeque<u8>,
        /// Every byte ever written, read or not.
        all: Vec<u8>,
        closed: bool,
        reader: Option<std::task::Waker>,
    }

    /// One end of an in-memory connection: reads one pipe, writes the other.
    struct End {
        inbox: Arc<Mutex<Pipe>>,
        outbox: Arc<Mutex<Pipe>>,
    }

    fn connection() -> (End, End) {
        let a = Arc::new(Mutex::new(Pipe::default()));
        let b = Arc::new(Mutex::new(Pipe::default()));
        (
            End {
                inbox: Arc::clone(&a),
                outbox: Arc::clone(&b),
            },
            End {
                inbox: b,
                outbox: a,
            },
        )
    }

    impl Drop for End {
        fn drop(&mut self) {
            let mut out = self.outbox.lock().unwrap();
            out.closed = true;
            if let Some(w) = out.reader.take() {
                w.wake();
            }
        }
    }

    impl AsyncRead for End {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut pipe = self.inbox.lock().unwrap();
            if pipe.bytes.is_empty() {
                if pipe.closed {
                    return Poll::Ready(Ok(0));
                }
                pipe.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(pipe.bytes.len());
            for (slot, byte) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
                *slot = byte;
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for End {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut pipe = self.outbox.lock().unwrap();
            pipe.bytes.extend(buf);
            pipe.all.extend_from_slice(buf);
            if let Some(w) = pipe.reader.take() {
                w.wake();
            }
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn secret(byte: u8) -> Secret {
        Secret::from_bytes(vec![byte; 32]).unwrap()
    }

    /// Runs both sides; the server hangs up when it refuses, as the
    /// coordinator does.
    fn handshake(
        server_secret: &Secret,
        client_secret: &Secret,
    ) -> (io::Result<()>, io::Result<()>) {
        let (mut s, mut c) = connection();
        block_on(async {
            join!(
                async move {
                    let result = server_handshake(&mut s, server_secret).await;
                    drop(s);
                    result
                },
                client_handshake(&mut c, client_secret)
            )
        })
    }

    #[test]
    fn both_sides_with_the_same_secret_get_in() {
        let (server, client) = handshake(&secret(7), &secret(7));
        server.unwrap();
        client.unwrap();
    }

    #[test]
    fn a_client_with_another_secret_is_refused_by_the_server_and_told_so() {
        let (server, client) = handshake(&secret(7), &secret(8));
        assert_eq!(server.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        let err = client.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[test]
    fn the_secret_itself_never_crosses_the_wire() {
        let key = secret(0x5a);
        let (mut s, mut c) = connection();
        let (to_client, to_server) = (Arc::clone(&s.outbox), Arc::clone(&c.outbox));
        block_on(async {
            let (a, b) = join!(
                server_handshake(&mut s, &key),
                client_handshake(&mut c, &key)
            );
            a.unwrap();
            b.unwrap();
        });
        let mut sent = to_client.lock().unwrap().all.clone();
        sent.extend_from_slice(&to_server.lock().unwrap().all);
        assert_eq!(
            sent.len(),
            2 * (HELLO.len() + 2 * CHALLENGE_LEN) - HELLO.len()
        );
        assert!(
            !sent.windows(4).any(|w| w == [0x5a; 4]),
            "a run of the secret's bytes went over the wire"
        );
    }

    #[test]
    fn a_client_whose_server_asks_for_no_secret_says_so() {
        // A server without a secret sends frames, not HELLO.
        let mut frames = crate::wire::Message::Exit.encode();
        frames.resize(HELLO.len() + CHALLENGE_LEN, 0);
        let mut stream = Cursor::new(frames);
        let err = block_on(client_handshake(&mut stream, &secret(1))).unwrap_err();
        assert!(
            err.to_string().contains("did not ask for a secret"),
            "{err}"
        );
    }

    #[test]
    fn short_or_huge_secrets_are_refused() {
        assert!(Secret::from_bytes(vec![1; MIN_SECRET_LEN - 1]).is_err());
        assert!(Secret::from_bytes(vec![1; MAX_SECRET_LEN + 1]).is_err());
        assert!(Secret::from_bytes(vec![1; MIN_SECRET_LEN]).is_ok());
    }

    #[test]
    fn a_created_secret_file_is_readable_by_its_owner_only_and_reads_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("mr-secret-{}", std::process::id()));
        let made = Secret::create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(Secret::read(&path).unwrap().0, made.0);
        let again = Secret::create(&path).unwrap();
        assert_ne!(again.0, made.0, "a fresh secret each time");
        fs::remove_file(&path).unwrap();
    }
}
