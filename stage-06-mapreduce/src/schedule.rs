//! The coordinator's bookkeeping: which task is where, as plain logic.
//!
//! No sockets and no clocks here: every method takes the current time as an
//! argument, so the tests can drive the state machine through timeouts
//! without sleeping. The coordinator wraps a [`Schedule`] in a mutex and
//! calls it from its connection handlers.
//!
//! Each task (map or reduce) moves through three states:
//!
//! ```text
//!              assign(worker, now)
//!    ┌──────┐ ───────────────────► ┌─────────────────────────────┐ complete() ┌──────┐
//!    │ Idle │                      │ InProgress{worker, deadline}│ ─────────► │ Done │
//!    └──────┘ ◄─────────────────── └─────────────────────────────┘            └──────┘
//!        ▲   now ≥ deadline (expire), or its worker's connection closes         │
//!        └─ a late complete() from an expired worker is accepted too;           │
//!           once Done, further reports change nothing ◄─────────────────────────┘
//! ```
//!
//! With backup tasks on ([`Schedule::with_backups`]), a worker that asks
//! when every remaining task of the phase is running gets a *copy* of the
//! running task that started first (one copy per task at most): the
//! paper's section 3.6. Whichever copy reports first completes the task.
//!
//! The job has three phases: every map task must be Done before any reduce
//! task is handed out (a reduce needs every map's partition), and the job is
//! done when every reduce task is.

use std::fmt;
use std::time::{Duration, Instant};

use crate::task::{MapTask, ReduceTask};

/// Map or reduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// A map task: one input file.
    Map,
    /// A reduce task: one partition.
    Reduce,
}

/// Names one task of the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// Map or reduce.
    pub kind: TaskKind,
    /// Its number within its kind.
    pub index: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TaskKind::Map => write!(f, "map {}", self.index),
            TaskKind::Reduce => write!(f, "reduce {}", self.index),
        }
    }
}

/// Who is running a task: the coordinator numbers its connections.
pub type WorkerId = u64;

// ANCHOR: state
/// Where one task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a worker.
    Idle {
        /// True if it was handed out before and taken back (timeout or
        /// lost worker): a late report of it is then still welcome.
        taken_back: bool,
    },
    /// Handed to `worker`, who must report by `deadline`.
    InProgress {
        /// The worker running it.
        worker: WorkerId,
        /// When the coordinator gives up on that worker.
        deadline: Instant,
    },
    /// Its output is in place.
    Done,
}
// ANCHOR_END: state

/// Which part of the job is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Some map task is not done.
    Map,
    /// Every map task is done; some reduce task is not.
    Reduce,
    /// Every output is in place.
    Done,
}

/// The answer to a worker asking for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// Run this map task.
    Map(MapTask),
    /// Run this reduce task.
    Reduce(ReduceTask),
    /// Nothing to hand out now: every remaining task of this phase is
    /// running. Ask again when something changes, or at `until` (the first
    /// running task's deadline), whichever comes first.
    Wait {
        /// The earliest deadline of a running task.
        until: Option<Instant>,
    },
    /// The job is done.
    Exit,
}

/// What a completion report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The task is now done (maybe by a worker that had timed out: its
    /// output is complete all the same, thanks to the atomic renames).
    Accepted,
    /// The task was already done: a late duplicate, ignored.
    AlreadyDone,
    /// No such task was ever handed out: ignored.
    Unknown,
}

/// The state of every task of one job.
#[derive(Debug)]
pub struct Schedule {
    files: Vec<String>,
    n_reduce: u32,
    timeout: Duration,
    maps: Vec<TaskState>,
    reduces: Vec<TaskState>,
    maps_left: usize,
    reduces_left: usize,
    reassigned: u64,
    /// With backup tasks: the worker running the copy of each task of the
    /// current phase, if it has one.
    backups: Option<Vec<Option<WorkerId>>>,
    backups_handed: u64,
}

