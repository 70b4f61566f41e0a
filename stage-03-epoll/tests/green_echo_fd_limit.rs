//! The green echo server at the process's descriptor limit: `accept` fails
//! with `EMFILE` while clients wait in the kernel's queue. The server must
//! neither give up (its accept loop returning the error ends it, and the
//! queued clients are reset) nor spin on the failing `accept`; once
//! descriptors are free, every queued client is echoed.
//!
//! A single test in a file of its own: it lowers `RLIMIT_NOFILE` for the
//! whole process.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

#[path = "../examples/green_echo.rs"]
mod green_echo;

const CLIENTS: usize = 10;

fn set_fd_limit(soft: libc::rlim_t) {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit read and write it.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = soft.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

fn hard_fd_limit() -> libc::rlim_t {
    // SAFETY: as above.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_max
    }
}

/// A TCP socket, not yet connected (connecting it later needs no new fd).
fn unconnected_socket() -> OwnedFd {
    // SAFETY: socket takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn connect(fd: &OwnedFd, addr: SocketAddr) {
    let SocketAddr::V4(v4) = addr else {
        unreachable!("the server listens on 127.0.0.1")
    };
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = v4.port().to_be();
    sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
    // SAFETY: `sin` is a valid sockaddr_in of the size passed.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "connect: {}", io::Error::last_os_error());
}

#[test]
fn out_of_descriptors_the_green_echo_server_waits_and_echoes_the_queued_clients_later() {
    let addr = green_echo::start_in_background().expect("green_echo");
    let sockets: Vec<OwnedFd> = (0..CLIENTS).map(|_| unconnected_socket()).collect();

    // Use up every descriptor below a low limit.
    set_fd_limit(256);
    let mut fillers = Vec::new();
    loop {
        // SAFETY: duplicating a descriptor we own returns a new fd or -1.
        let fd = unsafe { libc::fcntl(sockets[0].as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            break;
        }
        // SAFETY: `fd` is new and owned by nobody else.
        fillers.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }

    // The clients connect and send (the kernel queues them); the server's
    // accept fails with EMFILE meanwhile.
    let clients: Vec<TcpStream> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, fd)| {
            connect(&fd, addr);
            let mut stream = TcpStream::from(fd);
            stream
                .write_all(format!("client {i}").as_bytes())
                .expect("write");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    drop(fillers);
    set_fd_limit(hard_fd_limit());
    for (i, mut client) in clients.into_iter().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let expected = format!("client {i}");
        let mut echoed = vec![0u8; expected.len()];
        if let Err(e) = client.read_exact(&mut echoed) {
            panic!("client {i} got no echo after descriptors were freed: {e}");
        }
        assert_eq!(echoed, expected.as_bytes());
    }
}
