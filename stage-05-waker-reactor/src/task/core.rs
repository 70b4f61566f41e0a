//! The memory of one task, and the code that runs it.
//!
//! A task is one heap allocation, laid out so that a type-erased pointer to
//! its [`Header`] is enough to run, wake, join or free it:
//!
//! ```text
//!   NonNull<Header> ──> +--------------------------------+
//!                       | Header                         |
//!                       |   state   (State: the 5 states)|
//!                       |   refs    (AtomicUsize)        |
//!                       |   vtable  (&'static Vtable) ───┼──> poll / read_output /
//!                       |   owned   (key in the owner's  |     shutdown / dealloc
//!                       |            list of tasks)      |     for this F and S
//!                       +--------------------------------+
//!                       | scheduler: S (where wakes go)  |
//!                       | stage: Running(F) | Finished(  |
//!                       |        Result<T, JoinError>)   |
//!                       |        | Consumed              |
//!                       | join_waker: Option<Waker>      |
//!                       +--------------------------------+
//! ```
//!
//! References: the owner's task list holds one, the [`JoinHandle`] one, a
//! run queue one while the task is queued, and each `Waker` one. The last to
//! go frees the cell.
//!
//! Who may touch what: `stage` while it holds `Running(F)` belongs to the
//! thread that set RUNNING; once COMPLETE is set, the output belongs to the
//! join handle (or to the runner, if the handle is gone). `join_waker` is
//! written by the join handle only while JOIN_WAKER is clear, and read by the
//! runner only if JOIN_WAKER was set when it completed the task. Whoever
//! lets go of it last empties it (see
//! [`State::transition_to_join_handle_dropped`]): a waker left in the slot
//! would keep the task it wakes alive, and two tasks that await each other
//! would keep each other alive forever.
//!
//! [`State::transition_to_join_handle_dropped`]: super::state::State::transition_to_join_handle_dropped
//!
//! [`JoinHandle`]: crate::JoinHandle

use crate::sync::{
    self,
    atomic::{AtomicUsize, Ordering::*, fence},
};
use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use super::state::{EndRun, StartRun, State};
use super::{JoinError, Notified, Schedule, waker};

/// The type-erased front of every task. See the module docs.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    refs: AtomicUsize,
    vtable: &'static Vtable,
    /// Key of this task in its owner's [`OwnedTasks`](super::OwnedTasks)
    /// slab, written once before the task is shared.
    pub(crate) owned_key: UnsafeCell<usize>,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("state", &self.state.load().name())
            .finish_non_exhaustive()
    }
}

/// The functions that know the concrete `F` and `S` behind a header.
pub(crate) struct Vtable {
    /// Run the task once (poll phase). Consumes one reference.
    pub(crate) run: unsafe fn(NonNull<Header>),
    /// Queue the task on its scheduler. Consumes one reference.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Move the output into `*mut Poll<Result<T, JoinError>>`, or store the
    /// waker and leave it `Pending`.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Drop the output (the join handle is gone and the task is done).
    pub(crate) drop_output: unsafe fn(NonNull<Header>),
    /// Empty the join-waker slot (the join handle is gone, and the state
    /// word says the slot is the caller's).
    pub(crate) drop_join_waker: unsafe fn(NonNull<Header>),
    /// Shutdown: drop the future if nobody runs it, complete as cancelled.
    pub(crate) shutdown: unsafe fn(NonNull<Header>),
    /// Free the cell (refs reached zero).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
}

pub(crate) enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    stage: sync::UnsafeCell<Stage<F>>,
    join_waker: sync::UnsafeCell<Option<Waker>>,
}

impl Header {
    pub(crate) fn ref_inc(&self) {
        // Relaxed is enough to add a reference: the caller already holds
        // one, so the cell cannot be freed concurrently (as for `Arc`).
        let prev = self.refs.fetch_add(1, Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort(); // a leak of 2^63 wakers: cannot continue
        }
    }

    /// Drop `n` references; free the cell if they were the last.
    ///
    /// # Safety
    /// The caller owns `n` references to the task at `ptr`.
    pub(crate) unsafe fn ref_dec(ptr: NonNull<Header>, n: usize) {
        // SAFETY: the caller's references keep the cell alive until here.
        let header = unsafe { ptr.as_ref() };
        let prev = header.refs.fetch_sub(n, Release);
        debug_assert!(prev >= n);
        if prev == n {
            // Pairs with the Release of every other decrement: all their
            // writes to the cell happen before we free it.
            #[cfg(not(tsan))]
            fence(Acquire);
            // ThreadSanitizer does not model fences and would report the
            // free as a race; an Acquire load of the count gives the same
            // edge (std's `Arc` does the same under the sanitizer).
            #[cfg(tsan)]
            header.refs.load(Acquire);
            // SAFETY: that was the last reference.
            unsafe { (header.vtable.dealloc)(ptr) }
        }
    }

