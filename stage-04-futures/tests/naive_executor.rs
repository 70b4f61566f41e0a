//! The naive executor: it completes many concurrent requests, and it pays
//! for its no-op waker by polling every future after every event.
#![cfg(not(miri))] // real sockets and epoll

use std::time::Duration;

use netpoll::delayserver::DelayServer;
use stackless::combinators::{Either, join_all, select};
use stackless::coroutine::ready_after;
use stackless::http;
use stackless::naive::{block_on, block_on_all};
use stackless::timer::sleep;
use stackless::workload::{self, DelayedRequests};

/// Fewer requests under qemu, which is many times slower.
const REQUESTS: usize = if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
    20
} else {
    50
};

#[test]
fn the_naive_executor_completes_n_concurrent_delayed_requests() {
    let server = DelayServer::start().expect("server");
    let plan = DelayedRequests {
        count: REQUESTS,
        max_delay: Duration::from_millis(200),
    };
    let mut stats = None;
    let report = workload::run(server.addr(), plan, |requests| {
        let (outputs, run) = block_on_all(requests)?;
        stats = Some(run);
        Ok(outputs)
    })
    .expect("every request answered with its own message");
    let stats = stats.expect("ran");
    assert_eq!(report.completed(), REQUESTS);
    assert_eq!(stats.completed, REQUESTS);
    // The wrapper and the executor count the same polls.
    assert_eq!(report.total(), stats.polls);
    assert_eq!(stats.ready_polls, REQUESTS as u64);
    // Every request was pending at least once (the server delays).
    assert!(report.min_max().0 >= 2, "{report}");
    // The naive part: the request that finished last was polled in every
    // round, once before the first wait and once after each wait.
    assert_eq!(report.min_max().1, stats.waits + 1, "{report} / {stats:?}");
}

#[test]
fn block_on_all_returns_outputs_in_order_not_in_finishing_order() {
    let slow_first = vec![
        Box::pin(async {
            sleep(Duration::from_millis(40)).await;
            "slow"
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = &str>>>,
        Box::pin(async {
            sleep(Duration::from_millis(5)).await;
            "fast"
        }),
    ];
    let (outputs, stats) = block_on_all(slow_first).expect("poller");
    assert_eq!(outputs, ["slow", "fast"]);
    assert_eq!(stats.completed, 2);
}

#[test]
fn the_naive_executor_reports_futures_that_nothing_can_wake() {
    // ReadyAfter only wakes its waker, and the naive waker does nothing.
    let error = block_on(ready_after(1, ())).expect_err("must not hang");
    assert!(
        error.to_string().contains("none waits on the reactor"),
        "{error}"
    );
}

#[test]
fn select_of_a_slow_request_and_a_short_timer_is_won_by_the_timer() {
    let server = DelayServer::start().expect("server");
    let path = http::path(5_000, "too late");
    let slow = http::get(server.addr(), &path);
    let winner = block_on(select(slow, sleep(Duration::from_millis(20)))).expect("poller");
    assert!(matches!(winner, Either::Right(())));
}

#[test]
fn join_all_of_requests_returns_every_answer_in_order() {
    let server = DelayServer::start().expect("server");
    let paths: Vec<String> = [30, 10, 20]
        .iter()
        .map(|&ms| http::path(ms, &format!("after-{ms}")))
        .collect();
    let gets = paths.iter().map(|path| http::get(server.addr(), path));
    let answers = block_on(join_all(gets)).expect("poller");
    let bodies: Vec<String> = answers
        .into_iter()
        .map(|r| String::from_utf8(r.expect("get").body).expect("utf-8"))
        .collect();
    assert_eq!(bodies, ["after-30", "after-10", "after-20"]);
}

#[test]
fn a_timer_that_lost_a_select_finishes_under_a_later_block_on() {
    // The same no-op waker in both runs, but a new reactor: the timer must
    // register with it, or the second run has nothing to wait for. Long
    // enough that a slow first poll (under qemu, on a loaded machine) still
    // finds it pending, so that it loses the select.
    let mut timer = sleep(Duration::from_millis(500));
    let first = block_on(select(&mut timer, std::future::ready(()))).expect("poller");
    assert!(matches!(first, Either::Right(())));
    block_on(&mut timer).expect("the timer registers with the new reactor");
}

#[test]
fn a_timer_dropped_by_a_select_does_not_hide_that_nothing_can_wake_the_rest() {
    // The loser registers first (`select` polls it first), then is dropped
    // when the short timer wins. What follows can never be woken: the
    // executor must say so now, not once the dropped timer's day is over.
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = block_on(async {
            let day = sleep(Duration::from_secs(86_400));
            let winner = select(day, sleep(Duration::from_millis(10))).await;
            assert!(matches!(winner, Either::Right(())));
            ready_after(1, ()).await
        });
        let _ = done.send(result.map_err(|e| e.to_string()));
    });
    let limit = Duration::from_secs(120); // far beyond any machine's need
    let result = outcome
        .recv_timeout(limit)
        .expect("block_on waited for a timer whose future was dropped");
    let error = result.expect_err("nothing can wake the rest");
    assert!(error.contains("none waits on the reactor"), "{error}");
}
