//! The coordinator's task state machine, driven by hand.
//!
//! `cargo run -p stage-06-mapreduce --example schedule`
//!
//! No network and no waiting: the clock is a variable we move forward, which
//! is exactly how the unit tests of `schedule.rs` check the timeouts.

use std::time::{Duration, Instant};

use mapreduce::schedule::{Assignment, Schedule, TaskId, TaskKind};

fn main() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(10);
    let files = vec!["a.txt".to_string(), "b.txt".to_string()];
    let mut s = Schedule::new(files, 2, timeout);
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let map = |index| TaskId {
        kind: TaskKind::Map,
        index,
    };
    let show = |s: &Schedule, what: &str| {
        println!("{what:<44} map 0: {:?}", s.state(map(0)).map(short));
        println!(
            "{:<44} map 1: {:?}   phase {:?}",
            "",
            s.state(map(1)).map(short),
            s.phase()
        );
    };

    println!("t=0   worker 1 asks: {}", describe(s.assign(1, at(0)), t0));
    println!("t=0   worker 2 asks: {}", describe(s.assign(2, at(0)), t0));
    println!("t=1   worker 3 asks: {}", describe(s.assign(3, at(1)), t0));
    show(&s, "after three requests");
    println!("t=4   worker 2 reports map 1: {:?}", s.complete(map(1)));
    println!(
        "t=12  worker 3 asks again: {}",
        describe(s.assign(3, at(12)), t0)
    );
    show(&s, "worker 1 missed its deadline (t=10)");
    println!(
        "t=13  worker 1 reports map 0 late: {:?}",
        s.complete(map(0))
    );
    println!("t=14  worker 3 reports map 0 too: {:?}", s.complete(map(0)));
    show(&s, "every map done: the reduce phase begins");
    println!("t=14  worker 3 asks: {}", describe(s.assign(3, at(14)), t0));
}

fn describe(a: Assignment, t0: Instant) -> String {
    match a {
        Assignment::Wait { until: Some(t) } => {
            format!("Wait (at most until t={}s)", (t - t0).as_secs())
        }
        other => format!("{other:?}"),
    }
}

fn short(state: mapreduce::schedule::TaskState) -> String {
    use mapreduce::schedule::TaskState::*;
    match state {
        Idle { taken_back } => format!("Idle (taken back: {taken_back})"),
        InProgress { worker, .. } => format!("InProgress (worker {worker})"),
        Done => "Done".to_string(),
    }
}
