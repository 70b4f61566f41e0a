//! The task state machine: one atomic word that every thread agrees on.
//!
//! ```text
//!                 wake                      run (poll phase)
//!   +--------+  ------------->  +-----------+ ---------------> +---------+
//!   |  idle  |                  | scheduled |                  | running |
//!   +--------+  <-------------  +-----------+ <--------------- +---------+
//!       ^        (never)              ^    Pending, was notified    |  ^
//!       |                             +------------------------------+  |
//!       |           Pending, not notified                         wake|  | (still
//!       +-------------------------------------------------------------+  | running)
//!                                                                 v      |
//!   +--------+       Ready / panic / cancelled              +----------+ |
//!   |  done  | <------------------------------------------- | notified |-+
//!   +--------+                                              +----------+
//! ```
//!
//! The five states are four bits: `idle` = none set, `scheduled` = NOTIFIED,
//! `running` = RUNNING, `notified` = RUNNING | NOTIFIED (woken while being
//! polled), `done` = COMPLETE. Every transition is one compare-and-swap, so
//! exactly one thread wins each race. That is why no wake-up can be lost:
//!
//! * a wake sees `idle`: it moves the task to `scheduled` and, being the one
//!   thread that did, puts it on the run queue;
//! * a wake sees `running`: it moves it to `notified` and queues nothing; when
//!   the poll returns `Pending` the runner sees NOTIFIED and queues the task
//!   again itself (if the wake came after the future looked at its resource,
//!   the future is polled once more and sees the new state);
//! * a wake sees `scheduled`, `notified` or `done`: nothing to do (a queued
//!   task will be polled anyway; a finished one is never polled again).
//!
//! Three more bits belong to the [`JoinHandle`](crate::JoinHandle):
//! CANCELLED (`abort` asked for it), JOIN_INTEREST (a handle still wants the
//! output) and JOIN_WAKER (the handle stored a waker the task must wake on
//! completion). The reference count lives in a separate word (see
//! [`Header`](super::core::Header)).

use crate::sync::atomic::{AtomicUsize, Ordering::*};

const RUNNING: usize = 1 << 0;
const NOTIFIED: usize = 1 << 1;
const COMPLETE: usize = 1 << 2;
const CANCELLED: usize = 1 << 3;
const JOIN_INTEREST: usize = 1 << 4;
const JOIN_WAKER: usize = 1 << 5;

/// The state of a freshly spawned task: scheduled (its first run is queued)
/// and awaited by a join handle.
const INITIAL: usize = NOTIFIED | JOIN_INTEREST;

/// A copy of the state word at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    /// The state's name in the chapter's diagram.
    pub(crate) fn name(self) -> &'static str {
        match (
            self.0 & COMPLETE != 0,
            self.0 & RUNNING != 0,
            self.0 & NOTIFIED != 0,
        ) {
            (true, _, _) => "done",
            (false, true, true) => "notified",
            (false, true, false) => "running",
            (false, false, true) => "scheduled",
            (false, false, false) => "idle",
        }
    }
}

/// What the runner must do at the start of a run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StartRun {
    /// Poll the future.
    Poll,
    /// `abort` was called: drop the future instead of polling it.
    Cancel,
    /// The task already finished (shut down while queued): just drop the
    /// queue's reference.
    Skip,
}

/// What the runner must do after the future returned `Pending`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EndRun {
    /// Back to idle: some waker will queue the task again.
    Idle,
    /// A wake arrived during the poll: queue the task again now.
    Requeue,
    /// `abort` arrived during the poll: drop the future now.
    Cancel,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct State(AtomicUsize);

impl State {
    pub(crate) fn new() -> State {
        State(AtomicUsize::new(INITIAL))
    }

