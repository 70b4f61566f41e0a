//! Real hosts: a serve-and-fetch job across Linux network namespaces.
//!
//! Each "host" is a network namespace with one interface and an address
//! of its own; a sixth namespace holds the bridge that joins them, so the
//! machine's own network is never touched and nothing leaves the bridge:
//!
//! ```text
//!   ns "switch": bridge br0 ── v1 ── v2 ── v3 ── v4 ── v5   (veth ends)
//!                               │     │     │     │     │
//!   ns c  eth0 10.213.N.1 ──────┘     │     │     │     │   coordinator --fetch
//!   ns w1 eth0 10.213.N.2 ────────────┘     │     │     │   worker (killed after its maps)
//!   ns w2 eth0 10.213.N.3 ──────────────────┘     │     │   worker
//!   ns w3 eth0 10.213.N.4 ────────────────────────┘     │   worker
//!   ns x  eth0 10.213.N.5 ──────────────────────────────┘   an intruder without the secret
//! ```
//!
//! Every worker has a directory of its own and no shared one (the inputs
//! are read through the same path everywhere, as from a read-only store).
//! It needs root (`ip netns add`); without it, the test says it is skipped
//! and why, on the terminal, and does nothing else.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use mapreduce::auth::{CHALLENGE_LEN, HELLO};
use mapreduce::schedule::{TaskId, TaskKind};
use mapreduce::wire::Message;

/// Says on the terminal (past the test harness's capture) why the test
/// did not run.
fn skip(why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "netns test SKIPPED: {why}; it needs root and iproute2 (`ip netns`)"
    );
}

/// Runs `ip ARGS`; `Err` with its stderr if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output_in_time()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces of one run; deleted on drop, whatever happened.
struct Hosts {
    switch: String,
    hosts: Vec<String>,
    subnet: String,
}

