//! What the single-stepping tests (`unwind.rs`, `unwind_lifecycle.rs`)
//! share: the x86-64 trap flag switched on and off around the code to
//! step, and the walk of `walk.rs`.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::walk::{Walk, has_unwind_info, interrupted_pc};

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
