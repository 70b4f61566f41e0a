//! A pool of fiber stacks, so that spawning a green thread rarely costs an
//! `mmap` (and finishing one rarely costs a `munmap`).
//!
//! A stage-01 [`Stack`] is an `mmap`'d region with a guard page below it:
//! creating one is three system calls (`mmap`, `mprotect`, and later
//! `munmap`) plus page faults when it is first touched. A green thread that
//! finishes gives its stack back with [`Fiber::into_stack`], and the next
//! spawn takes it from here.
//!
//! ```text
//!   spawn ──get()──> [ idle stacks ... ] <──put()── thread finished
//!                      │ empty? Stack::new (mmap)
//!                      │ full?  drop the returned stack (munmap)
//! ```
//!
//! The pool keeps at most `max_idle` stacks, so a burst of 100,000 green
//! threads does not pin 100,000 stacks forever. A reused stack keeps the
//! pages its last user touched: they are already resident, which is exactly
//! why reuse is fast.
//!
//! [`Stack`]: fibers::Stack
//! [`Fiber::into_stack`]: fibers::Fiber::into_stack

use std::io;

use fibers::Stack;

/// Counters that tests use to prove no stack is leaked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Stacks created with `mmap` over the pool's life.
    pub created: usize,
    /// Stacks handed out and not yet returned (owned by live green threads).
    pub in_use: usize,
    /// Stacks waiting in the pool for reuse.
    pub idle: usize,
    /// Stacks that were returned while the pool was full, and unmapped.
    pub released: usize,
}

/// Stacks of one size, kept for reuse.
pub(crate) struct StackPool {
    idle: Vec<Stack>,
    stack_size: usize,
    max_idle: usize,
    stats: PoolStats,
}

impl StackPool {
    pub(crate) fn new(stack_size: usize, max_idle: usize) -> Self {
        StackPool {
            idle: Vec::new(),
            stack_size,
            max_idle,
            stats: PoolStats::default(),
        }
    }

    /// A stack from the pool, or a fresh one if the pool is empty.
    pub(crate) fn get(&mut self) -> io::Result<Stack> {
        let stack = match self.idle.pop() {
            Some(stack) => stack,
            None => {
                let stack = Stack::new(self.stack_size)?;
                self.stats.created += 1;
                stack
            }
        };
        self.stats.in_use += 1;
        Ok(stack)
    }

    /// Takes a stack back (dropping, and so unmapping, it if the pool is full).
    pub(crate) fn put(&mut self, stack: Stack) {
        self.stats.in_use -= 1;
        if self.idle.len() < self.max_idle {
            self.idle.push(stack);
        } else {
            self.stats.released += 1;
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            idle: self.idle.len(),
            ..self.stats
        }
    }
}

impl std::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.stack_size)
            .field("max_idle", &self.max_idle)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_stack_is_reused_instead_of_mapping_a_new_one() {
        let mut pool = StackPool::new(16 * 1024, 4);
        let stack = pool.get().unwrap();
        let top = stack.top();
        pool.put(stack);
        let again = pool.get().unwrap();
        assert_eq!(again.top(), top, "the same mapping came back");
        assert_eq!(
            pool.stats(),
            PoolStats {
                created: 1,
                in_use: 1,
                idle: 0,
                released: 0
            }
        );
        pool.put(again);
        assert_eq!(pool.stats().idle, 1);
    }

    #[test]
    fn a_full_pool_unmaps_what_it_cannot_keep() {
        let mut pool = StackPool::new(16 * 1024, 1);
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        pool.put(a);
        pool.put(b);
        assert_eq!(
            pool.stats(),
            PoolStats {
                created: 2,
                in_use: 0,
                idle: 1,
                released: 1
            }
        );
    }
}
