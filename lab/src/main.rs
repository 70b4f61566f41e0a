//! `cargo lab`: the course's labs, from the repository root.
//!
//! ```text
//! cargo lab list              every lab: id, title, files, time, status
//! cargo lab progress          how many labs of each stage pass
//! cargo lab start S.N         blank the lab's regions (stubs that compile)
//! cargo lab check S.N         run the lab's grading tests
//! cargo lab hint S.N          the next hint
//! cargo lab solution S.N      show the reference solution (--restore: put it back)
//! cargo lab watch S.N         check again whenever a file of the lab changes
//! cargo lab verify [S.N...]   for every lab: blanked, a grading test fails;
//!                             restored, all pass (CI runs this)
//! ```
//!
//! Labs are listed in each stage's `labs.toml` ([`registry`]); a lab's
//! regions are marked in the source by anchor lines ([`regions`]).

mod edit;
mod git;
mod grade;
mod regions;
mod registry;
mod state;

use clap::{Parser, Subcommand};
use edit::Files;
use registry::Lab;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Parser, Debug)]
#[command(
    name = "cargo lab",
    about = "Start, check and verify the course's labs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every lab, one a line: id, title, the files it blanks, the time it takes, its status.
    List,
    /// How many labs of each stage pass.
    Progress,
    /// Replace the lab's solution with stubs, so you can write it yourself.
    Start { id: String },
    /// Run the tests that grade the lab.
    Check { id: String },
    /// Show the lab's next hint (they grow stronger).
    Hint { id: String },
    /// Show the lab's reference solution.
    Solution {
        id: String,
        /// Put the solution back into the source (your version is kept in .lab/attempts).
        #[arg(long)]
        restore: bool,
    },
    /// Check the lab again each time one of its files changes (Ctrl-C to stop).
    Watch { id: String },
    /// For each lab: blanked, at least one grading test fails; restored, all pass.
    Verify { ids: Vec<String> },
}

