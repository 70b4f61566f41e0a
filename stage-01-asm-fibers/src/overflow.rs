//! Reporting a fiber's stack overflow instead of corrupting memory.
//!
//! A fiber that recurses too deep runs into the guard page below its stack
//! and the CPU faults: the kernel sends SIGSEGV to the thread. This module
//! installs a SIGSEGV handler that looks the faulting address up among the
//! guard pages of *all live stacks* (the registry below). If it finds it, it
//! prints a clear message and aborts; otherwise the fault is not ours and
//! goes to whatever handler was installed before (Rust's own, which reports
//! overflows of thread stacks, or the default action).
//!
//! The lookup does not ask which fiber is running: a switch does no
//! bookkeeping at all, and an overflow is reported whichever code switched
//! onto the stack (a `Fiber`, a scheduler of stage 02, or a learner's own
//! use of `arch::switch_in`).
//!
//! The handler cannot run on the overflowed stack (there is no room left),
//! so each thread that creates stacks gets an alternate signal stack
//! (`sigaltstack`) unless it already has one, and the handler is installed
//! with `SA_ONSTACK`.
//!
//! A signal handler may only do async-signal-safe things: it reads atomics
//! (plain loads, no lock, no allocation), formats into a buffer on its own
//! stack, and calls `write` and `abort`.

use std::cell::Cell;
use std::io::Write as _;
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

thread_local! {
    /// This thread's alternate signal stack, if we had to create one.
    static ALTERNATE_STACK: Cell<Option<AlternateStack>> = const { Cell::new(None) };
}

// ANCHOR: registry
/// How many guard pages one chunk of the registry holds.
const SLOTS_PER_CHUNK: usize = 510;

/// A piece of the registry: slots holding the start address of a live
/// stack's guard page (0 = free). Chunks are linked into a list that only
/// grows and are never freed, so the signal handler can walk it at any
/// moment without a lock: the worst it sees is a slot being filled or
/// cleared, which is exactly as good as the moment before or after.
struct Chunk {
    slots: [AtomicUsize; SLOTS_PER_CHUNK],
    next: AtomicPtr<Chunk>,
}

/// The newest chunk; each chunk points to the one made before it.
static CHUNKS: AtomicPtr<Chunk> = AtomicPtr::new(ptr::null_mut());
/// Length of every guard page (one page; set before any slot is filled).
static GUARD_LEN: AtomicUsize = AtomicUsize::new(0);

fn chunks() -> impl Iterator<Item = &'static Chunk> {
    let first = CHUNKS.load(Ordering::Acquire);
    // SAFETY: chunks are leaked boxes, never freed, published with Release.
    std::iter::successors(unsafe { first.as_ref() }, |chunk| unsafe {
        chunk.next.load(Ordering::Acquire).as_ref()
    })
}

/// A live stack's place in the registry; cleared on drop.
#[derive(Debug)]
pub(crate) struct GuardRegistration(&'static AtomicUsize);

/// Records `guard` (one page) as the guard page of a live stack.
pub(crate) fn register_guard(guard: Range<usize>) -> GuardRegistration {
    GUARD_LEN.store(guard.end - guard.start, Ordering::Relaxed);
    for chunk in chunks() {
        for slot in &chunk.slots {
            if slot.load(Ordering::Relaxed) == 0
                && slot
                    .compare_exchange(0, guard.start, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return GuardRegistration(slot);
            }
        }
    }
    // Every slot is taken: add a chunk whose first slot is ours.
    // Allocated zeroed on the heap, never built on the stack: this may run
    // on a small fiber stack, and a chunk is 4 KiB.
    let layout = std::alloc::Layout::new::<Chunk>();
    // SAFETY: the layout has a non-zero size.
    let raw = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Chunk>();
    if raw.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: all-zero bytes are a valid Chunk (free slots, no next); the
    // allocation is never freed, so the reference lives for ever.
    let chunk: &'static mut Chunk = unsafe { &mut *raw };
    chunk.slots[0].store(guard.start, Ordering::Relaxed);
    let mut head = CHUNKS.load(Ordering::Acquire);
    loop {
        chunk.next.store(head, Ordering::Relaxed);
        match CHUNKS.compare_exchange(head, chunk, Ordering::Release, Ordering::Acquire) {
            Ok(_) => return GuardRegistration(&chunk.slots[0]),
            Err(newer) => head = newer,
        }
    }
}

impl Drop for GuardRegistration {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// The guard page of a live stack that contains `address`, if any.
/// Async-signal-safe: atomic loads only.
fn guard_containing(address: usize) -> Option<Range<usize>> {
    let len = GUARD_LEN.load(Ordering::Relaxed);
    chunks()
        .flat_map(|chunk| &chunk.slots)
        .map(|slot| slot.load(Ordering::Acquire))
        .find(|&start| start != 0 && (start..start + len).contains(&address))
        .map(|start| start..start + len)
}
// ANCHOR_END: registry

/// The handler that was installed before ours, to pass other faults on to.
struct PreviousAction(libc::sigaction);
// SAFETY: a sigaction is plain data (a function address, a mask, flags),
// written once before the handler can run and only read afterwards.
unsafe impl Sync for PreviousAction {}
// SAFETY: as above.
unsafe impl Send for PreviousAction {}

static PREVIOUS_ACTION: OnceLock<PreviousAction> = OnceLock::new();

/// Makes overflows on this thread reportable: installs the handler (once
/// per process) and an alternate signal stack (once per thread). Called when
/// a stack is created; a `Stack` never leaves the thread that created it.
pub(crate) fn prepare_thread() {
    install_handler();
    ensure_alternate_stack();
}

/// Installs the SIGSEGV handler once per process.
fn install_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no handler" value; we fill
        // in the fields sigaction(2) reads. The old action is read and kept
        // *before* ours is installed, so a fault that arrives in between
        // already finds the handler to pass it on to.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, ptr::null(), &mut previous) != 0 {
                return; // Overflows still fault; they just are not reported.
            }
            let _ = PREVIOUS_ACTION.set(PreviousAction(previous));
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_segv as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, ptr::null_mut());
        }
    });
}

