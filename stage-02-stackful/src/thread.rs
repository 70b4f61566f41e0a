//! What a green thread can do: the free functions that reach the running
//! runtime through its thread-local handle.
//!
//! | function            | effect                                                   |
//! |---------------------|----------------------------------------------------------|
//! | [`spawn`]           | new green thread at the back of the run queue            |
//! | [`yield_now`]       | go to the back of the run queue, let the others run      |
//! | [`sleep`]           | park until a deadline (a timer entry unparks)            |
//! | [`current`]         | this green thread's [`GreenId`]                          |
//! | [`park`]/[`unpark`] | the primitive every blocking operation is built from     |
//! | [`with_driver`]     | reach the installed [`Driver`] to register interest      |
//!
//! All of them panic outside a runtime (a programming error), except
//! [`unpark`] and [`try_current`], which answer `false`/`None` there.
//!
//! [`Driver`]: crate::Driver

use std::fmt;
use std::io;
use std::num::NonZeroU64;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::driver::Driver;
use crate::join::{JoinHandle, Packet, green_entry};
use crate::scheduler::{expect_current, with_current};

/// The identity of a green thread, unique within the process for its whole
/// life (never reused, even after the thread finishes).
///
/// `Copy`, cheap to store: a driver keeps these to know whom to wake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GreenId {
    /// Index in the scheduler's slab: O(1) lookup.
    slot: u32,
    /// Never reused: tells a live thread from an older one in the same slot.
    serial: NonZeroU64,
}

impl GreenId {
    pub(crate) fn new(slot: usize, serial: NonZeroU64) -> Self {
        // A slab of more than 4 billion threads is far beyond memory.
        GreenId {
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            serial,
        }
    }

    pub(crate) fn slot(self) -> usize {
        self.slot as usize
    }

    pub(crate) fn serial(self) -> NonZeroU64 {
        self.serial
    }

    /// A number unique to this thread in the process (for logs and tokens).
    pub fn as_u64(self) -> u64 {
        self.serial.get()
    }
}

impl fmt::Debug for GreenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GreenId({})", self.serial)
    }
}

impl fmt::Display for GreenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "green#{}", self.serial)
    }
}

// ANCHOR: spawn
/// Starts a green thread running `f` on the current runtime. It runs when the
/// scheduler reaches it in the run queue (after the threads already there).
///
/// Panics outside a runtime, or if no stack can be allocated (see
/// [`try_spawn`] to handle that).
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match try_spawn(f) {
        Ok(handle) => handle,
        Err(e) => panic!("green::spawn: cannot allocate a stack for a green thread: {e}"),
    }
}

/// Like [`spawn`], but reports a failure to allocate a stack (`mmap` failed,
/// for example at the `vm.max_map_count` limit) as an error.
pub fn try_spawn<F, T>(f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    expect_current("spawn", |scheduler| {
        let packet = Rc::new(Packet::new());
        let id = scheduler.spawn_fiber(green_entry(f, packet.clone()))?;
        Ok(JoinHandle::new(id, packet))
    })
}
// ANCHOR_END: spawn

/// Gives the other runnable green threads a turn: the caller goes to the back
/// of the run queue.
#[inline(always)]
pub fn yield_now() {
    expect_current(
        "yield_now",
        #[inline(always)]
        |s| s.yield_now(),
    );
}

// ANCHOR: sleep
/// Parks the calling green thread for at least `duration`. Other green
/// threads run meanwhile; if none can, the OS thread sleeps in the driver.
pub fn sleep(duration: Duration) {
    match Instant::now().checked_add(duration) {
        Some(deadline) => sleep_until(deadline),
        // Further away than `Instant` can say: never wake (on our own).
        None => loop {
            park();
        },
    }
}

/// Parks the calling green thread until `deadline` has passed.
pub fn sleep_until(deadline: Instant) {
    expect_current("sleep", |s| {
        // `park_until` may return early (a stray unpark): never wake early.
        while Instant::now() < deadline {
            s.park_until(deadline);
        }
    });
}
// ANCHOR_END: sleep

/// The calling green thread's identity. Panics outside a green thread.
#[inline]
pub fn current() -> GreenId {
    match try_current() {
        Some(id) => id,
        None => panic!("green::current called outside a green thread"),
    }
}

/// The calling green thread's identity, or `None` outside one.
#[inline]
pub fn try_current() -> Option<GreenId> {
    with_current(|s| s.running()).flatten()
}

// ANCHOR: park_api
/// Blocks the calling green thread until [`unpark`] is called with its id.
///
/// If an `unpark` already came while the thread was not parked, returns at
/// once (consuming that token): a wake-up is never lost. May also return
/// spuriously, so always wait in a loop that re-checks the condition:
///
/// ```no_run
/// # use std::cell::Cell;
/// # let ready = Cell::new(false);
/// while !ready.get() {
///     // (register green::current() with whoever sets `ready` first)
///     green::park();
/// }
/// ```
#[inline]
pub fn park() {
    expect_current("park", |s| s.park());
}

/// Like [`park`], but also returns once `timeout` has passed.
pub fn park_timeout(timeout: Duration) {
    match Instant::now().checked_add(timeout) {
        Some(deadline) => expect_current("park_timeout", |s| s.park_until(deadline)),
        None => park(),
    }
}

/// Makes the green thread `id` runnable if it is parked, or leaves it a token
/// so that its next [`park`] returns at once.
///
/// Returns `false` (and does nothing) if `id` is not a live green thread of
/// the runtime running on this OS thread (or of a runtime it runs inside,
/// when it runs in a green thread of another), or if no runtime runs here.
/// Safe to call with a stale id.
#[inline]
pub fn unpark(id: GreenId) -> bool {
    with_current(|s| s.unpark_here_or_outside(id)).unwrap_or(false)
}
// ANCHOR_END: park_api

/// Calls `f` with the runtime's driver if it is a `D` (the type installed
/// with [`Builder::driver`](crate::Builder::driver)); `None` if it is another
/// type. This is how a green thread registers interest with a netpoller.
///
/// Do not block (park, yield, sleep) inside `f`: the driver stays borrowed
/// for the length of the call, so blocking there panics. Panics outside a
/// runtime.
pub fn with_driver<D: Driver, R>(f: impl FnOnce(&mut D) -> R) -> Option<R> {
    expect_current("with_driver", |s| {
        s.with_driver(|driver| {
            let driver: &mut dyn std::any::Any = driver;
            driver.downcast_mut::<D>().map(f)
        })
    })
}