impl Schedule {
    /// Longer timeouts are cut to this (about a century).
    pub const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// One map task per file, `n_reduce` reduce tasks (at least 1), and a
    /// worker must report a task within `timeout`.
    pub fn new(files: Vec<String>, n_reduce: u32, timeout: Duration) -> Schedule {
        let n_reduce = n_reduce.max(1);
        // `now + timeout` must not overflow `Instant` (that panics); a
        // century is as good as never.
        let timeout = timeout.min(Schedule::LONGEST_TIMEOUT);
        Schedule {
            maps: vec![TaskState::Idle { taken_back: false }; files.len()],
            reduces: vec![TaskState::Idle { taken_back: false }; n_reduce as usize],
            maps_left: files.len(),
            reduces_left: n_reduce as usize,
            files,
            n_reduce,
            timeout,
            reassigned: 0,
            backups: None,
            backups_handed: 0,
        }
    }

    /// Turns backup tasks on: see [`Schedule::assign`].
    pub fn with_backups(mut self) -> Schedule {
        self.backups = Some(vec![None; self.maps.len().max(self.reduces.len())]);
        self
    }

    /// How many backup copies were handed out.
    pub fn backups_handed(&self) -> u64 {
        self.backups_handed
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        if self.maps_left > 0 {
            Phase::Map
        } else if self.reduces_left > 0 {
            Phase::Reduce
        } else {
            Phase::Done
        }
    }

    /// Number of map tasks.
    pub fn n_map(&self) -> u32 {
        self.maps.len() as u32
    }

    /// Number of reduce tasks.
    pub fn n_reduce(&self) -> u32 {
        self.n_reduce
    }

    /// (map tasks done, reduce tasks done).
    pub fn done_counts(&self) -> (usize, usize) {
        (
            self.maps.len() - self.maps_left,
            self.reduces.len() - self.reduces_left,
        )
    }

    /// How many times a task was taken back from a worker (timeout or lost
    /// connection).
    pub fn reassigned(&self) -> u64 {
        self.reassigned
    }

    /// The state of one task (`None` if there is no such task).
    pub fn state(&self, task: TaskId) -> Option<TaskState> {
        self.tasks(task.kind).get(task.index as usize).copied()
    }

    fn tasks(&self, kind: TaskKind) -> &[TaskState] {
        match kind {
            TaskKind::Map => &self.maps,
            TaskKind::Reduce => &self.reduces,
        }
    }

    fn tasks_mut(&mut self, kind: TaskKind) -> &mut [TaskState] {
        match kind {
            TaskKind::Map => &mut self.maps,
            TaskKind::Reduce => &mut self.reduces,
        }
    }

    fn current_kind(&self) -> Option<TaskKind> {
        match self.phase() {
            Phase::Map => Some(TaskKind::Map),
            Phase::Reduce => Some(TaskKind::Reduce),
            Phase::Done => None,
        }
    }

    // ANCHOR: assign
    /// Hands `worker` the next idle task of the current phase, if any.
    ///
    /// Tasks whose deadline has passed are taken back first (as
    /// [`Schedule::expire`] does), so they can be handed out at once. If
    /// every remaining task is running, the answer is a backup copy of one
    /// of them when backups are on and one is due ([`Schedule::backup_for`]),
    /// else `Wait` until the earliest deadline.
    pub fn assign(&mut self, worker: WorkerId, now: Instant) -> Assignment {
        // ANCHOR: lab_6_1_assign
        self.expire(now);
        let Some(kind) = self.current_kind() else {
            return Assignment::Exit;
        };
        let idle = self
            .tasks(kind)
            .iter()
            .position(|s| matches!(s, TaskState::Idle { .. }));
        let index = match idle {
            Some(i) => {
                let deadline = now + self.timeout;
                self.tasks_mut(kind)[i] = TaskState::InProgress { worker, deadline };
                i as u32
            }
            None => match self.backup_for(kind, worker) {
                Some(index) => index,
                None => {
                    return Assignment::Wait {
                        until: self.next_deadline(),
                    };
                }
            },
        };
        self.describe(kind, index)
        // ANCHOR_END: lab_6_1_assign
    }
    // ANCHOR_END: assign

    /// The assignment that hands out task `index` of `kind`.
    fn describe(&self, kind: TaskKind, index: u32) -> Assignment {
        match kind {
            TaskKind::Map => Assignment::Map(MapTask {
                index,
                file: self.files[index as usize].clone(),
                n_reduce: self.n_reduce,
            }),
            TaskKind::Reduce => Assignment::Reduce(ReduceTask {
                index,
                n_map: self.n_map(),
            }),
        }
    }

