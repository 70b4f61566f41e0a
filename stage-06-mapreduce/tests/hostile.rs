//! Hostile surroundings: a coordinator that stops mid-frame, an input that
//! is not a file, a disk that refuses to grow, debris of killed processes.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_worker_whose_coordinator_stops_mid_frame_exits_with_an_error_instead_of_hanging() {
    let dir = TestDir::new("midframe");
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap();
    let mut w = start_worker(&dir, "wc", addr);
    let (mut conn, _) = fake.accept().unwrap();
    // Read the worker's GetTask, then answer with half a length prefix
    // and nothing more, keeping the connection open.
    let mut request = [0u8; 64];
    let _ = conn.read(&mut request).unwrap();
    conn.write_all(&[0, 0]).unwrap();
    let started = Instant::now();
    let status = wait_for(&mut w.child, Duration::from_secs(60), "worker");
    assert!(
        !status.success(),
        "a broken reply is an error, not a finished job: {status}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        w.log
            .wait_for("not finished within", Duration::from_secs(10)),
        "{}",
        w.log.joined()
    );
    drop(conn);
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A FIFO nobody writes to: opening it for reading would wait for ever.
fn fifo(dir: &TestDir, name: &str) -> String {
    let path = dir.path().join(name);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo");
    name.to_string()
}

/// Runs `cmd` to its end with nothing on stdin, killed after
/// [`job_limit`].
fn finished(mut cmd: std::process::Command) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .output_in_time()
        .expect("mapreduce runs")
}

/// The error line of a run that must fail cleanly: exit status 1, never
/// killed by a signal (an abort, SIGXFSZ). `what` names the run.
fn failed_cleanly(out: &std::process::Output, what: &str) -> String {
    let err = stderr_of(out);
    assert_eq!(
        out.status.signal(),
        None,
        "{what}: killed by a signal instead of reporting the error: {err}"
    );
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    err
}

