//! The context switch for x86-64, System V ABI (Linux, the BSDs, macOS).
//!
//! A switch looks like an ordinary function call to the compiler:
//! `switch_in(arg, load_sp, save_sp)` from the resumer, `switch_back(...)`
//! from the fiber. Caller-saved registers are already considered clobbered
//! by any call, so the switch only has to keep what the ABI says a *callee*
//! preserves:
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
//! Both halves push the callee-saved registers onto the *current* stack,
//! store that stack pointer through `save_sp`, load `load_sp`, pop the
//! other side's registers and continue the other side. `arg` travels in rdi
//! and comes out in rax, as the return value of the *other* side's switch.
//!
//! Why two halves and not one symmetric `switch`? The CPU predicts every
//! `ret` from a small stack of addresses pushed by `call`s. A symmetric
//! switch is `call`ed by one side and `ret`s into the other, so every
//! switch mispredicts, and the mismatch spills into the returns after it.
//! Here the resumer `call`s `switch_in`, which enters the fiber with a
//! `jmp`; the fiber leaves through `switch_out`, reached by a `jmp`, whose
//! `ret` is the one that matches the resumer's `call`.
//!
/*!
<!-- ANCHOR: suspended_frame -->
A suspended context (fiber or resumer), as `switch_in` or `switch_back`
leaves it:

```text
          +-------------------------+
  sp+56   | resume address          |  pushed by `call switch_in` or by `switch_out`
  sp+48   | rbp                     |
  sp+40   | rbx                     |
  sp+32   | r12                     |
  sp+24   | r13                     |
  sp+16   | r14                     |
  sp+8    | r15                     |
  sp+0    | MXCSR (4) | x87 CW (2)  |  <- saved stack pointer (16-aligned)
          +-------------------------+
```
<!-- ANCHOR_END: suspended_frame -->
*/
/*!
<!-- ANCHOR: fresh_frame -->
A fresh fiber's stack is built by `init_stack` so that the very same pops
and jump of `switch_in` land in `trampoline`, with the entry function, its data
and the stack top waiting in callee-saved registers:

```text
  top     +-------------------------+
  top-8   | fiber's saved sp        |  the link header (see fiber.rs)
  top-16  | resumer's saved sp      |
          +-------------------------+ <- frame top: rsp once the resume address is popped (16-aligned)
  top-24  | trampoline              |  resume address: `switch_in` jumps here
  top-32  | rbp = 0                 |  ends the frame-pointer chain
  top-40  | rbx = entry function    |
  top-48  | r12 = entry data        |
  top-56  | r13 = stack top         |
  top-64  | r14 = 0                 |
  top-72  | r15 = 0                 |
  top-80  | 0x1F80 | 0x037F         |  default MXCSR and x87 CW  <- initial sp
          +-------------------------+
```
<!-- ANCHOR_END: fresh_frame -->
*/
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
          | return to trampoline  |      +---------------------+
          | the closure's frames  |
          |   ...                 | <- rsp
          +-----------------------+
          | guard page (PROT_NONE)|
          +-----------------------+
