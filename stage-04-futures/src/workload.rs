//! The stage's experiment, reusable: N concurrent delayed HTTP requests, each
//! wrapped in [`CountPolls`], run by whatever executor the caller likes.
//!
//! Stage 04 runs it on the naive executor (`examples/naive_requests.rs`);
//! stage 05 runs the *same* futures on its runtime and prints how far the
//! polls per completed future fall once wakers are real:
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use std::time::Duration;
//! use netpoll::delayserver::DelayServer;
//! use stackless::workload::{self, DelayedRequests};
//!
//! let server = DelayServer::start()?;
//! let plan = DelayedRequests { count: 100, max_delay: Duration::from_millis(500) };
//! let report = workload::run(server.addr(), plan, |requests| {
//!     // Any executor: here stage 04's naive one.
//!     let (outputs, _stats) = stackless::naive::block_on_all(requests)?;
//!     Ok(outputs)
//! })?;
//! println!("{report}");
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use crate::count::{CountPolls, Counted};
use crate::http::{self, Response};

/// One request of the workload: a boxed, `Send` HTTP GET, so that every
/// executor (stage 05's multi-threaded one included) can run it.
pub type Request = CountPolls<Pin<Box<dyn Future<Output = io::Result<Response>> + Send>>>;

/// What [`run`] expects back from the executor: each request's output and
/// poll count, in the order the requests were handed over.
pub type Outputs = Vec<Counted<io::Result<Response>>>;

/// The plan: `count` requests; request `i` (from 0) asks the delay server to
/// wait `max_delay * (i + 1) / count`, so the answers arrive spread over
/// time, one after another, as real traffic does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayedRequests {
    /// How many requests are in flight at once.
    pub count: usize,
    /// The delay of the slowest request.
    pub max_delay: Duration,
}

impl DelayedRequests {
    /// The most requests a command line may ask for. Every request holds a
    /// connection (a descriptor) open at once, so far fewer already fail
    /// with "too many open files"; a count beyond any memory would
    /// otherwise abort the process when its first `Vec` is allocated.
    pub const MAX_COUNT: usize = 1_000_000;

    /// The plan an example's command line asks for, `[N] [MAX_DELAY_MS]`,
    /// 100 requests and 500 ms where a word is missing. Both stage 04's
    /// `naive_requests` and stage 05's `stage04_requests` read it here, so
    /// the two experiments always mean the same thing.
    pub fn from_args(mut args: impl Iterator<Item = String>) -> io::Result<Self> {
        fn number(word: Option<String>, what: &str, default: u64) -> io::Result<u64> {
            word.map_or(Ok(default), |w| {
                w.parse().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{what} must be a whole number, not {w:?}"),
                    )
                })
            })
        }
        let count = number(args.next(), "N (the number of requests)", 100)?;
        let max_ms = number(args.next(), "MAX_DELAY_MS", 500)?;
        if count > Self::MAX_COUNT as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "N must be at most {} (each request holds a connection open), not {count}",
                    Self::MAX_COUNT
                ),
            ));
        }
        Ok(DelayedRequests {
            count: count as usize,
            max_delay: Duration::from_millis(max_ms),
        })
    }

    /// The delay request `index` asks for (an `index` past the last
    /// request gets `max_delay`).
    pub fn delay_of(&self, index: usize) -> Duration {
        // `max_delay * (index + 1) / count`, in u128 nanoseconds so that no
        // plan a caller can build overflows (`Duration * u32` would panic,
        // and `as u32` would wrap a huge count). Split as q·c + r so that
        // neither product can exceed u128: r < c and step <= c < 2^64.
        let count = self.count.max(1) as u128;
        let step = (index as u128).saturating_add(1).min(count);
        let total = self.max_delay.as_nanos();
        let nanos = total / count * step + total % count * step / count;
        // nanos <= total, so the seconds fit in a u64 again.
        Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
    }

    /// The message request `index` sends and expects back.
    pub fn message_of(index: usize) -> String {
        format!("request-{index}")
    }

    /// The futures, ready to be run by any executor.
    pub fn requests(&self, addr: SocketAddr) -> Vec<Request> {
        (0..self.count)
            .map(|index| {
                let path = http::path(
                    self.delay_of(index).as_millis() as u64,
                    &Self::message_of(index),
                );
                let get: Pin<Box<dyn Future<Output = _> + Send>> =
                    Box::pin(async move { http::get(addr, &path).await });
                CountPolls::new(get)
            })
            .collect()
    }
}

/// The result of a run: polls per completed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollReport {
    /// The polls each request took, in request order.
    pub polls: Vec<u64>,
}

impl PollReport {
    /// Requests completed.
    pub fn completed(&self) -> usize {
        self.polls.len()
    }
    /// Polls over all requests.
    pub fn total(&self) -> u64 {
        self.polls.iter().sum()
    }
    /// Average polls per completed request.
    pub fn mean(&self) -> f64 {
        if self.polls.is_empty() {
            0.0
        } else {
            self.total() as f64 / self.polls.len() as f64
        }
    }
    /// Fewest and most polls any request took.
    pub fn min_max(&self) -> (u64, u64) {
        let min = self.polls.iter().copied().min().unwrap_or(0);
        let max = self.polls.iter().copied().max().unwrap_or(0);
        (min, max)
    }
}

