//! Every descriptor this stage opens is closed again: epoll instances,
//! eventfds, sockets of the delay server. Counted in `/proc/self/fd`.
//!
//! One test in a binary of its own, so no other test opens descriptors
//! while it counts.

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
}
