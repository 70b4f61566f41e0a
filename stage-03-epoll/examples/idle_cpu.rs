//! How much CPU does a runtime burn while it has nothing to do?
//!
//! Runs a green thread that sleeps 200 ms twice: once on the netpoller, which
//! waits in `epoll_wait` with the timer's deadline as timeout, and once on a
//! driver that polls epoll without ever blocking (timeout 0, in a loop), as a
//! naive event loop would. Prints wall-clock and CPU time of each.
//!
//! ```text
//! cargo run -p stage-03-epoll --release --example idle_cpu
//! ```

use std::io;
use std::time::{Duration, Instant};

use green::{Driver, GreenId};
use netpoll::netpoller::NetPoller;

/// The netpoller, but never allowed to block: a busy-polling event loop.
struct Spinning(NetPoller);

impl Driver for Spinning {
    fn wait(
        &mut self,
        _timeout: Option<Duration>,
        wake: &mut dyn FnMut(GreenId),
    ) -> io::Result<()> {
        self.0.wait(Some(Duration::ZERO), wake)
    }

    fn has_waiters(&self) -> bool {
        self.0.has_waiters()
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn measure(name: &str, driver: Box<dyn Driver>) -> io::Result<()> {
    let mut runtime = green::Runtime::builder().driver(driver).build();
    let (wall, cpu) = (Instant::now(), thread_cpu_time());
    runtime
        .block_on(|| green::sleep(Duration::from_millis(200)))
        .map_err(io::Error::other)?;
    println!(
        "{name:<28} wall {:.1} ms, cpu {:.3} ms",
        wall.elapsed().as_secs_f64() * 1e3,
        (thread_cpu_time() - cpu).as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> io::Result<()> {
    measure("netpoller (blocks in epoll)", Box::new(NetPoller::new()?))?;
    measure(
        "spinning (epoll timeout 0)",
        Box::new(Spinning(NetPoller::new()?)),
    )?;
    Ok(())
}
