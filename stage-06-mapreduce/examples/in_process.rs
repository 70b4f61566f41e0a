//! A coordinator and two workers as tasks of one runtime, in one process.
//!
//! `cargo run --release -p stage-06-mapreduce --example in_process`
//!
//! `mapreduce run` puts each worker in its own process, as the lab does.
//! Nothing in the coordinator or the worker cares: they are futures that
//! talk over TCP. Here all three run on one stage-05 runtime, on a small
//! generated corpus in a temporary directory, and the result is checked
//! against the sequential reference.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mapreduce::WordCount;
use mapreduce::auth::Secret;
use mapreduce::coordinator::{Coordinator, CoordinatorConfig};
use mapreduce::corpus::{self, CorpusSpec};
use mapreduce::sequential::run_sequential;
use mapreduce::worker::{WorkerConfig, work};
use runtime::Runtime;

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mr-in-process-{}", std::process::id()));
    let paths = corpus::generate(
        &dir.join("input"),
        &CorpusSpec {
            bytes: 1 << 20,
            files: 4,
            seed: 1,
        },
    )?;
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();

    // Every connection proves it knows this secret before its first frame.
    let secret = Secret::generate()?;
    let config = CoordinatorConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        files: files.clone(),
        n_reduce: 3,
        task_timeout: Duration::from_secs(10),
        progress: true,
        backup_tasks: false,
        secret: Some(secret.clone()),
        fetch: false,
    };
    let rt = Runtime::new()?;
    let report = rt.block_on(async {
        let coordinator = Coordinator::bind(&config)?;
        let addr = coordinator.local_addr()?;
        let workers: Vec<_> = (0..2)
            .map(|_| {
                runtime::spawn(work(WorkerConfig {
                    coordinator: addr,
                    app: &WordCount,
                    dir: dir.clone(),
                    connect_patience: Duration::from_secs(1),
                    secret: Some(secret.clone()),
                    serve: None,
                }))
            })
            .collect();
        let report = coordinator.run().await;
        for worker in workers {
            println!(
                "worker: {}",
                worker.await.map_err(|e| anyhow::anyhow!("{e:?}"))??
            );
        }
        anyhow::Ok(report)
    })?;
    println!("{report:?}");

    // The same lines as the sequential reference?
    let mut ours = Vec::new();
    for r in 0..3 {
        ours.extend(
            std::fs::read_to_string(dir.join(format!("mr-out-{r}")))?
                .lines()
                .map(str::to_string),
        );
    }
    ours.sort();
    run_sequential(&WordCount, &dir.join("seq"), &files)?;
    let reference: Vec<String> = std::fs::read_to_string(dir.join("seq/mr-out-0"))?
        .lines()
        .map(str::to_string)
        .collect();
    println!(
        "{} keys; equal to sequential: {}",
        ours.len(),
        ours == reference
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
