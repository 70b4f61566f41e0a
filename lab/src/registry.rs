//! The labs, as each stage lists them in its `labs.toml`.
//!
//! A lab blanks one or more *regions* of a stage's source (each between two
//! mdBook anchor lines, `// ANCHOR: lab_5_2_...` and `// ANCHOR_END: ...`,
//! which the book's listings never show) and is graded by named tests.

use serde::Deserialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// One lab of one stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// `S.N`: stage S, lab N.
    pub id: String,
    pub title: String,
    /// How long a learner may need, as a rough estimate.
    pub minutes: u32,
    /// What the learner writes, in a sentence or two.
    pub summary: String,
    /// Hints in increasing strength.
    #[serde(default)]
    pub hints: Vec<String>,
    /// How long the grading tests may run before the unfinished ones count
    /// as failed (a lost wake-up hangs rather than fails).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(rename = "region")]
    pub regions: Vec<Region>,
    #[serde(rename = "grader")]
    pub graders: Vec<Grader>,
    /// Filled in after parsing: the stage this lab belongs to.
    #[serde(skip)]
    pub stage: Stage,
}

fn default_timeout_secs() -> u64 {
    180
}

/// A stretch of source the learner writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Relative to the stage's directory.
    pub file: String,
    /// The anchor's name (it starts with `lab_`).
    pub anchor: String,
    /// What stands in the region once the lab is started: code that
    /// compiles and fails the grading tests, such as `todo!("...")`.
    pub stub: String,
}

/// A set of tests, in one test target, that grade a lab.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grader {
    /// A `--test` target of the stage, or `lib` for its unit tests.
    pub target: String,
    /// Exact test names (the module path too, for unit tests).
    pub tests: Vec<String>,
    /// Grade on another target (for example an AArch64 switch, under qemu).
    #[serde(default)]
    pub target_triple: Option<String>,
}

/// A stage crate that has labs.
#[derive(Debug, Default, Clone)]
pub struct Stage {
    /// Its directory, absolute.
    pub dir: PathBuf,
    /// Its package name (the directory's name).
    pub package: String,
    /// Its number, from the directory name `stage-0N-...`.
    pub number: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabsFile {
    lab: Vec<Lab>,
}

impl Lab {
    /// `(stage, lab)` from the id, for ordering.
    pub fn number(&self) -> (u32, u32) {
        parse_id(&self.id).unwrap_or((u32::MAX, u32::MAX))
    }

    /// The files this lab blanks, relative to the workspace root, each once.
    pub fn files(&self, root: &Path) -> Vec<String> {
        let mut files: Vec<String> = Vec::new();
        for region in &self.regions {
            let file = relative(root, &self.stage.dir.join(&region.file));
            if !files.contains(&file) {
                files.push(file);
            }
        }
        files
    }

    /// Every grading test name, for counting.
    pub fn test_count(&self) -> usize {
        self.graders.iter().map(|grader| grader.tests.len()).sum()
    }
}

impl fmt::Display for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lab {}: {}", self.id, self.title)
    }
}

/// `"5.2"` to `(5, 2)`. Each number is plain decimal digits without a
/// leading zero, so that one lab has one spelling (`+5.2` and `5.02` are
/// not ids: both would otherwise sort as lab 5.2).
pub fn parse_id(id: &str) -> Option<(u32, u32)> {
    fn number(text: &str) -> Option<u32> {
        let plain = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        plain.then(|| text.parse().ok()).flatten()
    }
    let (stage, lab) = id.split_once('.')?;
    Some((number(stage)?, number(lab)?))
}

/// `path` relative to `root`, as text, for messages.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Every lab of every stage under `root`, ordered by id; an error names the
/// file and what is wrong with it.
pub fn load(root: &Path) -> Result<Vec<Lab>, String> {
    let mut labs = Vec::new();
    for stage in stages(root)? {
        let path = stage.dir.join("labs.toml");
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: LabsFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", relative(root, &path)))?;
        for mut lab in file.lab {
            check(&lab, &stage).map_err(|e| format!("{}: {e}", relative(root, &path)))?;
            lab.stage = stage.clone();
            labs.push(lab);
        }
    }
    labs.sort_by_key(Lab::number);
    for pair in labs.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(format!("two labs have the id {}", pair[0].id));
        }
    }
    Ok(labs)
}

/// The `stage-NN-*` directories of the workspace, in order.
fn stages(root: &Path) -> Result<Vec<Stage>, String> {
    let entries =
        std::fs::read_dir(root).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
    let mut stages = Vec::new();
    for entry in entries.flatten() {
        let package = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = package.strip_prefix("stage-") else {
            continue;
        };
        let Some(number) = rest.get(..2).and_then(|n| n.parse().ok()) else {
            continue;
        };
        stages.push(Stage {
            dir: entry.path(),
            package,
            number,
        });
    }
    stages.sort_by_key(|stage| stage.number);
    Ok(stages)
}

