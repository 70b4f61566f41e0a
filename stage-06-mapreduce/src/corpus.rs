//! A synthetic text corpus, the same bytes on every machine, at any size.
//!
//! Measuring a word count needs text with the shape of real text: a few
//! words that occur everywhere and a long tail of rare ones. Word frequencies
//! in natural language roughly follow Zipf's law: the k-th most common word
//! occurs about 1/k as often as the most common one. The generator draws
//! words from a fixed vocabulary with exactly those weights, using a seeded
//! pseudo-random generator (SplitMix64), and lays them out as sentences and
//! lines. A handful of accented words keep the Unicode path honest.
//!
//! ```text
//!   rank:      1     2     3    ...   k   ...  VOCABULARY
//!   weight:    1    1/2   1/3   ...  1/k  ...
//!   draw:  u = uniform(0, sum of weights) ─► first rank whose cumulative
//!          weight exceeds u (binary search)
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::files::AtomicFile;

/// Distinct words in the vocabulary.
pub const VOCABULARY: usize = 30_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusSpec {
    /// Total size in bytes (each file stops at the first line end past its share).
    pub bytes: u64,
    /// Number of files (at least 1).
    pub files: u32,
    /// Seed of the generator: same seed, same bytes.
    pub seed: u64,
}

impl CorpusSpec {
    /// `bytes` bytes in a default number of files: one per 2 MiB, 1 to 64.
    pub fn new(bytes: u64) -> CorpusSpec {
        let files = bytes.div_ceil(2 << 20).clamp(1, 64) as u32;
        CorpusSpec {
            bytes,
            files,
            seed: 6824,
        }
    }
}

/// SplitMix64: a tiny, well-mixed, seedable generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0); the tiny modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The most common English words, so the top of the distribution reads
/// like text; the rest of the vocabulary is made of syllables.
const COMMON: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "that", "it", "was", "he", "I", "his", "you", "with",
    "for", "as", "had", "her", "she", "is", "not", "on", "at", "but", "be", "my", "him", "all",
    "have", "they", "which", "so", "by", "this", "from", "we", "were", "said", "me", "one",
    "there", "what", "would", "no", "an", "if", "when", "them", "could", "their", "were", "been",
    "out", "into", "more", "then", "will", "up", "do", "who", "upon", "little",
];

/// Accented words placed through the vocabulary.
const ACCENTED: &[&str] = &[
    "café",
    "naïve",
    "façade",
    "Straße",
    "über",
    "déjà",
    "señor",
    "fiancée",
    "rôle",
    "Ångström",
];

const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
    "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "wh", "",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ea", "ou", "ai", "ie", "oo", "y"];
const CODAS: &[&str] = &[
    "", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "ck", "m", "rd",
];

/// Builds the vocabulary, most frequent first. Deterministic.
pub fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = Vec::with_capacity(VOCABULARY);
    let mut seen = std::collections::HashSet::new();
    let mut push = |w: String, words: &mut Vec<String>| {
        if seen.insert(w.clone()) {
            words.push(w);
        }
    };
    for w in COMMON {
        push(w.to_string(), &mut words);
    }
    let mut rng = SplitMix64::new(0x5eed_0f7e_8700_6824);
    let mut accented = ACCENTED.iter();
    while words.len() < VOCABULARY {
        if words.len() % 1000 == 500
            && let Some(w) = accented.next()
        {
            push(w.to_string(), &mut words);
            continue;
        }
        let syllables = 1 + rng.below(3) + rng.below(2);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(ONSETS[rng.below(ONSETS.len() as u64) as usize]);
            w.push_str(VOWELS[rng.below(VOWELS.len() as u64) as usize]);
            w.push_str(CODAS[rng.below(CODAS.len() as u64) as usize]);
        }
        push(w, &mut words);
    }
    words
}

/// Draws ranks with Zipf weights 1/k.
#[derive(Debug)]
struct Zipf {
    /// cumulative[k] = sum of weights of ranks 0..=k, scaled to u64.
    cumulative: Vec<u64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut sum = 0.0f64;
        let weights: Vec<f64> = (1..=n)
            .map(|k| {
                sum += 1.0 / k as f64;
                sum
            })
            .collect();
        let scale = (u64::MAX >> 1) as f64 / sum;
        Zipf {
            cumulative: weights.iter().map(|c| (c * scale) as u64).collect(),
        }
    }

    fn draw(&self, rng: &mut SplitMix64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let u = rng.below(total);
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

// ANCHOR: generate
/// Writes the corpus into `dir` (created if needed) as `corpus-NNN.txt` and
/// returns the paths, in order. Each file is written as it is generated,
/// a piece at a time, so its size is bounded by the disk, not by memory.
pub fn generate(dir: &Path, spec: &CorpusSpec) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let vocabulary = vocabulary();
    let zipf = Zipf::new(vocabulary.len());
    let files = spec.files.max(1);
    let per_file = spec.bytes.div_ceil(u64::from(files));
    let mut paths = Vec::with_capacity(files as usize);
    for f in 0..files {
        // Each file has its own stream, so file k is the same whatever the
        // number of files after it.
        let mut rng = SplitMix64::new(spec.seed ^ (u64::from(f) << 32));
        let name = format!("corpus-{f:03}.txt");
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{name}: {e}"));
        let mut out = AtomicFile::create(dir, &name).map_err(named)?;
        write_text(&mut out, &vocabulary, &zipf, &mut rng, per_file).map_err(named)?;
        out.commit().map_err(named)?;
        paths.push(dir.join(name));
    }
    Ok(paths)
}
// ANCHOR_END: generate

