//! The job's files: names, formats, and writing them so a crash never
//! leaves a partial file under a final name.
//!
//! ```text
//!   inputs          intermediate (map task M, partition R)     outputs
//!   a.txt ──map 0──► mr-0-0  mr-0-1  ...  mr-0-(R-1)
//!   b.txt ──map 1──► mr-1-0  mr-1-1  ...  mr-1-(R-1)
//!                      │       │             │
//!                   reduce 0 reduce 1 ... reduce R-1 ──► mr-out-0 ... mr-out-(R-1)
//! ```
//!
//! Every file is first written under a hidden temporary name in the same
//! directory, then renamed into place. `rename(2)` within one file system is
//! atomic: a reader sees the old file or the whole new one, never half of it.
//! A worker killed mid-write leaves only a `.tmp` file, which no one reads.
//! (That is crash safety for processes. Surviving a power cut would also
//! need `fsync` of the file before the rename and of the directory after.)
//!
//! An intermediate file is binary and length-prefixed, so keys and values may
//! hold any character (a file name with a space, a value with a newline):
//!
//! ```text
//!   "MRI1"                              magic and format version
//!   repeated: key_len u32 LE, key bytes,
//!             value_count u32 LE, then value_count × (len u32 LE, bytes)
//! ```
//!
//! An output file is text: one `KEY VALUE` line per key, keys ascending.

use std::borrow::{Borrow, Cow};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::group::ValueList;

/// The first bytes of every intermediate file.
pub const INTERMEDIATE_MAGIC: &[u8; 4] = b"MRI1";

/// `mr-M-R`: map task `map`'s pairs for reduce partition `reduce`.
pub fn intermediate_name(map: u32, reduce: u32) -> String {
    format!("mr-{map}-{reduce}")
}

/// `mr-out-R`: reduce task `reduce`'s output.
pub fn output_name(reduce: u32) -> String {
    format!("mr-out-{reduce}")
}

/// Creates the job's directory `dir` if needed. The error names the
/// directory and says what is wrong (`create_dir_all` alone reports a
/// regular file in the way as "File exists").
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    let failed = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot use directory {}: {e}", dir.display()),
        )
    };
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => Err(failed(io::Error::new(
            io::ErrorKind::NotADirectory,
            "it is not a directory",
        ))),
        Err(e) => Err(failed(e)),
    }
}

/// Opens an input file and returns it with its length; anything but a
/// regular file is an `InvalidInput` error.
pub fn open_input(path: &Path) -> io::Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    // Without O_NONBLOCK, opening a FIFO for reading waits until someone
    // opens it for writing, which may be never: the command would hang
    // before it could say what is wrong. The flag changes nothing for the
    // regular files read after the check.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta.len()))
}

/// Reads an input file. Bytes that are not UTF-8 become U+FFFD instead of
/// an error: a word count over a stray Latin-1 file should still count.
pub fn read_input(path: &Path) -> io::Result<String> {
    let (mut file, size) = open_input(path)?;
    let mut bytes = Vec::new();
    reserve_for(&mut bytes, size)?;
    file.read_to_end(&mut bytes)?;
    // Valid UTF-8 (the usual case) is checked once and the buffer reused;
    // only invalid input pays for a second, repairing pass.
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Reads an input file into `buf` (cleared first, its memory reused) and
/// returns the text, borrowed from `buf` when it is valid UTF-8 and
/// repaired (U+FFFD for bad bytes) when it is not.
pub fn read_input_into<'b>(path: &Path, buf: &'b mut Vec<u8>) -> io::Result<Cow<'b, str>> {
    buf.clear();
    let (mut file, size) = open_input(path)?;
    // Room for the whole file at once: growing by doubling would copy it.
    reserve_for(buf, size)?;
    file.read_to_end(buf)?;
    Ok(String::from_utf8_lossy(buf))
}

/// Makes room in `buf` for a whole input of `size` bytes (and the one
/// more that tells `read_to_end` the file ended). A file too big for memory
/// is an `OutOfMemory` error, where a plain `reserve` would abort.
fn reserve_for(buf: &mut Vec<u8>, size: u64) -> io::Result<()> {
    usize::try_from(size)
        .ok()
        .and_then(|size| size.checked_add(1))
        .and_then(|want| buf.try_reserve(want).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("{size} bytes do not fit in memory (each input file is read whole)"),
            )
        })
}