fn check(lab: &Lab, stage: &Stage) -> Result<(), String> {
    let Some((stage_number, _)) = parse_id(&lab.id) else {
        return Err(format!("lab id {:?} is not of the form S.N", lab.id));
    };
    if stage_number != stage.number {
        return Err(format!(
            "lab {} is listed under stage {}",
            lab.id, stage.number
        ));
    }
    if lab.regions.is_empty() || lab.graders.is_empty() {
        return Err(format!("lab {} needs a region and a grader", lab.id));
    }
    // Beyond a day the deadline is a mistake (and far enough out, it
    // overflows the clock).
    if !(1..=86_400).contains(&lab.timeout_secs) {
        return Err(format!(
            "lab {}: timeout_secs must be from 1 to 86400 (a day), not {}",
            lab.id, lab.timeout_secs
        ));
    }
    let prefix = format!("lab_{}_", lab.id.replace('.', "_"));
    for region in &lab.regions {
        // verify keeps its copies under .lab by this path: outside the
        // stage, a copy could land on the file itself.
        let file = Path::new(&region.file);
        let inside = file
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
        if region.file.is_empty() || !inside {
            return Err(format!(
                "lab {}: file {:?} must be a path inside the stage's directory",
                lab.id, region.file
            ));
        }
        if !region.anchor.starts_with(&prefix) {
            return Err(format!(
                "lab {}: anchor {:?} must start with {prefix:?}",
                lab.id, region.anchor
            ));
        }
        // The anchor names files under .lab: letters, digits and `_` only,
        // as mdBook anchors are, and something after the prefix.
        let name = &region.anchor[prefix.len()..];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "lab {}: anchor {:?} must be {prefix:?} followed by letters, digits or `_`",
                lab.id, region.anchor
            ));
        }
    }
    for grader in &lab.graders {
        if grader.tests.is_empty() {
            return Err(format!("lab {}: a grader without tests", lab.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_number_not_by_text() {
        assert_eq!(parse_id("5.10"), Some((5, 10)));
        assert!(parse_id("5.10") > parse_id("5.9"));
        assert_eq!(parse_id("5"), None);
        assert_eq!(parse_id("x.1"), None);
    }

    #[test]
    fn an_id_has_one_spelling() {
        for other_spelling in ["+5.2", "5.+2", "05.2", "5.02", " 5.2", "5.2.1", "5.", ".2"] {
            assert_eq!(parse_id(other_spelling), None, "{other_spelling:?}");
        }
    }

    #[test]
    fn a_registry_file_reads_into_labs() {
        let text = r#"
            [[lab]]
            id = "4.1"
            title = "A state machine"
            minutes = 60
            summary = "Write poll."
            hints = ["one", "two"]

            [[lab.region]]
            file = "src/coroutine.rs"
            anchor = "lab_4_1_poll"
            stub = 'todo!("lab 4.1")'

            [[lab.grader]]
            target = "lib"
            tests = ["coroutine::tests::a"]
        "#;
        let file: LabsFile = toml::from_str(text).unwrap();
        let stage = Stage {
            number: 4,
            ..Stage::default()
        };
        check(&file.lab[0], &stage).unwrap();
        assert_eq!(file.lab[0].timeout_secs, default_timeout_secs());
        assert_eq!(file.lab[0].test_count(), 1);
        let wrong_stage = Stage {
            number: 5,
            ..Stage::default()
        };
        assert!(check(&file.lab[0], &wrong_stage).is_err());
    }

    /// `check` of a stage 4 lab with one region in `region_file`, and
    /// `extra` lines in its `[[lab]]` table.
    fn check_one(region_file: &str, extra: &str) -> Result<(), String> {
        check_region(region_file, "lab_4_1_f", extra)
    }

    /// `check` of a stage 4 lab with one region, at `anchor` in
    /// `region_file`, and `extra` lines in its `[[lab]]` table.
    fn check_region(region_file: &str, anchor: &str, extra: &str) -> Result<(), String> {
        let text = format!(
            r#"
            [[lab]]
            id = "4.1"
            title = "t"
            minutes = 1
            summary = "s"
            {extra}
            [[lab.region]]
            file = "{region_file}"
            anchor = "{anchor}"
            stub = 'todo!()'
            [[lab.grader]]
            target = "lib"
            tests = ["t"]
            "#
        );
        let labs: LabsFile = toml::from_str(&text).unwrap();
        let stage = Stage {
            number: 4,
            ..Stage::default()
        };
        check(&labs.lab[0], &stage)
    }

    #[test]
    fn a_region_file_outside_its_stage_is_refused() {
        for file in ["/etc/hosts", "../stage-05-x/src/f.rs", "src/../../f.rs", ""] {
            let error = check_one(file, "").unwrap_err();
            assert!(error.contains(&format!("{file:?}")), "{file}: {error}");
        }
    }

    #[test]
    fn an_anchor_that_is_not_a_plain_name_is_refused_before_it_names_a_file() {
        // `start` keeps a region's solution in .lab/solutions/<id>/<anchor>:
        // an anchor with a slash or dots could name a file anywhere.
        for anchor in [
            "lab_4_1_/../../../x",
            "lab_4_1_a/b",
            "lab_4_1_a b",
            "lab_4_1_",
        ] {
            let error = check_region("src/f.rs", anchor, "").expect_err(anchor);
            assert!(error.contains(&format!("{anchor:?}")), "{anchor}: {error}");
        }
    }

    #[test]
    fn a_deadline_beyond_a_day_is_refused_with_the_lab_named() {
        let error = check_one("src/f.rs", "timeout_secs = 18446744073709551615").unwrap_err();
        assert!(
            error.contains("lab 4.1") && error.contains("timeout_secs"),
            "{error}"
        );
    }
}
