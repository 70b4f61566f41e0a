//! Keeps the book's example outputs true.
//!
//! In the book, an output block is announced by an HTML comment (mdBook
//! shows nothing of it) naming the command that prints it:
//!
//! ````text
//! <!-- output: cargo run -p stage-04-futures --example desugar -->
//! ```text
//! before any poll: Start { key: 7, waits: Waits { lookup: 1, fetch: 2 } }
//! ...
//! ```
//! ````
//!
//! Each stage has a test (`tests/book_outputs.rs`) that runs every such
//! command of its own package and compares what it prints with the block.
//! Values that change from run to run are masked on both sides first
//! (durations, rates, addresses, process ids); beyond that, the block may
//! use snapbox's wildcards: `[..]` for the rest of a line, `...` on a line
//! of its own for any number of lines. A comment that ends in
//! `# numbers vary` (say, sizes the compiler chooses) masks every number.

use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// One output block of the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// `docs/src/FILE.md:LINE`, for messages.
    pub place: String,
    /// The command in the comment.
    pub command: String,
    pub expected: String,
}

/// The command of a block, as far as running it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub package: String,
    /// `Some(name)` for `--example name`, `None` for the package's binary.
    pub example: Option<String>,
    pub bin: Option<String>,
    pub args: Vec<String>,
}

/// The workspace's root (this crate sits directly below it).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Every output block of every page under `docs/src`.
pub fn blocks(book: &Path) -> Vec<Block> {
    let mut pages = Vec::new();
    let mut folders = vec![book.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    let mut found = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        let name = page
            .strip_prefix(book)
            .unwrap_or(&page)
            .display()
            .to_string();
        found.extend(blocks_of(&name, &text));
    }
    found
}

/// The output blocks of one page.
pub fn blocks_of(name: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let command = line
            .strip_prefix("<!-- output:")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(str::trim);
        i += 1;
        let Some(command) = command else { continue };
        // The fence follows, maybe after blank lines.
        while i < lines.len() && lines[i].trim().is_empty() {
            i += 1;
        }
        let place = format!("docs/src/{name}:{i}");
        let fence = lines.get(i).map(|l| l.trim_start()).unwrap_or("");
        if !fence.starts_with("```") {
            found.push(Block {
                place,
                command: command.to_string(),
                expected: "(no code block after this comment)".to_string(),
            });
            continue;
        }
        i += 1;
        let mut expected = String::new();
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            expected.push_str(lines[i]);
            expected.push('\n');
            i += 1;
        }
        i += 1;
        found.push(Block {
            place,
            command: command.to_string(),
            expected,
        });
    }
    found
}

/// Read `cargo run [--release] -p PACKAGE [--example NAME | --bin NAME] [-- ARGS]`.
pub fn parse(command: &str) -> Result<Run, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.get(..2) != Some(&["cargo", "run"][..]) {
        return Err(format!("not a `cargo run` command: {command}"));
    }
    let mut run = Run {
        package: String::new(),
        example: None,
        bin: None,
        args: Vec::new(),
    };
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        match *word {
            "--release" | "-q" | "--quiet" => {}
            "-p" | "--package" => run.package = rest.next().unwrap_or(&"").to_string(),
            "--example" => run.example = rest.next().map(|s| s.to_string()),
            "--bin" => run.bin = rest.next().map(|s| s.to_string()),
            "--" => {
                run.args = rest.by_ref().map(|s| s.to_string()).collect();
            }
            other => return Err(format!("unknown cargo option {other:?} in: {command}")),
        }
    }
    if run.package.is_empty() {
        return Err(format!("no -p PACKAGE in: {command}"));
    }
    Ok(run)
}

/// Put placeholders where a value changes from run to run.
pub fn mask(text: &str) -> String {
    let masks = [
        (r"\b\d+(\.\d+)?\s?(MB/s|MiB/s|GB/s|GiB/s)", "[RATE]"),
        (r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|min)\b", "[TIME]"),
        (r"\b0x[0-9a-fA-F]{6,}\b", "[ADDR]"),
        (r"\bpid:?\s?\d+", "pid [PID]"),
    ];
    let mut text = text.to_string();
    for (pattern, placeholder) in masks {
        let pattern = Regex::new(pattern).expect("a valid pattern");
        text = pattern.replace_all(&text, placeholder).into_owned();
    }
    text
}

