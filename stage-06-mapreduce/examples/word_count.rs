//! The programming model in one screen: map, group by key, reduce.
//!
//! `cargo run -p stage-06-mapreduce --example word_count`
//!
//! Runs the `wc` app's two functions by hand over three tiny "files" and
//! prints what each phase produced, the way the paper's figure 1 draws it.

use std::path::Path;

use mapreduce::group::Groups;
use mapreduce::hash::partition;
use mapreduce::{App, Context, WordCount};

fn main() {
    let inputs = [
        ("a.txt", "the quick brown fox"),
        ("b.txt", "the lazy dog"),
        ("c.txt", "The fox, the dog."),
    ];
    let app = WordCount;
    let cx = Context {
        dir: Path::new("."),
    };

    // Map phase: every input becomes (key, value) pairs.
    // Grouping (the shuffle, here in memory): pairs gathered per key.
    let mut groups = Groups::new(false); // no combiner: show every "1"
    for (file, text) in inputs {
        let mut pairs = Vec::new();
        app.map(&cx, file, text, &mut |key, value| {
            pairs.push(format!("({key},{value})"));
            groups.emit(&app, &cx, key, value);
        });
        println!("map({file:?}) -> {}", pairs.join(" "));
    }

    // Reduce phase: one call per key, keys in order. With R = 3 reduce
    // tasks, partition(key) says which task (and output file) owns it.
    println!();
    for (key, values) in groups.into_sorted() {
        let result = app.reduce(&cx, &key, values.values());
        println!(
            "reduce({key:?}, {:?}) -> {result}    (partition {} of 3: mr-out-{})",
            values.values().to_vec(),
            partition(&key, 3),
            partition(&key, 3)
        );
    }
}
