//! # Stage 06: MapReduce on our own runtime
//!
//! The MapReduce programming model (Dean and Ghemawat, OSDI 2004), built
//! the way MIT 6.824's lab 1 asks: one *coordinator* process hands out
//! tasks, several *worker* processes run them, and they talk over TCP. Both
//! are async programs on the stage-05 runtime: the coordinator's RPC server
//! and the worker's client are futures woken by its reactor, timeouts come
//! from its timers, and the CPU-heavy map and reduce calls run through its
//! `spawn_blocking` pool.
//!
//! ```text
//!             ┌────────────── coordinator ──────────────┐
//!             │ Schedule: Idle → InProgress → Done       │
//!             │ RPC server: one async task per worker    │
//!             └──────▲───────────────▲──────────────▲───┘
//!          GetTask / │ Map, Reduce,  │              │   frames over TCP (wire)
//!          Done      │ Exit, Ack     │              │
//!             ┌──────┴───┐     ┌─────┴────┐   ┌─────┴────┐
//!             │ worker 1 │     │ worker 2 │   │ worker N │  map/reduce in spawn_blocking
//!             └────┬─────┘     └────┬─────┘   └────┬─────┘
//!                  ▼ shared directory: mr-M-R (intermediate), mr-out-R (outputs)
//! ```
//!
//! That is the lab's mode. In the paper's (`coordinator --fetch`, `worker
//! --serve`), there is no shared directory: each worker keeps its map
//! output and serves it ([`fetch`]), reduce tasks fetch their partitions,
//! and a worker's death has its finished map tasks run again. A job secret
//! ([`auth`]) keeps out whoever merely reaches a port; backup tasks
//! ([`schedule::Schedule::with_backups`]) keep a slow worker from holding
//! up the end of a phase.
//!
//! ## Modules, from the model outwards
//!
//! | module | what it is |
//! |---|---|
//! | [`app`] | the `App` trait (map, reduce, combiner) and the `wc` and `indexer` apps |
//! | [`hash`] | FNV-1a: the partition function, the same in every process |
//! | [`group`] | gathering each key's values in memory (map tasks, the sequential run) |
//! | [`files`] | file names and formats, atomic write-then-rename |
//! | [`task`] | one map task, one reduce task: plain blocking code |
//! | [`sequential`] | the reference run in one process, and the in-memory floor |
//! | [`corpus`] | a deterministic Zipf-like text generator |
//! | [`schedule`] | the coordinator's task state machine, as testable logic |
//! | [`signal`] | an async broadcast that idle workers wait on |
//! | [`wire`] | length-prefixed frames and the versioned message type |
//! | [`auth`] | the job secret: a challenge and an HMAC proof on every connection |
//! | [`coordinator`] | the RPC server around a `Schedule` |
//! | [`worker`] | the RPC client loop that runs tasks |
//! | [`fetch`] | serve-and-fetch: a worker's file server, and a reduce task that fetches its inputs |
//! | [`job`] | `run`: a coordinator and N worker processes on this machine |
//!
//! The lab's test apps (`mtiming`, `rtiming`, `jobcount`, `early_exit`,
//! `crash`, `nocrash`) are in the binary (`src/lab_apps.rs`): `crash` ends its
//! own process, which a library must never do.

pub mod app;
pub mod auth;
pub mod coordinator;
pub mod corpus;
pub mod fetch;
pub mod files;
pub mod group;
pub mod hash;
pub mod job;
pub mod schedule;
pub mod sequential;
pub mod signal;
pub mod task;
pub mod wire;
pub mod worker;

pub use app::{App, Context, Indexer, WordCount};
pub use group::Values;
