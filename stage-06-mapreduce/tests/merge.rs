//! The reduce side's merge (lab 6.3): a reduce task reads one sorted run
//! per map task, `mr-M-R`, and must call `reduce` once per key, in
//! ascending key order, with the values of every run that holds the key.
//!
//! Each test writes the runs itself, runs one reduce task through the
//! library (`task::run_reduce`) and reads `mr-out-R`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use mapreduce::app::{App, Context};
use mapreduce::corpus::SplitMix64;
use mapreduce::files::{AtomicFile, intermediate_name, write_intermediate};
use mapreduce::group::{ValueList, Values};
use mapreduce::task::{ReduceTask, run_reduce};
use mapreduce::{Indexer, WordCount};

/// Generous for a loaded machine: a merge that loops forever fails here.
const DEADLINE: Duration = Duration::from_secs(60);

/// One run: (key, values) records, written in the order given.
type RunSpec<'a> = &'a [(&'a str, &'a [&'a str])];

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mr-merge-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `runs[m]` as `mr-m-0`, as map task `m` would.
fn write_runs(dir: &Path, runs: &[Vec<(String, Vec<String>)>]) {
    for (m, records) in runs.iter().enumerate() {
        let entries: Vec<(&str, ValueList)> = records
            .iter()
            .map(|(key, values)| {
                let mut list = ValueList::default();
                values.iter().for_each(|v| list.push(v));
                (key.as_str(), list)
            })
            .collect();
        let mut out = AtomicFile::create(dir, &intermediate_name(m as u32, 0)).unwrap();
        write_intermediate(&mut out, &entries).unwrap();
        out.commit().unwrap();
    }
}

fn owned(runs: &[RunSpec<'_>]) -> Vec<Vec<(String, Vec<String>)>> {
    runs.iter()
        .map(|run| {
            run.iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect()
        })
        .collect()
}

/// Shows runs the way the chapter draws them: `mr-0-0: apple cat dog`.
fn describe(runs: &[Vec<(String, Vec<String>)>]) -> String {
    let mut text = String::new();
    for (m, run) in runs.iter().enumerate() {
        let keys: Vec<String> = run.iter().map(|(k, _)| format!("{k:?}")).collect();
        text += &format!("\n    mr-{m}-0: {}", keys.join(" "));
    }
    text
}

/// Runs reduce task 0 over the runs in `dir` on another thread, so that a
/// merge that never ends fails by deadline instead of hanging the tests.
fn reduce(app: &'static dyn App, dir: &Path, n_map: u32) -> io::Result<String> {
    let (tx, rx) = mpsc::channel();
    let dir_owned = dir.to_path_buf();
    std::thread::spawn(move || {
        let result = run_reduce(app, &dir_owned, &ReduceTask { index: 0, n_map });
        let _ = tx.send(result);
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(result) => result.map(|_| fs::read_to_string(dir.join("mr-out-0")).unwrap()),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "the reduce task did not finish within {DEADLINE:?}: does next_key pop a key \
             from the heap and advance every run it takes values from?"
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the reduce task panicked (its message is above)")
        }
    }
}

/// Lists a key's values, sorted, so the order the runs are visited in
/// does not matter: `3: 0,0,1`.
#[derive(Debug)]
struct AllValues;

impl App for AllValues {
    fn name(&self) -> &'static str {
        "all-values"
    }

    fn map(&self, _: &Context<'_>, _: &str, _: &str, _: &mut dyn FnMut(&str, &str)) {}

    fn reduce(&self, _: &Context<'_>, _key: &str, values: Values<'_>) -> String {
        let mut all = values.to_vec();
        all.sort_unstable();
        format!("{}: {}", all.len(), all.join(","))
    }
}

/// What the merge must produce: every key once, ascending, with all of its
/// values, computed with a sorted map instead of a merge.
fn expected(app: &dyn App, runs: &[Vec<(String, Vec<String>)>]) -> String {
    let mut table: BTreeMap<&str, ValueList> = BTreeMap::new();
    for run in runs {
        for (key, values) in run {
            let list = table.entry(key).or_default();
            values.iter().for_each(|v| list.push(v));
        }
    }
    let cx = Context {
        dir: Path::new("."),
    };
    table
        .iter()
        .map(|(key, list)| format!("{key} {}\n", app.reduce(&cx, key, list.values())))
        .collect()
}

/// Compares line by line and says which key went wrong, and how.
fn assert_merged(runs: &[Vec<(String, Vec<String>)>], got: &str, want: &str) {
    if got == want {
        return;
    }
    let (got_lines, want_lines): (Vec<&str>, Vec<&str>) =
        (got.lines().collect(), want.lines().collect());
    let mut why = String::new();
    let key = |line: &str| line.split(' ').next().unwrap_or("").to_string();
    let got_keys: Vec<String> = got_lines.iter().map(|l| key(l)).collect();
    let want_keys: Vec<String> = want_lines.iter().map(|l| key(l)).collect();
    if let Some(w) = got_keys.windows(2).find(|w| w[0] >= w[1]) {
        why += &format!(
            "\n  key {:?} came after {:?}: keys must come out once each, ascending \
             (a key in several runs must be gathered into ONE reduce call)",
            w[1], w[0]
        );
    }
    for k in &want_keys {
        if !got_keys.contains(k) {
            why += &format!("\n  key {k:?} is missing from mr-out-0");
        }
    }
    if let Some(i) = got_lines.iter().zip(&want_lines).position(|(g, w)| g != w) {
        why += &format!(
            "\n  first wrong line {}: expected {:?}, got {:?}",
            i + 1,
            want_lines[i],
            got_lines[i]
        );
    }
    panic!(
        "the merged output is wrong.\n  runs read:{}\n  expected mr-out-0:\n{}\n  got:\n{}{why}",
        describe(runs),
        indent(want),
        indent(got)
    );
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn a_key_in_several_runs_is_reduced_once_with_the_values_of_all_of_them() {
    let dir = temp_dir("several");
    let runs = owned(&[
        &[("apple", &["0"]), ("cat", &["0"]), ("dog", &["0"])],
        &[("bee", &["1"]), ("cat", &["1"])],
        &[("ant", &["2"]), ("dog", &["2"]), ("zebra", &["2"])],
    ]);
    write_runs(&dir, &runs);
    let got = reduce(&AllValues, &dir, 3).unwrap();
    let want = "ant 1: 2\napple 1: 0\nbee 1: 1\ncat 2: 0,1\ndog 2: 0,2\nzebra 1: 2\n";
    assert_eq!(expected(&AllValues, &runs), want);
    assert_merged(&runs, &got, want);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_value_of_every_record_is_passed_on_repeats_included() {
    let dir = temp_dir("values");
    let runs = owned(&[
        &[("the", &["1", "1", "40"]), ("zoo", &["2"])],
        &[("a", &["7"]), ("the", &["1"])],
        &[("the", &["1", "1"])],
    ]);
    write_runs(&dir, &runs);
    let got = reduce(&WordCount, &dir, 3).unwrap();
    assert_merged(&runs, &got, "a 7\nthe 45\nzoo 2\n");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_runs_and_runs_that_end_early_are_merged_correctly() {
    let dir = temp_dir("uneven");
    let runs = owned(&[
        &[],
        &[("m", &["1"])],
        &[],
        &[
            ("a", &["3"]),
            ("b", &["3"]),
            ("m", &["3"]),
            ("y", &["3"]),
            ("z", &["3"]),
        ],
        &[("", &["4"]), ("z", &["4"])],
    ]);
    write_runs(&dir, &runs);
    let got = reduce(&AllValues, &dir, 5).unwrap();
    assert_merged(&runs, &got, &expected(&AllValues, &runs));
    // And with no keys at all, an empty output file.
    let none = temp_dir("no-keys");
    write_runs(&none, &owned(&[&[], &[]]));
    assert_eq!(
        reduce(&AllValues, &none, 2).unwrap(),
        "",
        "no keys, no lines"
    );
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&none).unwrap();
}

#[test]
fn keys_are_ordered_by_bytes_across_runs() {
    let dir = temp_dir("order");
    let runs = owned(&[
        &[
            ("Zebra", &["0"]),
            ("ab", &["0"]),
            ("abc", &["0"]),
            ("é", &["0"]),
        ],
        &[
            ("a", &["1"]),
            ("ab", &["1"]),
            ("abd", &["1"]),
            ("z", &["1"]),
        ],
    ]);
    write_runs(&dir, &runs);
    let got = reduce(&AllValues, &dir, 2).unwrap();
    assert_merged(&runs, &got, &expected(&AllValues, &runs));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn twelve_random_runs_merge_like_one_sorted_table() {
    let dir = temp_dir("random");
    let mut rng = SplitMix64::new(63);
    let runs: Vec<Vec<(String, Vec<String>)>> = (0..12)
        .map(|m| {
            let mut keys: Vec<String> = (0..rng.below(300))
                .map(|_| format!("w{}", rng.below(1000)))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            keys.into_iter()
                .map(|k| (k, (0..1 + rng.below(3)).map(|_| m.to_string()).collect()))
                .collect()
        })
        .collect();
    write_runs(&dir, &runs);
    let got = reduce(&Indexer, &dir, 12).unwrap();
    assert_merged(&runs, &got, &expected(&Indexer, &runs));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_run_fails_the_task_and_leaves_no_output() {
    let dir = temp_dir("corrupt");
    // Map task 1's run has its keys out of order: it did not come from a
    // correct map task, and reducing it would give wrong counts.
    let runs = owned(&[
        &[("a", &["0"]), ("c", &["0"])],
        &[("b", &["1"]), ("a", &["1"])],
    ]);
    write_runs(&dir, &runs);
    let err = reduce(&AllValues, &dir, 2).expect_err(
        "reducing a run whose keys are out of order must fail (is an error from \
         advance() passed on with `?`?)",
    );
    assert!(
        err.to_string().contains("mr-1-0") && err.to_string().contains("out of order"),
        "the error should name the file and the problem, got: {err}"
    );
    assert!(
        !dir.join("mr-out-0").exists(),
        "a failed reduce task must leave no mr-out-0"
    );
    fs::remove_dir_all(&dir).unwrap();
}
