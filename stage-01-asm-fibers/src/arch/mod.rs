//! The part of a fiber that only assembly can do: switching stacks.
//!
//! Each supported architecture has a file with the same three items:
//!
//! - `switch_in(arg, load_sp, save_sp) -> usize` (resumer to fiber) and
//!   `switch_back(arg, load_sp, save_sp) -> usize` (fiber to resumer): save
//!   this side's callee-saved state on its stack, store the stack pointer,
//!   load the other side's, restore its state and continue it with `arg`;
//! - `init_stack(frame_top, entry, data, top)`: lay out a fresh context that
//!   `switch_in` can load, so a new fiber starts in `entry(arg, data, top)`;
//! - `SAVED_CONTEXT`: the names of the words a suspended context holds, from
//!   the saved stack pointer upwards (the `show_stack` example prints them).
//!
//! Everything else about fibers is portable Rust in `fiber.rs`.

/// A saved stack pointer: where a suspended context's registers are stored.
pub type StackPointer = *mut u8;

/// The first Rust code a fiber runs: `entry(arg, data, top)` where `arg` is
/// the first message, `data` whatever `init_stack` was given, and `top` the
/// top of the fiber's stack. It must never return.
pub type EntryFn = unsafe extern "C" fn(arg: usize, data: *mut u8, top: *mut u8) -> !;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(target_arch = "riscv64")]
mod riscv64;
#[cfg(target_arch = "riscv64")]
pub use riscv64::*;

/// On AArch64 and RISC-V the floating-point control state (FPCR, fcsr) is
/// thread state in the ABI and is never switched, so a fiber that shares it
/// and one that "keeps its own" switch the same way.
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
mod one_switch_for_both_kinds {
    use super::{StackPointer, switch_back, switch_in};

    pub use super::{switch_back as switch_back_shared_fp, switch_in as switch_in_shared_fp};

    /// `switch_in`, whatever the fiber's kind.
    ///
    /// # Safety
    /// As for `switch_in`.
    #[inline(always)]
    pub unsafe fn switch_in_fp(
        arg: usize,
        load_sp: StackPointer,
        save_sp: *mut StackPointer,
        _own_fp_control: bool,
    ) -> usize {
        // SAFETY: the caller's promises.
        unsafe { switch_in(arg, load_sp, save_sp) }
    }

    /// `switch_back`, whatever the fiber's kind.
    ///
    /// # Safety
    /// As for `switch_back`.
    #[inline(always)]
    pub unsafe fn switch_back_fp(
        arg: usize,
        load_sp: StackPointer,
        save_sp: *mut StackPointer,
        _own_fp_control: bool,
    ) -> usize {
        // SAFETY: the caller's promises.
        unsafe { switch_back(arg, load_sp, save_sp) }
    }
}
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
pub use one_switch_for_both_kinds::*;

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
compile_error!(
    "stage-01-asm-fibers has a context switch for x86_64, aarch64 and riscv64 only: \
     add src/arch/<your arch>.rs following those files"
);
