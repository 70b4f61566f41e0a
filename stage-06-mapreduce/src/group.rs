//! Grouping: gathering every value emitted for a key, in memory.
//!
//! A map task groups its own output, "key -> all its values", before
//! writing one sorted intermediate file per partition; the sequential
//! reference groups everything. [`Groups`] is that table. (A reduce task
//! needs no table: it merges sorted runs, see [`files::Run`](crate::files::Run).)
//!
//! It is built for the word count's shape (millions of emits, a few thousand
//! distinct keys): one hash lookup per emit, no allocation unless the key is
//! new, values packed into one buffer per key, and a value equal to the one
//! before it stored as a count, not again. With a combiner
//! ([`App::combines`]), a key's values are reduced early whenever they take
//! more than [`COMBINE_BYTES`], so memory stays proportional to the number
//! of distinct keys, not of emits.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::app::{App, Context};
use crate::hash::FnvBuildHasher;

/// With a combiner, a key's values are reduced in place once their buffer
/// holds this many bytes.
pub const COMBINE_BYTES: usize = 256;

// ANCHOR: value_list
/// All values of one key, packed into one buffer as *runs*: a value, and
/// how many times in a row it was pushed.
///
/// ```text
///   push "1" "1" "1" "40":   buf = [3 0 0 0] [1] '1'  [1 0 0 0] [2] '4' '0'     len = 4
///                                  │         └ length, a LEB128 varint (one byte below 128)
///                                  └ repeat count, u32 little-endian
///                                                     ▲ last: where the newest run starts
/// ```
///
/// One buffer per key, not one per value; and the word count's millions of
/// `"1"`s cost one compare and one increment each: a run of equal values is
/// one entry however long it grows.
#[derive(Debug, Clone, Default)]
pub struct ValueList {
    buf: SmallBytes,
    /// Values pushed (the sum of the runs' counts).
    len: usize,
    /// Offset of the newest run in `buf` (meaningless while `buf` is empty).
    last: usize,
}

impl ValueList {
    /// Appends one value.
    pub fn push(&mut self, value: &str) {
        self.len += 1;
        if let Some(run) = self.buf.as_mut_slice().get_mut(self.last..) {
            // The newest run reaches to the end of the buffer.
            let (count, rest) = run.split_at_mut(4.min(run.len()));
            let (_, width) = read_varint(rest);
            if let Ok(count) = <&mut [u8; 4]>::try_from(count)
                && &rest[width..] == value.as_bytes()
                && *count != [0xff; 4]
            {
                *count = (u32::from_le_bytes(*count) + 1).to_le_bytes();
                return;
            }
        }
        self.last = self.buf.len();
        // The run's header: count 1, then the value's length as a varint.
        let mut head = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut used = 4;
        let mut n = value.len();
        while n >= 0x80 {
            head[used] = (n as u8) | 0x80;
            used += 1;
            n >>= 7;
        }
        head[used] = n as u8;
        self.buf.extend_from_slice(&head[..used + 1]);
        self.buf.extend_from_slice(value.as_bytes());
    }
    // ANCHOR_END: value_list

    /// How many values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the values take.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Forgets every value, keeping the memory for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.len = 0;
        self.last = 0;
    }

    /// A borrowed view, the shape `reduce` receives.
    pub fn values(&self) -> Values<'_> {
        Values {
            buf: self.buf.as_slice(),
            len: self.len,
        }
    }

    /// Replaces the values by `reduce` of them (the combiner step).
    fn combine(&mut self, app: &dyn App, cx: &Context<'_>, key: &str) {
        let combined = app.reduce(cx, key, self.values());
        self.clear();
        self.push(&combined);
    }
}

/// Value bytes kept inside the entry itself while they fit: 30 makes the
/// inline form (a tag, a length, the bytes) as big as the heap form's
/// tag and `Vec`, so the space is free.
const INLINE_VALUES: usize = 30;

