//! The context switch for RISC-V 64, LP64D psABI (Linux, the BSDs).
//!
//! As on the other two ISAs the switch comes in two halves that look like
//! ordinary calls, `switch_in` for the resumer and `switch_back` for the
//! fiber, and keeps exactly what the psABI says a callee must preserve:
//!
//! | state                        | who preserves it      |
//! |------------------------------|-----------------------|
//! | s0-s11 (s0 is the frame pointer) | callee: stored here |
//! | fs0-fs11 (64-bit, with the D extension) | callee: stored here |
//! | ra (where this side resumes) | caller-saved, but stored here: it is the resume address |
//! | sp                           | callee: stored in `*save_sp` |
//! | a0-a7, t0-t6, fa0-fa7, ft0-ft11 | caller (clobbered) |
//! | gp, tp                       | global pointer and thread pointer: never touched |
//! | fcsr (frm, fflags)           | thread state: not switched (see the chapter) |
//!
//! sp must stay 16-byte aligned, so the 200 bytes of state take a 208-byte
//! frame, reserved with one `addi`.
//!
//! Return-address prediction on RISC-V follows *hints* in the encoding: a
//! `jal`/`jalr` that writes ra pushes the return-address stack, a `jalr`
//! through ra that writes nothing pops it (`ret`). The resumer enters with
//! `call switch_in` (a push); `switch_in` leaves through `jr t1`, which is
//! neither; the fiber reaches `switch_out` with `tail`, also neither, and
//! `switch_out`'s `ret` pops exactly the resumer's `call`.
//!
/*!
<!-- ANCHOR: suspended_frame -->
A suspended context, as `switch_in` or `switch_back` leaves it (208 bytes):

```text
          +----------------------------------------+
  sp+200  | (padding: keeps the frame 16-aligned)  |
  sp+192  | fs11                                   |
  sp+184  | fs10                                   |
  sp+176  | fs9                                    |
  sp+168  | fs8                                    |
  sp+160  | fs7                                    |
  sp+152  | fs6                                    |
  sp+144  | fs5                                    |
  sp+136  | fs4                                    |
  sp+128  | fs3                                    |
  sp+120  | fs2                                    |
  sp+112  | fs1                                    |
  sp+104  | fs0                                    |
  sp+96   | s11                                    |
  sp+88   | s10                                    |
  sp+80   | s9                                     |
  sp+72   | s8                                     |
  sp+64   | s7                                     |
  sp+56   | s6                                     |
  sp+48   | s5                                     |
  sp+40   | s4                                     |
  sp+32   | s3                                     |
  sp+24   | s2                                     |
  sp+16   | s1                                     |
  sp+8    | s0 (frame pointer)                     |
  sp+0    | ra (resume address)                    |  <- saved stack pointer (16-aligned)
          +----------------------------------------+
```
<!-- ANCHOR_END: suspended_frame -->
*/
/*!
<!-- ANCHOR: fresh_frame -->
A fresh fiber's frame has the same shape, filled by `init_stack` so that
`switch_in` continues in `trampoline`:

```text
  top     +-------------------+
  top-8   | fiber's saved sp  |  the link header (see fiber.rs)
  top-16  | resumer's saved sp|
          +-------------------+ <- frame top: sp after the final addi (16-aligned)
          | fs0-fs11 = 0      |
          | s4-s11 = 0        |
          | s3 = stack top    |
          | s2 = entry data   |
          | s1 = entry fn     |
          | s0 = 0            |  ends the frame-pointer chain
          | ra = trampoline   |  <- initial sp = top - 224
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
    "ra (resume address)",
    "s0 (frame pointer)",
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
    "s6",
    "s7",
    "s8",
    "s9",
    "s10",
    "s11",
    "fs0",
    "fs1",
    "fs2",
    "fs3",
    "fs4",
    "fs5",
    "fs6",
    "fs7",
    "fs8",
    "fs9",
    "fs10",
    "fs11",
];

// ANCHOR: save_restore
// ANCHOR: lab_1_5_swap
/// Stores this side's callee-saved state (ra holds where it resumes) and
/// its stack pointer in `*a2`; then loads the stack pointer in `a1` and the
/// other side's state, leaving in ra where the other side resumes.
macro_rules! swap_stacks {
    () => {
        concat!(
            // Save this side.
            "addi sp, sp, -208\n",
            "sd ra, 0(sp)\n",
            "sd s0, 8(sp)\n",
            "sd s1, 16(sp)\n",
            "sd s2, 24(sp)\n",
            "sd s3, 32(sp)\n",
            "sd s4, 40(sp)\n",
            "sd s5, 48(sp)\n",
            "sd s6, 56(sp)\n",
            "sd s7, 64(sp)\n",
            "sd s8, 72(sp)\n",
            "sd s9, 80(sp)\n",
            "sd s10, 88(sp)\n",
            "sd s11, 96(sp)\n",
            "fsd fs0, 104(sp)\n",
            "fsd fs1, 112(sp)\n",
            "fsd fs2, 120(sp)\n",
            "fsd fs3, 128(sp)\n",
            "fsd fs4, 136(sp)\n",
            "fsd fs5, 144(sp)\n",
            "fsd fs6, 152(sp)\n",
            "fsd fs7, 160(sp)\n",
            "fsd fs8, 168(sp)\n",
            "fsd fs9, 176(sp)\n",
            "fsd fs10, 184(sp)\n",
            "fsd fs11, 192(sp)\n",
            "sd sp, 0(a2)\n",
            // Become the other side. a0 (arg) passes through untouched.
            "mv sp, a1\n",
            "ld ra, 0(sp)\n",
            "ld s0, 8(sp)\n",
            "ld s1, 16(sp)\n",
            "ld s2, 24(sp)\n",
            "ld s3, 32(sp)\n",
            "ld s4, 40(sp)\n",
            "ld s5, 48(sp)\n",
            "ld s6, 56(sp)\n",
            "ld s7, 64(sp)\n",
            "ld s8, 72(sp)\n",
            "ld s9, 80(sp)\n",
            "ld s10, 88(sp)\n",
            "ld s11, 96(sp)\n",
            "fld fs0, 104(sp)\n",
            "fld fs1, 112(sp)\n",
            "fld fs2, 120(sp)\n",
            "fld fs3, 128(sp)\n",
            "fld fs4, 136(sp)\n",
            "fld fs5, 144(sp)\n",
            "fld fs6, 152(sp)\n",
            "fld fs7, 160(sp)\n",
            "fld fs8, 168(sp)\n",
            "fld fs9, 176(sp)\n",
            "fld fs10, 184(sp)\n",
            "fld fs11, 192(sp)\n",
            "addi sp, sp, 208\n",
        )
    };
}
// ANCHOR_END: lab_1_5_swap
// ANCHOR_END: save_restore

// ANCHOR: switch
/// Resumer to fiber: stores the resumer's callee-saved state (ra holds its
/// return address from the `call`), stores its stack pointer in `*save_sp`,
/// loads the fiber's and jumps to wherever the fiber stopped. Returns `arg`
/// from the fiber's next `switch_back`.
///
/// It ends with `jr t1`, not `ret` (`jr ra`): the return-address stack
/// still holds our `call`, and the fiber's `switch_back` will consume it.
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
    // a0 = arg, a1 = load_sp, a2 = save_sp; ra = where the resumer resumes.
    core::arch::naked_asm!(swap_stacks!(), "mv t1, ra", "jr t1")
}

/// Fiber to resumer: the other half, reached only by the `tail` in
/// `switch_back`, which put the fiber's resume address in ra by hand. It
/// ends with the `ret` that matches the resumer's `call switch_in`.
#[unsafe(naked)]
unsafe extern "C" fn switch_out() {
    core::arch::naked_asm!(swap_stacks!(), "ret")
}

/// Suspends the running fiber: puts the address of the label after the
/// jump in ra as the fiber's resume address and jumps into `switch_out`
/// with `tail` (through t1, so the return-address stack is left as the
/// resumer's `call switch_in` set it). sp does not move here.
///
/// # Safety
/// Must run on a fiber's stack; `load_sp` is the resumer's context saved by
/// `switch_in`, and `save_sp` is valid for a write.
#[inline(always)]
pub unsafe fn switch_back(arg: usize, load_sp: StackPointer, save_sp: *mut StackPointer) -> usize {
    let reply: usize;
    // SAFETY: switch_out preserves s0-s11, sp and fs0-fs11 like any callee;
    // everything else, ra and t1 included, is declared clobbered. Without
    // `nostack`, sp is 16-aligned on entry, as the psABI requires of
    // switch_out's frame. `2` is a local label: safe to inline many times.
    unsafe {
        core::arch::asm!(
            "lla ra, 2f",
            "tail {switch_out}",
            "2:",
            switch_out = sym switch_out,
            inlateout("a0") arg => reply,
            in("a1") load_sp,
            in("a2") save_sp,
            out("ra") _,
            clobber_abi("C"),
        );
    }
    reply
}
// ANCHOR_END: switch

// ANCHOR: trampoline
/// Where a fresh fiber starts: `switch_in` jumps here with the entry
/// function in s1, its data in s2, the stack top in s3 and the first
/// message already in a0. sp is 16-byte aligned.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        "mv a1, s2", // entry(arg, data,
        "mv a2, s3", //       top)
        "jalr s1",
        // The entry function never returns: it switches away for good.
        "unimp",
    )
}
// ANCHOR_END: trampoline

// ANCHOR: init_stack
/// Writes a fresh context below `frame_top` that `switch_in` can load: it
/// loads zeros and the entry's arguments, then jumps into `trampoline`.
///
/// # Safety
/// `frame_top` must be 16-byte aligned with at least 208 writable bytes
/// below it that nothing else uses.
pub unsafe fn init_stack(
    frame_top: *mut u8,
    entry: EntryFn,
    data: *mut u8,
    top: *mut u8,
) -> StackPointer {
    let mut frame = [0u64; 26];
    frame[0] = trampoline as *const () as u64; // ra: where switch_in jumps
    frame[1] = 0; // s0: ends the frame-pointer chain
    frame[2] = entry as usize as u64; // s1
    frame[3] = data as u64; // s2
    frame[4] = top as u64; // s3
    // SAFETY: the caller gives us 208 aligned, writable, unused bytes below frame_top.
    unsafe {
        let sp = frame_top.sub(size_of_val(&frame));
        sp.cast::<[u64; 26]>().write(frame);
        sp
    }
}
// ANCHOR_END: init_stack

/// Reads fcsr, the floating-point control and status register (rounding
/// mode `frm` in bits 5-7, exception flags `fflags` in bits 0-4). The psABI
/// gives it thread storage duration.
pub fn read_fcsr() -> u64 {
    let value: u64;
    // SAFETY: reading fcsr has no side effects.
    unsafe {
        core::arch::asm!("frcsr {}", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Writes fcsr. Like `fesetround`, this changes the rounding of every
/// floating-point operation that follows on this thread, in any fiber.
///
/// # Safety
/// The caller must restore a value the surrounding code expects: compiled
/// code assumes round-to-nearest unless told otherwise.
pub unsafe fn write_fcsr(value: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe {
        core::arch::asm!("fscsr {}", in(reg) value, options(nomem, nostack, preserves_flags))
    };
}
