//! The context switch for AArch64, AAPCS64 (Linux, macOS, Windows on Arm).
//!
//! As on x86-64 the switch is an ordinary call, `switch(arg, load_sp,
//! save_sp)`, and keeps exactly what the procedure call standard says a
//! callee must preserve:
//!
//! | state                        | who preserves it      |
//! |------------------------------|-----------------------|
//! | x19-x28                      | callee: stored here   |
//! | x29 (frame pointer)          | callee: stored here   |
//! | x30 (lr: our return address) | stored here, so `ret` goes back to the right side |
//! | sp                           | callee: stored in `*save_sp` |
//! | d8-d15 (low 64 bits of v8-v15) | callee: stored here |
//! | x0-x17, v0-v7, v16-v31, NZCV | caller (clobbered)    |
//! | x18                          | platform register: never touched |
//! | FPCR, FPSR                   | global state: not switched (see the chapter) |
//!
//! `sp` must be 16-byte aligned whenever it addresses memory, so the frame
//! is a multiple of 16 bytes and is reserved with one pre-indexed store.
//!
//! A suspended context, as `switch` leaves it (160 bytes):
//!
//! ```text
//!           +-------------------+
//!   sp+144  | d14     | d15     |
//!   sp+128  | d12     | d13     |
//!   sp+112  | d10     | d11     |
//!   sp+96   | d8      | d9      |
//!   sp+80   | x27     | x28     |
//!   sp+64   | x25     | x26     |
//!   sp+48   | x23     | x24     |
//!   sp+32   | x21     | x22     |
//!   sp+16   | x19     | x20     |
//!   sp+0    | x29     | x30     |  <- saved stack pointer (16-aligned)
//!           +-------------------+
//! ```
//!
//! A fresh fiber's frame has the same shape, filled by `init_stack` so that
//! `switch` "returns" into `trampoline`:
//!
//! ```text
//!   top     +-------------------+
//!   top-8   | fiber's saved sp  |  the link header (see fiber.rs)
//!   top-16  | resumer's saved sp|
//!           +-------------------+ <- frame top: sp after the last ldp (16-aligned)
//!           | d8-d15 = 0        |
//!           | x22-x28 = 0       |
//!           | x21 = entry fn    |
//!           | x20 = stack top   |
//!           | x19 = entry data  |
//!           | x29 = 0 | x30 = trampoline |  <- initial sp = top - 176
//!           +-------------------+
//! ```

use super::{EntryFn, StackPointer};

/// The words of a suspended context from the saved stack pointer upwards.
pub const SAVED_CONTEXT: &[&str] = &[
    "x29 (frame pointer)",
    "x30 (return address)",
    "x19",
    "x20",
    "x21",
    "x22",
    "x23",
    "x24",
    "x25",
    "x26",
    "x27",
    "x28",
    "d8",
    "d9",
    "d10",
    "d11",
    "d12",
    "d13",
    "d14",
    "d15",
];

// ANCHOR: switch
/// Saves the callee-saved state on the current stack, stores the stack
/// pointer in `*save_sp`, then restores the state found at `load_sp` and
/// returns `arg` to whoever suspended there.
///
/// # Safety
/// `load_sp` must be a stack pointer saved by `switch` (or built by
/// `init_stack`) whose stack is still alive and not running, and `save_sp`
/// must be valid for a write.
#[unsafe(naked)]
pub unsafe extern "C" fn switch(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    // x0 = arg, x1 = load_sp, x2 = save_sp; lr = where this side resumes.
    core::arch::naked_asm!(
        // Save this side.
        "stp x29, x30, [sp, #-160]!",
        "stp x19, x20, [sp, #16]",
        "stp x21, x22, [sp, #32]",
        "stp x23, x24, [sp, #48]",
        "stp x25, x26, [sp, #64]",
        "stp x27, x28, [sp, #80]",
        "stp d8, d9, [sp, #96]",
        "stp d10, d11, [sp, #112]",
        "stp d12, d13, [sp, #128]",
        "stp d14, d15, [sp, #144]",
        "mov x3, sp",
        "str x3, [x2]",
        // Become the other side.
        "mov sp, x1",
        "ldp x19, x20, [sp, #16]",
        "ldp x21, x22, [sp, #32]",
        "ldp x23, x24, [sp, #48]",
        "ldp x25, x26, [sp, #64]",
        "ldp x27, x28, [sp, #80]",
        "ldp d8, d9, [sp, #96]",
        "ldp d10, d11, [sp, #112]",
        "ldp d12, d13, [sp, #128]",
        "ldp d14, d15, [sp, #144]",
        "ldp x29, x30, [sp], #160",
        // x0 still holds `arg`: the other side's `switch` call returns it.
        "ret",
    )
}
// ANCHOR_END: switch

// ANCHOR: trampoline
/// Where a fresh fiber starts: `switch` "returns" here with the entry data
/// in x19, the stack top in x20, the entry function in x21 and the first
/// message already in x0. sp is 16-byte aligned.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        "mov x1, x19", // entry(arg, data,
        "mov x2, x20", //       top)
        "blr x21",
        // The entry function never returns: it switches away for good.
        "brk #0x1",
    )
}
// ANCHOR_END: trampoline

// ANCHOR: init_stack
/// Writes a fresh context below `frame_top` that `switch` can load: it pops
/// zeros and the entry's arguments, then returns into `trampoline`.
///
/// # Safety
/// `frame_top` must be 16-byte aligned with at least 160 writable bytes
/// below it that nothing else uses.
pub unsafe fn init_stack(
    frame_top: *mut u8,
    entry: EntryFn,
    data: *mut u8,
    top: *mut u8,
) -> StackPointer {
    let mut frame = [0u64; 20];
    frame[0] = 0; // x29: ends the frame-pointer chain
    frame[1] = trampoline as *const () as u64; // x30: where `ret` goes
    frame[2] = data as u64; // x19
    frame[3] = top as u64; // x20
    frame[4] = entry as usize as u64; // x21
    // SAFETY: the caller gives us 160 aligned, writable, unused bytes below frame_top.
    unsafe {
        let sp = frame_top.sub(size_of_val(&frame));
        sp.cast::<[u64; 20]>().write(frame);
        sp
    }
}
// ANCHOR_END: init_stack

/// Reads FPCR, the floating-point control register (rounding mode, flush
/// to zero, default NaN). AAPCS64 treats it as global state.
pub fn read_fpcr() -> u64 {
    let value: u64;
    // SAFETY: reading FPCR has no side effects and is allowed at EL0.
    unsafe {
        core::arch::asm!("mrs {}, fpcr", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Writes FPCR. Like `fesetround`, this changes the rounding of every
/// floating-point operation that follows on this thread, in any fiber.
///
/// # Safety
/// The caller must restore a value the surrounding code expects: compiled
/// code assumes round-to-nearest unless told otherwise.
pub unsafe fn write_fpcr(value: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe {
        core::arch::asm!("msr fpcr, {}", in(reg) value, options(nomem, nostack, preserves_flags))
    };
}