/// A byte buffer inside the table's entry up to [`INLINE_VALUES`] bytes, on
/// the heap beyond. A word count's run of `"1"`s takes 6 bytes, so most
/// keys never allocate for their values, and an emit touches the entry's
/// memory only (see [`Key`] for why that matters).
#[derive(Debug, Clone)]
enum SmallBytes {
    Inline(u8, [u8; INLINE_VALUES]),
    Heap(Vec<u8>),
}

impl Default for SmallBytes {
    fn default() -> Self {
        SmallBytes::Inline(0, [0; INLINE_VALUES])
    }
}

impl SmallBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline(len, bytes) => &bytes[..usize::from(*len)],
            SmallBytes::Heap(vec) => vec,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            SmallBytes::Inline(len, bytes) => &mut bytes[..usize::from(*len)],
            SmallBytes::Heap(vec) => vec,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn extend_from_slice(&mut self, more: &[u8]) {
        match self {
            SmallBytes::Inline(len, bytes) => {
                let old = usize::from(*len);
                let new = old + more.len();
                if new <= INLINE_VALUES {
                    bytes[old..new].copy_from_slice(more);
                    *len = new as u8;
                } else {
                    let mut vec = Vec::with_capacity(new.max(2 * INLINE_VALUES));
                    vec.extend_from_slice(&bytes[..old]);
                    vec.extend_from_slice(more);
                    *self = SmallBytes::Heap(vec);
                }
            }
            SmallBytes::Heap(vec) => vec.extend_from_slice(more),
        }
    }

    /// Empties the buffer; a heap buffer keeps its memory for reuse.
    fn clear(&mut self) {
        match self {
            SmallBytes::Inline(len, _) => *len = 0,
            SmallBytes::Heap(vec) => vec.clear(),
        }
    }
}

/// Reads a LEB128 varint from the front of `bytes`: (value, bytes used).
fn read_varint(bytes: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        n |= usize::from(b & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
        if b < 0x80 {
            return (n, i + 1);
        }
    }
    (n, bytes.len())
}

// ANCHOR: values
/// The values of one key, as `reduce` sees them: a cheap, copyable view.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    buf: &'a [u8],
    len: usize,
}

impl<'a> Values<'a> {
    /// How many values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values in the order they were gathered, each as often as it
    /// was pushed.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.runs()
            .flat_map(|(value, count)| std::iter::repeat_n(value, count as usize))
    }

    /// The values as runs: each value with how many times in a row it was
    /// pushed. A reduce that only adds (a word count) can multiply instead
    /// of visiting every copy.
    pub fn runs(&self) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        let mut rest = self.buf;
        std::iter::from_fn(move || {
            let (count, tail) = rest.split_first_chunk::<4>()?;
            let (n, width) = read_varint(tail);
            let (value, tail) = tail[width..].split_at(n.min(tail.len() - width));
            rest = tail;
            // Every value was pushed as a &str, so this cannot fail; ""
            // keeps the library panic-free all the same.
            let value = std::str::from_utf8(value).unwrap_or("");
            Some((value, u64::from(u32::from_le_bytes(*count))))
        })
    }

    /// The values, collected.
    pub fn to_vec(&self) -> Vec<&'a str> {
        self.iter().collect()
    }
}
// ANCHOR_END: values

// ANCHOR: key
/// Keys up to this many bytes live inside the table's entry.
const INLINE_KEY: usize = 22;

/// A key of the table: kept inside the entry itself when it is short (most
/// words are), on the heap when it is not.
///
/// A lookup compares the word with the key it finds. With the key behind a
/// pointer (`Box<str>`), that compare first fetches a second piece of
/// memory, far from the entry, and a table of tens of thousands of words
/// does not fit in the CPU's caches: a cache miss per word. Inline, the
/// compare reads the cache line the lookup has just loaded.
#[derive(Clone)]
enum Key {
    /// `bytes[..len]` is a copy of a `str`: valid UTF-8.
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY],
    },
    Heap(Box<str>),
}