    /// The number of references, for the tests' bookkeeping checks.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn ref_count(&self) -> usize {
        self.refs.load(SeqCst)
    }

    pub(crate) fn vtable(&self) -> &'static Vtable {
        self.vtable
    }
}

/// Allocate a task for `future`, scheduled through `scheduler`, with
/// `refs` references (one per handle the caller is about to make).
pub(crate) fn allocate<F, S>(future: F, scheduler: S, refs: usize) -> NonNull<Header>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    let cell = Box::new(Cell {
        header: Header {
            state: State::new(),
            refs: AtomicUsize::new(refs),
            vtable: vtable::<F, S>(),
            owned_key: UnsafeCell::new(usize::MAX),
        },
        scheduler,
        stage: sync::UnsafeCell::new(Stage::Running(future)),
        join_waker: sync::UnsafeCell::new(None),
    });
    // `Cell` is `repr(C)` with the header first, so the cell's address is
    // the header's address.
    NonNull::from(Box::leak(cell)).cast()
}

fn vtable<F, S>() -> &'static Vtable
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    &Vtable {
        run: run::<F, S>,
        schedule: schedule::<F, S>,
        try_read_output: try_read_output::<F, S>,
        drop_output: drop_output::<F, S>,
        drop_join_waker: drop_join_waker::<F, S>,
        shutdown: shutdown::<F, S>,
        dealloc: dealloc::<F, S>,
    }
}

/// # Safety
/// `ptr` is a live task allocated with these `F` and `S`.
unsafe fn cell<'a, F: Future, S>(ptr: NonNull<Header>) -> &'a Cell<F, S> {
    // SAFETY: the header is the first field of a `repr(C)` `Cell<F, S>`.
    unsafe { ptr.cast::<Cell<F, S>>().as_ref() }
}

// ANCHOR: run
/// The poll phase of one task. Consumes the run queue's reference.
unsafe fn run<F, S>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the queue's reference keeps the cell alive; the vtable was
    // made for these `F` and `S`.
    let cell = unsafe { cell::<F, S>(ptr) };
    match cell.header.state.transition_to_running() {
        StartRun::Poll => {}
        StartRun::Cancel => {
            // SAFETY: RUNNING is set: the future is ours.
            unsafe { cancel_and_complete::<F, S>(ptr, 1) };
            return;
        }
        StartRun::Skip => {
            // SAFETY: we own the queue's reference.
            unsafe { Header::ref_dec(ptr, 1) };
            return;
        }
    }

    // The task's waker, borrowed from the queue's reference: creating it
    // costs nothing, and `Waker::clone` inside the future adds a reference.
    // SAFETY: `ptr` stays alive for the whole poll (we hold a reference).
    let waker = ManuallyDrop::new(unsafe { waker::borrowed(ptr) });
    let mut cx = Context::from_waker(&waker);

    // Each poll gets a fresh budget of socket operations (see `coop`).
    let polled = crate::coop::budget(|| {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: RUNNING is set, so this thread alone touches the stage;
            // the future lives in the heap cell and never moves: it is pinned.
            let stage = unsafe { cell.stage.get_mut() };
            let Stage::Running(future) = stage else {
                unreachable!("a task that is not done holds its future");
            };
            // SAFETY: see above: the cell is never moved while the future lives.
            unsafe { Pin::new_unchecked(future) }.poll(&mut cx)
        }))
    });

    let output = match polled {
        Ok(Poll::Pending) => {
            match cell.header.state.transition_to_idle() {
                // SAFETY: we own the queue's reference.
                EndRun::Idle => unsafe { Header::ref_dec(ptr, 1) },
                // A wake came during the poll: the queue's reference goes
                // back on a queue (behind the tasks already waiting). Another
                // worker may run and free the task as soon as it is queued,
                // while `yield_now` still runs on `&cell.scheduler`: so the
                // queue gets a new reference, and ours is dropped after.
                EndRun::Requeue => {
                    cell.header.ref_inc();
                    cell.scheduler.yield_now(Notified::from_raw(ptr));
                    // SAFETY: we still own the old queue reference.
                    unsafe { Header::ref_dec(ptr, 1) };
                }
                // SAFETY: RUNNING is still set: the future is ours.
                EndRun::Cancel => unsafe { cancel_and_complete::<F, S>(ptr, 1) },
            }
            return;
        }
        Ok(Poll::Ready(value)) => Ok(value),
        Err(payload) => Err(JoinError::panic(payload)),
    };
    // SAFETY: RUNNING is set: the stage is ours.
    let output = match unsafe { set_stage(cell, Stage::Consumed) } {
        Ok(()) => output,
        Err(payload) => match output {
            // The poll panicked, then dropping the future panicked too: the
            // first panic is what the task did; the second is dropped here.
            Err(first) => {
                crate::unwind::drop_payload(payload);
                Err(first)
            }
            // The future returned `Ready`, then its destructor panicked:
            // report that panic, and drop the value nobody will see here,
            // where its own destructor's panic cannot escape either.
            Ok(value) => {
                crate::unwind::contain(move || drop(value));
                Err(JoinError::panic(payload))
            }
        },
    };
    // SAFETY: as above.
    unsafe { complete::<F, S>(ptr, output, 1) };
}
// ANCHOR_END: run

