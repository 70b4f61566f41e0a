//! Running one map task or one reduce task: plain, blocking code.
//!
//! A worker calls these through `spawn_blocking`, so the file I/O and the
//! CPU-bound map and reduce calls never stall its event loop. They know
//! nothing about networks or coordinators: given the task's numbers, they
//! read their inputs and leave their outputs in place, atomically.
//!
//! ```text
//!   map task M:    read input file ─► map() ─► Groups ─(combiner)─► split by
//!                  partition(key), sort each part ─► mr-M-0 … mr-M-(R-1)
//!   reduce task R: mr-0-R … mr-(M-1)-R are sorted runs ─► k-way merge
//!                  (a heap of each run's next key) ─► reduce() per key, in
//!                  ascending order ─► mr-out-R
//! ```
//!
//! This is Hadoop's sort-based shuffle (the paper instead sorts on the reduce
//! side after fetching, its section 3.1 step 5): because every run is
//! sorted, the reduce side sees each key's values together and in key order
//! without building a table of all its keys.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Display;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::app::{App, Context};
use crate::files::{self, AtomicFile, Record, Run};
use crate::group::{Groups, ValueList};

/// Map the file `file` (map task `index`) into `n_reduce` partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTask {
    /// The task number `M`, which names its files `mr-M-*`.
    pub index: u32,
    /// The input path, exactly as given to the coordinator.
    pub file: String,
    /// How many partitions (reduce tasks) there are.
    pub n_reduce: u32,
}

/// Reduce partition `index`, reading the files of `n_map` map tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceTask {
    /// The partition `R`, which names its output `mr-out-R`.
    pub index: u32,
    /// How many map tasks wrote an `mr-*-R` file.
    pub n_map: u32,
}

/// What a task did, for progress lines and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskOutcome {
    /// Bytes read.
    pub bytes_in: u64,
    /// Distinct keys handled.
    pub keys: u64,
}

