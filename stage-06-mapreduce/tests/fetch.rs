//! Serve-and-fetch (`coordinator --fetch`, `worker --serve`): no shared
//! directory; each worker keeps its map output and serves it, reducers
//! fetch it, and lost map output is made again.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use common::*;
use mapreduce::auth::{CHALLENGE_LEN, HELLO};
use mapreduce::wire::Message;

const SECRET: &str = "job.secret";

fn secret(dir: &TestDir) {
    std::fs::write(dir.path().join(SECRET), [9u8; 32]).unwrap();
}

/// A worker with its own directory `name`, serving on a free port.
fn serving_worker(dir: &TestDir, app: &str, addr: SocketAddr, name: &str) -> Worker {
    start_worker_with(
        dir,
        app,
        addr,
        &[
            "--dir",
            name,
            "--serve",
            "127.0.0.1:0",
            "--secret-file",
            SECRET,
        ],
    )
}

/// Every `mr-out-*` line found in the workers' directories, sorted. An
/// output written twice (a reduce run twice) must be the same both times.
fn outputs_of(root: &Path, names: &[&str]) -> Vec<String> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for name in names {
        for path in output_files(&root.join(name)) {
            let text = std::fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            if let Some(earlier) = by_name.insert(file.clone(), text.clone()) {
                assert_eq!(earlier, text, "two different {file}");
            }
        }
    }
    let mut lines: Vec<String> = by_name
        .values()
        .flat_map(|t| t.lines().map(str::to_string))
        .collect();
    lines.sort();
    lines
}

fn finish(c: &mut Coordinator, workers: &mut [Worker]) {
    let status = wait_for(&mut c.child, job_limit(), "coordinator");
    let mut logs = c.log.joined();
    for w in workers.iter() {
        logs += "\n";
        logs += &w.log.joined();
    }
    assert!(status.success(), "{logs}");
}

#[test]
fn three_workers_with_their_own_directories_equal_sequential() {
    let dir = TestDir::new("fetch");
    secret(&dir);
    let files = books(dir.path(), 6, 10_000);
    let expected = sequential(&dir, "wc", &files);
    let mut c = start_coordinator(
        &dir,
        &["--fetch", "--reduce", "3", "--secret-file", SECRET],
        &files,
    );
    let names = ["w0", "w1", "w2"];
    let mut workers: Vec<Worker> = names
        .iter()
        .map(|n| serving_worker(&dir, "wc", c.addr, n))
        .collect();
    finish(&mut c, &mut workers);
    for w in &mut workers {
        assert!(wait_for(&mut w.child, Duration::from_secs(30), "worker").success());
    }
    assert_eq!(outputs_of(dir.path(), &names), sorted(expected));
    assert!(
        !dir.path().join("mr-out-0").exists(),
        "nothing is written to the shared directory"
    );
    assert!(
        c.log.wait_for(
            "is in the --dir of the worker serving",
            Duration::from_secs(30)
        ),
        "{}",
        c.log.joined()
    );
}

#[test]
fn a_worker_killed_before_its_map_output_was_fetched_has_it_made_again() {
    let dir = TestDir::new("fetch-kill");
    secret(&dir);
    let files = books(dir.path(), 4, 10_000);
    let expected = sequential(&dir, "wc", &files);
    let mut c = start_coordinator(
        &dir,
        &["--fetch", "--reduce", "3", "--secret-file", SECRET],
        &files,
    );
    // The victim runs every map task alone; its first reduce call then
    // pauses (reduce_pause), and it is killed in that pause: nobody has
    // merged its map output yet.
    let mut victim = serving_worker(&dir, "reduce_pause", c.addr, "victim");
    assert!(
        c.log.wait_for("maps 4/4", job_limit()),
        "{}",
        c.log.joined()
    );
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let names = ["w0", "w1"];
    let mut workers: Vec<Worker> = names
        .iter()
        .map(|n| serving_worker(&dir, "reduce_pause", c.addr, n))
        .collect();
    finish(&mut c, &mut workers);
    let log = c.log.joined();
    assert!(log.contains("its map output is gone"), "{log}");
    assert!(log.contains("run again"), "{log}");
    assert_eq!(outputs_of(dir.path(), &names), sorted(expected));
}

#[test]
fn a_worker_without_serve_is_refused_by_a_fetch_job_which_goes_on() {
    let dir = TestDir::new("fetch-mismatch");
    secret(&dir);
    let files = books(dir.path(), 2, 2000);
    let expected = sequential(&dir, "wc", &files);
    let mut c = start_coordinator(&dir, &["--fetch", "--secret-file", SECRET], &files);
    let mut plain = start_worker_with(&dir, "wc", c.addr, &["--secret-file", SECRET]);
    let status = wait_for(&mut plain.child, job_limit(), "worker");
    assert!(!status.success(), "{status}");
    assert!(
        plain
            .log
            .wait_for("start the worker with --serve", Duration::from_secs(30)),
        "{}",
        plain.log.joined()
    );
    let mut workers = vec![serving_worker(&dir, "wc", c.addr, "w0")];
    finish(&mut c, &mut workers);
    assert_eq!(outputs_of(dir.path(), &["w0"]), sorted(expected));
}

