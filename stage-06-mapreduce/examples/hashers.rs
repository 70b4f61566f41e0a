//! Why the tables hash words with FNV-1a: a measurement.
//!
//! `cargo run --release -p stage-06-mapreduce --example hashers [FILES...]`
//!
//! Counts the words of the files (or of a generated 16 MiB corpus) with the
//! same table keyed by three hashers, and with no table at all (the cost
//! of finding the words). Short keys favour a simple byte loop.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use mapreduce::app::for_each_word;
use mapreduce::corpus::{self, CorpusSpec};
use mapreduce::hash::FnvBuildHasher;

fn count<S: BuildHasher + Default>(texts: &[String]) -> usize {
    let mut counts: HashMap<Box<str>, u64, S> = HashMap::default();
    for text in texts {
        for_each_word(text, |w| match counts.get_mut(w) {
            Some(n) => *n += 1,
            None => {
                counts.insert(w.into(), 1);
            }
        });
    }
    counts.len()
}

fn main() -> std::io::Result<()> {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        let dir = std::env::temp_dir()
            .join("mapreduce")
            .join("hashers-corpus");
        let paths = corpus::generate(
            &dir,
            &CorpusSpec {
                bytes: 16 << 20,
                files: 4,
                seed: 6824,
            },
        )?;
        files = paths.iter().map(|p| p.display().to_string()).collect();
    }
    let texts: Vec<String> = files
        .iter()
        .map(std::fs::read_to_string)
        .collect::<Result<_, _>>()?;
    for round in 1..=3 {
        let t = Instant::now();
        let mut words = 0u64;
        for text in &texts {
            for_each_word(text, |_| words += 1);
        }
        let split = t.elapsed();
        let t = Instant::now();
        let n = count::<FnvBuildHasher>(&texts);
        let fnv = t.elapsed();
        let t = Instant::now();
        count::<RandomState>(&texts);
        let sip = t.elapsed();
        println!(
            "round {round}: {words} words, {n} distinct; split only {split:?}, FNV-1a {fnv:?}, SipHash (std) {sip:?}"
        );
    }
    Ok(())
}