    /// Acquire: a snapshot that shows COMPLETE also shows the output the
    /// runner stored before setting it (the join handle reads it next).
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    /// Apply `f` to the state until the compare-and-swap sticks. `f` returns
    /// the new state, or `None` to leave the state as it is. Returns the
    /// state that `f` last saw.
    ///
    /// Orderings: every transition hands something over (the future, from
    /// the runner that clears RUNNING to the next one that sets it; the
    /// output, at COMPLETE; the join-waker slot, at JOIN_WAKER), so each
    /// successful swap is AcqRel: Release publishes what this thread wrote
    /// to the cell before the transition, Acquire makes visible what the
    /// previous owner wrote before its own. A failed swap, or `f` giving up,
    /// still reads with Acquire, because the callers act on that snapshot
    /// (e.g. read the output of a task they saw COMPLETE).
    fn update(&self, mut f: impl FnMut(usize) -> Option<usize>) -> Result<Snapshot, Snapshot> {
        let mut current = self.0.load(Acquire);
        loop {
            let Some(next) = f(current) else {
                return Err(Snapshot(current));
            };
            match self.0.compare_exchange_weak(current, next, AcqRel, Acquire) {
                Ok(_) => return Ok(Snapshot(current)),
                Err(actual) => current = actual,
            }
        }
    }

    // ANCHOR: transition_to_notified
    /// Wake phase: record a wake. Returns `true` when the task went from idle
    /// to scheduled, in which case the caller (and only the caller) must put
    /// it on a run queue.
    pub(crate) fn transition_to_notified(&self) -> bool {
        // ANCHOR: lab_5_2_notified
        let result = self.update(|s| {
            if s & (COMPLETE | NOTIFIED) != 0 {
                None // done, or already going to be polled again
            } else {
                Some(s | NOTIFIED)
            }
        });
        matches!(result, Ok(prev) if prev.0 & RUNNING == 0)
        // ANCHOR_END: lab_5_2_notified
    }
    // ANCHOR_END: transition_to_notified

    // ANCHOR: transition_to_running
    /// Poll phase begins: scheduled -> running. Clears NOTIFIED, so a wake
    /// that arrives during the poll is seen by [`State::transition_to_idle`].
    pub(crate) fn transition_to_running(&self) -> StartRun {
        // ANCHOR: lab_5_2_running
        let result = self.update(|s| {
            if s & (RUNNING | COMPLETE) != 0 {
                None
            } else {
                Some((s | RUNNING) & !NOTIFIED)
            }
        });
        match result {
            Ok(prev) if prev.0 & CANCELLED != 0 => StartRun::Cancel,
            Ok(_) => StartRun::Poll,
            Err(_) => StartRun::Skip,
        }
        // ANCHOR_END: lab_5_2_running
    }
    // ANCHOR_END: transition_to_running

    // ANCHOR: transition_to_idle
    /// Poll phase ends with `Pending`: running -> idle, or notified ->
    /// scheduled (NOTIFIED stays set and the caller requeues the task).
    pub(crate) fn transition_to_idle(&self) -> EndRun {
        // ANCHOR: lab_5_2_idle
        let result = self.update(|s| {
            debug_assert!(s & RUNNING != 0);
            if s & CANCELLED != 0 {
                None // stay running: the caller drops the future
            } else {
                Some(s & !RUNNING)
            }
        });
        match result {
            Err(_) => EndRun::Cancel,
            Ok(prev) if prev.0 & NOTIFIED != 0 => EndRun::Requeue,
            Ok(_) => EndRun::Idle,
        }
        // ANCHOR_END: lab_5_2_idle
    }
    // ANCHOR_END: transition_to_idle

