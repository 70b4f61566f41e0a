//! What the single-stepping tests (`unwind.rs`, `unwind_lifecycle.rs`)
//! share: the unwinder's C interface, one walk of the stack from a signal
//! handler, and the x86-64 trap flag switched on and off around the code
//! to step.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

#[repr(C)]
struct UnwindContext(());

type TraceFn = extern "C" fn(*mut UnwindContext, *mut c_void) -> c_int;

unsafe extern "C" {
    fn _Unwind_Backtrace(trace: TraceFn, argument: *mut c_void) -> c_int;
    fn _Unwind_GetIP(context: *mut UnwindContext) -> usize;
    fn _Unwind_GetRegionStart(context: *mut UnwindContext) -> usize;
    fn _Unwind_Find_FDE(pc: *const c_void, bases: *mut [usize; 3]) -> *const c_void;
}

/// Whether any unwind information covers `pc`.
pub fn has_unwind_info(pc: usize) -> bool {
    let mut bases = [0usize; 3];
    // SAFETY: a lookup in the registered unwind tables; writes only `bases`.
    !unsafe { _Unwind_Find_FDE(pc as *const c_void, &mut bases) }.is_null()
}

const MAX_FRAMES: usize = 64;

/// The frames of one walk: instruction pointer and start of the function
/// its unwind information covers (meaningless where there is none).
pub struct Walk {
    frames: [(usize, usize); MAX_FRAMES],
    len: usize,
}

impl Walk {
    /// Walks the stack from here (a signal handler), as a profiler would.
    pub fn from_here() -> Walk {
        let mut walk = Walk {
            frames: [(0, 0); MAX_FRAMES],
            len: 0,
        };
        // SAFETY: record_frame matches the callback type and gets our Walk.
        unsafe { _Unwind_Backtrace(record_frame, (&raw mut walk).cast()) };
        walk
    }

    pub fn frames(&self) -> &[(usize, usize)] {
        &self.frames[..self.len]
    }
}

extern "C" fn record_frame(context: *mut UnwindContext, walk: *mut c_void) -> c_int {
    // SAFETY: `walk` is the Walk that `from_here` passed; context is the unwinder's.
    let walk = unsafe { &mut *walk.cast::<Walk>() };
    if walk.len == MAX_FRAMES {
        return 5; // _URC_END_OF_STACK: enough frames
    }
    // SAFETY: the context is valid during the callback.
    walk.frames[walk.len] = unsafe { (_Unwind_GetIP(context), _Unwind_GetRegionStart(context)) };
    walk.len += 1;
    0 // _URC_NO_REASON: go on
}

/// The instruction a signal interrupted.
///
/// # Safety
/// `context` is the third argument of an SA_SIGINFO handler.
pub unsafe fn interrupted_pc(context: *mut c_void) -> usize {
    // SAFETY: the caller's promise: the kernel passed a ucontext.
    let rip =
        unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RIP as usize] };
    rip as usize
}

/// Whether the next SIGUSR1 turns single-stepping on or off.
static STEP: AtomicBool = AtomicBool::new(false);

/// RFLAGS.TF: with it set, the CPU traps after every instruction.
const TRAP_FLAG: i64 = 0x100;

/// Sets or clears the trap flag in the flags the interrupted code gets back
/// when the handler returns. (`pushfq`/`popfq` in inline assembly would move
/// rsp under the enclosing function's unwind information: the very mistake
/// these tests are after.)
extern "C" fn on_toggle(_: c_int, _: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a ucontext to an SA_SIGINFO handler.
    let flags = unsafe {
        &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_EFL as usize]
    };
    if STEP.load(Ordering::Relaxed) {
        *flags |= TRAP_FLAG;
    } else {
        *flags &= !TRAP_FLAG;
    }
}

/// Turns single-stepping on or off for the code that follows.
pub fn trap_flag(on: bool) {
    STEP.store(on, Ordering::Relaxed);
    // SAFETY: raise has no preconditions; on_toggle handles SIGUSR1.
    unsafe { libc::raise(libc::SIGUSR1) };
}

/// Installs `on_trap` for SIGTRAP and the trap-flag switch for SIGUSR1.
pub fn install(on_trap: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void)) {
    install_handler(libc::SIGTRAP, on_trap);
    install_handler(libc::SIGUSR1, on_toggle);
}

fn install_handler(
    signal: c_int,
    handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void),
) {
    // SAFETY: a plain SA_SIGINFO handler, installed before its signal can come.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}
