//! One walk of the stack from a signal handler with the unwinder's C
//! interface, as a sampling profiler does it, and where the signal landed.
//! Shared by the single-stepping tests and `signals.rs`.

use std::ffi::{c_int, c_void};

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
    let registers = unsafe { &(*context.cast::<libc::ucontext_t>()).uc_mcontext };
    #[cfg(target_arch = "x86_64")]
    let pc = registers.gregs[libc::REG_RIP as usize] as usize;
    #[cfg(target_arch = "aarch64")]
    let pc = registers.pc as usize;
    #[cfg(target_arch = "riscv64")]
    let pc = registers.__gregs[0] as usize; // REG_PC
    pc
}
