//! The context switch for x86-64, System V ABI (Linux, the BSDs, macOS).
//!
//! A switch is an ordinary function call as far as the compiler can tell:
//! `switch(arg, load_sp, save_sp)`. Caller-saved registers are already
//! considered clobbered by any call, so the switch only has to keep what the
//! ABI says a *callee* preserves:
//!
//! | state                         | who preserves it       |
//! |-------------------------------|------------------------|
//! | rbx, rbp, r12, r13, r14, r15  | callee: pushed here    |
//! | rsp                           | callee: stored in `*save_sp` |
//! | MXCSR control bits (SSE)      | callee: stored here    |
//! | x87 control word              | callee: stored here    |
//! | rax, rcx, rdx, rsi, rdi, r8-r11, xmm0-15, flags | caller (clobbered) |
//! | DF (direction flag)           | clear at every call and return: nothing to do |
//!
//! The switch pushes the callee-saved registers onto the *current* stack,
//! stores that stack pointer through `save_sp`, loads `load_sp`, pops the
//! other side's registers and returns into the other side. `arg` travels in
//! rdi and comes out in rax, as the return value of the *other* side's call
//! to `switch`.
//!
//! A suspended context (fiber or resumer), as `switch` leaves it:
//!
//! ```text
//!           +-------------------------+
//!   sp+56   | return address          |  pushed by the `call switch`
//!   sp+48   | rbp                     |
//!   sp+40   | rbx                     |
//!   sp+32   | r12                     |
//!   sp+24   | r13                     |
//!   sp+16   | r14                     |
//!   sp+8    | r15                     |
//!   sp+0    | MXCSR (4) | x87 CW (2)  |  <- saved stack pointer (16-aligned)
//!           +-------------------------+
//! ```
//!
//! A fresh fiber's stack is built by `init_stack` so that the very same pops
//! and `ret` "return" into `trampoline`, with the entry function, its data
//! and the stack top waiting in callee-saved registers:
//!
//! ```text
//!   top     +-------------------------+
//!   top-8   | fiber's saved sp        |  the link header (see fiber.rs)
//!   top-16  | resumer's saved sp      |
//!           +-------------------------+ <- frame top: rsp after `ret` (16-aligned)
//!   top-24  | trampoline              |  "return address" popped by `ret`
//!   top-32  | rbp = 0                 |  ends the frame-pointer chain
//!   top-40  | rbx = entry function    |
//!   top-48  | r12 = entry data        |
//!   top-56  | r13 = stack top         |
//!   top-64  | r14 = 0                 |
//!   top-72  | r15 = 0                 |
//!   top-80  | 0x1F80 | 0x037F         |  default MXCSR and x87 CW  <- initial sp
//!           +-------------------------+
//! ```
//!
//! While running, the fiber's frames grow down from `top-24` (where
//! `trampoline`'s `call` pushes its return address) towards the guard page.

use super::{EntryFn, StackPointer};

/// MXCSR at reset: all exceptions masked, round to nearest, no FTZ/DAZ.
pub const DEFAULT_MXCSR: u32 = 0x1F80;
/// x87 control word at reset: all exceptions masked, 64-bit precision, round to nearest.
pub const DEFAULT_X87_CONTROL_WORD: u16 = 0x037F;

/// The words of a suspended context from the saved stack pointer upwards.
pub const SAVED_CONTEXT: &[&str] = &[
    "MXCSR | x87 control word",
    "r15",
    "r14",
    "r13",
    "r12",
    "rbx",
    "rbp",
    "return address",
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
    // rdi = arg, rsi = load_sp, rdx = save_sp
    core::arch::naked_asm!(
        // Save this side. The `call` already pushed our return address.
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "sub rsp, 8",
        "stmxcsr [rsp]",
        "fnstcw [rsp + 4]",
        "mov [rdx], rsp",
        // Become the other side.
        "mov rsp, rsi",
        "ldmxcsr [rsp]",
        "fldcw [rsp + 4]",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        // The other side's `switch` call returns `arg`.
        "mov rax, rdi",
        "ret",
    )
}
// ANCHOR_END: switch

// ANCHOR: trampoline
/// Where a fresh fiber starts: `switch` "returns" here with the entry
/// function in rbx, its data in r12, the stack top in r13 and the first
/// message in rax. The stack pointer is 16-byte aligned, so the `call`
/// leaves the entry function exactly the alignment the ABI promises.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        "mov rdi, rax", // entry(arg,
        "mov rsi, r12", //       data,
        "mov rdx, r13", //       top)
        "call rbx",
        // The entry function never returns: it switches away for good.
        "ud2",
    )
}
// ANCHOR_END: trampoline

// ANCHOR: init_stack
/// Writes a fresh context below `frame_top` that `switch` can load: it pops
/// zeros and the entry's arguments, then returns into `trampoline`.
///
/// # Safety
/// `frame_top` must be 16-byte aligned with at least 64 writable bytes below
/// it that nothing else uses.
pub unsafe fn init_stack(
    frame_top: *mut u8,
    entry: EntryFn,
    data: *mut u8,
    top: *mut u8,
) -> StackPointer {
    let control = u64::from(DEFAULT_MXCSR) | (u64::from(DEFAULT_X87_CONTROL_WORD) << 32);
    let frame: [u64; 8] = [
        control,
        0,                              // r15
        0,                              // r14
        top as u64,                     // r13
        data as u64,                    // r12
        entry as usize as u64,          // rbx
        0,                              // rbp
        trampoline as *const () as u64, // return address
    ];
    // SAFETY: the caller gives us 64 aligned, writable, unused bytes below frame_top.
    unsafe {
        let sp = frame_top.sub(size_of_val(&frame));
        sp.cast::<[u64; 8]>().write(frame);
        sp
    }
}
// ANCHOR_END: init_stack