/// Adds `what` (a file name, usually) to an I/O error's message.
pub(crate) fn context(err: io::Error, what: impl Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Memory a worker keeps from one map task to the next: the input buffer
/// and the table. Fresh ones would cost every task a few thousand page
/// faults (an 8 MiB input is 2048 pages) and the allocator's work.
#[derive(Debug, Default)]
pub struct Scratch {
    input: Vec<u8>,
    groups: Groups,
}

/// Runs one map task with fresh memory.
pub fn run_map(app: &dyn App, dir: &Path, task: &MapTask) -> io::Result<TaskOutcome> {
    run_map_in(app, dir, task, &mut Scratch::default())
}

// ANCHOR: map_task
/// Runs one map task, reusing `scratch`.
pub fn run_map_in(
    app: &dyn App,
    dir: &Path,
    task: &MapTask,
    scratch: &mut Scratch,
) -> io::Result<TaskOutcome> {
    let path = Path::new(&task.file);
    let contents =
        files::read_input_into(path, &mut scratch.input).map_err(|e| context(e, &task.file))?;
    let cx = Context { dir };
    let groups = &mut scratch.groups;
    groups.reset(app.combines());
    app.map(&cx, &task.file, &contents, &mut |key, value| {
        groups.emit(app, &cx, key, value)
    });
    groups.combine_all(app, &cx);

    let keys = groups.len() as u64;
    let parts = groups.sorted_partitions(task.n_reduce);
    for (r, part) in parts.into_iter().enumerate() {
        // Every partition gets a file, even an empty one: reduce task R
        // then knows that a missing mr-M-R is an error, not "no keys".
        let name = files::intermediate_name(task.index, r as u32);
        let mut out = AtomicFile::create(dir, &name).map_err(|e| context(e, &name))?;
        files::write_intermediate(&mut out, &part).map_err(|e| context(e, &name))?;
        out.commit().map_err(|e| context(e, &name))?;
    }
    Ok(TaskOutcome {
        bytes_in: contents.len() as u64,
        keys,
    })
}
// ANCHOR_END: map_task

// ANCHOR: reduce_task
/// Runs one reduce task.
pub fn run_reduce(app: &dyn App, dir: &Path, task: &ReduceTask) -> io::Result<TaskOutcome> {
    let cx = Context { dir };
    let mut files = Vec::with_capacity(task.n_map as usize);
    for m in 0..task.n_map {
        let name = files::intermediate_name(m, task.index);
        files.push((
            fs::read(dir.join(&name)).map_err(|e| context(e, &name))?,
            name,
        ));
    }
    let bytes_in = files.iter().map(|(bytes, _)| bytes.len() as u64).sum();

    let name = files::output_name(task.index);
    let mut out = AtomicFile::create(dir, &name).map_err(|e| context(e, &name))?;
    let mut merge = Merge::new(&files)?;
    let mut values = ValueList::default();
    let mut keys = 0;
    while let Some(key) = merge.next_key(&mut values)? {
        let value = app.reduce(&cx, key, values.values());
        write_line(&mut out, key, &value).map_err(|e| context(e, &name))?;
        keys += 1;
    }
    out.commit().map_err(|e| context(e, &name))?;
    Ok(TaskOutcome { bytes_in, keys })
}
// ANCHOR_END: reduce_task

// ANCHOR: merge
/// A k-way merge of sorted runs: yields each key once, in ascending order,
/// with the values from every run that has it.
///
/// ```text
///   run 0: apple  cat  dog         heap of each run's next key:
///   run 1: bee    cat                 (apple,0) (bee,1) (ant,2)
///   run 2: ant    dog  zebra        pop the least, then every entry with
///   merged: ant apple bee cat dog zebra   the same key, refill from those runs
/// ```
struct Merge<'a> {
    runs: Vec<(Run<'a>, &'a str)>,
    /// The next record of each run that has one.
    heads: Vec<Option<Record<'a>>>,
    /// (key, run) of every head; `Reverse` turns the max-heap into a min-heap.
    heap: BinaryHeap<Reverse<(&'a str, usize)>>,
}

impl<'a> Merge<'a> {
    fn new(files: &'a [(Vec<u8>, String)]) -> io::Result<Merge<'a>> {
        let mut merge = Merge {
            runs: Vec::new(),
            heads: Vec::new(),
            heap: BinaryHeap::new(),
        };
        for (i, (bytes, name)) in files.iter().enumerate() {
            merge.runs.push((
                Run::new(bytes).map_err(|e| context(e, name))?,
                name.as_str(),
            ));
            merge.heads.push(None);
            merge.advance(i)?;
        }
        Ok(merge)
    }

    /// Loads run `i`'s next record into its head and the heap.
    fn advance(&mut self, i: usize) -> io::Result<()> {
        let (run, name) = &mut self.runs[i];
        let next = run.next_record().map_err(|e| context(e, &**name))?;
        if let Some(record) = next {
            self.heap.push(Reverse((record.key, i)));
        }
        self.heads[i] = next;
        Ok(())
    }

    /// The next key, with all its values gathered into `values`.
    fn next_key(&mut self, values: &mut ValueList) -> io::Result<Option<&'a str>> {
        // ANCHOR: lab_6_3_merge
        let Some(Reverse((key, first))) = self.heap.pop() else {
            return Ok(None);
        };
        values.clear();
        let mut run = first;
        loop {
            if let Some(record) = self.heads[run].take() {
                record.values().for_each(|v| values.push(v));
            }
            self.advance(run)?;
            match self.heap.peek() {
                Some(Reverse((next, i))) if *next == key => {
                    run = *i;
                    self.heap.pop();
                }
                _ => return Ok(Some(key)),
            }
        }
        // ANCHOR_END: lab_6_3_merge
    }
}
// ANCHOR_END: merge

fn write_line(out: &mut impl Write, key: &str, value: &str) -> io::Result<()> {
    out.write_all(key.as_bytes())?;
    out.write_all(b" ")?;
    out.write_all(value.as_bytes())?;
    out.write_all(b"\n")
}

/// Calls `reduce` for every key in ascending order and writes the
/// `KEY VALUE` lines to `cx.dir/name`, atomically.
pub(crate) fn write_output(
    app: &dyn App,
    cx: &Context<'_>,
    groups: Groups,
    name: &str,
) -> io::Result<()> {
    let mut out = AtomicFile::create(cx.dir, name)?;
    for (key, list) in groups.into_sorted() {
        let value = app.reduce(cx, &key, list.values());
        write_line(&mut out, &key, &value)?;
    }
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::WordCount;
    use std::path::PathBuf;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mr-task-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn map_then_reduce_counts_words_across_partitions() {
        let dir = temp_dir("wc");
        let input = dir.join("in.txt");
        fs::write(&input, "b a b c b a").unwrap();
        let file = input.to_str().unwrap().to_string();
        let m = run_map(
            &WordCount,
            &dir,
            &MapTask {
                index: 0,
                file,
                n_reduce: 3,
            },
        )
        .unwrap();
        assert_eq!(
            m,
            TaskOutcome {
                bytes_in: 11,
                keys: 3
            }
        );
        let mut lines = Vec::new();
        for r in 0..3 {
            assert!(
                dir.join(format!("mr-0-{r}")).exists(),
                "every partition has a file"
            );
            run_reduce(&WordCount, &dir, &ReduceTask { index: r, n_map: 1 }).unwrap();
            let out = fs::read_to_string(dir.join(format!("mr-out-{r}"))).unwrap();
            lines.extend(out.lines().map(str::to_string));
        }
        lines.sort();
        assert_eq!(lines, ["a 2", "b 3", "c 1"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_merge_gathers_each_key_from_every_run_in_order() {
        let dir = temp_dir("merge");
        let runs: [&[&str]; 3] = [
            &["apple", "cat", "dog"],
            &["bee", "cat"],
            &["ant", "dog", "zebra"],
        ];
        for (m, keys) in runs.iter().enumerate() {
            let entries: Vec<(Box<str>, ValueList)> = keys
                .iter()
                .map(|k| {
                    let mut l = ValueList::default();
                    l.push(&m.to_string());
                    (Box::from(*k), l)
                })
                .collect();
            let mut f = AtomicFile::create(&dir, &files::intermediate_name(m as u32, 0)).unwrap();
            files::write_intermediate(&mut f, &entries).unwrap();
            f.commit().unwrap();
        }
        run_reduce(
            &crate::app::Indexer,
            &dir,
            &ReduceTask { index: 0, n_map: 3 },
        )
        .unwrap();
        let out = fs::read_to_string(dir.join("mr-out-0")).unwrap();
        assert_eq!(
            out,
            "ant 1 2\napple 1 0\nbee 1 1\ncat 2 0,1\ndog 2 0,2\nzebra 1 2\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reused_scratch_memory_carries_nothing_from_one_task_to_the_next() {
        let dir = temp_dir("scratch");
        let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
        fs::write(&a, "one two two three three three").unwrap();
        fs::write(&b, "four").unwrap();
        let mut scratch = Scratch::default();
        for (index, path) in [&a, &b].into_iter().enumerate() {
            let file = path.to_str().unwrap().to_string();
            let task = MapTask {
                index: index as u32,
                file,
                n_reduce: 1,
            };
            run_map_in(&WordCount, &dir, &task, &mut scratch).unwrap();
        }
        let mut lines = Vec::new();
        files::read_intermediate(&fs::read(dir.join("mr-1-0")).unwrap(), |k, v| {
            lines.push(format!("{k} {v}"))
        })
        .unwrap();
        assert_eq!(lines, ["four 1"], "map 1 saw only its own input");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_input_is_an_error_naming_the_file() {
        let dir = temp_dir("missing");
        let task = MapTask {
            index: 0,
            file: "no/such/file.txt".into(),
            n_reduce: 1,
        };
        let err = run_map(&WordCount, &dir, &task).unwrap_err();
        assert!(err.to_string().contains("no/such/file.txt"), "{err}");
        let err = run_reduce(&WordCount, &dir, &ReduceTask { index: 0, n_map: 1 }).unwrap_err();
        assert!(err.to_string().contains("mr-0-0"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
