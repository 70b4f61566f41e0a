//! Applications: the two functions a MapReduce user writes.
//!
//! ```text
//!   map(filename, contents)  -> emits (key, value) pairs
//!   reduce(key, [values])    -> one output value for that key
//! ```
//!
//! Everything else (splitting the input, moving pairs to the right reduce
//! task, surviving crashed workers) is the framework's job. An [`App`] is
//! chosen by name on the command line (`--app wc`). This module holds the two
//! real applications, [`WordCount`] and [`Indexer`]; the lab's test apps
//! (`mtiming`, `crash`, ...) live in the binary, because one of them kills its
//! own process, which a library must never do.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use crate::group::Values;
use crate::hash::FnvBuildHasher;

/// What a map or reduce call may know about the job around it.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The directory the job's files live in (`--dir`). Apps that leave
    /// marker files (the lab's timing apps) put them here.
    pub dir: &'a Path,
}

// ANCHOR: app
/// A MapReduce application.
pub trait App: Send + Sync {
    /// The name `--app` selects it by.
    fn name(&self) -> &'static str;

    /// Map one input file. `filename` is the path exactly as given on the
    /// coordinator's command line; `contents` is the file, decoded as UTF-8
    /// with invalid bytes replaced by U+FFFD. Call `emit(key, value)` for
    /// every pair.
    fn map(
        &self,
        cx: &Context<'_>,
        filename: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
    );

    /// Reduce all values emitted for `key` (in no particular order) to one.
    fn reduce(&self, cx: &Context<'_>, key: &str, values: Values<'_>) -> String;

    /// True if `reduce` may also be run early, on part of a key's values,
    /// inside the map task (the paper's *combiner*, section 4.3): its result
    /// must then be a valid value to reduce again. A word count can (a sum of
    /// partial sums is the sum); an app that counts its values cannot.
    fn combines(&self) -> bool {
        false
    }
}
// ANCHOR_END: app

impl fmt::Debug for dyn App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "App({})", self.name())
    }
}

// ANCHOR: words
/// Calls `f` for every word of `text`: every maximal run of characters for
/// which [`char::is_alphabetic`] holds.
///
/// ASCII bytes are tested directly; only non-ASCII bytes pay for decoding a
/// `char`. The words are slices of `text`, so nothing is allocated.
pub fn for_each_word<'t>(text: &'t str, mut f: impl FnMut(&'t str)) {
    let bytes = text.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (alphabetic, width) = if b.is_ascii() {
            (b.is_ascii_alphabetic(), 1)
        } else {
            // `i` is always on a char boundary: we step by whole chars.
            match text[i..].chars().next() {
                Some(c) => (c.is_alphabetic(), c.len_utf8()),
                None => break,
            }
        };
        match (alphabetic, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(&text[s..i]);
                start = None;
            }
            _ => {}
        }
        i += width;
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}
// ANCHOR_END: words

/// `wc`: how often each word occurs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCount;

// ANCHOR: wc
impl App for WordCount {
    fn name(&self) -> &'static str {
        "wc"
    }

    fn map(
        &self,
        _cx: &Context<'_>,
        _file: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
    ) {
        for_each_word(contents, |word| emit(word, "1"));
    }

    fn reduce(&self, _cx: &Context<'_>, _key: &str, values: Values<'_>) -> String {
        // Values are "1" from map, or partial sums from the combiner; a run
        // of n equal values counts n times.
        let total: u64 = values
            .runs()
            .map(|(v, n)| v.parse::<u64>().unwrap_or(0).saturating_mul(n))
            .fold(0, u64::saturating_add);
        total.to_string()
    }

    fn combines(&self) -> bool {
        true
    }
}
// ANCHOR_END: wc

/// `indexer`: for each word, in how many files it occurs and which.
#[derive(Debug, Clone, Copy, Default)]
pub struct Indexer;

impl App for Indexer {
    fn name(&self) -> &'static str {
        "indexer"
    }

    fn map(&self, _cx: &Context<'_>, file: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        let mut seen: HashSet<&str, FnvBuildHasher> = HashSet::default();
        for_each_word(contents, |word| {
            if seen.insert(word) {
                emit(word, file);
            }
        });
    }

    fn reduce(&self, _cx: &Context<'_>, _key: &str, values: Values<'_>) -> String {
        let mut docs = values.to_vec();
        docs.sort_unstable();
        format!("{} {}", docs.len(), docs.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Groups;

    fn words(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for_each_word(text, |w| out.push(w));
        out
    }

    #[test]
    fn a_word_is_a_maximal_run_of_alphabetic_chars() {
        assert_eq!(words("Hello, world!"), ["Hello", "world"]);
        assert_eq!(words("it's 42nd-street"), ["it", "s", "nd", "street"]);
        assert_eq!(words("  trailing"), ["trailing"]);
        assert_eq!(words(""), Vec::<&str>::new());
        assert_eq!(words("123 ... !!"), Vec::<&str>::new());
    }

    #[test]
    fn unicode_letters_are_part_of_words_and_replacement_chars_are_not() {
        assert_eq!(words("Straße café naïve"), ["Straße", "café", "naïve"]);
        assert_eq!(words("日本語です"), ["日本語です"]);
        assert_eq!(words("ab\u{FFFD}cd"), ["ab", "cd"]);
    }

    fn run_app(app: &dyn App, files: &[(&str, &str)]) -> Vec<(String, String)> {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut groups = Groups::new(app.combines());
        for (name, text) in files {
            app.map(&cx, name, text, &mut |k, v| groups.emit(app, &cx, k, v));
        }
        groups
            .into_sorted()
            .into_iter()
            .map(|(k, vals)| {
                let out = app.reduce(&cx, &k, vals.values());
                (k.into(), out)
            })
            .collect()
    }

    #[test]
    fn wc_counts_every_occurrence_case_sensitively() {
        let out = run_app(&WordCount, &[("a", "the cat The cat"), ("b", "cat")]);
        let expect = [("The", "1"), ("cat", "3"), ("the", "1")];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(out, expect);
    }

    #[test]
    fn wc_reduce_adds_partial_sums_from_the_combiner() {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut g = Groups::new(false);
        for v in ["1", "40", "1"] {
            g.emit(&WordCount, &cx, "x", v);
        }
        let (_, vals) = g.into_sorted().remove(0);
        assert_eq!(WordCount.reduce(&cx, "x", vals.values()), "42");
    }

    #[test]
    fn indexer_lists_each_document_once_sorted() {
        let out = run_app(&Indexer, &[("b.txt", "fox fox dog"), ("a.txt", "fox")]);
        assert_eq!(out[0], ("dog".into(), "1 b.txt".into()));
        assert_eq!(out[1], ("fox".into(), "2 a.txt,b.txt".into()));
    }
}
