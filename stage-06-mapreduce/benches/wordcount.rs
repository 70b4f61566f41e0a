//! `wordcount/*`: the same 64 MiB word count three ways.
//!
//! - `ours`: `mapreduce run --app wc --workers 2`, the real binary: a
//!   coordinator and two worker processes, files between the phases.
//! - `sequential`: `mapreduce sequential --app wc`, the reference: one
//!   process, one thread, no intermediate files.
//! - `in_memory`: one hash map of counters, no `App`, no files: the floor.
//!
//! The corpus is generated once (deterministically) under the system temp
//! directory and reused by later runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mapreduce::corpus::CorpusSpec;
use mapreduce::job::cached_corpus;
use mapreduce::sequential::word_count_in_memory;

const CORPUS_BYTES: u64 = 64 << 20;

fn corpus() -> (PathBuf, Vec<String>) {
    let base = std::env::temp_dir().join("mapreduce");
    let spec = CorpusSpec {
        bytes: CORPUS_BYTES,
        files: 8,
        seed: 6824,
    };
    let paths = cached_corpus(&base, &spec).expect("generate the corpus");
    let files = paths
        .iter()
        .map(|p| p.to_str().expect("UTF-8 temp path").to_string())
        .collect();
    (base, files)
}

fn wordcount(c: &mut Criterion) {
    let (base, files) = corpus();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let out = base.join("bench");

    let mut group = c.benchmark_group("wordcount");
    group.throughput(Throughput::Bytes(bytes));
    // Each iteration is a whole job of a few hundred milliseconds: ten of
    // them, one per sample, keep the run short (and the window in which
    // other programs can disturb a two-CPU measurement).
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    // Both jobs run as the real binary, a fresh process each time, so
    // they pay the same start-up and page-fault costs.
    let job = |args: &[&str], dir: PathBuf| {
        let run = Command::new(env!("CARGO_BIN_EXE_mapreduce"))
            .args(args)
            .arg("--dir")
            .arg(dir)
            .args(&files)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run the binary");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{}: {stderr}", run.status);
    };
    group.bench_function("ours", |b| {
        b.iter(|| {
            job(
                &["run", "--app", "wc", "--workers", "2", "--quiet"],
                out.join("ours"),
            )
        })
    });
    group.bench_function("sequential", |b| {
        b.iter(|| job(&["sequential", "--app", "wc"], out.join("sequential")))
    });
    group.bench_function("in_memory", |b| {
        b.iter(|| word_count_in_memory(&files).expect("in memory").len())
    });
    group.finish();
}

criterion_group!(benches, wordcount);
criterion_main!(benches);
