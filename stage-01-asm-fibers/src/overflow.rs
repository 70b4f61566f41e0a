//! Reporting a fiber's stack overflow instead of corrupting memory.
//!
//! A fiber that recurses too deep runs into the guard page below its stack
//! and the CPU faults: the kernel sends SIGSEGV to the thread. This module
//! installs a SIGSEGV handler that checks whether the faulting address lies
//! in the guard page of the fiber running on this thread. If it does, it
//! prints a clear message and aborts; otherwise the fault is not ours and
//! goes to whatever handler was installed before (Rust's own, which reports
//! overflows of thread stacks, or the default action).
//!
//! The handler cannot run on the overflowed stack (there is no room left),
//! so each thread that runs fibers gets an alternate signal stack
//! (`sigaltstack`) unless it already has one, and the handler is installed
//! with `SA_ONSTACK`.
//!
//! A signal handler may only do async-signal-safe things: it reads one
//! thread-local cell (a plain load from thread-local storage, no
//! allocation, no lazy initialisation), formats into a buffer on its own
//! stack, and calls `write` and `abort`.

use std::cell::Cell;
use std::io::Write as _;
use std::ops::Range;
use std::ptr;
use std::sync::{Once, OnceLock};

thread_local! {
    /// The guard page of the fiber running on this thread, if any.
    static RUNNING_GUARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// This thread's alternate signal stack, if we had to create one.
    static ALTERNATE_STACK: Cell<Option<AlternateStack>> = const { Cell::new(None) };
}

/// Marks `guard` as the guard page of the stack about to run on this thread,
/// returning the previous one (fibers nest) for `leave_stack`.
#[inline(always)]
pub(crate) fn enter_stack(guard: Range<usize>) -> (usize, usize) {
    RUNNING_GUARD.with(|cell| cell.replace((guard.start, guard.end)))
}

/// Restores the guard page that was current before `enter_stack`.
#[inline(always)]
pub(crate) fn leave_stack(previous: (usize, usize)) {
    RUNNING_GUARD.with(|cell| cell.set(previous));
}

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
/// a fiber is created; a fiber never leaves the thread that created it.
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
    let (guard_start, guard_end) = RUNNING_GUARD.with(Cell::get);
    if (guard_start..guard_end).contains(&fault) {
        report_overflow(fault, guard_start, guard_end);
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
