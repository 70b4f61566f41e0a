//! The partition function: which reduce task owns a key.
//!
//! Every map task, in every worker process, must send a given key to the
//! same reduce partition, or the key would be counted in two output files.
//! So the hash must be the same in every process: std's `HashMap` hasher is
//! seeded at random per process and is no good here. `DefaultHasher::new()`
//! is not seeded, but its algorithm is unspecified and may change between
//! Rust releases, so binaries built by different toolchains could disagree.
//! FNV-1a is a specified hash (published algorithm and test values) that
//! every binary computes alike; it is also tiny and fast on the short keys
//! a word count produces:
//!
//! ```text
//!   hash = OFFSET
//!   for each byte b:  hash = (hash XOR b) * PRIME      (wrapping, 64 bits)
//!   partition = hash mod R
//! ```
//!
//! The same function doubles as the hasher of the in-memory tables
//! ([`FnvBuildHasher`]): on words of a few bytes its byte loop beats
//! std's SipHash and the usual eight-bytes-at-a-time hashes (measured with
//! `examples/hashers.rs`). It does not resist hash flooding, which is fine
//! for a batch job over trusted input.

use std::hash::{BuildHasherDefault, Hasher};

/// The 64-bit FNV offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The 64-bit FNV prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

// ANCHOR: partition
/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The reduce partition (`0..n_reduce`) that owns `key`.
///
/// `n_reduce` must be at least 1 (the command line refuses 0).
pub fn partition(key: &str, n_reduce: u32) -> u32 {
    let n = u64::from(n_reduce.max(1));
    // The remainder is below n_reduce, so it fits in a u32.
    (fnv1a(key.as_bytes()) % n) as u32
}
// ANCHOR_END: partition

/// FNV-1a as a [`Hasher`] (for tables that must hash like [`fnv1a`]).
#[derive(Debug, Clone, Copy)]
pub struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(FNV_OFFSET)
    }
}

impl Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FnvHasher`]s: `HashMap<K, V, FnvBuildHasher>`.
pub type FnvBuildHasher = BuildHasherDefault<FnvHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite (64-bit FNV-1a).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partition_is_in_range() {
        for r in 1..20 {
            for key in ["", "a", "the", "Straße", "zebra"] {
                assert!(partition(key, r) < r);
            }
        }
    }

    #[test]
    fn partition_is_the_same_in_every_process_and_every_build() {
        // Pinned values (computed independently from the FNV-1a definition):
        // a per-process random seed, or any change of the function, would
        // send a key to different reduce tasks in different workers.
        assert_eq!(partition("the", 10), 4);
        assert_eq!(partition("zebra", 10), 7);
        assert_eq!(partition("Straße", 10), 4);
        assert_eq!(partition("the", 7), 5);
        assert_eq!(partition("zebra", 7), 2);
        assert_eq!(partition("Straße", 7), 0);
    }

    #[test]
    fn partition_spreads_words_over_all_reduce_tasks() {
        let mut seen = [0usize; 10];
        for i in 0..1000 {
            seen[partition(&format!("word{i}"), 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "lopsided: {seen:?}");
    }

    #[test]
    fn hasher_agrees_with_fnv1a_on_raw_bytes() {
        let mut h = FnvHasher::default();
        h.write(b"foo");
        h.write(b"bar");
        assert_eq!(h.finish(), fnv1a(b"foobar"));
    }
}