impl Key {
    fn new(key: &str) -> Key {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Heap(key.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Key::Inline { len, bytes } => {
                let bytes = &bytes[..usize::from(*len)];
                // SAFETY: `bytes` was copied from a `str` in `Key::new` and
                // never changes (the fields are private to this module), so
                // it is valid UTF-8; a checked conversion here would cost a
                // pass over the key on every lookup.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Key::Heap(key) => key,
        }
    }
}
// ANCHOR_END: key

// A `HashMap<Key, _>` may be searched with a `&str` (`Borrow<str>`) only
// if a key and its `str` are equal, and hash, alike: both go through `as_str`.
impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Reused tables forget their keys when they hold more than this many
/// (see [`Groups::reset`]).
pub const KEEP_KEYS: usize = 1 << 20;

/// A table from each key to all of its values.
///
/// A key whose list is empty is not there, as far as every method is
/// concerned: [`reset`](Groups::reset) empties the lists but keeps the keys,
/// so the next map task finds most of its words already in place.
#[derive(Debug, Default)]
pub struct Groups {
    combine: bool,
    table: HashMap<Key, ValueList, FnvBuildHasher>,
    /// Keys with at least one value.
    live: usize,
}

impl Groups {
    /// An empty table; `combine` turns the combiner on (use
    /// `app.combines()`).
    pub fn new(combine: bool) -> Groups {
        Groups::with_capacity(combine, 0)
    }

    /// An empty table with room for `keys` distinct keys before it grows.
    pub fn with_capacity(combine: bool, keys: usize) -> Groups {
        let table = HashMap::with_capacity_and_hasher(keys, FnvBuildHasher::default());
        Groups {
            combine,
            table,
            live: 0,
        }
    }

    // ANCHOR: emit
    /// Adds `value` to `key`'s values.
    pub fn emit(&mut self, app: &dyn App, cx: &Context<'_>, key: &str, value: &str) {
        // Look up by &str first: a key seen before costs no allocation.
        if let Some(list) = self.table.get_mut(key) {
            if list.is_empty() {
                self.live += 1; // a key kept from an earlier task
            }
            list.push(value);
            if self.combine && list.bytes() >= COMBINE_BYTES {
                list.combine(app, cx, key);
            }
        } else {
            let mut list = ValueList::default();
            list.push(value);
            self.table.insert(Key::new(key), list);
            self.live += 1;
        }
    }
    // ANCHOR_END: emit

    // ANCHOR: reset
    /// Empties the table for reuse, with the combiner on or off. The keys
    /// and their buffers stay (unless there are more than [`KEEP_KEYS`]):
    /// map tasks over the same kind of text mostly see the same words, and a
    /// word already in the table costs no allocation, now or when the table
    /// is dropped. This is what makes a worker's second map task cheaper
    /// than its first.
    pub fn reset(&mut self, combine: bool) {
        if self.table.len() > KEEP_KEYS {
            self.table.clear();
        } else {
            self.table.values_mut().for_each(ValueList::clear);
        }
        self.live = 0;
        self.combine = combine;
    }
    // ANCHOR_END: reset