// ANCHOR: atomic
/// A file written under a temporary name and renamed into place by
/// [`commit`](AtomicFile::commit). Dropped without a commit, it removes its
/// temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    temp: PathBuf,
    dest: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `dir/name`.
    pub fn create(dir: &Path, name: &str) -> io::Result<AtomicFile> {
        // Unique per process and per call, so concurrent writers (a slow
        // worker and the one that replaced it) never share a temp file.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(AtomicFile {
            temp,
            dest: dir.join(name),
            out: Some(BufWriter::with_capacity(64 * 1024, file)),
        })
    }

    /// Flushes and renames the file into place. If either fails (a full
    /// disk often shows up only here, when the buffer is flushed), the
    /// temporary file is removed and the error returned.
    pub fn commit(mut self) -> io::Result<()> {
        let flushed = match self.out.take() {
            Some(out) => out.into_inner().map(drop).map_err(|e| e.into_error()),
            None => Ok(()),
        };
        let result = flushed.and_then(|()| fs::rename(&self.temp, &self.dest));
        if result.is_err() {
            // `out` is gone, so Drop will not clean up: do it here.
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.out {
            Some(out) => out.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.write_all(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Not committed: an error on the way. Nothing to report to.
            let _ = fs::remove_file(&self.temp);
        }
    }
}
// ANCHOR_END: atomic

fn put_len(out: &mut impl Write, len: usize) -> io::Result<()> {
    let len = u32::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "key or value longer than 4 GiB",
        )
    })?;
    out.write_all(&len.to_le_bytes())
}

/// Writes one intermediate file's records. `entries` must be sorted by
/// key, ascending and without duplicates; [`Run`] checks this on reading.
pub fn write_intermediate<K: AsRef<str>, V: Borrow<ValueList>>(
    out: &mut impl Write,
    entries: &[(K, V)],
) -> io::Result<()> {
    out.write_all(INTERMEDIATE_MAGIC)?;
    for (key, list) in entries {
        let (key, list) = (key.as_ref(), list.borrow());
        put_len(out, key.len())?;
        out.write_all(key.as_bytes())?;
        put_len(out, list.len())?;
        for value in list.values().iter() {
            put_len(out, value.len())?;
            out.write_all(value.as_bytes())?;
        }
    }
    Ok(())
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt intermediate file: {what}"),
    )
}

/// Splits `n` bytes off the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
    if bytes.len() < n {
        return Err(corrupt("truncated"));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_len(bytes: &mut &[u8]) -> io::Result<usize> {
    let b = take(bytes, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn take_text<'a>(bytes: &mut &'a [u8]) -> io::Result<&'a str> {
    let n = take_len(bytes)?;
    std::str::from_utf8(take(bytes, n)?).map_err(|_| corrupt("not UTF-8"))
}

// ANCHOR: sorted_run
/// One intermediate file, read as a *sorted run*: its records come out in
/// ascending key order, one record per key. A reduce task merges the runs
/// of every map task, so it never needs a table of all its keys.
#[derive(Debug)]
pub struct Run<'a> {
    rest: &'a [u8],
    last_key: Option<&'a str>,
}

/// One key of a run with all its values.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The key.
    pub key: &'a str,
    count: usize,
    /// The encoded values, already checked by [`Run::next_record`].
    values: &'a [u8],
}

impl<'a> Run<'a> {
    /// Starts reading the bytes of an intermediate file.
    pub fn new(bytes: &'a [u8]) -> io::Result<Run<'a>> {
        let mut rest = bytes;
        if take(&mut rest, 4)? != INTERMEDIATE_MAGIC {
            return Err(corrupt("wrong magic"));
        }
        Ok(Run {
            rest,
            last_key: None,
        })
    }

    /// The next record, or `None` at the end. Truncation, bad UTF-8 and
    /// keys out of order are `InvalidData` errors.
    pub fn next_record(&mut self) -> io::Result<Option<Record<'a>>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = take_text(&mut self.rest)?;
        if self.last_key.is_some_and(|last| last >= key) {
            return Err(corrupt("keys out of order"));
        }
        self.last_key = Some(key);
        let count = take_len(&mut self.rest)?;
        // Check every value now, so iterating them later cannot fail.
        let start = self.rest;
        for _ in 0..count {
            take_text(&mut self.rest)?;
        }
        let values = &start[..start.len() - self.rest.len()];
        Ok(Some(Record { key, count, values }))
    }
}

impl<'a> Record<'a> {
    /// How many values.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if the record has no values.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The values, in the order the map task wrote them.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut rest = self.values;
        // Checked in next_record: these cannot fail; "" keeps it panic-free.
        (0..self.count).map(move |_| take_text(&mut rest).unwrap_or(""))
    }
}
// ANCHOR_END: sorted_run

