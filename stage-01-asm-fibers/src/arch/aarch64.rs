//! The context switch for AArch64, AAPCS64 (Linux, macOS, Windows on Arm).
//!
//! As on x86-64 the switch comes in two halves that look like ordinary
//! calls, `switch_in` for the resumer and `switch_back` for the fiber, and
//! keeps exactly what the procedure call standard says a callee must
//! preserve:
//!
//! | state                        | who preserves it      |
//! |------------------------------|-----------------------|
//! | x19-x28                      | callee: stored here   |
//! | x29 (frame pointer)          | callee: stored here   |
//! | x30 (lr: where this side resumes) | stored here, so each side continues where it stopped |
//! | sp                           | callee: stored in `*save_sp` |
//! | d8-d15 (low 64 bits of v8-v15) | callee: stored here |
//! | x0-x17, v0-v7, v16-v31, NZCV | caller (clobbered)    |
//! | x18                          | platform register: reserved on Apple, Windows, Android; a caller-saved temporary on Linux; never touched here |
//! | FPCR, FPSR                   | global state: not switched (see the chapter) |
//!
//! `sp` must be 16-byte aligned whenever it addresses memory (and at every
//! public interface), so the frame is a multiple of 16 bytes and is reserved with one pre-indexed store.
//!
//! The resumer enters with `bl switch_in` and the fiber leaves through
//! `switch_out`, whose `ret` matches that `bl`: the CPU's return-address
//! predictor stays in step (see the x86-64 file for why that matters).
//!
/*!
<!-- ANCHOR: suspended_frame -->
A suspended context, as `switch_in` or `switch_back` leaves it (160 bytes):

```text
          +-------------------+
  sp+144  | d14     | d15     |
  sp+128  | d12     | d13     |
  sp+112  | d10     | d11     |
  sp+96   | d8      | d9      |
  sp+80   | x27     | x28     |
  sp+64   | x25     | x26     |
  sp+48   | x23     | x24     |
  sp+32   | x21     | x22     |
  sp+16   | x19     | x20     |
  sp+0    | x29     | x30     |  <- saved stack pointer (16-aligned)
          +-------------------+
```
<!-- ANCHOR_END: suspended_frame -->
*/
/*!
<!-- ANCHOR: fresh_frame -->
A fresh fiber's frame has the same shape, filled by `init_stack` so that
`switch_in` "returns" into `trampoline` (its final `br x30`):

```text
  top     +-------------------+
  top-8   | fiber's saved sp  |  the link header (see fiber.rs)
  top-16  | resumer's saved sp|
          +-------------------+ <- frame top: sp after the last ldp (16-aligned)
          | d8-d15 = 0        |
          | x22-x28 = 0       |
          | x21 = entry fn    |
          | x20 = stack top   |
          | x19 = entry data  |
          | x29 = 0 | x30 = trampoline |  <- initial sp = top - 176
          +-------------------+
```
<!-- ANCHOR_END: fresh_frame -->
*/
//!
/*!
<!-- ANCHOR: running_frame -->
While the fiber runs, its frames grow down from the frame top towards
the guard page, and the resumer is parked inside `switch_in` with its
context saved on its own stack:

```text
  fiber's stack                          resumer's stack
  top     +-----------------------+      |  resumer's frames   |
  top-8   | (stale until suspend) |      +---------------------+
  top-16  | resumer's saved sp  --+----->| context saved by    |
          +-----------------------+      | switch_in           |
          | fiber_root's frame    |      +---------------------+
          | the closure's frames  |
          |   ...                 | <- sp
          +-----------------------+
          | guard page (PROT_NONE)|
          +-----------------------+
```
<!-- ANCHOR_END: running_frame -->
*/
use super::{EntryFn, StackPointer};