    /// Runs the combiner over every key with more than one value (if the
    /// combiner is on), so each key leaves a map task as a single value.
    pub fn combine_all(&mut self, app: &dyn App, cx: &Context<'_>) {
        if self.combine {
            for (key, list) in self.table.iter_mut() {
                if list.len() > 1 {
                    list.combine(app, cx, key.as_str());
                }
            }
        }
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True if nothing was emitted.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every key with its values, keys ascending (bytewise, which for
    /// `str` is the same as by code point).
    pub fn into_sorted(self) -> Vec<(Box<str>, ValueList)> {
        let mut all: Vec<_> = self
            .table
            .into_iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(key, list)| (Box::<str>::from(key.as_str()), list))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    // ANCHOR: sorted_partitions
    /// Splits the keys into `n` parts by [`partition`](crate::hash::partition),
    /// each sorted by key.
    pub fn sorted_partitions(&self, n: u32) -> Vec<Vec<(&str, &ValueList)>> {
        let mut parts: Vec<Vec<_>> = (0..n.max(1)).map(|_| Vec::new()).collect();
        for (key, list) in self.table.iter().filter(|(_, list)| !list.is_empty()) {
            let part = crate::hash::partition(key.as_str(), n) as usize;
            parts[part].push((sort_prefix(key.as_str()), key.as_str(), list));
        }
        parts
            .into_iter()
            .map(|mut part| {
                // Most comparisons are settled by the first 8 bytes as one
                // integer; only keys sharing them compare whole strings.
                part.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
                part.into_iter().map(|(_, key, list)| (key, list)).collect()
            })
            .collect()
    }
    // ANCHOR_END: sorted_partitions
}

/// The first 8 bytes of `key` as a big-endian integer (zero-padded), so
/// that comparing two prefixes as integers orders them like the strings.
fn sort_prefix(key: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::WordCount;
    use std::path::Path;

    #[test]
    fn empty_values_and_single_values_are_kept_apart() {
        let mut list = ValueList::default();
        assert!(list.is_empty());
        list.push("");
        assert_eq!(list.values().to_vec(), [""]);
        list.push("");
        assert_eq!(list.values().to_vec(), ["", ""]);
        list.clear();
        list.push("only");
        assert_eq!(list.values().to_vec(), ["only"]);
    }

    #[test]
    fn values_survive_many_pushes_and_a_clear() {
        let mut list = ValueList::default();
        let mut expect = Vec::new();
        for i in 0..40 {
            let v = i.to_string();
            list.push(&v);
            expect.push(v);
            assert_eq!(list.values().to_vec(), expect, "after {} values", i + 1);
        }
        list.clear();
        list.push("again");
        assert_eq!(list.values().to_vec(), ["again"]);
    }

    #[test]
    fn equal_values_in_a_row_are_stored_once_and_come_back_as_often_as_pushed() {
        let mut list = ValueList::default();
        for v in ["1", "1", "1", "40", "1", "1", "ab", "a", "a"] {
            list.push(v);
        }
        assert_eq!(list.len(), 9);
        assert_eq!(
            list.values().to_vec(),
            ["1", "1", "1", "40", "1", "1", "ab", "a", "a"]
        );
        let runs: Vec<_> = list.values().runs().collect();
        assert_eq!(runs, [("1", 3), ("40", 1), ("1", 2), ("ab", 1), ("a", 2)]);

        let mut ones = ValueList::default();
        for _ in 0..1_000_000 {
            ones.push("1");
        }
        assert_eq!(ones.len(), 1_000_000);
        assert_eq!(ones.bytes(), 6, "a million equal values are one run");
        assert_eq!(ones.values().runs().collect::<Vec<_>>(), [("1", 1_000_000)]);
    }

    #[test]
    fn short_and_long_keys_are_found_again_and_kept_apart() {
        let cx = Context {
            dir: Path::new("."),
        };
        // Around the inline limit, in bytes and in multi-byte characters.
        let keys: Vec<String> = (0..=INLINE_KEY + 2)
            .map(|n| "k".repeat(n))
            .chain((9..=12).map(|n| "ä".repeat(n)))
            .collect();
        let mut g = Groups::new(true);
        for round in 0..3 {
            for key in &keys {
                g.emit(&WordCount, &cx, key, "1");
            }
            assert_eq!(g.len(), keys.len(), "round {round}: no key twice");
        }
        let mut expect: Vec<&str> = keys.iter().map(String::as_str).collect();
        expect.sort_unstable();
        let sorted = g.into_sorted();
        let got: Vec<&str> = sorted.iter().map(|(k, _)| &**k).collect();
        assert_eq!(got, expect);
        assert!(
            sorted
                .iter()
                .all(|(_, v)| v.values().to_vec() == ["1", "1", "1"])
        );
    }

    #[test]
    fn a_run_that_reaches_the_largest_count_goes_on_in_a_new_run() {
        let mut list = ValueList::default();
        list.push("1");
        // Pretend u32::MAX - 1 values were pushed (four billion pushes would
        // take too long): the count is the run's first four bytes.
        list.buf.as_mut_slice()[..4].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
        list.push("1");
        list.push("1");
        let runs: Vec<_> = list.values().runs().collect();
        assert_eq!(runs, [("1", u64::from(u32::MAX)), ("1", 1)]);
    }

    #[test]
    fn long_values_survive_the_length_prefix() {
        let long = "x".repeat(300);
        let longer = "y".repeat(70_000);
        let mut list = ValueList::default();
        for v in ["a", &long, "", &longer, "z"] {
            list.push(v);
        }
        assert_eq!(
            list.values().to_vec(),
            ["a", &long[..], "", &longer[..], "z"]
        );
    }

    #[test]
    fn prefixes_order_like_the_strings_they_start() {
        let mut words = [
            "b",
            "a",
            "",
            "ab",
            "abcdefgh",
            "abcdefghi",
            "abcdefgg",
            "\u{0}",
            "ä",
            "z",
        ];
        let mut by_prefix = words;
        words.sort_unstable();
        by_prefix
            .sort_unstable_by(|a, b| sort_prefix(a).cmp(&sort_prefix(b)).then_with(|| a.cmp(b)));
        assert_eq!(by_prefix, words);
    }

    #[test]
    fn a_reset_table_keeps_its_keys_but_shows_none_of_them() {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut g = Groups::new(true);
        for w in ["a", "b", "b"] {
            g.emit(&WordCount, &cx, w, "1");
        }
        assert_eq!(g.len(), 2);
        g.reset(true);
        assert!(g.is_empty());
        assert!(g.sorted_partitions(3).iter().all(Vec::is_empty));
        g.emit(&WordCount, &cx, "b", "1");
        g.emit(&WordCount, &cx, "c", "1");
        assert_eq!(g.len(), 2);
        let keys: Vec<Box<str>> = g.into_sorted().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [Box::from("b"), Box::from("c")]);
    }

    #[test]
    fn values_come_back_in_emit_order() {
        let mut list = ValueList::default();
        for v in ["b", "", "ccc", "a"] {
            list.push(v);
        }
        assert_eq!(list.values().to_vec(), ["b", "", "ccc", "a"]);
        assert_eq!(list.len(), 4);
    }

    #[test]
    fn the_combiner_keeps_a_hot_key_to_a_few_values_and_the_right_sum() {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut g = Groups::new(true);
        for _ in 0..10_000 {
            g.emit(&WordCount, &cx, "the", "1");
        }
        g.combine_all(&WordCount, &cx);
        let (key, list) = g.into_sorted().remove(0);
        assert_eq!(&*key, "the");
        assert_eq!(list.values().to_vec(), ["10000"]);
    }

    #[test]
    fn without_a_combiner_every_value_is_kept() {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut g = Groups::new(false);
        for _ in 0..1000 {
            g.emit(&WordCount, &cx, "k", "1");
        }
        g.combine_all(&WordCount, &cx);
        assert_eq!(g.into_sorted()[0].1.len(), 1000);
    }

    #[test]
    fn partitions_cover_every_key_exactly_once_in_order() {
        let cx = Context {
            dir: Path::new("."),
        };
        let mut g = Groups::new(false);
        for i in 0..500 {
            g.emit(&WordCount, &cx, &format!("w{i}"), "1");
        }
        let parts = g.sorted_partitions(7);
        assert_eq!(parts.len(), 7);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 500);
        for (r, part) in parts.iter().enumerate() {
            assert!(part.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
            for (key, _) in part {
                assert_eq!(crate::hash::partition(key, 7) as usize, r);
            }
        }
    }
}