/// Reads every pair of an intermediate file, calling `f(key, value)`.
pub fn read_intermediate(bytes: &[u8], mut f: impl FnMut(&str, &str)) -> io::Result<()> {
    let mut run = Run::new(bytes)?;
    while let Some(record) = run.next_record()? {
        for value in record.values() {
            f(record.key, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mr-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn list(values: &[&str]) -> ValueList {
        let mut l = ValueList::default();
        for v in values {
            l.push(v);
        }
        l
    }

    #[test]
    fn intermediate_records_round_trip_with_any_characters() {
        let entries = vec![
            ("", list(&["Straße"])),
            ("plain", list(&["1", "2"])),
            ("with space\nand newline", list(&["a b", ""])),
        ];
        let mut bytes = Vec::new();
        write_intermediate(&mut bytes, &entries).unwrap();
        let mut back = Vec::new();
        read_intermediate(&bytes, |k, v| back.push((k.to_string(), v.to_string()))).unwrap();
        let expect = [
            ("", "Straße"),
            ("plain", "1"),
            ("plain", "2"),
            ("with space\nand newline", "a b"),
            ("with space\nand newline", ""),
        ];
        let expect: Vec<_> = expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(back, expect);
    }

    #[test]
    fn a_truncated_or_foreign_intermediate_file_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        write_intermediate(&mut bytes, &[("key", list(&["value"]))]).unwrap();
        for cut in 0..bytes.len() {
            if cut == 4 {
                continue; // just the magic: a valid, empty file
            }
            let r = read_intermediate(&bytes[..cut], |_, _| {});
            assert_eq!(
                r.unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "cut at {cut}"
            );
        }
        assert!(read_intermediate(b"garbage!", |_, _| {}).is_err());
        let huge = [b"MRI1".as_slice(), &u32::MAX.to_le_bytes()].concat();
        assert!(read_intermediate(&huge, |_, _| {}).is_err());
    }

    #[test]
    fn a_run_with_keys_out_of_order_is_refused() {
        let mut bytes = Vec::new();
        write_intermediate(&mut bytes, &[("b", list(&["1"])), ("a", list(&["1"]))]).unwrap();
        let err = read_intermediate(&bytes, |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
        let mut dup = Vec::new();
        write_intermediate(&mut dup, &[("a", list(&["1"])), ("a", list(&["1"]))]).unwrap();
        assert!(
            read_intermediate(&dup, |_, _| {}).is_err(),
            "a key twice in one run"
        );
    }

    #[test]
    fn an_atomic_file_appears_only_when_committed() {
        let dir = temp_dir("atomic");
        let mut f = AtomicFile::create(&dir, "mr-out-0").unwrap();
        f.write_all(b"half").unwrap();
        assert!(!dir.join("mr-out-0").exists(), "visible before commit");
        f.commit().unwrap();
        assert_eq!(fs::read(dir.join("mr-out-0")).unwrap(), b"half");

        let mut g = AtomicFile::create(&dir, "mr-out-1").unwrap();
        g.write_all(b"abandoned").unwrap();
        drop(g);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["mr-out-0"],
            "no temp file and no partial output left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_commit_that_fails_leaves_no_temporary_file() {
        let dir = temp_dir("commit-fails");
        // A non-empty directory under the final name: rename(2) must fail.
        fs::create_dir_all(dir.join("mr-out-0").join("occupied")).unwrap();
        let mut f = AtomicFile::create(&dir, "mr-out-0").unwrap();
        f.write_all(b"complete, but nowhere to go").unwrap();
        assert!(f.commit().is_err());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["mr-out-0"], "the temporary file was removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_job_directory_that_cannot_be_used_is_an_error_naming_it() {
        let dir = temp_dir("ensure");
        ensure_dir(&dir.join("new/deeper")).unwrap();
        assert!(dir.join("new/deeper").is_dir());
        let file = dir.join("a-file");
        fs::write(&file, b"").unwrap();
        for bad in [file.clone(), file.join("below")] {
            let err = ensure_dir(&bad).unwrap_err().to_string();
            assert!(err.contains(&*bad.to_string_lossy()), "{err}");
            assert!(err.to_lowercase().contains("not a directory"), "{err}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_utf8_input_is_read_lossily() {
        let dir = temp_dir("lossy");
        let path = dir.join("latin1.txt");
        fs::write(&path, b"caf\xe9 ok").unwrap();
        assert_eq!(read_input(&path).unwrap(), "caf\u{FFFD} ok");
        fs::remove_dir_all(&dir).unwrap();
    }
}