/// The words of a suspended context from the saved stack pointer upwards.
pub const SAVED_CONTEXT: &[&str] = &[
    "x29 (frame pointer)",
    "x30 (resume address)",
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

// ANCHOR: save_restore
// ANCHOR: lab_1_2_swap
/// Stores this side's callee-saved state (x30 holds where it resumes) and
/// its stack pointer in `*x2`; then loads the stack pointer in `x1` and the
/// other side's state, leaving in x30 where the other side resumes.
macro_rules! swap_stacks {
    () => {
        concat!(
            // Save this side.
            "stp x29, x30, [sp, #-160]!\n",
            "stp x19, x20, [sp, #16]\n",
            "stp x21, x22, [sp, #32]\n",
            "stp x23, x24, [sp, #48]\n",
            "stp x25, x26, [sp, #64]\n",
            "stp x27, x28, [sp, #80]\n",
            "stp d8, d9, [sp, #96]\n",
            "stp d10, d11, [sp, #112]\n",
            "stp d12, d13, [sp, #128]\n",
            "stp d14, d15, [sp, #144]\n",
            "mov x3, sp\n",
            "str x3, [x2]\n",
            // Become the other side. x0 (arg) passes through untouched.
            "mov sp, x1\n",
            "ldp x19, x20, [sp, #16]\n",
            "ldp x21, x22, [sp, #32]\n",
            "ldp x23, x24, [sp, #48]\n",
            "ldp x25, x26, [sp, #64]\n",
            "ldp x27, x28, [sp, #80]\n",
            "ldp d8, d9, [sp, #96]\n",
            "ldp d10, d11, [sp, #112]\n",
            "ldp d12, d13, [sp, #128]\n",
            "ldp d14, d15, [sp, #144]\n",
            "ldp x29, x30, [sp], #160\n",
        )
    };
}
// ANCHOR_END: lab_1_2_swap
// ANCHOR_END: save_restore

// ANCHOR: switch
/// Resumer to fiber: stores the resumer's callee-saved state (x30 holds its
/// return address from the `bl`), stores its stack pointer in `*save_sp`,
/// loads the fiber's and branches to wherever the fiber stopped. Returns
/// `arg` from the fiber's next `switch_back`.
///
/// It ends with `br`, not `ret`: the return-address predictor still holds
/// our `bl`, and the fiber's `switch_back` will consume it.
///
/// # Safety
/// `load_sp` must be a context saved by `switch_back` (or built by
/// `init_stack`) on a live stack that is not running; `save_sp` must be
/// valid for a write.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_in(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    // x0 = arg, x1 = load_sp, x2 = save_sp; x30 = where the resumer resumes.
    core::arch::naked_asm!(swap_stacks!(), "br x30")
}

/// Fiber to resumer: the other half, reached only by the `b` in
/// `switch_back`, which put the fiber's resume address in x30 by hand. It
/// ends with the `ret` that matches the resumer's `bl switch_in`.
#[unsafe(naked)]
unsafe extern "C" fn switch_out() {
    core::arch::naked_asm!(swap_stacks!(), "ret")
}

/// Suspends the running fiber: puts the address of the label after the
/// branch in x30 as the fiber's resume address and branches into
/// `switch_out`, without a `bl`, so the return-address predictor is left
/// as the resumer's `bl switch_in` set it.
///
/// # Safety
/// Must run on a fiber's stack; `load_sp` is the resumer's context saved by
/// `switch_in`, and `save_sp` is valid for a write.
#[inline(always)]
pub unsafe fn switch_back(arg: usize, load_sp: StackPointer, save_sp: *mut StackPointer) -> usize {
    let reply: usize;
    // SAFETY: switch_out preserves x19-x29, sp and d8-d15 like any callee;
    // everything else, x30 included, is declared clobbered (x18 is listed
    // but never written). Without `nostack`, sp is 16-aligned on entry, as
    // switch_out's stores through sp require. `2` is a local label: safe to
    // inline many times.
    unsafe {
        core::arch::asm!(
            "adr x30, 2f",
            "b {switch_out}",
            "2:",
            switch_out = sym switch_out,
            inlateout("x0") arg => reply,
            in("x1") load_sp,
            in("x2") save_sp,
            clobber_abi("C"),
        );
    }
    reply
}
// ANCHOR_END: switch

// ANCHOR: trampoline
/// Where a fresh fiber starts: `switch_in` branches here with the entry data
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
/// Writes a fresh context below `frame_top` that `switch_in` can load: it
/// loads zeros and the entry's arguments, then branches into `trampoline`.
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