/// Replace the stage, catching a panic in the destructor of what was there.
///
/// # Safety
/// The caller has exclusive access to the stage (RUNNING set by it, or the
/// output handed to it by the COMPLETE / JOIN_INTEREST protocol).
unsafe fn set_stage<F: Future, S>(
    cell: &Cell<F, S>,
    new: Stage<F>,
) -> Result<(), Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: exclusive access, by the caller's contract.
        unsafe { *cell.stage.get_mut() = new };
    }))
}

/// Drop the future of a task and complete it with "cancelled".
///
/// Takes the raw pointer, not a `&Cell`: the last reference may be dropped
/// in here, and a reference *argument* must stay valid until the function
/// returns (freeing the cell under it would be undefined behaviour).
///
/// # Safety
/// `ptr` is a live task of these `F` and `S`; RUNNING is set by the caller,
/// who owns `refs` references.
unsafe fn cancel_and_complete<F, S>(ptr: NonNull<Header>, refs: usize)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the caller's references keep the cell alive until `complete`.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: RUNNING is set by the caller.
    let output = match unsafe { set_stage(cell, Stage::Consumed) } {
        Ok(()) => Err(JoinError::cancelled()),
        Err(payload) => Err(JoinError::panic(payload)),
    };
    // SAFETY: as above; `cell` is not used after this call.
    unsafe { complete::<F, S>(ptr, output, refs) };
}

// ANCHOR: complete
/// Leave the owner's list, store the output, mark the task done, wake the
/// join handle, and drop the caller's `refs` references.
///
/// Takes the raw pointer, not a `&Cell`, for the reason given at
/// [`cancel_and_complete`]: the cell may be freed by the last line.
///
/// # Safety
/// `ptr` is a live task of these `F` and `S`; RUNNING is set by the caller,
/// who owns `refs` references.
unsafe fn complete<F, S>(ptr: NonNull<Header>, output: Result<F::Output, JoinError>, refs: usize)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the caller's references keep the cell alive until the
    // `ref_dec` at the end, after which `cell` is not used.
    let cell = unsafe { cell::<F, S>(ptr) };
    // Leave the owner's task list first, so that whoever sees the output
    // also sees the task gone from the list; its reference is dropped with
    // ours below. (Shutdown cannot miss the task: it is RUNNING, and the
    // runtime joins its workers before it cancels what is left.)
    let owned = cell.scheduler.release(&cell.header);
    let refs = refs + usize::from(owned);
    // SAFETY: RUNNING is set: the stage is ours until COMPLETE is published.
    unsafe { *cell.stage.get_mut() = Stage::Finished(output) };
    let prev = cell.header.state.transition_to_complete();
    if !prev.is_join_interested() {
        // Nobody will read the output: drop it here. The handle gave up its
        // claim before COMPLETE, so the stage is still ours.
        // SAFETY: see above.
        if let Err(payload) = unsafe { set_stage(cell, Stage::Consumed) } {
            crate::unwind::drop_payload(payload);
        }
    } else if prev.has_join_waker() {
        // SAFETY: JOIN_WAKER was set, so the handle wrote the waker before
        // and will not write it again (COMPLETE makes its CAS fail); it may
        // only read it, as we do.
        if let Some(waker) = unsafe { cell.join_waker.get_ref() } {
            // The join waker is user code (a handle may be polled with any
            // waker). Its panic must not skip the rest of this function:
            // the references below would leak, and the worker would die.
            crate::unwind::contain(|| waker.wake_by_ref());
        }
        if !cell
            .header
            .state
            .unset_join_waker_after_complete()
            .is_join_interested()
        {
            // The handle was dropped while we woke it, and left the slot to
            // us: empty it, or its waker would keep its task alive.
            // SAFETY: the handle is gone and JOIN_WAKER made the slot ours.
            let waker = unsafe { cell.join_waker.get_mut().take() };
            crate::unwind::contain(move || drop(waker));
        }
    }
    // SAFETY: we own `refs` references (ours plus the list's).
    unsafe { Header::ref_dec(ptr, refs) };
}
// ANCHOR_END: complete