    // ANCHOR: backup_for
    /// With backups on, and every remaining task of `kind` running: picks
    /// the running task with the earliest deadline (it started first) that
    /// has no copy yet and is not `worker`'s own, records `worker` as its
    /// copy, and returns its index. `None` otherwise.
    pub fn backup_for(&mut self, kind: TaskKind, worker: WorkerId) -> Option<u32> {
        let backups = self.backups.as_ref()?;
        let tasks = match kind {
            TaskKind::Map => &self.maps,
            TaskKind::Reduce => &self.reduces,
        };
        let (i, _) = tasks
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match *s {
                TaskState::InProgress {
                    worker: w,
                    deadline,
                } if w != worker && backups[i].is_none() => Some((i, deadline)),
                _ => None,
            })
            .min_by_key(|&(_, deadline)| deadline)?;
        if let Some(backups) = self.backups.as_mut() {
            backups[i] = Some(worker);
        }
        self.backups_handed += 1;
        Some(i as u32)
    }
    // ANCHOR_END: backup_for

    /// The worker running the backup copy of `task`, if any.
    pub fn backup_of(&self, task: TaskId) -> Option<WorkerId> {
        if self.current_kind() != Some(task.kind) {
            return None;
        }
        self.backups.as_ref()?.get(task.index as usize).copied()?
    }

    /// Forgets the copy of task `index` of the current phase.
    fn drop_backup(&mut self, index: usize) {
        if let Some(slot) = self.backups.as_mut().and_then(|b| b.get_mut(index)) {
            *slot = None;
        }
    }
    // ANCHOR_END: assign

    // ANCHOR: complete
    /// Records that `task` is done (its worker renamed its outputs into
    /// place).
    pub fn complete(&mut self, task: TaskId) -> Report {
        // ANCHOR: lab_6_1_complete
        let current = self.current_kind();
        let Some(state) = self.tasks_mut(task.kind).get_mut(task.index as usize) else {
            return Report::Unknown;
        };
        match *state {
            TaskState::Done => Report::AlreadyDone,
            // Never handed out: a confused or hostile client.
            TaskState::Idle { taken_back: false } => Report::Unknown,
            // Running, or taken back after a timeout: either way the
            // reporting worker finished it, and its files are complete.
            TaskState::Idle { taken_back: true } | TaskState::InProgress { .. } => {
                *state = TaskState::Done;
                match task.kind {
                    TaskKind::Map => self.maps_left -= 1,
                    TaskKind::Reduce => self.reduces_left -= 1,
                }
                if self.phase() == Phase::Reduce && task.kind == TaskKind::Map {
                    // The map phase just ended: the copies recorded were
                    // of map tasks; the reduce phase starts with none.
                    if let Some(backups) = self.backups.as_mut() {
                        backups.fill(None);
                    }
                } else if current == Some(task.kind) {
                    self.drop_backup(task.index as usize);
                }
                Report::Accepted
            }
        }
        // ANCHOR_END: lab_6_1_complete
    }
    // ANCHOR_END: complete

    // ANCHOR: expire
    /// Takes back every task of the current phase whose deadline has
    /// passed; returns them (for the progress log).
    pub fn expire(&mut self, now: Instant) -> Vec<TaskId> {
        self.take_back(|_, deadline| deadline <= now)
    }

    /// Takes back every task `worker` was running: its connection closed, so
    /// it cannot report. Returns them.
    pub fn worker_lost(&mut self, worker: WorkerId) -> Vec<TaskId> {
        self.take_back(|w, _| w == worker)
    }
    // ANCHOR_END: expire

    // ANCHOR: redo
    /// Serve-and-fetch: map task `index`'s output is lost with its worker,
    /// so a `Done` map task becomes idle again and the job goes back to
    /// the map phase (the paper's section 3.3). Running reduce tasks go on;
    /// a reduce that fetched every partition before the loss may still
    /// report. Returns true if the task was `Done`.
    pub fn redo_map(&mut self, index: u32) -> bool {
        let was_reduce_phase = self.phase() == Phase::Reduce;
        match self.maps.get_mut(index as usize) {
            Some(state @ TaskState::Done) => {
                // Not `taken_back`: nobody holds it now, and a report of
                // the lost run must not count as the new one.
                *state = TaskState::Idle { taken_back: false };
                self.maps_left += 1;
                if was_reduce_phase && let Some(backups) = self.backups.as_mut() {
                    // The copies recorded were of reduce tasks.
                    backups.fill(None);
                }
                true
            }
            _ => false,
        }
    }

    /// Serve-and-fetch: `worker` could not fetch an input of `task`, and
    /// gives the task back (it becomes idle, to be handed out again).
    /// Returns true if `worker` held it.
    pub fn give_back(&mut self, task: TaskId, worker: WorkerId) -> bool {
        let current = self.current_kind() == Some(task.kind);
        let Some(state) = self.tasks_mut(task.kind).get_mut(task.index as usize) else {
            return false;
        };
        match *state {
            TaskState::InProgress { worker: w, .. } if w == worker => {
                *state = TaskState::Idle { taken_back: true };
                self.reassigned += 1;
                if current {
                    self.drop_backup(task.index as usize);
                }
                true
            }
            _ => {
                if current && self.backup_of(task) == Some(worker) {
                    self.drop_backup(task.index as usize);
                }
                false
            }
        }
    }
    // ANCHOR_END: redo

    // ANCHOR: take_back
    /// Takes back every running task of the current phase whose worker and
    /// deadline `lost` says are gone: it becomes `Idle { taken_back: true }`
    /// and counts as reassigned. A copy run by a lost worker is forgotten
    /// (the task keeps running on its first worker). Returns the tasks taken
    /// back.
    fn take_back(&mut self, mut lost: impl FnMut(WorkerId, Instant) -> bool) -> Vec<TaskId> {
        // ANCHOR: lab_6_1_take_back
        let Some(kind) = self.current_kind() else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        for i in 0..self.tasks(kind).len() {
            let TaskState::InProgress { worker, deadline } = self.tasks(kind)[i] else {
                continue;
            };
            if lost(worker, deadline) {
                self.tasks_mut(kind)[i] = TaskState::Idle { taken_back: true };
                self.drop_backup(i);
                taken.push(TaskId {
                    kind,
                    index: i as u32,
                });
            } else if let Some(copy) = self.backup_of(TaskId {
                kind,
                index: i as u32,
            }) && lost(copy, deadline)
            {
                self.drop_backup(i);
            }
        }
        self.reassigned += taken.len() as u64;
        taken
        // ANCHOR_END: lab_6_1_take_back
    }
    // ANCHOR_END: take_back

    // ANCHOR: next_deadline
    /// The earliest deadline among running tasks of the current phase.
    pub fn next_deadline(&self) -> Option<Instant> {
        // ANCHOR: lab_6_1_next_deadline
        let kind = self.current_kind()?;
        self.tasks(kind)
            .iter()
            .filter_map(|s| match s {
                TaskState::InProgress { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
        // ANCHOR_END: lab_6_1_next_deadline
    }
    // ANCHOR_END: next_deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn schedule(maps: usize, reduces: u32) -> Schedule {
        Schedule::new(
            (0..maps).map(|i| format!("in-{i}")).collect(),
            reduces,
            TIMEOUT,
        )
    }

    fn map(i: u32) -> TaskId {
        TaskId {
            kind: TaskKind::Map,
            index: i,
        }
    }

    fn reduce(i: u32) -> TaskId {
        TaskId {
            kind: TaskKind::Reduce,
            index: i,
        }
    }

    /// The index of the task handed out; `rule` says why the caller
    /// expects one, so a failure names the rule that was broken.
    #[track_caller]
    fn index_of(a: &Assignment, rule: &str) -> u32 {
        match a {
            Assignment::Map(t) => t.index,
            Assignment::Reduce(t) => t.index,
            other => panic!("{rule}: expected a task to be handed out, got {other:?}"),
        }
    }

    #[test]
    fn every_map_task_is_handed_out_once_before_any_reduce_task() {
        let t0 = Instant::now();
        let mut s = schedule(3, 2);
        let mut seen = Vec::new();
        for w in 0..3 {
            match s.assign(w, t0) {
                Assignment::Map(t) => {
                    assert_eq!(t.file, format!("in-{}", t.index));
                    assert_eq!(t.n_reduce, 2);
                    seen.push(t.index);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, [0, 1, 2]);
        // All maps running, none done: the fourth worker waits, until the
        // first deadline at the latest.
        assert_eq!(
            s.assign(3, t0),
            Assignment::Wait {
                until: Some(t0 + TIMEOUT)
            }
        );
        assert_eq!(s.complete(map(0)), Report::Accepted);
        assert_eq!(s.complete(map(1)), Report::Accepted);
        assert!(
            matches!(s.assign(3, t0), Assignment::Wait { .. }),
            "no reduce before the last map"
        );
        assert_eq!(s.complete(map(2)), Report::Accepted);
        assert_eq!(s.phase(), Phase::Reduce);
        assert_eq!(
            s.assign(3, t0),
            Assignment::Reduce(ReduceTask { index: 0, n_map: 3 })
        );
    }

    #[test]
    fn the_job_is_done_only_when_every_reduce_task_is() {
        let t0 = Instant::now();
        let mut s = schedule(1, 2);
        s.assign(0, t0);
        s.complete(map(0));
        let a = s.assign(0, t0);
        let b = s.assign(1, t0);
        let rule = "after the last map, each idle worker gets a reduce task";
        assert_eq!((index_of(&a, rule), index_of(&b, rule)), (0, 1));
        s.complete(reduce(1));
        assert_eq!(s.phase(), Phase::Reduce);
        assert!(matches!(s.assign(2, t0), Assignment::Wait { .. }));
        s.complete(reduce(0));
        assert_eq!(s.phase(), Phase::Done);
        assert_eq!(s.assign(2, t0), Assignment::Exit);
        assert_eq!(s.done_counts(), (1, 2));
    }

    #[test]
    fn a_task_not_reported_within_the_timeout_goes_to_another_worker() {
        let t0 = Instant::now();
        let mut s = schedule(1, 1);
        assert_eq!(index_of(&s.assign(1, t0), "the first worker gets map 0"), 0);
        assert!(
            matches!(s.assign(2, t0 + TIMEOUT / 2), Assignment::Wait { .. }),
            "before its deadline, map 0 stays with worker 1"
        );
        let late = t0 + TIMEOUT;
        assert_eq!(
            index_of(
                &s.assign(2, late),
                "at its deadline, assign takes map 0 back and hands it out again"
            ),
            0
        );
        assert_eq!(
            s.state(map(0)),
            Some(TaskState::InProgress {
                worker: 2,
                deadline: late + TIMEOUT
            })
        );
        assert_eq!(s.reassigned(), 1);
    }

    #[test]
    fn a_late_report_from_a_timed_out_worker_is_harmless() {
        let t0 = Instant::now();
        let mut s = schedule(2, 1);
        s.assign(1, t0); // map 0 to worker 1
        s.assign(2, t0); // map 1 to worker 2
        s.complete(map(1));
        s.assign(3, t0 + TIMEOUT); // worker 1 timed out, map 0 goes to 3
        assert_eq!(
            s.complete(map(0)),
            Report::Accepted,
            "worker 1 finished after all"
        );
        assert_eq!(
            s.complete(map(0)),
            Report::AlreadyDone,
            "worker 3's report changes nothing"
        );
        assert_eq!(s.done_counts(), (2, 0));
        assert_eq!(s.phase(), Phase::Reduce);
    }

    #[test]
    fn a_lost_worker_gives_its_task_back_at_once_and_nobody_elses() {
        let t0 = Instant::now();
        let mut s = schedule(2, 1);
        s.assign(1, t0);
        s.assign(2, t0);
        assert_eq!(s.worker_lost(1), [map(0)]);
        assert_eq!(s.worker_lost(1), [], "idempotent");
        assert_eq!(
            index_of(
                &s.assign(3, t0),
                "a task whose worker was lost is handed out at once, before its deadline"
            ),
            0
        );
        assert!(matches!(
            s.state(map(1)),
            Some(TaskState::InProgress { worker: 2, .. })
        ));
    }

    #[test]
    fn reports_of_tasks_never_handed_out_are_ignored() {
        let t0 = Instant::now();
        let mut s = schedule(2, 2);
        assert_eq!(s.complete(map(1)), Report::Unknown);
        assert_eq!(s.complete(map(99)), Report::Unknown);
        assert_eq!(
            s.complete(reduce(0)),
            Report::Unknown,
            "no reduce runs during the map phase"
        );
        assert_eq!(s.done_counts(), (0, 0));
        s.assign(1, t0);
        assert_eq!(s.complete(map(0)), Report::Accepted);
    }

    #[test]
    fn the_wait_deadline_is_the_earliest_running_task() {
        let t0 = Instant::now();
        let mut s = schedule(2, 1);
        s.assign(1, t0);
        s.assign(2, t0 + Duration::from_secs(3));
        assert_eq!(s.next_deadline(), Some(t0 + TIMEOUT));
        s.complete(map(0));
        assert_eq!(
            s.next_deadline(),
            Some(t0 + Duration::from_secs(3) + TIMEOUT)
        );
    }

    #[test]
    fn an_enormous_timeout_is_cut_to_a_century_instead_of_overflowing() {
        let t0 = Instant::now();
        let mut s = Schedule::new(vec!["a".into()], 1, Duration::MAX);
        assert_eq!(index_of(&s.assign(1, t0), "the only map is handed out"), 0);
        assert_eq!(s.next_deadline(), Some(t0 + Schedule::LONGEST_TIMEOUT));
    }

    #[test]
    fn a_job_without_inputs_goes_straight_to_reduce() {
        let mut s = schedule(0, 1);
        assert_eq!(s.phase(), Phase::Reduce);
        assert_eq!(
            s.assign(0, Instant::now()),
            Assignment::Reduce(ReduceTask { index: 0, n_map: 0 })
        );
    }
    #[test]
    fn a_late_report_of_a_task_taken_back_but_not_yet_handed_out_is_accepted() {
        let t0 = Instant::now();
        let mut s = schedule(1, 1);
        s.assign(1, t0);
        assert_eq!(
            s.expire(t0 + TIMEOUT),
            [map(0)],
            "taken back at its deadline"
        );
        assert_eq!(s.state(map(0)), Some(TaskState::Idle { taken_back: true }));
        assert_eq!(
            s.complete(map(0)),
            Report::Accepted,
            "worker 1 finished after all, before anyone else took map 0"
        );
        assert_eq!(s.phase(), Phase::Reduce, "so the map phase is over");
        assert_eq!(s.reassigned(), 1);
    }

    #[test]
    fn a_task_that_never_runs_out_of_time_is_never_taken_back() {
        let t0 = Instant::now();
        let mut s = schedule(2, 1);
        s.assign(1, t0);
        assert_eq!(s.expire(t0 + TIMEOUT / 2), [], "deadline not reached");
        assert_eq!(s.worker_lost(2), [], "worker 2 held nothing");
        assert!(matches!(
            s.state(map(0)),
            Some(TaskState::InProgress { worker: 1, .. })
        ));
        assert_eq!(s.reassigned(), 0);
    }

    #[test]
    fn without_backups_an_idle_worker_waits_for_the_last_running_task() {
        let t0 = Instant::now();
        let mut s = schedule(2, 1);
        s.assign(1, t0);
        s.assign(2, t0);
        s.complete(map(1));
        assert!(
            matches!(s.assign(2, t0), Assignment::Wait { .. }),
            "no copies unless backups are on"
        );
        assert_eq!(s.backups_handed(), 0);
    }

    #[test]
    fn with_backups_an_idle_worker_gets_a_copy_of_the_oldest_running_task() {
        let t0 = Instant::now();
        let mut s = schedule(3, 1).with_backups();
        s.assign(1, t0);
        s.assign(2, t0 + Duration::from_secs(1));
        s.assign(3, t0 + Duration::from_secs(2));
        s.complete(map(2));
        let later = t0 + Duration::from_secs(3);
        assert_eq!(
            index_of(
                &s.assign(3, later),
                "every remaining map is running and worker 3 is idle: it gets a copy"
            ),
            0,
            "of the task that started first"
        );
        assert_eq!(s.backup_of(map(0)), Some(3));
        assert_eq!(index_of(&s.assign(4, later), "map 1 has no copy yet"), 1);
        assert!(
            matches!(s.assign(5, later), Assignment::Wait { .. }),
            "one copy per task at most"
        );
        assert_eq!(s.backups_handed(), 2);
        // The first report wins; the other copy's report is a harmless
        // duplicate.
        assert_eq!(s.complete(map(0)), Report::Accepted);
        assert_eq!(s.complete(map(0)), Report::AlreadyDone);
        assert_eq!(s.reassigned(), 0, "a copy is not a reassignment");
    }

    #[test]
    fn a_worker_never_gets_a_copy_of_its_own_task() {
        let t0 = Instant::now();
        let mut s = schedule(1, 1).with_backups();
        s.assign(1, t0);
        assert!(matches!(s.assign(1, t0), Assignment::Wait { .. }));
    }

    #[test]
    fn a_lost_copy_is_forgotten_and_the_task_keeps_its_first_worker() {
        let t0 = Instant::now();
        let mut s = schedule(1, 1).with_backups();
        s.assign(1, t0);
        s.assign(2, t0);
        assert_eq!(s.backup_of(map(0)), Some(2));
        assert_eq!(s.worker_lost(2), [], "nothing to hand out again");
        assert_eq!(s.backup_of(map(0)), None);
        assert!(matches!(
            s.state(map(0)),
            Some(TaskState::InProgress { worker: 1, .. })
        ));
        assert_eq!(
            index_of(&s.assign(3, t0), "the copy's place is free again"),
            0
        );
    }

    #[test]
    fn reduce_tasks_get_copies_too_and_map_copies_do_not_carry_over() {
        let t0 = Instant::now();
        let mut s = schedule(1, 2).with_backups();
        s.assign(1, t0);
        s.assign(2, t0); // a copy of map 0
        assert_eq!(s.complete(map(0)), Report::Accepted);
        assert_eq!(
            s.backup_of(reduce(0)),
            None,
            "the reduce phase starts clean"
        );
        assert_eq!(index_of(&s.assign(1, t0), "reduce 0 is idle"), 0);
        assert_eq!(index_of(&s.assign(2, t0), "reduce 1 is idle"), 1);
        assert_eq!(
            index_of(&s.assign(3, t0), "every reduce runs: a copy of reduce 0"),
            0
        );
        assert_eq!(s.backup_of(reduce(0)), Some(3));
    }

    #[test]
    fn a_lost_map_output_sends_the_job_back_to_the_map_phase() {
        let t0 = Instant::now();
        let mut s = schedule(2, 2);
        s.assign(1, t0);
        s.assign(2, t0);
        s.complete(map(0));
        s.complete(map(1));
        s.assign(3, t0); // reduce 0 to worker 3
        assert!(s.redo_map(1), "map 1 was done");
        assert!(!s.redo_map(1), "and now it is not");
        assert!(!s.redo_map(9), "no such task");
        assert_eq!(s.phase(), Phase::Map);
        assert_eq!(s.state(map(1)), Some(TaskState::Idle { taken_back: false }));
        assert_eq!(
            index_of(&s.assign(4, t0), "the lost map output is redone first"),
            1
        );
        assert!(
            matches!(s.assign(5, t0), Assignment::Wait { .. }),
            "no reduce task while a map task is not done"
        );
        assert_eq!(s.complete(map(1)), Report::Accepted);
        assert_eq!(s.phase(), Phase::Reduce);
        assert_eq!(
            s.complete(reduce(0)),
            Report::Accepted,
            "reduce 0 kept running meanwhile"
        );
    }

    #[test]
    fn a_reduce_that_cannot_fetch_is_given_back_by_its_worker_only() {
        let t0 = Instant::now();
        let mut s = schedule(1, 1);
        s.assign(1, t0);
        s.complete(map(0));
        s.assign(2, t0);
        assert!(!s.give_back(reduce(0), 3), "worker 3 does not hold it");
        assert!(s.give_back(reduce(0), 2));
        assert_eq!(
            s.state(reduce(0)),
            Some(TaskState::Idle { taken_back: true })
        );
        assert_eq!(s.reassigned(), 1);
        assert_eq!(index_of(&s.assign(3, t0), "it is handed out again"), 0);
    }
}
