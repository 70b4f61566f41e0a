//! Stage 06's word count on timely dataflow.
//!
//! The same job as `mapreduce sequential --app wc`, with the same words
//! ([`mapreduce::app::for_each_word`]), the same reading of input files
//! (bytes that are not UTF-8 become U+FFFD) and the same output (`WORD
//! COUNT` lines in ascending byte order), but written as a dataflow for an
//! existing engine instead of as tasks for our coordinator:
//!
//! ```text
//!   worker w of W:  files i with i mod W == w
//!        │  Map (pipeline, stays on w): count each file's words in a
//!        │  local table (the combiner), give (word, count) pairs
//!        ▼
//!   exchange by fnv1a(word) mod W      ◄── the shuffle: timely moves the
//!        │                                  pairs (threads or TCP)
//!        ▼
//!   Reduce: add up the counts of the words this worker owns; when the
//!        │  input's frontier is empty (no more data can come), give them
//!        ▼
//!   exchange to worker 0 ─► Collect: sort, hand the lines to the caller
//! ```
//!
//! Nothing here names a file for intermediate data, a task, a retry or a
//! coordinator: timely moves records between operators, in memory and over
//! its own connections, and knows the job is over from its *frontiers*
//! (the timestamps that may still arrive), not from task reports.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use mapreduce::app::for_each_word;
use mapreduce::files::read_input_into;
use mapreduce::hash::fnv1a;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::ToStream;

/// One output line: a word and how often it occurs.
pub type Count = (String, u64);

/// Starts the key of a record that reports a failed input instead of a
/// word: a word is made of letters, so it can never start with NUL.
const ERROR_MARK: char = '\0';

// ANCHOR: dataflow
/// Counts the words of `files` with the workers `config` describes (threads
/// of this process, or processes that find each other through a host file).
///
/// Returns, in the process that hosts worker 0, every word with its count
/// in ascending order; in the other processes `None`. Every process must be
/// given the same files, readable under the same paths.
pub fn word_count(
    config: timely::Config,
    files: Vec<String>,
) -> Result<Option<Vec<Count>>, String> {
    let guards = timely::execute(config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let collected: Rc<RefCell<Vec<Count>>> = Rc::default();
        let failed_here: Rc<RefCell<Option<String>>> = Rc::default();
        let (files, failed_in_map) = (files.clone(), failed_here.clone());
        let collected_in_sink = collected.clone();

        worker.dataflow::<(), _, _>(move |scope| {
            // This worker's share of the input, like map tasks handed out in turn.
            let mine: Vec<usize> = (0..files.len()).filter(|i| i % peers == index).collect();
            mine.to_stream(scope)
                // Map: one local table per file, given on as (word, count).
                .unary(Pipeline, "Map", move |_, _| {
                    let mut buf = Vec::new();
                    move |input, output| {
                        input.for_each(|cap, data| {
                            let mut session = output.session(&cap);
                            for &i in data.iter() {
                                match count_words(&files[i], &mut buf) {
                                    Ok(counts) => session.give_iterator(counts.into_iter()),
                                    // An error travels as data, so that worker 0
                                    // learns of it even from another process.
                                    Err(e) => {
                                        session.give((format!("{ERROR_MARK}{e}"), 0));
                                        *failed_in_map.borrow_mut() = Some(e);
                                    }
                                }
                            }
                        });
                    }
                })
                // Shuffle and reduce: each word goes to the worker its hash names.
                .unary_frontier(
                    Exchange::new(|(word, _): &Count| fnv1a(word.as_bytes())),
                    "Reduce",
                    |cap, _| {
                        let mut cap = Some(cap);
                        let mut totals: HashMap<String, u64> = HashMap::new();
                        move |(input, frontier), output| {
                            input.for_each(|_, data| {
                                for (word, n) in data.drain(..) {
                                    *totals.entry(word).or_insert(0) += n;
                                }
                            });
                            // An empty frontier: no record can arrive any more.
                            if frontier.is_empty()
                                && let Some(cap) = cap.take()
                            {
                                output.session(&cap).give_iterator(totals.drain());
                            }
                        }
                    },
                )
                .container::<Vec<Count>>()
                // Collect: worker 0 gathers everything for one sorted output.
                .sink(
                    Exchange::new(|_: &Count| 0),
                    "Collect",
                    move |(input, _)| {
                        input.for_each(|_, data| collected_in_sink.borrow_mut().append(data));
                    },
                );
        });
        while worker.has_dataflows() {
            worker.step_or_park(None);
        }
        if let Some(error) = failed_here.take() {
            return Err(error);
        }
        let mut all = collected.take();
        all.sort_unstable();
        // Sorted, the error records (if any) come first.
        if let Some((error, _)) = all.first()
            && let Some(error) = error.strip_prefix(ERROR_MARK)
        {
            return Err(error.to_string());
        }
        Ok((index == 0).then_some(all))
    })?;
    let mut result = None;
    for joined in guards.join() {
        if let Some(counts) = joined?? {
            result = Some(counts);
        }
    }
    Ok(result)
}
// ANCHOR_END: dataflow

/// One file's words with their counts (the map side's combiner).
fn count_words(file: &str, buf: &mut Vec<u8>) -> Result<Vec<Count>, String> {
    let text = read_input_into(Path::new(file), buf).map_err(|e| format!("{file}: {e}"))?;
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for_each_word(&text, |word| *counts.entry(word).or_insert(0) += 1);
    Ok(counts
        .into_iter()
        .map(|(w, n)| (w.to_string(), n))
        .collect())
}

/// Writes `counts` as `sequential` does: one `WORD COUNT` line each.
pub fn write_counts(out: &mut impl std::io::Write, counts: &[Count]) -> std::io::Result<()> {
    for (word, n) in counts {
        writeln!(out, "{word} {n}")?;
    }
    Ok(())
}
