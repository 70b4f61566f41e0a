//! The two questions the tool asks git: has the learner changed these files
//! without committing, and what did a file look like in earlier commits.

use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Which of `files` (relative to the root) have changes git has not
/// committed. An error when this is not a git checkout.
pub fn uncommitted(root: &Path, files: &[String]) -> Result<Vec<String>, String> {
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend(files.iter().map(String::as_str));
    let status = git(root, &args)?;
    Ok(status
        .lines()
        .filter_map(|line| line.get(3..))
        .map(str::to_string)
        .collect())
}

/// The file's text in each commit that touched it, newest first (at most
/// `limit` commits).
pub fn versions(root: &Path, file: &str, limit: usize) -> Vec<String> {
    let Ok(log) = git(
        root,
        &["log", "--format=%H", "-n", &limit.to_string(), "--", file],
    ) else {
        return Vec::new();
    };
    log.lines()
        .filter_map(|commit| git(root, &["show", &format!("{commit}:{file}")]).ok())
        .collect()
}