```
<!-- ANCHOR_END: running_frame -->
*/

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
    "resume address",
];

// ANCHOR: save_restore
// ANCHOR: lab_1_1_swap
/// Pushes this side's callee-saved state and stores the stack pointer in
/// `*rdx`; then loads the stack pointer in `rsi` and pops the other side's
/// state. What is left on top of the other stack is where it resumes.
///
/// `swap_stacks!(fp_control)` also stores this side's MXCSR and x87 control
/// word in the frame's lowest word and loads the other side's;
/// `swap_stacks!(shared_fp)` leaves that word alone (the fiber shares the
/// thread's control state). Both frames have the same shape.
macro_rules! swap_stacks {
    (fp_control) => {
        swap_stacks!(
            "stmxcsr [rsp]\nfnstcw [rsp + 4]\n",
            "ldmxcsr [rsp]\nfldcw [rsp + 4]\n"
        )
    };
    (shared_fp) => {
        swap_stacks!("", "")
    };
    ($save_fp:expr, $load_fp:expr) => {
        concat!(
            // Save this side (its resume address is already on the stack).
            "push rbp\n",
            "push rbx\n",
            "push r12\n",
            "push r13\n",
            "push r14\n",
            "push r15\n",
            "sub rsp, 8\n",
            $save_fp,
            "mov [rdx], rsp\n",
            // Become the other side.
            "mov rsp, rsi\n",
            $load_fp,
            "add rsp, 8\n",
            "pop r15\n",
            "pop r14\n",
            "pop r13\n",
            "pop r12\n",
            "pop rbx\n",
            "pop rbp\n",
            // The other side's switch "returns" arg.
            "mov rax, rdi\n",
        )
    };
}
// ANCHOR_END: lab_1_1_swap
// ANCHOR_END: save_restore

// ANCHOR: switch
/// Resumer to fiber: saves the resumer's callee-saved state (its return
/// address, pushed by the `call`, stays on top of its stack), stores its
/// stack pointer in `*save_sp`, loads the fiber's and jumps to wherever the
/// fiber stopped. Returns `arg` from the fiber's next `switch_back`.
///
/// It ends with a `jmp`, not a `ret`: the CPU's return-address predictor
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
    // rdi = arg, rsi = load_sp, rdx = save_sp
    core::arch::naked_asm!(swap_stacks!(fp_control), "pop rcx", "jmp rcx")
}

/// Fiber to resumer: the other half, reached only by the `jmp` in
/// `switch_back` with the fiber's resume address in rax, which it pushes
/// where a `call` would have. It ends with the `ret` that matches the
/// resumer's `call switch_in`.
///
/// The push happens here and not in `switch_back`: code inlined into a Rust
/// function must leave rsp where that function's unwind information says
/// it is, or a profiler that unwinds from a signal at that instruction reads
/// a saved register as a return address. Naked functions have no unwind
/// information at all, so a walk that starts in here stops cleanly.
#[unsafe(naked)]
unsafe extern "C" fn switch_out() {
    core::arch::naked_asm!("push rax", swap_stacks!(fp_control), "ret")
}

/// Puts the address of the label after the `jmp` in rax as the fiber's
/// resume address and jumps into `$switch_out`. No `call` is made, so the
/// return-address predictor is left as the resumer's `call` set it, and
/// rsp does not move.
///
/// `switch_out` preserves rbx, rbp, r12-r15, rsp (and the control words)
/// like any callee; everything else is declared clobbered. Without
/// `nostack` the compiler keeps nothing in the red zone below rsp
/// (`switch_out`'s 64 bytes of saves land there) and enters the block with
/// rsp 16-aligned, so after `switch_out`'s push of rax it sees a call-like
/// alignment. `2` is a local label: safe to inline many times.
macro_rules! jump_to_switch_out {
    ($switch_out:path, $arg:expr, $load_sp:expr, $save_sp:expr) => {{
        let reply: usize;
        // ANCHOR: jump_to_switch_out
        core::arch::asm!(
            "lea rax, [rip + 2f]",
            "jmp {switch_out}",
            "2:",
            switch_out = sym $switch_out,
            in("rdi") $arg,
            in("rsi") $load_sp,
            in("rdx") $save_sp,
            out("rax") reply, // not `lateout`: written by the `lea` before the jump
            clobber_abi("C"),
        );
        // ANCHOR_END: jump_to_switch_out
        reply
    }};
}

/// Suspends the running fiber and continues its resumer, which gets `arg`
/// from its `switch_in`. Returns the `arg` of the next `switch_in`.
///
/// # Safety
/// Must run on a fiber's stack; `load_sp` is the resumer's context saved by
/// `switch_in`, and `save_sp` is valid for a write.
#[inline(always)]
pub unsafe fn switch_back(arg: usize, load_sp: StackPointer, save_sp: *mut StackPointer) -> usize {
    // SAFETY: the caller's promises; see jump_to_switch_out for the rest.
    unsafe { jump_to_switch_out!(switch_out, arg, load_sp, save_sp) }
}
// ANCHOR_END: switch

// ANCHOR: shared_fp
/// `switch_in` for a fiber that shares the thread's MXCSR and x87 control
/// word: the same frame, but the control word slot is neither written nor
/// read. Pair it only with `switch_back_shared_fp`.
///
/// # Safety
/// As for `switch_in`, with a context saved by `switch_back_shared_fp` or
/// built by `init_stack`.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_in_shared_fp(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    core::arch::naked_asm!(swap_stacks!(shared_fp), "pop rcx", "jmp rcx")
}

/// `switch_out` without the control words.
#[unsafe(naked)]
unsafe extern "C" fn switch_out_shared_fp() {
    core::arch::naked_asm!("push rax", swap_stacks!(shared_fp), "ret")
}

/// `switch_back` for a fiber resumed with `switch_in_shared_fp`.
///
/// # Safety
/// As for `switch_back`, with a resumer context saved by
/// `switch_in_shared_fp`.
#[inline(always)]
pub unsafe fn switch_back_shared_fp(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    // SAFETY: the caller's promises; see jump_to_switch_out for the rest.
    unsafe { jump_to_switch_out!(switch_out_shared_fp, arg, load_sp, save_sp) }
}
// ANCHOR_END: shared_fp

// ANCHOR: trampoline
/// Where a fresh fiber starts: `switch_in` jumps here with the entry
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
/// Writes a fresh context below `frame_top` that `switch_in` can load: it
/// pops zeros and the entry's arguments, then jumps into `trampoline`.
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
    // ANCHOR: lab_1_3_fresh_frame
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
    // ANCHOR_END: lab_1_3_fresh_frame
}
// ANCHOR_END: init_stack
