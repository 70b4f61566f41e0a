//! Stage 04's hand-written leaf futures run unchanged on this runtime, and
//! are polled only when woken.

mod common;

use std::time::{Duration, Instant};

use common::{both_flavours, scaled};
use netpoll::delayserver::DelayServer;
use stackless::workload::{self, DelayedRequests};

#[test]
fn stage04_requests_complete_on_both_flavours_with_few_polls_each() {
    let server = DelayServer::start().unwrap();
    let plan = DelayedRequests {
        count: scaled(50),
        max_delay: Duration::from_millis(200),
    };
    let naive = workload::run(server.addr(), plan, |requests| {
        Ok(stackless::naive::block_on_all(requests)?.0)
    })
    .unwrap();
    for (name, rt) in both_flavours() {
        let report = workload::run(server.addr(), plan, |requests| {
            rt.block_on(async {
                let tasks: Vec<_> = requests.into_iter().map(runtime::spawn).collect();
                let mut outputs = Vec::new();
                for task in tasks {
                    outputs.push(task.await?);
                }
                Ok(outputs)
            })
        })
        .unwrap();
        assert_eq!(report.completed(), plan.count, "{name}");
        // connect, write, read, and the odd spurious wake: a handful each,
        // however many requests run beside it.
        let (_, max) = report.min_max();
        assert!(max <= 8, "{name}: {report}");
        assert!(
            report.mean() < naive.mean(),
            "{name}: {report} vs naive {naive}"
        );
        assert_eq!(rt.num_registered_sockets(), 0, "{name}: every fd forgotten");
    }
}

#[test]
fn stage04_timers_never_fire_early_on_this_runtime() {
    for (name, rt) in both_flavours() {
        rt.block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = [15u64, 5, 10]
                .into_iter()
                .map(|ms| {
                    runtime::spawn(async move {
                        stackless::timer::sleep(Duration::from_millis(ms)).await;
                        assert!(start.elapsed() >= Duration::from_millis(ms), "{ms} ms");
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let _ = name;
    }
}
