//! A multi-threaded runtime whose only task waits on a socket uses no CPU:
//! one worker sleeps in epoll_wait, the other on its condition variable.
//!
//! Alone in its own test binary, because it measures the CPU time of the
//! whole process (`RUSAGE_SELF`), which other tests would add to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use runtime::Runtime;
use runtime::net::TcpListener;

fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer we pass.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn an_idle_multi_thread_runtime_with_a_blocked_task_burns_no_cpu() {
    let rt = Runtime::builder()
        .multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let polls = Arc::new(AtomicU32::new(0));
    let counter = polls.clone();
    let listener = rt.block_on(async { TcpListener::bind("127.0.0.1:0".parse().unwrap()) });
    let listener = listener.unwrap();
    let blocked = rt.spawn(async move {
        let mut accept = std::pin::pin!(listener.accept());
        std::future::poll_fn(|cx| {
            counter.fetch_add(1, SeqCst);
            std::future::Future::poll(accept.as_mut(), cx)
        })
        .await
    });
    // Let the workers settle into their parking places.
    std::thread::sleep(Duration::from_millis(50));
    let wait = Duration::from_millis(400);
    let before = process_cpu_time();
    std::thread::sleep(wait);
    let cpu = process_cpu_time() - before;
    assert_eq!(polls.load(SeqCst), 1, "polled again without a wake");
    assert!(cpu < wait / 4, "used {cpu:?} of CPU in {wait:?} of waiting");
    blocked.abort();
}