/// Checks one package's output blocks.
#[derive(Debug)]
pub struct Outputs {
    package: String,
    bins: Vec<(String, PathBuf)>,
    timeout: Duration,
}

impl Outputs {
    /// The blocks whose command runs `package`.
    pub fn of(package: &str) -> Outputs {
        Outputs {
            package: package.to_string(),
            bins: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }

    /// A binary of the package (pass `env!("CARGO_BIN_EXE_name")`).
    pub fn bin(mut self, name: &str, path: &str) -> Outputs {
        self.bins.push((name.to_string(), PathBuf::from(path)));
        self
    }

    fn program(&self, run: &Run) -> Result<PathBuf, String> {
        if let Some(example) = &run.example {
            // Examples are built beside the test binaries: target/.../debug/examples.
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .ok_or("test binary outside target/")?;
            return Ok(profile.join("examples").join(example));
        }
        let wanted = run.bin.as_deref();
        self.bins
            .iter()
            .find(|(name, _)| wanted.is_none_or(|w| w == name))
            .map(|(_, path)| path.clone())
            .ok_or_else(|| format!("no binary registered for {run:?}"))
    }

    /// Run each block's command and compare; panics naming every block that
    /// differs, with a diff.
    #[track_caller]
    pub fn check(self) {
        let book = workspace_root().join("docs").join("src");
        let mine: Vec<Block> = blocks(&book)
            .into_iter()
            .filter(|block| {
                let command = block.command.split(" # ").next().unwrap_or_default();
                parse(command)
                    .map(|r| r.package == self.package)
                    .unwrap_or(true)
            })
            .collect();
        let mut failures = Vec::new();
        let mut checked = 0;
        for block in &mine {
            checked += 1;
            if let Err(why) = self.check_block(block) {
                failures.push(format!("{} (`{}`):\n{why}", block.place, block.command));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {checked} output blocks of {} differ from what the command prints:\n\n{}",
            failures.len(),
            self.package,
            failures.join("\n\n")
        );
    }

    fn check_block(&self, block: &Block) -> Result<(), String> {
        let (command, note) = block
            .command
            .split_once(" # ")
            .unwrap_or((block.command.as_str(), ""));
        let run = parse(command)?;
        let program = self.program(&run)?;
        if !program.exists() {
            return Err(format!(
                "{} is not built: `cargo test -p {}` builds the examples, or \
                 `cargo build -p {} --examples` before a single test target",
                program.display(),
                run.package,
                run.package
            ));
        }
        let mut command = test_support::command(&program);
        command
            .args(&run.args)
            .current_dir(workspace_root())
            .stdin(Stdio::null());
        let output = test_support::output_within(&mut command, self.timeout)
            .map_err(|e| format!("cannot run it: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "it failed ({}); it printed on stderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let output = output.stdout;
        let mut actual = mask(&String::from_utf8_lossy(&output));
        let mut expected = mask(&block.expected);
        if note.contains("numbers vary") {
            let number = Regex::new(r"\d+").expect("a valid pattern");
            actual = number.replace_all(&actual, "[N]").into_owned();
            expected = number.replace_all(&expected, "[N]").into_owned();
        }
        snapbox::Assert::new()
            .try_eq(
                Some(&"the command's output"),
                actual.into(),
                expected.into(),
            )
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_the_fence_after_its_comment() {
        let page = "text\n<!-- output: cargo run -p p --example e -->\n\n```text\nline 1\nline 2\n```\nafter\n";
        let found = blocks_of("x.md", page);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].command, "cargo run -p p --example e");
        assert_eq!(found[0].expected, "line 1\nline 2\n");
        assert_eq!(found[0].place, "docs/src/x.md:3");
    }

    #[test]
    fn commands_are_read_like_cargo_reads_them() {
        let run = parse("cargo run --release -p stage-06-mapreduce -- run --app wc").unwrap();
        assert_eq!(run.package, "stage-06-mapreduce");
        assert_eq!(run.example, None);
        assert_eq!(run.args, ["run", "--app", "wc"]);
        let run = parse("cargo run -p a --example b -- 1 2").unwrap();
        assert_eq!(run.example.as_deref(), Some("b"));
        assert!(parse("cargo test -p a").is_err());
        assert!(parse("cargo run --features x -p a").is_err());
    }

    #[test]
    fn values_that_change_between_runs_are_masked() {
        assert_eq!(
            mask("took 12.5 ms at 0x7ffd1234abcd, 88 MB/s, pid 4242; 3 tasks"),
            "took [TIME] at [ADDR], [RATE], pid [PID]; 3 tasks"
        );
        assert_eq!(mask("1.2s and 400µs"), "[TIME] and [TIME]");
    }
}

/// What a page of the book must be: short enough for one sitting, every
/// listing captioned with its source file, and written to learners.
pub mod lint {
    /// At most this many words of prose on one page (code blocks excluded).
    pub const MAX_PROSE_WORDS: usize = 2_000;

    /// Words that speak about how the course was made, not to the learner.
    const BACKSTAGE: [&str; 5] = [
        "the issue",
        "the aim",
        "review fix",
        "the reviewer",
        "after the review",
    ];

    /// The words of prose on a page: everything outside code fences, HTML
    /// comments and include lines.
    pub fn prose_words(text: &str) -> usize {
        let mut in_fence = false;
        let mut words = 0;
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                in_fence = !in_fence;
                continue;
            }
            if in_fence || trimmed.starts_with("<!--") || trimmed.starts_with("{{#") {
                continue;
            }
            words += line.split_whitespace().count();
        }
        words
    }

    /// The problems of one page, each with its line.
    pub fn problems(name: &str, text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let words = prose_words(text);
        if words > MAX_PROSE_WORDS {
            problems.push(format!(
                "{name}: {words} words of prose, more than {MAX_PROSE_WORDS}: split it into parts"
            ));
        }
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let lower = line.to_lowercase();
            for phrase in BACKSTAGE {
                if lower.contains(phrase) {
                    problems.push(format!(
                        "{name}:{}: speaks of how the course was made ({phrase:?})",
                        i + 1
                    ));
                }
            }
            // A listing: a fence whose first line includes a file.
            let Some(include) = line.trim().strip_prefix("{{#include ../../") else {
                continue;
            };
            let file = include.split([':', '}']).next().unwrap_or_default();
            let fence = i
                .checked_sub(1)
                .map(|j| lines[j].trim_start())
                .unwrap_or("");
            if !fence.starts_with("```") {
                continue;
            }
            // The caption is the last non-blank line before the fence.
            let caption = lines[..i - 1]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .copied()
                .unwrap_or("");
            if !caption.contains(file) {
                problems.push(format!(
                    "{name}:{}: the listing from {file} has no caption naming its file \
                     (a line such as `<p class=\"caption\">{file}</p>` just before the fence)",
                    i + 1
                ));
            }
        }
        problems
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn code_is_not_prose() {
            assert_eq!(
                prose_words("one two\n```rust\nlet a = b;\n```\nthree\n<!-- x y -->\n"),
                3
            );
        }

        #[test]
        fn a_listing_needs_a_caption_naming_its_file() {
            let bare =
                "Text.\n\n```rust,ignore\n{{#include ../../stage-04-futures/src/a.rs:x}}\n```\n";
            assert_eq!(problems("p.md", bare).len(), 1);
            let captioned = "<p class=\"caption\">stage-04-futures/src/a.rs</p>\n\n```rust,ignore\n\
                             {{#include ../../stage-04-futures/src/a.rs:x}}\n```\n";
            assert!(problems("p.md", captioned).is_empty());
            assert_eq!(problems("p.md", "As the issue says.").len(), 1);
        }
    }
}
