//! The chapter's exercises, as tests that fail until you have done them.
//!
//! They are ignored so that `cargo test` stays green; run them with
//!
//! ```sh
//! cargo test -p stage-06-mapreduce --test exercises -- --ignored
//! ```
//!
//! (Exercise 1, switching the combiner off, is checked by the tests that
//! already pass: the results must not change.)

mod common;

use common::*;

/// Exercise 2: a case-insensitive word count, `--app wci`: the same words
/// as `wc`, lower-cased, so "The" and "the" are one key.
#[test]
#[ignore = "exercise 2: add the wci app"]
fn exercise_wci_counts_words_whatever_their_case() {
    let dir = TestDir::new("ex-wci");
    std::fs::write(
        dir.path().join("a.txt"),
        "The the THE tHe. Straße STRASSE straße",
    )
    .unwrap();
    let lines = sequential(&dir, "wci", &["a.txt".to_string()]);
    assert_eq!(lines, ["strasse 1", "straße 2", "the 4"]);

    let files = books(dir.path(), 3, 10_000);
    let expected = sequential(&dir, "wci", &files);
    distributed(&dir, "wci", 2, &["--reduce", "3"], &files);
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
}

/// Exercise 3: leave no intermediate files behind. Once every output is
/// in place, no `mr-M-R` file may remain (think about *who* may delete
/// them, and *when*: a reduce task can run twice).
#[test]
#[ignore = "exercise 3: remove the intermediate files at the end of the job"]
fn exercise_no_intermediate_file_outlives_the_job() {
    let dir = TestDir::new("ex-clean");
    let files = books(dir.path(), 4, 10_000);
    let expected = sequential(&dir, "wc", &files);
    distributed(&dir, "wc", 2, &["--reduce", "4"], &files);
    assert_eq!(sorted_outputs(dir.path()), sorted(expected));
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mr-") && !n.starts_with("mr-out-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