#[test]
fn a_fifo_given_as_input_is_refused_at_once_by_every_command() {
    let dir = TestDir::new("fifo");
    let input = fifo(&dir, "pipe.txt");
    for args in [
        vec!["sequential", "--app", "wc"],
        vec!["coordinator", "--listen", "127.0.0.1:0"],
        vec!["run", "--app", "wc", "--workers", "1", "--dir", "out"],
    ] {
        let mut cmd = dir.mapreduce();
        cmd.args(&args).arg(&input);
        let out = finished(cmd);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("pipe.txt") && err.contains("not a regular file"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_file_size_limit_fails_the_output_cleanly_and_leaves_no_temporary_file() {
    let dir = TestDir::new("fsize");
    let files = books(dir.path(), 2, 50_000);
    let mut cmd = dir.mapreduce();
    cmd.args(["sequential", "--app", "wc", "--dir", "seq"])
        .args(&files);
    // RLIMIT_FSIZE: the kernel's answer to a write past the limit is the
    // same as a full disk's (the write fails), plus a SIGXFSZ signal.
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setrlimit, which is async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = finished(cmd);
    let err = failed_cleanly(&out, "sequential under a file size limit");
    assert!(
        err.contains("mr-out-0"),
        "the message names the file: {err}"
    );
    let left: Vec<String> = std::fs::read_dir(dir.path().join("seq"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn run_removes_the_temporary_files_a_killed_worker_left_in_its_directory() {
    let dir = TestDir::new("debris");
    let files = books(dir.path(), 2, 2000);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // What AtomicFile leaves when its process is killed mid-write.
    let debris = [".mr-out-3.tmp.99999.0", ".mr-1-2.tmp.99999.7"];
    for name in debris {
        std::fs::write(out.join(name), b"half a file").unwrap();
    }
    std::fs::write(out.join("notes.tmp"), b"not ours").unwrap();
    let mut cmd = dir.mapreduce();
    cmd.args([
        "run",
        "--app",
        "wc",
        "--workers",
        "1",
        "--quiet",
        "--dir",
        "out",
    ])
    .args(&files);
    let result = finished(cmd);
    assert!(result.status.success(), "{}", stderr_of(&result));
    for name in debris {
        assert!(!out.join(name).exists(), "{name} is still there");
    }
    assert!(
        out.join("notes.tmp").exists(),
        "a file of the user's was removed"
    );
}

/// Starts a coordinator that may hold at most `max_fds` open
/// file descriptors, and returns it once it says where it listens.
fn coordinator_with_fd_limit(
    dir: &TestDir,
    max_fds: u64,
    args: &[&str],
    files: &[String],
) -> Coordinator {
    let mut cmd = dir.mapreduce();
    cmd.args(["coordinator", "--listen", "127.0.0.1:0", "--reduce", "2"])
        .args(args)
        .args(files)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setrlimit, which is async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: max_fds,
                rlim_max: max_fds,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let log = Lines::default();
    let (tx, rx) = std::sync::mpsc::channel();
    drain(&mut child, log.clone(), Some(tx));
    let coordinator = |addr| Coordinator {
        child,
        addr,
        log: log.clone(),
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no listening line: {}", log.joined()));
        if let Some(addr) = line.strip_prefix("coordinator: listening on ") {
            return coordinator(addr.trim().parse().unwrap());
        }
    }
}

#[test]
fn peers_that_connect_and_never_speak_cannot_starve_the_coordinator_of_descriptors() {
    let dir = TestDir::new("silent");
    let files = books(dir.path(), 2, 10_000);
    let expected = sequential(&dir, "wc", &files);
    let mut c = coordinator_with_fd_limit(&dir, 64, &[], &files);
    // More silent connections than the coordinator has descriptors: the
    // kernel completes them all, the coordinator accepts what it can.
    let silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(c.addr).unwrap())
        .collect();
    let mut w = start_worker(&dir, "wc", c.addr);
    let status = wait_for(&mut c.child, job_limit(), "coordinator");
    assert!(status.success(), "{}", c.log.joined());
    assert!(wait_for(&mut w.child, Duration::from_secs(30), "worker").success());
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
    drop(silent);
}

#[test]
fn a_corpus_larger_than_memory_is_written_in_pieces_until_the_disk_refuses() {
    let dir = TestDir::new("hugecorpus");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Far more than this machine's memory, in one file; the file size
    // limit (1 MiB) plays a disk that fills up early.
    for (args, out) in [
        (
            vec!["corpus", "--bytes", "1000G", "--files", "1", "--out", "big"],
            dir.path().join("big"),
        ),
        (
            vec!["run", "--app", "wc", "--bytes", "1000G", "--dir", "job"],
            tmp.join("mapreduce"),
        ),
    ] {
        let mut cmd = dir.mapreduce();
        cmd.args(&args).env("TMPDIR", &tmp);
        // SAFETY: the closure runs in the forked child before exec and
        // calls only setrlimit, which is async-signal-safe, and allocates
        // nothing.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 1 << 20,
                    rlim_max: 1 << 20,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let result = finished(cmd);
        let err = failed_cleanly(&result, &format!("{args:?}"));
        assert!(
            err.contains("corpus-000.txt") && err.contains("too large"),
            "{args:?}: the message names the file and the cause: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        let left: Vec<String> = std::fs::read_dir(&out)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{args:?}: left behind in {out:?}: {left:?}"
        );
    }
}

#[test]
fn an_input_larger_than_memory_is_an_error_naming_it_not_an_abort() {
    // With `vm.overcommit_memory = 1` the kernel grants any reservation,
    // and the program would go on to read a terabyte of zeros.
    if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|m| m.trim() == "1") {
        eprintln!("SKIPPED: vm.overcommit_memory is 1, so no reservation is ever refused");
        return;
    }
    let dir = TestDir::new("hugeinput");
    // A sparse file of 1 TiB: it takes no disk, but a map task that
    // reads it whole cannot hold it in memory.
    std::fs::File::create(dir.path().join("huge.txt"))
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    for args in [
        vec!["sequential", "--app", "wc", "--dir", "seq", "huge.txt"],
        vec![
            "run",
            "--app",
            "wc",
            "--workers",
            "1",
            "--quiet",
            "--dir",
            "job",
            "huge.txt",
        ],
    ] {
        let mut cmd = dir.mapreduce();
        cmd.args(&args);
        let result = finished(cmd);
        let err = failed_cleanly(&result, &format!("{args:?}"));
        assert!(
            err.contains("huge.txt") && err.contains("memory"),
            "{args:?}: the message names the file and the cause: {err}"
        );
        assert!(
            !err.contains("SIGABRT") && !err.contains("panicked"),
            "{args:?}: no process died: {err}"
        );
    }
}

#[test]
fn a_worker_with_the_secret_waits_its_turn_behind_silent_peers_and_the_job_finishes() {
    let dir = TestDir::new("silent-secret");
    let files = books(dir.path(), 2, 10_000);
    let expected = sequential(&dir, "wc", &files);
    std::fs::write(dir.path().join("job.secret"), [5u8; 32]).unwrap();
    let secret = ["--secret-file", "job.secret"];
    let mut c = coordinator_with_fd_limit(&dir, 64, &secret, &files);
    // Each silent peer is closed FRAME_TIMEOUT after it was accepted, but
    // with 150 of them and fewer than 64 descriptors the worker's turn to
    // be accepted (and challenged) comes only after two such rounds.
    let silent: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(c.addr).unwrap())
        .collect();
    let mut w = start_worker_with(&dir, "wc", c.addr, &secret);
    let status = wait_for(&mut c.child, job_limit(), "coordinator");
    assert!(
        status.success(),
        "coordinator:\n{}\nworker:\n{}",
        c.log.joined(),
        w.log.joined()
    );
    assert!(wait_for(&mut w.child, Duration::from_secs(30), "worker").success());
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
    drop(silent);
}
