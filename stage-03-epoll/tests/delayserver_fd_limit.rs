//! The delay server at the process's descriptor limit: clients that cannot
//! be accepted yet wait in the kernel's queue while the server sleeps, and
//! are served once descriptors are free.
//!
//! This file holds a single test because it lowers `RLIMIT_NOFILE` for the
//! whole process (each file under `tests/` is a process of its own).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use netpoll::delayserver::{DelayServer, parse_response};

const CLIENTS: usize = 20;

/// User plus system CPU time of the whole process (every thread).
fn process_cpu_time() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage for RUSAGE_SELF.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn set_fd_limit(soft: libc::rlim_t) {
    // SAFETY: rlimit is plain data; getrlimit/setrlimit read and write it.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = soft.min(limit.rlim_max);
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit),
            0,
            "setrlimit: {}",
            io::Error::last_os_error()
        );
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

/// A TCP socket, not yet connected (so that connecting it later needs no
/// new descriptor).
fn unconnected_socket() -> OwnedFd {
    // SAFETY: socket takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn connect(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    let SocketAddr::V4(v4) = addr else {
        unreachable!("the server listens on 127.0.0.1")
    };
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = v4.port().to_be();
    sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
    let raw: RawFd = std::os::fd::AsRawFd::as_raw_fd(fd);
    // SAFETY: `sin` is a valid sockaddr_in of the size passed.
    let rc = unsafe {
        libc::connect(
            raw,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[test]
fn out_of_descriptors_the_server_backs_off_instead_of_spinning_and_serves_later() {
    let server = DelayServer::start().expect("start");
    let sockets: Vec<OwnedFd> = (0..CLIENTS).map(|_| unconnected_socket()).collect();

    // Use up every descriptor below a low limit: from now on neither the
    // server's accept nor anything else in this process gets one.
    set_fd_limit(256);
    let mut fillers = Vec::new();
    loop {
        let original = std::os::fd::AsRawFd::as_raw_fd(&sockets[0]);
        // SAFETY: duplicating a descriptor we own returns a new fd or -1.
        let fd = unsafe { libc::fcntl(original, libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            let error = io::Error::last_os_error();
            assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "dup: {error}");
            break;
        }
        // SAFETY: `fd` is new and owned by nobody else.
        fillers.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }

    // The clients connect (the kernel queues them: the handshake needs no
    // accept) and send their requests; the server cannot accept them.
    let clients: Vec<TcpStream> = sockets
        .into_iter()
        .map(|fd| {
            connect(&fd, server.addr()).expect("connect");
            let mut stream = TcpStream::from(fd);
            stream
                .write_all(b"GET /0/served HTTP/1.1\r\n\r\n")
                .expect("write request");
            stream
        })
        .collect();

    // Let the server meet EMFILE (and, under qemu, translate that path)
    // before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let (cpu, wall) = (process_cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (cpu, wall) = (process_cpu_time() - cpu, wall.elapsed());
    // A server retrying accept at once burns a whole core (cpu ≈ wall); one
    // that backs off wakes a few times a second. Generous bound.
    assert!(
        cpu < wall / 10,
        "the process used {cpu:?} of CPU in {wall:?} while {CLIENTS} clients waited \
         and accept failed with EMFILE: the server is spinning on its listener"
    );

    // Descriptors free again: every queued client is served.
    drop(fillers);
    set_fd_limit(hard_fd_limit());
    for (i, mut client) in clients.into_iter().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let mut raw = Vec::new();
        if let Err(e) = client.read_to_end(&mut raw) {
            panic!("client {i} got no answer within 30 s after descriptors were freed: {e}");
        }
        let reply = parse_response(&raw).expect("a response");
        assert_eq!(
            (reply.status, reply.body.as_slice()),
            (200, &b"served"[..]),
            "client {i}"
        );
    }
}
