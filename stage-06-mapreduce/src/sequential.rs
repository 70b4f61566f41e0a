//! The reference: the whole job in one process, no partitions, no files in
//! between.
//!
//! `mapreduce sequential` maps every input into one [`Groups`] table and
//! reduces every key into `mr-out-0`. The distributed job must produce the
//! same lines (spread over `mr-out-*`); the tests compare the two.
//!
//! [`word_count_in_memory`] is the floor the benchmark compares against: one
//! hash map of counters, no `App` trait, no strings for values, no files.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::app::{App, Context, for_each_word};
use crate::files;
use crate::group::Groups;
use crate::hash::FnvBuildHasher;
use crate::task::{context, write_output};

/// What the sequential run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequentialOutcome {
    /// Input bytes read.
    pub bytes_in: u64,
    /// Distinct keys written.
    pub keys: u64,
}

// ANCHOR: sequential
/// Runs `app` over `inputs` in this process and writes `dir/mr-out-0`.
pub fn run_sequential(
    app: &dyn App,
    dir: &Path,
    inputs: &[String],
) -> io::Result<SequentialOutcome> {
    files::ensure_dir(dir)?;
    let cx = Context { dir };
    let mut groups = Groups::new(app.combines());
    let mut bytes_in = 0;
    let mut buf = Vec::new();
    for file in inputs {
        let contents =
            files::read_input_into(Path::new(file), &mut buf).map_err(|e| context(e, file))?;
        bytes_in += contents.len() as u64;
        app.map(&cx, file, &contents, &mut |key, value| {
            groups.emit(app, &cx, key, value)
        });
    }
    let keys = groups.len() as u64;
    let name = files::output_name(0);
    write_output(app, &cx, groups, &name).map_err(|e| context(e, &name))?;
    Ok(SequentialOutcome { bytes_in, keys })
}
// ANCHOR_END: sequential

// ANCHOR: in_memory
/// Counts the words of `inputs` with one hash map: the fastest this
/// machine can do the job in one thread, for comparison.
pub fn word_count_in_memory(
    inputs: &[impl AsRef<Path>],
) -> io::Result<HashMap<Box<str>, u64, FnvBuildHasher>> {
    let mut counts: HashMap<Box<str>, u64, FnvBuildHasher> = HashMap::default();
    let mut buf = Vec::new();
    for path in inputs {
        let contents = files::read_input_into(path.as_ref(), &mut buf)?;
        for_each_word(&contents, |word| match counts.get_mut(word) {
            Some(n) => *n += 1,
            None => {
                counts.insert(word.into(), 1);
            }
        });
    }
    Ok(counts)
}
// ANCHOR_END: in_memory

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::WordCount;
    use std::fs;

    #[test]
    fn sequential_and_in_memory_agree() {
        let dir = std::env::temp_dir().join(format!("mr-seq-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.txt");
        let b = dir.join("b.txt");
        fs::write(&a, "one two two").unwrap();
        fs::write(&b, b"three three thr\xffee").unwrap();
        let inputs = [
            a.to_str().unwrap().to_string(),
            b.to_str().unwrap().to_string(),
        ];
        let outcome = run_sequential(&WordCount, &dir, &inputs).unwrap();
        assert_eq!(outcome.keys, 5);
        let out = fs::read_to_string(dir.join("mr-out-0")).unwrap();
        assert_eq!(out, "ee 1\none 1\nthr 1\nthree 2\ntwo 2\n");

        let counts = word_count_in_memory(&inputs).unwrap();
        let mut lines: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        lines.sort();
        assert_eq!(lines.join("\n") + "\n", out);
        fs::remove_dir_all(&dir).unwrap();
    }
}
