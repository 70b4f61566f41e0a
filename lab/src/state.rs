//! What the tool remembers between runs, in `.lab/` at the workspace root
//! (git ignores it):
//!
//! ```text
//! .lab/progress          one line a lab: "5.2 passed" or "5.2 failing 3"
//! .lab/solutions/5.2/    the solution regions `start` took out, by anchor
//! .lab/attempts/         a learner's regions that `solution --restore` or a second `start` replaced
//! .lab/verify-backup/    files `verify` has changed, until it puts them back
//! .lab/lock              locked by each running command (by `verify` alone)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The `.lab` directory.
pub fn dir(root: &Path) -> PathBuf {
    root.join(".lab")
}

/// How a lab fared in its last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Failing, after this many checks that failed (it picks the hint).
    Failing(u32),
}

/// The last outcome of every lab checked so far.
pub fn progress(root: &Path) -> BTreeMap<String, Outcome> {
    let text = std::fs::read_to_string(dir(root).join("progress")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next()?.to_string();
            let outcome = match (words.next()?, words.next()) {
                ("passed", _) => Outcome::Passed,
                ("failing", Some(n)) => Outcome::Failing(n.parse().ok()?),
                _ => return None,
            };
            Some((id, outcome))
        })
        .collect()
}

/// Record the outcome of a check; returns how many checks of this lab have
/// failed in a row (0 when it passed).
/// An error names the file.
pub fn record(root: &Path, id: &str, passed: bool) -> Result<u32, String> {
    let mut all = progress(root);
    let failures = match (passed, all.get(id)) {
        (true, _) => 0,
        // .lab/progress may have been edited to hold any count.
        (false, Some(Outcome::Failing(n))) => n.saturating_add(1),
        (false, _) => 1,
    };
    let outcome = if passed {
        Outcome::Passed
    } else {
        Outcome::Failing(failures)
    };
    all.insert(id.to_string(), outcome);
    let mut text = String::new();
    for (id, outcome) in &all {
        match outcome {
            Outcome::Passed => text.push_str(&format!("{id} passed\n")),
            Outcome::Failing(n) => text.push_str(&format!("{id} failing {n}\n")),
        }
    }
    let path = dir(root).join("progress");
    write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(failures)
}

/// Where `start` keeps the solution of one region.
pub fn saved_solution(root: &Path, id: &str, anchor: &str) -> PathBuf {
    dir(root).join("solutions").join(id).join(anchor)
}

/// Keep a learner's region text that is about to be replaced; returns where.
pub fn save_attempt(root: &Path, id: &str, anchor: &str, text: &str) -> Result<PathBuf, String> {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let path = dir(root)
        .join("attempts")
        .join(format!("{id}-{anchor}-{stamp}.rs"));
    write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Held for the whole of one `cargo lab` command: shared by most
/// commands, exclusive by `verify`, which blanks files under everybody.
/// It is an `flock` on `.lab/lock`, so the kernel drops it when the
/// process dies, and a killed verify never leaves it behind.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

/// Take the lock without waiting: `exclusive` for `verify`. An error
/// names the reason (another command holds it).
pub fn lock(root: &Path, exclusive: bool) -> Result<Lock, String> {
    use std::os::fd::AsRawFd;
    let path = dir(root).join("lock");
    std::fs::create_dir_all(dir(root))
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        })
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
        .and_then(|file| {
            let mode = if exclusive {
                libc::LOCK_EX
            } else {
                libc::LOCK_SH
            };
            // SAFETY: `flock` takes an open fd, which `file` owns and keeps
            // open for as long as the lock is held.
            if unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) } == 0 {
                return Ok(Lock { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::WouldBlock {
                return Err(format!("cannot lock {}: {error}", path.display()));
            }
            Err(if exclusive {
                "another `cargo lab` command is running (a `watch`?):                  `cargo lab verify` changes the labs' files, so it runs alone;                  stop the other command first"
                    .to_string()
            } else {
                "a `cargo lab verify` is running and has stubs in the labs' files:                  wait for it to finish (it puts them back)"
                    .to_string()
            })
        })
}

/// Write a file, making its directory first.
pub fn write(path: &Path, text: impl AsRef<[u8]>) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_up_until_a_pass_resets_them() {
        let root = std::env::temp_dir().join(format!("lab-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(record(&root, "5.2", false).unwrap(), 1);
        assert_eq!(record(&root, "5.2", false).unwrap(), 2);
        assert_eq!(record(&root, "4.1", true).unwrap(), 0);
        assert_eq!(progress(&root).get("5.2"), Some(&Outcome::Failing(2)));
        assert_eq!(record(&root, "5.2", true).unwrap(), 0);
        assert_eq!(progress(&root).get("5.2"), Some(&Outcome::Passed));
        assert_eq!(progress(&root).get("4.1"), Some(&Outcome::Passed));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_state_file_that_cannot_be_written_is_named_in_the_error() {
        let root = std::env::temp_dir().join(format!("lab-state-blocked-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir(&root), "a file where the directory should be").unwrap();
        let error = record(&root, "5.2", true).unwrap_err();
        assert!(error.contains(".lab/progress"), "{error}");
        let error = save_attempt(&root, "5.2", "lab_5_2_a", "x").unwrap_err();
        assert!(error.contains(".lab/attempts/5.2-lab_5_2_a"), "{error}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn commands_share_the_lock_and_verify_takes_it_alone() {
        let root = std::env::temp_dir().join(format!("lab-state-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let watch = lock(&root, false).unwrap();
        let hint = lock(&root, false).expect("commands run side by side");
        let error = lock(&root, true).expect_err("verify waits for the others");
        assert!(error.contains("runs alone"), "{error}");
        drop((watch, hint));
        let verify = lock(&root, true).unwrap();
        let error = lock(&root, false).expect_err("nothing runs beside verify");
        assert!(error.contains("`cargo lab verify` is running"), "{error}");
        drop(verify);
        lock(&root, false).expect("a verify that ended lets go");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_garbled_progress_file_counts_on_without_overflowing() {
        let root = std::env::temp_dir().join(format!("lab-state-garbled-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(
            &dir(&root).join("progress"),
            "5.2 failing 4294967295\n4.1 failing -3\n\u{0}\u{fffd} passed\n4.2\n",
        )
        .unwrap();
        assert_eq!(record(&root, "5.2", false).unwrap(), u32::MAX);
        assert_eq!(record(&root, "4.1", false).unwrap(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
