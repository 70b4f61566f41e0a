//! Backup tasks (`--backup-tasks`, the paper's section 3.6): near the end
//! of a phase, an idle worker gets a copy of a task still running; the
//! first report wins and the other is harmless.

mod common;

use std::time::Duration;

use common::*;

/// Runs `straggler` on three workers; returns the coordinator's log.
fn straggler_job(dir: &TestDir, files: &[String], args: &[&str]) -> Vec<String> {
    let c = distributed(dir, "straggler", 3, args, files);
    assert!(
        c.log.wait_for("job done", Duration::from_secs(30)),
        "{}",
        c.log.joined()
    );
    c.log.all()
}

#[test]
fn an_idle_worker_gets_a_copy_of_the_stragglers_task_and_the_output_is_unchanged() {
    let dir = TestDir::new("backup");
    let files = books(dir.path(), 6, 2000);
    let expected = sequential(&dir, "wc", &files);
    let log = straggler_job(&dir, &files, &["--reduce", "3", "--backup-tasks"]);
    assert!(
        log.iter().any(|l| l.contains("backup copy")),
        "a copy was handed out: {log:#?}"
    );
    let summary = log.iter().find(|l| l.contains("job done")).unwrap();
    assert!(
        !summary.contains(" 0 backup copies"),
        "the report counts it: {summary}"
    );
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
}

#[test]
fn without_backup_tasks_nobody_gets_a_copy() {
    let dir = TestDir::new("no-backup");
    let files = books(dir.path(), 3, 1000);
    let expected = sequential(&dir, "wc", &files);
    let log = straggler_job(&dir, &files, &["--reduce", "2"]);
    assert!(!log.iter().any(|l| l.contains("backup copy")), "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains(" 0 backup copies")),
        "{log:#?}"
    );
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
}

#[test]
fn run_with_backup_tasks_leaves_no_straggler_running_behind_it() {
    let dir = TestDir::new("run-backup");
    let files = books(dir.path(), 6, 2000);
    let expected = sequential(&dir, "wc", &files);
    let out = dir
        .mapreduce()
        .args([
            "run",
            "--app",
            "straggler",
            "--workers",
            "3",
            "--reduce",
            "2",
            "--backup-tasks",
            "--dir",
            "job",
        ])
        .args(&files)
        .output_in_time()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let straggler: i32 = std::fs::read_to_string(dir.path().join("job/mr-straggler"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill with signal 0 sends nothing; it only asks whether the
    // process exists.
    let alive = unsafe { libc::kill(straggler, 0) } == 0;
    assert!(!alive, "the straggler {straggler} outlived `run`");
    assert_eq!(sorted_outputs(&dir.path().join("job")), sorted(expected));
}
