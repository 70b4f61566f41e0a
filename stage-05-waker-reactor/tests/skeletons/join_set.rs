//! Exercise 7: a set of spawned tasks whose outputs come back in the order
//! the tasks finish. Replace each `todo!()`.
#![allow(dead_code, unused_variables)]

use std::future::Future;

use runtime::{JoinError, JoinHandle};

pub struct JoinSet<T> {
    handles: Vec<JoinHandle<T>>,
}

impl<T: Send + 'static> JoinSet<T> {
    pub fn new() -> JoinSet<T> {
        JoinSet {
            handles: Vec::new(),
        }
    }

    /// Spawn `future` on the current runtime and keep its handle.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        todo!("exercise 7: spawn the future and keep its JoinHandle")
    }

    /// The output of the next task to finish, or `None` if the set is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        todo!("exercise 7: wait for whichever handle is ready first (poll_fn)")
    }
}