    /// running -> done. Returns the state just before, whose join bits tell
    /// the runner whether to keep the output and whom to wake.
    ///
    /// AcqRel: Release publishes the output; Acquire sees the join handle's
    /// waker (written before it set JOIN_WAKER) and its JOIN_INTEREST.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = self.0.fetch_xor(RUNNING | COMPLETE, AcqRel);
        debug_assert!(prev & RUNNING != 0 && prev & COMPLETE == 0);
        Snapshot(prev)
    }

    /// `abort`: mark the task cancelled. Returns `true` when the task was
    /// idle, in which case the caller must queue it so that a runner drops
    /// its future (the state is now scheduled). A running or queued task sees
    /// CANCELLED at its next transition.
    pub(crate) fn transition_to_cancelled(&self) -> bool {
        let result = self.update(|s| {
            if s & (COMPLETE | CANCELLED) != 0 {
                None
            } else if s & (RUNNING | NOTIFIED) != 0 {
                Some(s | CANCELLED)
            } else {
                Some(s | CANCELLED | NOTIFIED)
            }
        });
        matches!(result, Ok(prev) if prev.0 & (RUNNING | NOTIFIED) == 0)
    }

    /// Runtime shutdown: take the task if nobody is polling it. Returns `true`
    /// when the caller now owns the future (state running, CANCELLED set) and
    /// must drop it and complete the task.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        let result = self.update(|s| {
            if s & (RUNNING | COMPLETE) != 0 {
                Some(s | CANCELLED)
            } else {
                Some(s | RUNNING | CANCELLED)
            }
        });
        matches!(result, Ok(prev) if prev.0 & (RUNNING | COMPLETE) == 0)
    }

    // ANCHOR: join_handle_dropped
    /// The join handle is dropped: clear JOIN_INTEREST, and also JOIN_WAKER
    /// if the task is not done (the runner will then never look at the
    /// slot, so the handle may empty it). Returns the state just before:
    ///
    /// * not done: the handle empties the waker slot; the runner drops the
    ///   output when it completes;
    /// * done: the output is the handle's to drop; the waker slot too,
    ///   unless JOIN_WAKER is still set (the runner is waking that waker
    ///   right now and empties the slot itself, see
    ///   [`State::unset_join_waker_after_complete`]).
    ///
    /// AcqRel: Release orders the handle's last use of the slot before the
    /// runner's (possible) drop of it; Acquire orders the runner's output
    /// write and its last use of the slot before the handle's drops.
    pub(crate) fn transition_to_join_handle_dropped(&self) -> Snapshot {
        let result = self.update(|s| {
            debug_assert!(s & JOIN_INTEREST != 0);
            if s & COMPLETE != 0 {
                Some(s & !JOIN_INTEREST)
            } else {
                Some(s & !(JOIN_INTEREST | JOIN_WAKER))
            }
        });
        match result {
            Ok(prev) | Err(prev) => prev,
        }
    }
    // ANCHOR_END: join_handle_dropped

    /// The runner has woken the join waker after completing the task and
    /// gives the slot back. Returns the state just before: if JOIN_INTEREST
    /// is clear, the handle is gone and left the slot to the runner, which
    /// must empty it (nobody else will before the task is freed).
    pub(crate) fn unset_join_waker_after_complete(&self) -> Snapshot {
        let prev = self.0.fetch_and(!JOIN_WAKER, AcqRel);
        debug_assert!(prev & COMPLETE != 0 && prev & JOIN_WAKER != 0);
        Snapshot(prev)
    }

    /// The join handle has written its waker and hands it to the task.
    /// `Err` if the task completed first (the output is ready to read).
    pub(crate) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.update(|s| {
            debug_assert!(s & JOIN_INTEREST != 0 && s & JOIN_WAKER == 0);
            if s & COMPLETE != 0 {
                None
            } else {
                Some(s | JOIN_WAKER)
            }
        })
    }

    /// The join handle takes its waker slot back, to replace the waker.
    /// `Err` if the task completed first.
    pub(crate) fn unset_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.update(|s| {
            debug_assert!(s & JOIN_INTEREST != 0 && s & JOIN_WAKER != 0);
            if s & COMPLETE != 0 {
                None
            } else {
                Some(s & !JOIN_WAKER)
            }
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_wake_during_a_poll_requeues_the_task_exactly_once() {
        let state = State::new();
        assert_eq!(state.load().name(), "scheduled");
        assert_eq!(state.transition_to_running(), StartRun::Poll);
        assert_eq!(state.load().name(), "running");
        assert!(!state.transition_to_notified(), "running: nobody queues it");
        assert_eq!(state.load().name(), "notified");
        assert!(
            !state.transition_to_notified(),
            "a second wake adds nothing"
        );
        assert_eq!(state.transition_to_idle(), EndRun::Requeue);
        assert_eq!(state.load().name(), "scheduled");
    }

    #[test]
    fn a_wake_of_an_idle_task_queues_it_and_a_wake_after_done_does_nothing() {
        let state = State::new();
        state.transition_to_running();
        assert_eq!(state.transition_to_idle(), EndRun::Idle);
        assert_eq!(state.load().name(), "idle");
        assert!(state.transition_to_notified(), "idle: the waker queues it");
        assert!(!state.transition_to_notified());
        state.transition_to_running();
        state.transition_to_complete();
        assert_eq!(state.load().name(), "done");
        assert!(!state.transition_to_notified());
        assert_eq!(state.transition_to_running(), StartRun::Skip);
    }

    #[test]
    fn abort_of_an_idle_task_asks_the_caller_to_queue_it_for_cancelling() {
        let state = State::new();
        state.transition_to_running();
        state.transition_to_idle();
        assert!(state.transition_to_cancelled());
        assert!(!state.transition_to_cancelled(), "only once");
        assert_eq!(state.transition_to_running(), StartRun::Cancel);
    }

    #[test]
    fn abort_during_a_poll_cancels_at_the_end_of_the_poll() {
        let state = State::new();
        state.transition_to_running();
        assert!(!state.transition_to_cancelled());
        assert_eq!(state.transition_to_idle(), EndRun::Cancel);
    }

    #[test]
    fn the_join_waker_cannot_be_set_once_the_task_is_done() {
        let state = State::new();
        state.transition_to_running();
        assert!(state.set_join_waker().is_ok());
        let prev = state.transition_to_complete();
        assert!(prev.has_join_waker() && prev.is_join_interested());
        assert!(state.unset_join_waker().is_err());
    }

    #[test]
    fn a_join_handle_dropped_before_completion_takes_its_waker_slot_back() {
        let state = State::new();
        state.transition_to_running();
        assert!(state.set_join_waker().is_ok());
        let prev = state.transition_to_join_handle_dropped();
        assert!(!prev.is_complete(), "the handle empties the slot");
        let at_completion = state.transition_to_complete();
        assert!(
            !at_completion.is_join_interested() && !at_completion.has_join_waker(),
            "the runner touches neither the output's owner nor the slot"
        );
    }

    #[test]
    fn a_join_handle_dropped_while_the_runner_wakes_it_leaves_the_slot_to_the_runner() {
        let state = State::new();
        state.transition_to_running();
        assert!(state.set_join_waker().is_ok());
        let at_completion = state.transition_to_complete();
        assert!(at_completion.has_join_waker(), "the runner wakes the waker");
        let prev = state.transition_to_join_handle_dropped();
        assert!(prev.is_complete() && prev.has_join_waker(), "hands off");
        let after_wake = state.unset_join_waker_after_complete();
        assert!(!after_wake.is_join_interested(), "the runner empties it");
    }

    #[test]
    fn a_join_handle_dropped_after_the_wake_empties_the_slot_itself() {
        let state = State::new();
        state.transition_to_running();
        assert!(state.set_join_waker().is_ok());
        state.transition_to_complete();
        let after_wake = state.unset_join_waker_after_complete();
        assert!(after_wake.is_join_interested(), "the runner leaves it");
        let prev = state.transition_to_join_handle_dropped();
        assert!(
            prev.is_complete() && !prev.has_join_waker(),
            "the handle empties it"
        );
    }
}