/// Bytes of text generated before they are written out.
const PIECE: usize = 64 * 1024;

/// One file's text, `bytes` long and then to the end of its line:
/// sentences of 4 to 18 words, lines of about 70 bytes.
fn write_text(
    out: &mut impl Write,
    vocabulary: &[String],
    zipf: &Zipf,
    rng: &mut SplitMix64,
    bytes: u64,
) -> io::Result<()> {
    let mut piece: Vec<u8> = Vec::with_capacity(PIECE + 256);
    let mut written = 0u64;
    let mut line_len = 0;
    while written + (piece.len() as u64) < bytes {
        let words = 4 + rng.below(15);
        for i in 0..words {
            let word = vocabulary[zipf.draw(rng)].as_bytes();
            let start = piece.len();
            piece.extend_from_slice(word);
            if i == 0 {
                piece[start] = piece[start].to_ascii_uppercase();
            }
            line_len += word.len();
            let sep: &[u8] = if i + 1 == words {
                b". "
            } else {
                match rng.below(20) {
                    0 => b", ",
                    1 => b"; ",
                    2 if rng.below(10) == 0 => b" 1865 ",
                    _ => b" ",
                }
            };
            if line_len > 70 {
                piece.extend_from_slice(sep.trim_ascii_end());
                piece.push(b'\n');
                line_len = 0;
            } else {
                piece.extend_from_slice(sep);
                line_len += sep.len();
            }
        }
        if piece.len() >= PIECE {
            out.write_all(&piece)?;
            written += piece.len() as u64;
            piece.clear();
        }
    }
    // Every file ends with a line end (an empty one is just that).
    if line_len > 0 || (written == 0 && piece.is_empty()) {
        piece.push(b'\n');
    }
    out.write_all(&piece)
}

/// Parses a size such as `4096`, `100k`, `64M`, `64MiB` or `1G` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| format!("not a size: '{s}'"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("unknown size unit in '{s}' (use k, M or G)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: '{s}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequential::word_count_in_memory;

    #[test]
    fn the_vocabulary_is_deterministic_distinct_and_alphabetic() {
        let v = vocabulary();
        assert_eq!(v.len(), VOCABULARY);
        assert_eq!(v, vocabulary());
        let distinct: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(distinct.len(), v.len());
        assert!(
            v.iter()
                .all(|w| !w.is_empty() && w.chars().all(char::is_alphabetic))
        );
    }

    #[test]
    fn the_same_spec_gives_the_same_bytes_and_roughly_the_size_asked() {
        let base = std::env::temp_dir().join(format!("mr-corpus-{}", std::process::id()));
        let spec = CorpusSpec {
            bytes: 50_000,
            files: 3,
            seed: 1,
        };
        let a = generate(&base.join("a"), &spec).unwrap();
        let b = generate(&base.join("b"), &spec).unwrap();
        assert_eq!(a.len(), 3);
        let mut total = 0;
        for (x, y) in a.iter().zip(&b) {
            let bytes = fs::read(x).unwrap();
            assert_eq!(bytes, fs::read(y).unwrap());
            total += bytes.len() as u64;
        }
        assert!((50_000..50_000 + 3 * 200).contains(&total), "{total}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn word_frequencies_fall_off_like_zipf() {
        let base = std::env::temp_dir().join(format!("mr-zipf-{}", std::process::id()));
        let paths = generate(
            &base,
            &CorpusSpec {
                bytes: 400_000,
                files: 1,
                seed: 7,
            },
        )
        .unwrap();
        let counts = word_count_in_memory(&paths).unwrap();
        let the = counts["the"];
        let of = counts["of"];
        // Rank 2 occurs about half as often as rank 1 (capitalised "The"
        // at sentence starts takes a share of "the").
        assert!(of * 3 > the && of < the, "the={the} of={of}");
        assert!(counts.len() > 5_000, "a long tail: {}", counts.len());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100k"), Ok(100 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12x").is_err());
        assert!(parse_size("").is_err());
    }
}