#[test]
fn a_serving_worker_is_refused_by_a_shared_directory_job() {
    let dir = TestDir::new("fetch-reverse");
    secret(&dir);
    let files = books(dir.path(), 1, 1000);
    let c = start_coordinator(&dir, &["--secret-file", SECRET], &files);
    let mut w = serving_worker(&dir, "wc", c.addr, "w0");
    let status = wait_for(&mut w.child, job_limit(), "worker");
    assert!(!status.success(), "{status}");
    assert!(
        w.log
            .wait_for("start the worker without --serve", Duration::from_secs(30)),
        "{}",
        w.log.joined()
    );
}

#[test]
fn a_fetch_without_the_secret_gets_the_challenge_and_nothing_else() {
    let dir = TestDir::new("fetch-intruder");
    secret(&dir);
    let files = books(dir.path(), 2, 2000);
    let mut c = start_coordinator(
        &dir,
        &["--fetch", "--reduce", "1", "--secret-file", SECRET],
        &files,
    );
    // reduce_pause keeps the worker (and its file server) up for a while
    // after its maps are done.
    let mut w = serving_worker(&dir, "reduce_pause", c.addr, "w0");
    assert!(
        c.log.wait_for("maps 2/2", job_limit()),
        "{}",
        c.log.joined()
    );
    let line = w
        .log
        .all()
        .into_iter()
        .find(|l| l.contains("serving map output"))
        .expect("the worker says where it serves");
    let serve: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut s = TcpStream::connect(serve).unwrap();
    s.set_read_timeout(Some(job_limit())).unwrap();
    // A request where the proof should be, padded to the proof's length
    // so the server judges it at once rather than waiting for more.
    let mut request = Message::Fetch { map: 0, reduce: 0 }.encode();
    request.resize(2 * CHALLENGE_LEN, 0);
    s.write_all(&request).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(got.len(), HELLO.len() + CHALLENGE_LEN, "{got:?}");
    assert!(
        w.log.wait_for("authentication failed", job_limit()),
        "{}",
        w.log.joined()
    );
    finish(&mut c, std::slice::from_mut(&mut w));
}

#[test]
fn a_worker_others_cannot_fetch_from_is_told_so_and_its_maps_run_elsewhere() {
    let dir = TestDir::new("fetch-unreachable");
    secret(&dir);
    let files = books(dir.path(), 3, 4000);
    let expected = sequential(&dir, "wc", &files);
    let mut c = start_coordinator(
        &dir,
        &["--fetch", "--reduce", "2", "--secret-file", SECRET],
        &files,
    );
    // A port nobody listens on: bind one, note it, close it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    // This worker advertises that dead address: it runs every map task,
    // then its own reduce cannot fetch from "itself".
    let mut lost = start_worker_with(
        &dir,
        "wc",
        c.addr,
        &[
            "--dir",
            "lost",
            "--serve",
            "127.0.0.1:0",
            "--advertise",
            &dead,
            "--secret-file",
            SECRET,
        ],
    );
    let status = wait_for(&mut lost.child, job_limit(), "worker");
    assert!(!status.success(), "{status}");
    assert!(
        lost.log.wait_for(
            "reducers cannot fetch map output from",
            Duration::from_secs(30)
        ),
        "{}",
        lost.log.joined()
    );
    let mut workers = vec![serving_worker(&dir, "wc", c.addr, "w0")];
    finish(&mut c, &mut workers);
    let log = c.log.joined();
    assert!(log.contains("could not fetch map"), "{log}");
    assert_eq!(outputs_of(dir.path(), &["w0"]), sorted(expected));
}

#[test]
fn a_reduce_held_by_a_worker_that_dies_while_maps_are_redone_is_handed_out_again() {
    let dir = TestDir::new("fetch-reduce-lost");
    secret(&dir);
    let files = books(dir.path(), 3, 4000);
    let expected = sequential(&dir, "wc", &files);
    // A deadline far beyond the test's limit: only a lost connection can
    // bring a task back here.
    let mut c = start_coordinator(
        &dir,
        &[
            "--fetch",
            "--reduce",
            "3",
            "--task-timeout",
            "100000",
            "--secret-file",
            SECRET,
        ],
        &files,
    );
    // m runs every map task, then pauses in reduce 0; r joins, takes
    // reduce 1, fetches from m and pauses too (reduce_pause).
    let mut m = serving_worker(&dir, "reduce_pause", c.addr, "m");
    assert!(
        c.log.wait_for("maps 3/3", job_limit()),
        "{}",
        c.log.joined()
    );
    let mut r = serving_worker(&dir, "reduce_pause", c.addr, "r");
    assert!(
        c.log.wait_for("reduce 1 handed to connection", job_limit()),
        "{}",
        c.log.joined()
    );
    // Its fetch of three small partitions takes milliseconds; the pause
    // that follows, 3 s.
    thread::sleep(Duration::from_secs(1));
    // m dies: its map output is gone, the job is back in the map phase.
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    assert!(
        c.log.wait_for("its map output is gone", job_limit()),
        "{}",
        c.log.joined()
    );
    // r dies holding reduce 1, during the map phase.
    r.child.kill().unwrap();
    r.child.wait().unwrap();
    let mut workers = vec![serving_worker(&dir, "wc", c.addr, "f")];
    finish(&mut c, &mut workers);
    let log = c.log.joined();
    assert!(log.contains("reduce 1: its worker left"), "{log}");
    assert_eq!(outputs_of(dir.path(), &["f"]), sorted(expected));
}