impl fmt::Display for PollReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = self.min_max();
        write!(
            f,
            "{} requests completed, {} polls: {:.1} polls per completed future (min {min}, max {max})",
            self.completed(),
            self.total(),
            self.mean(),
        )
    }
}

/// Check the outputs of a run against `plan`: every request succeeded with
/// its own message, in order. Returns the poll counts.
pub fn check(plan: DelayedRequests, outputs: Outputs) -> io::Result<PollReport> {
    if outputs.len() != plan.count {
        return Err(io::Error::other(format!(
            "{} outputs for {} requests",
            outputs.len(),
            plan.count
        )));
    }
    let mut polls = Vec::with_capacity(outputs.len());
    for (index, Counted { output, polls: n }) in outputs.into_iter().enumerate() {
        let response = output?;
        let expected = DelayedRequests::message_of(index);
        if response.status != 200 || response.body != expected.as_bytes() {
            return Err(io::Error::other(format!(
                "request {index}: got {} {:?}, expected 200 {expected:?}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )));
        }
        polls.push(n);
    }
    Ok(PollReport { polls })
}

// ANCHOR: run
/// Build the requests of `plan` against the delay server at `addr`, hand
/// them to `execute` (which runs them all concurrently, however it likes,
/// and returns their outputs in the same order), check the answers and
/// report the polls.
pub fn run(
    addr: SocketAddr,
    plan: DelayedRequests,
    execute: impl FnOnce(Vec<Request>) -> io::Result<Outputs>,
) -> io::Result<PollReport> {
    let outputs = execute(plan.requests(addr))?;
    check(plan, outputs)
}
// ANCHOR_END: run

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> impl Iterator<Item = String> + '_ {
        line.split_whitespace().map(String::from)
    }

    #[test]
    fn a_plan_from_the_command_line_defaults_what_is_missing() {
        let plan = DelayedRequests::from_args(words("")).unwrap();
        assert_eq!(
            (plan.count, plan.max_delay),
            (100, Duration::from_millis(500))
        );
        let plan = DelayedRequests::from_args(words("7 250")).unwrap();
        assert_eq!(
            (plan.count, plan.max_delay),
            (7, Duration::from_millis(250))
        );
    }

    #[test]
    fn a_bad_number_on_the_command_line_is_a_clear_error() {
        let error = DelayedRequests::from_args(words("ten")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("\"ten\""), "{error}");
        let error = DelayedRequests::from_args(words("10 -5")).unwrap_err();
        assert!(error.to_string().contains("MAX_DELAY_MS"), "{error}");
    }

    #[test]
    fn a_count_beyond_the_maximum_is_a_clear_error_not_an_abort() {
        let error = DelayedRequests::from_args(words("999999999999999")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("at most"), "{error}");
        let most = DelayedRequests::MAX_COUNT.to_string();
        assert_eq!(
            DelayedRequests::from_args(words(&most)).unwrap().count,
            DelayedRequests::MAX_COUNT
        );
    }

    #[test]
    fn delays_are_spread_up_to_the_maximum() {
        let plan = DelayedRequests {
            count: 4,
            max_delay: Duration::from_millis(400),
        };
        let delays: Vec<_> = (0..4).map(|i| plan.delay_of(i).as_millis()).collect();
        assert_eq!(delays, [100, 200, 300, 400]);
    }

    #[test]
    fn delays_never_overflow_whatever_the_plan() {
        let huge = DelayedRequests {
            count: usize::MAX,
            max_delay: Duration::MAX,
        };
        assert_eq!(huge.delay_of(usize::MAX), Duration::MAX);
        // Duration::MAX is about 1.8e28 ns and usize::MAX about 1.8e19.
        assert!(huge.delay_of(0) < Duration::from_secs(2));
        let thirds = DelayedRequests {
            count: 3,
            max_delay: Duration::from_millis(1000),
        };
        let delays: Vec<_> = (0..4).map(|i| thirds.delay_of(i).as_nanos()).collect();
        assert_eq!(
            delays,
            [333_333_333, 666_666_666, 1_000_000_000, 1_000_000_000]
        );
        let none = DelayedRequests {
            count: 0,
            max_delay: Duration::from_millis(5),
        };
        assert_eq!(none.delay_of(0), Duration::from_millis(5));
    }

    #[test]
    fn requests_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Request>();
    }

    #[test]
    fn check_rejects_a_wrong_body_and_a_missing_output() {
        let plan = DelayedRequests {
            count: 1,
            max_delay: Duration::ZERO,
        };
        let wrong = vec![Counted {
            output: Ok(Response {
                status: 200,
                body: b"request-7".to_vec(),
            }),
            polls: 1,
        }];
        assert!(check(plan, wrong).is_err());
        assert!(check(plan, Vec::new()).is_err());
        let right = vec![Counted {
            output: Ok(Response {
                status: 200,
                body: b"request-0".to_vec(),
            }),
            polls: 3,
        }];
        assert_eq!(check(plan, right).expect("matches").polls, [3]);
    }
}