fn main() -> ExitCode {
    // Die quietly when the reader of our output goes away (`cargo lab list | head`).
    // SAFETY: setting a signal's disposition to the default touches no memory
    // of ours; it runs before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let root = workspace_root();
    match run(&root, cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cargo lab: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: this package sits directly below it.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn run(root: &Path, command: Command) -> Result<ExitCode, String> {
    // A running verify has stubs in place and puts them back itself; only
    // one that was killed (and so let go of the lock) needs undoing.
    let _lock = state::lock(root, matches!(command, Command::Verify { .. }))?;
    // A verify that was killed half-way left stubs in place: undo that first.
    let restored = edit::restore_backup(root)?;
    if !restored.is_empty() {
        println!(
            "(put back files an interrupted `cargo lab verify` had changed: {})",
            restored.join(", ")
        );
    }
    let labs = registry::load(root)?;
    let find = |id: &str| -> Result<&Lab, String> {
        labs.iter().find(|lab| lab.id == id).ok_or_else(|| {
            let ids: Vec<&str> = labs.iter().map(|lab| lab.id.as_str()).collect();
            format!("no lab {id:?}; the labs are {}", ids.join(", "))
        })
    };
    match command {
        Command::List => list(root, &labs),
        Command::Progress => progress(root, &labs),
        Command::Start { id } => start(root, find(&id)?),
        Command::Check { id } => check(root, &labs, find(&id)?),
        Command::Hint { id } => hint(root, find(&id)?),
        Command::Solution { id, restore } => solution(root, find(&id)?, restore),
        Command::Watch { id } => watch(root, &labs, find(&id)?),
        Command::Verify { ids } => {
            let chosen: Vec<&Lab> = if ids.is_empty() {
                labs.iter().collect()
            } else {
                ids.iter().map(|id| find(id)).collect::<Result<_, _>>()?
            };
            verify(root, &chosen)
        }
    }
}

/// Where a lab stands: from its regions and its last check.
fn status(root: &Path, lab: &Lab) -> &'static str {
    let stubbed = edit::stubbed(lab);
    let outcome = state::progress(root).get(&lab.id).copied();
    match (stubbed.contains(&true), outcome) {
        (true, Some(state::Outcome::Failing(_))) => "failing",
        (true, _) => "started",
        (false, Some(state::Outcome::Passed)) => "passed",
        (false, Some(state::Outcome::Failing(_))) => "failing",
        (false, None) => "not started",
    }
}

fn list(root: &Path, labs: &[Lab]) -> Result<ExitCode, String> {
    let title_width = labs.iter().map(|lab| lab.title.len()).max().unwrap_or(0);
    for lab in labs {
        println!(
            "{:<5} {:<title_width$}  {}  ~{} min  {}",
            lab.id,
            lab.title,
            lab.files(root).join(", "),
            lab.minutes,
            status(root, lab)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn progress(root: &Path, labs: &[Lab]) -> Result<ExitCode, String> {
    let mut stages: Vec<u32> = labs.iter().map(|lab| lab.stage.number).collect();
    stages.dedup();
    for stage in stages {
        let of_stage: Vec<&Lab> = labs
            .iter()
            .filter(|lab| lab.stage.number == stage)
            .collect();
        let passed = of_stage
            .iter()
            .filter(|lab| status(root, lab) == "passed")
            .count();
        let bar: String = of_stage
            .iter()
            .map(|lab| {
                if status(root, lab) == "passed" {
                    '#'
                } else {
                    '-'
                }
            })
            .collect();
        println!(
            "stage {stage}: [{bar}] {passed} of {} labs pass",
            of_stage.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn start(root: &Path, lab: &Lab) -> Result<ExitCode, String> {
    let mut texts = Files::read(lab)?;
    let bodies = texts.bodies(lab)?;
    let started = lab
        .regions
        .iter()
        .zip(&bodies)
        .all(|(region, body)| regions::holds_stub(body, &region.stub));
    // Nothing would be written if the lab is started already, so its
    // stubs (uncommitted changes too) are no reason to refuse.
    let files = lab.files(root);
    match git::uncommitted(root, &files) {
        Ok(changed) if !changed.is_empty() && !started => {
            return Err(format!(
                "lab {} would overwrite changes you have not committed, in: {}\n\
                 Commit them (git commit -am \"my work\") or put them aside (git stash), \
                 then run `cargo lab start {}` again.",
                lab.id,
                changed.join(", "),
                lab.id
            ));
        }
        Ok(_) => {}
        Err(e) => println!(
            "(not a git checkout, so uncommitted work cannot be detected: {e}; \
             the solution is kept in .lab/solutions)"
        ),
    }
    let mut fresh = 0;
    for (region, body) in lab.regions.iter().zip(&bodies) {
        if !regions::holds_stub(body, &region.stub) {
            let saved = state::saved_solution(root, &lab.id, &region.anchor);
            if !saved.exists() {
                state::write(&saved, body).map_err(|e| format!("{}: {e}", saved.display()))?;
            } else if std::fs::read_to_string(&saved).ok().as_deref() != Some(body.as_str()) {
                // Started before: this is your code, which git may not hold.
                let kept = state::save_attempt(root, &lab.id, &region.anchor, body)?;
                println!(
                    "Your version of {} is kept in {}",
                    region.anchor,
                    registry::relative(root, &kept)
                );
            }
            fresh += 1;
        }
    }
    if fresh == 0 {
        println!("{lab} is started already: its regions hold their stubs.");
    } else {
        texts.set_bodies(lab, &vec![None; lab.regions.len()])?;
        texts.write()?;
        println!("Started {lab}.");
    }
    println!(
        "\n{}\n\nWrite your code in place of the stubs:",
        lab.summary
    );
    print_places(root, lab)?;
    println!(
        "\nCheck your work:  cargo lab check {id}\nStuck?            cargo lab hint {id}   \
         (the answer: cargo lab solution {id})",
        id = lab.id
    );
    Ok(ExitCode::SUCCESS)
}

/// `file:line` of each region of the lab.
fn print_places(root: &Path, lab: &Lab) -> Result<(), String> {
    let texts = Files::read(lab)?;
    for region in &lab.regions {
        let path = lab.stage.dir.join(&region.file);
        let (_, text) = texts.texts.iter().find(|(p, _)| *p == path).expect("read");
        let span = regions::find(text, &region.anchor)?;
        println!(
            "  {}:{}  (between the `{}` markers)",
            registry::relative(root, &path),
            span.first_line(),
            region.anchor
        );
    }
    Ok(())
}

fn check(root: &Path, labs: &[Lab], lab: &Lab) -> Result<ExitCode, String> {
    println!("Checking {lab} ({} tests)", lab.test_count());
    let options = grade::Options {
        live: true,
        ..grade::Options::default()
    };
    let verdicts = match grade::build(root, lab, true) {
        Ok(()) => grade::run(root, lab, &options)?,
        Err(_) => {
            println!("\nThe code does not compile yet: the compiler's messages are above.");
            lab.graders
                .iter()
                .flat_map(|grader| &grader.tests)
                .map(|test| grade::Verdict {
                    test: test.clone(),
                    passed: false,
                    message: "not run: the code does not compile".to_string(),
                    reported: false,
                })
                .collect()
        }
    };
    let passed = verdicts.iter().filter(|v| v.passed).count();
    let failed = verdicts.len() - passed;
    for verdict in verdicts.iter().filter(|v| !v.passed) {
        println!("\n--- {} ---", verdict.test);
        for line in verdict.message.trim().lines() {
            println!("    {line}");
        }
    }
    let failures = state::record(root, &lab.id, failed == 0)?;
    println!();
    if failed == 0 {
        println!(
            "All {passed} grading tests of lab {} pass: the lab is done.",
            lab.id
        );
        if !edit::stubbed(lab).contains(&true)
            && state::saved_solution(root, &lab.id, &lab.regions[0].anchor).exists()
        {
            println!(
                "(Compare with the reference: cargo lab solution {}.)",
                lab.id
            );
        }
        let of_stage: Vec<&Lab> = labs
            .iter()
            .filter(|l| l.stage.number == lab.stage.number)
            .collect();
        let done = of_stage
            .iter()
            .filter(|l| status(root, l) == "passed")
            .count();
        println!(
            "Stage {}: {done} of {} labs pass.",
            lab.stage.number,
            of_stage.len()
        );
        if let Some(next) = labs
            .iter()
            .find(|l| l.number() > lab.number() && status(root, l) != "passed")
        {
            println!("Next: {next} (cargo lab start {}).", next.id);
        }
    } else if !lab.hints.is_empty() {
        let shown = (failures as usize).clamp(1, lab.hints.len());
        println!(
            "Hint {shown} of {}: {}",
            lab.hints.len(),
            lab.hints[shown - 1]
        );
        if shown < lab.hints.len() {
            println!(
                "(Each failing check shows a stronger hint; the answer: cargo lab solution {}.)",
                lab.id
            );
        }
    }
    println!("lab {}: {passed} passed, {failed} failed", lab.id);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn hint(root: &Path, lab: &Lab) -> Result<ExitCode, String> {
    if lab.hints.is_empty() {
        println!(
            "Lab {} has no hints; the chapter's Labs section says what to write.",
            lab.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    let seen_file = state::dir(root).join("hints").join(&lab.id);
    let seen: usize = std::fs::read_to_string(&seen_file)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    let next = (seen + 1).min(lab.hints.len());
    for (i, hint) in lab.hints.iter().enumerate().take(next) {
        println!("Hint {} of {}: {hint}", i + 1, lab.hints.len());
    }
    state::write(&seen_file, next.to_string())
        .map_err(|e| format!("cannot write {}: {e}", seen_file.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The reference text of each region: kept by `start`, still in place, or
/// found in the history of the file.
fn reference(root: &Path, lab: &Lab) -> Result<Vec<String>, String> {
    let current = Files::read(lab)?.bodies(lab)?;
    let mut solutions = Vec::new();
    for (region, body) in lab.regions.iter().zip(current) {
        let saved = state::saved_solution(root, &lab.id, &region.anchor);
        if let Ok(text) = std::fs::read_to_string(&saved) {
            solutions.push(text);
            continue;
        }
        if !regions::holds_stub(&body, &region.stub) {
            solutions.push(body);
            continue;
        }
        let file = registry::relative(root, &lab.stage.dir.join(&region.file));
        let from_history = git::versions(root, &file, 200)
            .into_iter()
            .find_map(|text| {
                let span = regions::find(&text, &region.anchor).ok()?;
                let body = regions::body(&text, span);
                (!regions::holds_stub(&body, &region.stub)).then_some(body)
            });
        match from_history {
            Some(text) => solutions.push(text),
            None => {
                return Err(format!(
                    "cannot find the solution of {} ({file}): not in .lab/solutions nor in git's history",
                    region.anchor
                ));
            }
        }
    }
    Ok(solutions)
}

fn solution(root: &Path, lab: &Lab, restore: bool) -> Result<ExitCode, String> {
    let solutions = reference(root, lab)?;
    if !restore {
        for (region, text) in lab.regions.iter().zip(&solutions) {
            println!("// {} ({})", region.file, region.anchor);
            print!("{text}");
            println!();
        }
        println!(
            "(To put it into the source: cargo lab solution {} --restore)",
            lab.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut files = Files::read(lab)?;
    let current = files.bodies(lab)?;
    for ((region, now), reference) in lab.regions.iter().zip(&current).zip(&solutions) {
        if !regions::holds_stub(now, &region.stub) && now != reference {
            let kept = state::save_attempt(root, &lab.id, &region.anchor, now)?;
            println!(
                "Your version of {} is kept in {}",
                region.anchor,
                registry::relative(root, &kept)
            );
        }
    }
    let bodies: Vec<Option<String>> = solutions.into_iter().map(Some).collect();
    files.set_bodies(lab, &bodies)?;
    files.write()?;
    println!("The reference solution of {lab} is back in place.");
    Ok(ExitCode::SUCCESS)
}

fn modified_times(lab: &Lab) -> Vec<Option<SystemTime>> {
    lab.regions
        .iter()
        .map(|region| {
            std::fs::metadata(lab.stage.dir.join(&region.file))
                .and_then(|m| m.modified())
                .ok()
        })
        .collect()
}

fn watch(root: &Path, labs: &[Lab], lab: &Lab) -> Result<ExitCode, String> {
    loop {
        let seen = modified_times(lab);
        check(root, labs, lab)?;
        println!(
            "\n(watching {}: save a file to check again; Ctrl-C to stop)",
            lab.files(root).join(", ")
        );
        while modified_times(lab) == seen {
            std::thread::sleep(Duration::from_millis(500));
        }
        println!();
    }
}

fn verify(root: &Path, labs: &[&Lab]) -> Result<ExitCode, String> {
    let mut files: Vec<String> = labs.iter().flat_map(|lab| lab.files(root)).collect();
    files.sort();
    files.dedup();
    if let Ok(changed) = git::uncommitted(root, &files)
        && !changed.is_empty()
    {
        return Err(format!(
            "verify changes the labs' files and puts them back; commit or stash your changes first: {}",
            changed.join(", ")
        ));
    }
    // The stubs are built where the learner's code is: only the stage's own
    // crates are rebuilt, never the dependencies, on every target.
    let blank = grade::Options {
        stop_at_first_failure: true,
        live: false,
    };
    // Every region must be found before any file is touched.
    for lab in labs {
        Files::read(lab)?.bodies(lab)?;
    }
    let mut problems = Vec::new();
    println!("Blanked, each lab must fail a grading test:");
    for lab in labs {
        edit::back_up(root, &files_of(lab))?;
        let originals = Files::read(lab)?;
        let outcome = blank_and_grade(root, lab, &blank);
        originals.write()?;
        edit::forget_written(root, &files_of(lab))?;
        match outcome {
            Ok(note) => println!("  lab {:<5} ok   ({note})", lab.id),
            Err(e) => {
                println!("  lab {:<5} PROBLEM: {e}", lab.id);
                problems.push(format!("lab {}: {e}", lab.id));
            }
        }
    }
    edit::restore_backup(root)?;
    println!("\nWith the reference solutions, every grading test must pass:");
    let restored = grade::Options::default();
    for lab in labs {
        let outcome = match grade::build(root, lab, false) {
            Err(output) => Err(format!("the solution does not compile:\n{output}")),
            Ok(()) => {
                let verdicts = grade::run(root, lab, &restored)?;
                let failed: Vec<String> = verdicts
                    .iter()
                    .filter(|v| !v.passed)
                    .map(|v| format!("{}: {}", v.test, first_line(&v.message)))
                    .collect();
                if failed.is_empty() {
                    Ok(verdicts.len())
                } else {
                    Err(format!("failing with the solution: {}", failed.join("; ")))
                }
            }
        };
        match outcome {
            Ok(count) => println!("  lab {:<5} ok   ({count} tests pass)", lab.id),
            Err(e) => {
                println!("  lab {:<5} PROBLEM: {e}", lab.id);
                problems.push(format!("lab {}: {e}", lab.id));
            }
        }
    }
    println!();
    if problems.is_empty() {
        println!(
            "verify: {} labs, each can fail and each passes with its solution",
            labs.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "verify: {} of {} labs have problems:",
            problems.len(),
            labs.len()
        );
        for problem in &problems {
            println!("  {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Put the lab's stubs in, build, and run its graders until one fails.
/// Returns which test failed; an error when the stubs do not compile or
/// every test passes with them.
fn blank_and_grade(root: &Path, lab: &Lab, options: &grade::Options) -> Result<String, String> {
    let mut blanked = Files::read(lab)?;
    blanked.set_bodies(lab, &vec![None; lab.regions.len()])?;
    blanked.write_noted(root)?;
    if let Err(output) = grade::build(root, lab, false) {
        return Err(format!("its stubs do not compile:\n{output}"));
    }
    let verdicts = grade::run(root, lab, options)?;
    let failed = verdicts
        .iter()
        .find(|v| !v.passed && v.reported)
        .or_else(|| verdicts.iter().find(|v| !v.passed))
        .ok_or("every grading test passes with the stubs in place: the grader cannot fail")?;
    Ok(match first_line(&failed.message) {
        "" => format!("{} fails", failed.test),
        why => format!("{} fails: {why}", failed.test),
    })
}

fn files_of(lab: &Lab) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for region in &lab.regions {
        let path = lab.stage.dir.join(&region.file);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|line| !line.trim().is_empty() && !line.starts_with("thread '"))
        .unwrap_or("")
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace of its own, not a git checkout, with one lab of one region.
    fn scratch(name: &str) -> (PathBuf, Lab) {
        let root = std::env::temp_dir().join(format!("lab-main-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("stage-04-x");
        state::write(
            &dir.join("src/f.rs"),
            "fn f() -> u32 {\n    // ANCHOR: lab_4_1_f\n    42\n    // ANCHOR_END: lab_4_1_f\n}\n",
        )
        .unwrap();
        let mut lab: Lab = toml::from_str(
            r#"
            id = "4.1"
            title = "f"
            minutes = 1
            summary = "Write f."
            [[region]]
            file = "src/f.rs"
            anchor = "lab_4_1_f"
            stub = 'todo!()'
            [[grader]]
            target = "lib"
            tests = ["t"]
            "#,
        )
        .unwrap();
        lab.stage = registry::Stage {
            dir,
            package: "stage-04-x".to_string(),
            number: 4,
        };
        (root, lab)
    }

    fn attempts(root: &Path) -> Vec<String> {
        std::fs::read_dir(state::dir(root).join("attempts"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What a live `cargo lab verify` holds: an exclusive `flock` on
    /// `.lab/lock` (released by the kernel when the process dies).
    fn hold_lock_as_a_running_verify(root: &Path) -> std::fs::File {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(state::dir(root)).unwrap();
        let file = std::fs::File::create(state::dir(root).join("lock")).unwrap();
        // SAFETY: `flock` only takes an open fd, which `file` owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        file
    }

    #[test]
    fn a_command_run_while_a_verify_runs_leaves_its_stubs_alone_and_says_why() {
        let (root, lab) = scratch("during-verify");
        let file = lab.stage.dir.join("src/f.rs");
        let original = std::fs::read_to_string(&file).unwrap();
        let _verify = hold_lock_as_a_running_verify(&root);
        // The running verify has backed the file up and blanked it.
        edit::back_up(&root, std::slice::from_ref(&file)).unwrap();
        let mut blanked = Files::read(&lab).unwrap();
        blanked.set_bodies(&lab, &[None]).unwrap();
        blanked.write_noted(&root).unwrap();
        let stubbed = std::fs::read_to_string(&file).unwrap();
        assert_ne!(stubbed, original);

        let error = run(&root, Command::List).expect_err("refused while verify runs");
        assert!(error.contains("cargo lab verify"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            stubbed,
            "the live verify's stubs were put back under it"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn starting_a_lab_whose_region_holds_another_labs_region_is_refused_and_changes_nothing() {
        let (root, mut lab) = scratch("nested");
        let file = lab.stage.dir.join("src/f.rs");
        let nested = "fn f() -> u32 {\n    // ANCHOR: lab_4_1_f\n    let a = 40;\n    \
                      // ANCHOR: lab_4_2_g\n    a + 2\n    // ANCHOR_END: lab_4_2_g\n    \
                      // ANCHOR_END: lab_4_1_f\n}\n";
        std::fs::write(&file, nested).unwrap();
        let error = start(&root, &lab).expect_err("lab 4.2 would lose its markers");
        assert!(error.contains("lab_4_2_g"), "{error}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), nested);
        // The inner lab is a region of its own and starts as usual.
        lab.id = "4.2".to_string();
        lab.regions[0].anchor = "lab_4_2_g".to_string();
        start(&root, &lab).expect("the inner lab starts");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn starting_a_lab_again_outside_git_keeps_your_code_before_blanking_it() {
        let (root, lab) = scratch("start-again");
        let file = lab.stage.dir.join("src/f.rs");
        start(&root, &lab).unwrap();
        let started = std::fs::read_to_string(&file).unwrap();
        assert!(started.contains("todo!()"), "{started}");
        std::fs::write(&file, started.replace("todo!()", "6 * 7 // mine")).unwrap();

        start(&root, &lab).unwrap();
        assert!(std::fs::read_to_string(&file).unwrap().contains("todo!()"));
        assert_eq!(attempts(&root), ["    6 * 7 // mine\n"]);
        let solution = state::saved_solution(&root, "4.1", "lab_4_1_f");
        assert_eq!(std::fs::read_to_string(solution).unwrap(), "    42\n");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn starting_a_started_lab_again_in_git_is_not_refused_for_its_own_stubs() {
        let (root, lab) = scratch("start-again-git");
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args([
                    "-c",
                    "user.name=learner",
                    "-c",
                    "user.email=learner@example.com",
                ])
                .args(args)
                .current_dir(&root)
                .output()
                .expect("git runs")
                .status;
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "the course"]);
        start(&root, &lab).expect("the first start");
        let file = lab.stage.dir.join("src/f.rs");
        let started = std::fs::read_to_string(&file).unwrap();
        // The stubs are uncommitted changes now; starting again must say
        // the lab is started, not ask to commit them, and change nothing.
        assert_eq!(start(&root, &lab), Ok(ExitCode::SUCCESS));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), started);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