unsafe fn schedule<F, S>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the caller hands us a reference, which keeps the cell alive.
    let cell = unsafe { cell::<F, S>(ptr) };
    cell.scheduler.schedule(Notified::from_raw(ptr));
}

unsafe fn try_read_output<F, S>(ptr: NonNull<Header>, dst: *mut (), waker: &Waker)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the join handle's reference keeps the cell alive.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: the join handle passes a `*mut Poll<Result<F::Output, _>>`.
    let dst = unsafe { &mut *dst.cast::<Poll<Result<F::Output, JoinError>>>() };
    if !can_read_output(&cell.header, &cell.join_waker, waker) {
        return;
    }
    // SAFETY: COMPLETE is set and JOIN_INTEREST is ours: the output is ours.
    let stage = unsafe { cell.stage.get_mut() };
    match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(output) => *dst = Poll::Ready(output),
        _ => panic!("JoinHandle polled after it returned Ready"),
    }
}

// ANCHOR: can_read_output
/// The join handle's half of the JOIN_WAKER protocol: either the task is
/// done (`true`), or the current waker is stored where the task will find
/// it when it completes (`false`).
fn can_read_output(header: &Header, slot: &sync::UnsafeCell<Option<Waker>>, waker: &Waker) -> bool {
    let snapshot = header.state.load();
    if snapshot.is_complete() {
        return true;
    }
    if snapshot.has_join_waker() {
        // The task may read the slot right now; we may only look.
        // SAFETY: shared access to a slot the task only reads.
        if let Some(stored) = unsafe { slot.get_ref() }
            && stored.will_wake(waker)
        {
            return false;
        }
        // Take the slot back before writing a different waker.
        if header.state.unset_join_waker().is_err() {
            return true; // completed meanwhile
        }
    }
    // JOIN_WAKER is clear: the slot is ours to write.
    // SAFETY: the task never reads the slot while JOIN_WAKER is clear.
    unsafe { *slot.get_mut() = Some(waker.clone()) };
    header.state.set_join_waker().is_err()
}
// ANCHOR_END: can_read_output

unsafe fn drop_output<F, S>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: called by the join handle after
    // `transition_to_join_handle_dropped` found the task done: the output is
    // the handle's.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: as above.
    if let Err(payload) = unsafe { set_stage(cell, Stage::Consumed) } {
        crate::unwind::drop_payload(payload);
    }
}

unsafe fn drop_join_waker<F, S>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the join handle's reference keeps the cell alive.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: called by the join handle when
    // `transition_to_join_handle_dropped` gave it the slot: the runner will
    // not read it (JOIN_WAKER clear) or is done with it.
    let waker = unsafe { cell.join_waker.get_mut().take() };
    crate::unwind::contain(move || drop(waker));
}

unsafe fn shutdown<F, S>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the caller (the owner's list) holds a reference.
    let cell = unsafe { cell::<F, S>(ptr) };
    if cell.header.state.transition_to_shutdown() {
        // We set RUNNING: the future is ours. Take an extra reference for
        // `complete` to drop; the caller still drops its own.
        cell.header.ref_inc();
        // SAFETY: RUNNING set by us, one reference owned.
        unsafe { cancel_and_complete::<F, S>(ptr, 1) };
    }
}

unsafe fn dealloc<F, S>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Schedule,
{
    // SAFETY: the last reference is gone; the cell came from `Box::leak`.
    let cell = unsafe { Box::from_raw(ptr.cast::<Cell<F, S>>().as_ptr()) };
    // A destructor (of a future never polled to the end, or of an output
    // nobody read) may panic; that must not unwind into a waker's `drop`.
    crate::unwind::contain(move || drop(cell));
}