impl Hosts {
    /// Makes the switch and `n` hosts, `10.213.N.1` to `10.213.N.n`.
    fn make(n: usize) -> Result<Hosts, String> {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let mut made = Hosts {
            switch: format!("mr-sw-{id}"),
            hosts: Vec::new(),
            subnet: format!("10.213.{}", std::process::id() % 250 + 1),
        };
        // From here on, `made` deletes whatever exists if a step fails.
        ip(&["netns", "add", &made.switch])?;
        let sw = made.switch.clone();
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let host = format!("mr-h{i}-{id}");
            ip(&["netns", "add", &host])?;
            made.hosts.push(host.clone());
            let port = format!("v{i}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &host,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            let addr = format!("{}.{i}/24", made.subnet);
            ip(&["-n", &host, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(made)
    }

    /// The address of host `i` (1-based), at `port`.
    fn addr(&self, i: usize, port: u16) -> SocketAddr {
        format!("{}.{i}:{port}", self.subnet).parse().unwrap()
    }

    /// A command that runs the mapreduce binary inside host `i`.
    fn mapreduce(&self, i: usize, cwd: &Path) -> Command {
        let mut words: Vec<OsString> = vec!["netns".into(), "exec".into()];
        words.push(self.hosts[i - 1].clone().into());
        words.extend(mapreduce::job::emulated(env!("CARGO_BIN_EXE_mapreduce")));
        let mut cmd = Command::new("ip");
        cmd.args(words).current_dir(cwd);
        cmd
    }

    /// Runs `f` on a thread that has entered host `i`'s namespace.
    fn on_host<T: Send>(&self, i: usize, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.hosts[i - 1]);
        thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap();
                // SAFETY: setns(2) on a valid namespace fd, for this
                // thread only; it reads and writes no memory of ours.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of each veth pair, and the
        // other end with it.
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Starts a process of the binary in host `i` with stderr collected.
fn spawn_in(hosts: &Hosts, i: usize, cwd: &Path, args: &[&str]) -> Worker {
    let mut child = hosts
        .mapreduce(i, cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a process in a namespace");
    let log = Lines::default();
    drain(&mut child, log.clone(), None);
    Worker { child, log }
}

/// Connects from inside host `i`, sends `bytes`, returns all it gets back.
fn intrude(hosts: &Hosts, i: usize, to: SocketAddr, bytes: Vec<u8>) -> Vec<u8> {
    hosts.on_host(i, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(10)).unwrap();
        s.set_read_timeout(Some(job_limit())).unwrap();
        s.write_all(&bytes).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    })
}

/// A frame padded to the length of a proof, so it is judged at once.
fn as_proof(message: Message) -> Vec<u8> {
    let mut bytes = message.encode();
    bytes.resize(2 * CHALLENGE_LEN, 0);
    bytes
}

#[test]
fn a_job_across_namespaces_survives_a_killed_worker_and_refuses_an_intruder() {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not running as root");
    }
    let hosts = match Hosts::make(5) {
        Ok(hosts) => hosts,
        Err(e) => return skip(&format!("cannot make network namespaces ({e})")),
    };
    let (c, w1, w2, w3, x) = (1, 2, 3, 4, 5);

    let dir = TestDir::new("netns");
    let root = dir.path();
    std::fs::write(root.join("job.secret"), [0x3cu8; 32]).unwrap();
    let secret = root.join("job.secret").display().to_string();
    let files: Vec<String> = books(root, 6, 10_000)
        .iter()
        .map(|f| root.join(f).display().to_string())
        .collect();
    let expected = sequential(&dir, "wc", &files);

    let listen = hosts.addr(c, 6824).to_string();
    let mut args = vec![
        "coordinator",
        "--fetch",
        "--listen",
        &listen,
        "--reduce",
        "3",
        "--secret-file",
        &secret,
    ];
    args.extend(files.iter().map(String::as_str));
    let mut coordinator = spawn_in(&hosts, c, root, &args);
    assert!(
        coordinator.log.wait_for("listening on", job_limit()),
        "{}",
        coordinator.log.joined()
    );

    // The intruder, before any worker: asks for a task, reports one done.
    let to = hosts.addr(c, 6824);
    for attempt in [
        as_proof(Message::GetTask { worker: 1 }),
        as_proof(Message::Done {
            task: TaskId {
                kind: TaskKind::Map,
                index: 0,
            },
            worker: 1,
        }),
    ] {
        let got = intrude(&hosts, x, to, attempt);
        assert_eq!(got.len(), HELLO.len() + CHALLENGE_LEN, "{got:?}");
        assert_eq!(&got[..HELLO.len()], HELLO);
    }

    let worker = |host: usize, name: &str| {
        std::fs::create_dir_all(root.join(name)).unwrap();
        let serve = hosts.addr(host, 0).to_string();
        spawn_in(
            &hosts,
            host,
            root,
            &[
                "worker",
                "--app",
                "reduce_pause",
                "--coordinator",
                &listen,
                "--dir",
                name,
                "--serve",
                &serve,
                "--secret-file",
                &secret,
                "--connect-timeout",
                "30",
            ],
        )
    };

    // The first worker does every map task alone, and is killed in the
    // pause before its first reduce: nobody has fetched its output.
    let mut victim = worker(w1, "w1");
    assert!(
        coordinator.log.wait_for("maps 6/6", job_limit()),
        "{}\n{}",
        coordinator.log.joined(),
        victim.log.joined()
    );
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();

    let mut others = vec![worker(w2, "w2"), worker(w3, "w3")];

    // The intruder tries w2's file server while the job runs.
    assert!(
        others[0].log.wait_for("serving map output", job_limit()),
        "{}",
        others[0].log.joined()
    );
    let got = intrude(
        &hosts,
        x,
        hosts.addr(w2, serve_port(&others[0].log.all())),
        as_proof(Message::Fetch { map: 0, reduce: 0 }),
    );
    assert_eq!(got.len(), HELLO.len() + CHALLENGE_LEN, "{got:?}");

    let status = wait_for(&mut coordinator.child, job_limit(), "coordinator");
    let log = coordinator.log.joined();
    assert!(status.success(), "{log}");
    for w in &mut others {
        assert!(wait_for(&mut w.child, Duration::from_secs(60), "worker").success());
    }
    assert!(log.contains("its map output is gone"), "{log}");
    let refused = log.matches("authentication failed").count();
    assert_eq!(refused, 2, "both attempts on the coordinator: {log}");
    assert!(
        others[0]
            .log
            .wait_for("authentication failed", Duration::from_secs(30)),
        "{}",
        others[0].log.joined()
    );
    assert_eq!(outputs(root, &["w2", "w3"]), sorted(expected));
}

/// The port in a worker's "serving map output from DIR at IP:PORT" line.
fn serve_port(lines: &[String]) -> u16 {
    let line = lines
        .iter()
        .find(|l| l.contains("serving map output"))
        .expect("the worker says where it serves");
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    addr.port()
}

/// The `mr-out-*` lines of the given directories, sorted; an output
/// written twice must be the same both times.
fn outputs(root: &Path, names: &[&str]) -> Vec<String> {
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
