//! `timely-wordcount`: stage 06's word count on timely dataflow.
//!
//! ```text
//!   timely-wordcount [TIMELY OPTIONS] --out FILE FILES...
//!
//!   one process, 2 worker threads:   timely-wordcount -w 2 --out counts.txt a.txt b.txt
//!   two processes (one per shell):   timely-wordcount -n 2 -p 0 -h hosts.txt --out counts.txt a.txt b.txt
//!                                    timely-wordcount -n 2 -p 1 -h hosts.txt --out counts.txt a.txt b.txt
//! ```
//!
//! The timely options are timely's own (`-w` threads per process, `-n`
//! processes, `-p` this process's index, `-h` a file with one `host:port`
//! line per process). The process with index 0 writes `FILE`, byte for
//! byte what `mapreduce sequential --app wc` writes to `mr-out-0`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut opts = getopts::Options::new();
    timely::Config::install_options(&mut opts);
    opts.reqopt(
        "o",
        "out",
        "the file process 0 writes the counts to",
        "FILE",
    );
    let parsed = opts
        .parse(std::env::args().skip(1))
        .map_err(|e| e.to_string())
        .and_then(|m| Ok((timely::Config::from_matches(&m)?, m)));
    let (config, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("timely-wordcount: {e}");
            eprintln!(
                "{}",
                opts.usage("usage: timely-wordcount [options] --out FILE FILES...")
            );
            return ExitCode::from(2);
        }
    };
    let out = matches.opt_str("out").unwrap_or_default();
    let files = matches.free;
    // Every process checks its inputs before any joins the others, so a
    // typo is one clear line, not a worker failing in the middle of the job.
    for file in &files {
        if let Err(e) = File::open(file) {
            eprintln!("timely-wordcount: {file}: {e}");
            return ExitCode::FAILURE;
        }
    }
    match timely_wordcount::word_count(config, files) {
        Ok(Some(counts)) => {
            let written = File::create(&out).and_then(|f| {
                let mut w = BufWriter::new(f);
                timely_wordcount::write_counts(&mut w, &counts)?;
                w.flush()
            });
            if let Err(e) = written {
                eprintln!("timely-wordcount: {out}: {e}");
                return ExitCode::FAILURE;
            }
            eprintln!("timely-wordcount: {} words written to {out}", counts.len());
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS, // not process 0: it writes nothing
        Err(e) => {
            eprintln!("timely-wordcount: {e}");
            ExitCode::FAILURE
        }
    }
}
