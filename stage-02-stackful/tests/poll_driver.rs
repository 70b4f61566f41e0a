//! The `Driver` hook end to end with real file descriptors: a tiny
//! netpoller over `poll(2)`, the shape stage 03 builds with epoll.
//!
//! ```text
//!   reader green thread              scheduler               writer green thread
//!   read(pipe) -> EAGAIN
//!   register (fd, current()) ──> PollDriver
//!   park() ───────────────────> run queue empty, timer pending:
//!                               wait(Some(5 ms)) = poll(fds, 5 ms) ... timer fires
//!                                                  ──────────────> sleep returns, write(pipe)
//!                               wait(None) = poll(fds, -1): fd readable
//!                               wake(reader) = unpark
//!   read(pipe) -> "hello" <──────
//! ```

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use green::{Driver, GreenId, Runtime, current, park, sleep, spawn, with_driver};

/// Green threads waiting for their fd to become readable (one-shot).
#[derive(Default)]
struct PollDriver {
    readers: Vec<(RawFd, GreenId)>,
}

impl Driver for PollDriver {
    fn wait(&mut self, timeout: Option<Duration>, wake: &mut dyn FnMut(GreenId)) -> io::Result<()> {
        let mut fds: Vec<libc::pollfd> = self
            .readers
            .iter()
            .map(|&(fd, _)| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Round up: waking before the timer is due only costs a loop turn,
        // but rounding down to 0 ms would spin.
        let timeout_ms = match timeout {
            None => -1,
            Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that
        // lives across the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(error)
            };
        }
        // Wake phase: every reader whose fd is ready, and forget it.
        let mut index = 0;
        self.readers.retain(|&(_, id)| {
            let is_ready = fds[index].revents != 0;
            index += 1;
            if is_ready {
                wake(id);
            }
            !is_ready
        });
        Ok(())
    }

    fn has_waiters(&self) -> bool {
        !self.readers.is_empty()
    }
}

/// A read that parks the green thread instead of blocking the OS thread.
fn green_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::WouldBlock => {
                with_driver(|driver: &mut PollDriver| driver.readers.push((fd, current())))
                    .expect("a PollDriver is installed");
                park(); // may return spuriously: the loop retries the read
            }
            io::ErrorKind::Interrupted => {}
            _ => return Err(error),
        }
    }
}

fn nonblocking_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let result = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(result, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we now own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn a_green_thread_blocked_on_a_pipe_is_woken_by_a_poll_driver_while_timers_run() {
    let mut rt = Runtime::builder()
        .driver(Box::new(PollDriver::default()))
        .build();
    let (read_end, write_end) = nonblocking_pipe();
    let events = Rc::new(RefCell::new(Vec::new()));
    let log = events.clone();
    let received = rt
        .block_on(move || {
            let writer_log = log.clone();
            let writer = spawn(move || {
                sleep(Duration::from_millis(5));
                writer_log.borrow_mut().push("write");
                // SAFETY: writing 5 bytes from a valid buffer to an fd we own.
                let n = unsafe { libc::write(write_end.as_raw_fd(), b"hello".as_ptr().cast(), 5) };
                assert_eq!(n, 5);
            });
            let mut buf = [0u8; 16];
            log.borrow_mut().push("read");
            let n = green_read(read_end.as_raw_fd(), &mut buf).unwrap();
            log.borrow_mut().push("got it");
            writer.join().unwrap();
            buf[..n].to_vec()
        })
        .unwrap();
    assert_eq!(received, b"hello");
    assert_eq!(*events.borrow(), ["read", "write", "got it"]);
    assert!(
        !rt.driver_mut::<PollDriver>().unwrap().has_waiters(),
        "the registration was consumed"
    );
}