// ANCHOR: handler
extern "C" fn on_segv(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO handler.
    let fault = unsafe { (*info).si_addr() } as usize;
    if let Some(guard) = guard_containing(fault) {
        report_overflow(fault, guard.start, guard.end);
        // SAFETY: abort is async-signal-safe and ends the process.
        unsafe { libc::abort() };
    }
    pass_on(signal, info, context);
}
// ANCHOR_END: handler

/// Writes the report with a single `write(2)` from a stack buffer.
fn report_overflow(fault: usize, guard_start: usize, guard_end: usize) {
    let mut buffer = [0u8; 256];
    let mut cursor = &mut buffer[..];
    // Writing into a slice allocates nothing; a too-long message is cut.
    let _ = write!(
        cursor,
        "\nfatal: fiber stack overflow: fault at {fault:#x} in the guard page \
         {guard_start:#x}..{guard_end:#x}; give the fiber a larger Stack\n"
    );
    let remaining = cursor.len();
    let length = buffer.len() - remaining;
    // SAFETY: the buffer is valid for `length` bytes; write is async-signal-safe.
    unsafe { libc::write(libc::STDERR_FILENO, buffer.as_ptr().cast(), length) };
}

/// Hands a fault that is not a fiber overflow to the previous handler.
fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = PREVIOUS_ACTION.get().map(|p| p.0.sa_sigaction);
    let flags = PREVIOUS_ACTION.get().map_or(0, |p| p.0.sa_flags);
    match previous {
        Some(handler) if handler != libc::SIG_DFL && handler != libc::SIG_IGN => {
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO,
                // so it has this signature.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                handler(signal, info, context);
            } else {
                // SAFETY: without SA_SIGINFO a handler takes the signal only.
                let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                handler(signal);
            }
        }
        _ => {
            // Restore the default action and return: the faulting
            // instruction runs again and the kernel delivers SIGSEGV with
            // its default effect (the process dies with a core dump).
            // SAFETY: resetting a signal to SIG_DFL is async-signal-safe.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, ptr::null_mut());
            }
        }
    }
}

/// An alternate signal stack we mapped for a thread; unmapped when the
/// thread exits.
struct AlternateStack {
    base: *mut libc::c_void,
    len: usize,
}

impl Drop for AlternateStack {
    fn drop(&mut self) {
        // SAFETY: disable the alternate stack before unmapping it, so no
        // signal can be delivered onto freed memory.
        unsafe {
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::sigaltstack(&disable, ptr::null_mut());
            libc::munmap(self.base, self.len);
        }
    }
}

/// Gives this thread an alternate signal stack unless it has one already
/// (Rust's runtime installs one on the threads it starts).
fn ensure_alternate_stack() {
    thread_local! {
        static CHECKED: Cell<bool> = const { Cell::new(false) };
    }
    if CHECKED.with(|checked| checked.replace(true)) {
        return;
    }
    // SAFETY: querying the current alternate stack writes only into `current`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0
        || current.ss_flags & libc::SS_DISABLE == 0
    {
        return;
    }
    let len = (libc::SIGSTKSZ).max(64 * 1024);
    // SAFETY: a fresh anonymous mapping, checked below.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return; // Overflows still fault; they just cannot be reported nicely.
    }
    let stack = libc::stack_t {
        ss_sp: base,
        ss_flags: 0,
        ss_size: len,
    };
    // SAFETY: `stack` describes memory we own until AlternateStack drops it.
    if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } == 0 {
        ALTERNATE_STACK.with(|cell| cell.set(Some(AlternateStack { base, len })));
    } else {
        // SAFETY: the mapping was never handed to the kernel as a stack.
        unsafe { libc::munmap(base, len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stack;

    #[test]
    fn every_live_stacks_guard_page_is_found_and_a_dropped_ones_is_not() {
        // More stacks than one chunk holds, so the registry has to grow.
        let stacks: Vec<Stack> = (0..3 * SLOTS_PER_CHUNK / 2)
            .map(|_| Stack::new(4096).unwrap())
            .collect();
        for stack in &stacks {
            let guard = stack.guard();
            assert_eq!(guard_containing(guard.start), Some(guard.clone()));
            assert_eq!(guard_containing(guard.end - 1), Some(guard.clone()));
            assert_eq!(
                guard_containing(stack.bottom() as usize),
                None,
                "the usable region is not a guard"
            );
        }
        let dropped = stacks.iter().map(Stack::guard).collect::<Vec<_>>();
        drop(stacks);
        for guard in dropped {
            // The address may already belong to a stack another test made.
            if let Some(found) = guard_containing(guard.start) {
                assert_eq!(found, guard, "a stale entry");
            }
        }
    }
}
