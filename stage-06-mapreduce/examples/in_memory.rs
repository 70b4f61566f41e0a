//! The floor: the word count with one hash map of counters, as a program.
//!
//! `cargo run --release -p stage-06-mapreduce --example in_memory -- FILES...`
//!
//! The same work as the `wordcount/in_memory` benchmark, in a process of
//! its own, so that it can be timed beside `mapreduce sequential` by the
//! same tool (`hyperfine`, `perf stat`) on the same files.

fn main() -> std::io::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let counts = mapreduce::sequential::word_count_in_memory(&files)?;
    println!("{} distinct words", counts.len());
    Ok(())
}
