//! Every descriptor this stage opens is closed again: epoll instances,
//! eventfds, sockets of the delay server, green sockets and netpollers. Counted in `/proc/self/fd`.
//!
//! One test in a binary of its own, so no other test opens descriptors
//! while it counts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use netpoll::delayserver::{self, DelayServer};
use netpoll::{Events, Interest, Poll, Token, Trigger, Waker};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn polls_wakers_and_the_delay_server_close_every_descriptor_they_open() {
    // Warm up whatever the standard library opens lazily on first use.
    drop(TcpListener::bind("127.0.0.1:0").expect("bind"));
    let before = open_fds();

    for _ in 0..10 {
        let mut poll = Poll::new().expect("poll");
        let waker = Waker::new(poll.registry(), Token(0)).expect("waker");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        poll.registry()
            .register(
                listener.as_raw_fd(),
                Token(1),
                Interest::READABLE,
                Trigger::Level,
            )
            .expect("register");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        waker.wake().expect("wake");
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, None).expect("poll");
        assert!(!events.is_empty());
    }
    assert_eq!(open_fds(), before, "after Poll, Waker and registrations");

    for _ in 0..3 {
        let server = DelayServer::start().expect("start");
        for i in 0..5 {
            let reply = delayserver::fetch(server.addr(), &delayserver::path(1, &i.to_string()))
                .expect("fetch");
            assert_eq!(reply.body, i.to_string().as_bytes());
        }
        server.shutdown().expect("shutdown");
    }
    assert_eq!(
        open_fds(),
        before,
        "after starting and stopping delay servers"
    );

    for _ in 0..3 {
        let mut rt = netpoll::netpoller::runtime().expect("runtime");
        rt.block_on(|| {
            let listener = netpoll::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            // A server thread that is still parked in accept at the end: the
            // runtime cancels it, which drops (and closes) the listener.
            green::spawn(move || -> std::io::Result<()> {
                loop {
                    let (stream, _) = listener.accept()?;
                    green::spawn(move || {
                        let mut buf = [0u8; 8];
                        let n = (&stream).read(&mut buf)?;
                        (&stream).write_all(&buf[..n])
                    });
                }
            });
            let clients: Vec<_> = (0..20)
                .map(|_| {
                    green::spawn(move || {
                        let mut stream = netpoll::net::TcpStream::connect(addr)?;
                        stream.write_all(b"ping")?;
                        let mut back = [0u8; 4];
                        stream.read_exact(&mut back)?;
                        Ok::<_, std::io::Error>(back)
                    })
                })
                .collect();
            for client in clients {
                assert_eq!(&client.join().expect("join").expect("echo"), b"ping");
            }
        })
        .expect("block_on");
        drop(rt);
    }
    assert_eq!(open_fds(), before, "after green runtimes with a netpoller");
}
