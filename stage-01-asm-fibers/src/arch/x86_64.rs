//! The context switch for x86-64, System V ABI (Linux, the BSDs, macOS).
//!
//! A switch looks like an ordinary function call to the compiler:
//! `switch_in(arg, load_sp, save_sp)` from the resumer, `switch_back(...)`
//! from the fiber. Each is a short `asm!` block inlined into its caller,
//! and what the ABI says a *callee* must preserve is kept in two ways:
//!
//! | state                         | kept by                |
//! |-------------------------------|------------------------|
//! | rbx, rbp                      | the switch: pushed on this side's stack |
//! | r12, r13, r14, r15            | the compiler: declared clobbered by the `asm!` block, so the enclosing function saves those it uses, once, in its own prologue |
//! | rsp                           | the switch: stored in `*save_sp` |
//! | MXCSR control bits (SSE)      | the switch: stored in the frame (unless the fiber shares them) |
//! | x87 control word              | the switch: stored in the frame (unless the fiber shares them) |
//! | rax, rcx, rdx, rsi, rdi, r8-r11, xmm0-15, flags | nobody: caller-saved, declared clobbered |
//! | DF (direction flag)           | clear at every call and return: nothing to do |
//!
//! Why not push r12-r15 too? It would be correct, and it was how this
//! switch started. But a push and a pop per register per switch is paid on
//! every switch, while the compiler, told that the block clobbers them,
//! saves them only if the enclosing function has something live in them,
//! and only once per call of that function, however many switches it makes.
//! rbx and rbp cannot be declared clobbered (LLVM reserves them), so the
//! switch saves those two itself.
//!
//! Both halves push rbx and rbp onto the *current* stack, store that stack
//! pointer through `save_sp`, load `load_sp`, pop the other side's rbx and
//! rbp and continue the other side. `arg` travels in rdi and comes out in
//! rax, as the value of the *other* side's switch.
//!
//! Why two halves and not one symmetric `switch`? The CPU predicts every
//! `ret` from a small stack of addresses pushed by `call`s. A symmetric
//! switch is `call`ed by one side and `ret`s into the other, so every
//! switch mispredicts, and the mismatch spills into the returns after it.
//! Here the resumer `call`s `enter_fiber`, which enters the fiber with a
//! `jmp`; the fiber leaves through `leave_fiber`, reached by a `jmp`, whose
//! `ret` is the one that matches the resumer's `call`.
//!
/*!
<!-- ANCHOR: suspended_frame -->
A suspended context (fiber or resumer), as `enter_fiber` or `leave_fiber`
leaves it:

```text
          +-------------------------+
  sp+24   | resume address          |  pushed by the `call` in switch_in, or by leave_fiber
  sp+16   | rbp                     |
  sp+8    | rbx                     |
  sp+0    | MXCSR (4) | x87 CW (2)  |  <- saved stack pointer (16-aligned)
          +-------------------------+
```

r12-r15 are not in it: the function that made the switch saved the ones
it needed in its own frame, above this one.
<!-- ANCHOR_END: suspended_frame -->
*/
/*!
<!-- ANCHOR: fresh_frame -->
A fresh fiber's stack is built by `init_stack` so that the very same pops
and jump of `enter_fiber` land in `trampoline`, with the entry function in
rbx and its two other arguments waiting on the stack just above:

```text
  top     +-------------------------+
  top-8   | fiber's saved sp        |  the link header (see fiber.rs)
  top-16  | resumer's saved sp      |
          +-------------------------+ <- frame top: rsp once trampoline has popped both (16-aligned)
  top-24  | stack top               |  popped into rdx by trampoline
  top-32  | entry data              |  popped into rsi by trampoline
  top-40  | trampoline              |  resume address: `enter_fiber` jumps here
  top-48  | rbp = 0                 |  ends the frame-pointer chain
  top-56  | rbx = entry function    |
  top-64  | 0x1F80 | 0x037F         |  default MXCSR and x87 CW  <- initial sp
          +-------------------------+
```
<!-- ANCHOR_END: fresh_frame -->
*/
/*!
<!-- ANCHOR: running_frame -->
While the fiber runs, its frames grow down from the frame top towards
the guard page, and the resumer is parked inside `enter_fiber` with its
context saved on its own stack:

```text
  fiber's stack                          resumer's stack
  top     +-----------------------+      |  resumer's frames   |
  top-8   | (stale until suspend) |      +---------------------+
  top-16  | resumer's saved sp  --+----->| context saved by    |
          +-----------------------+      | enter_fiber         |
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
pub const SAVED_CONTEXT: &[&str] = &["MXCSR | x87 control word", "rbx", "rbp", "resume address"];

// ANCHOR: save_restore
// ANCHOR: lab_1_1_swap
/// Pushes this side's rbx and rbp and stores the stack pointer in `*rdx`;
/// then loads the stack pointer in `rsi` and pops the other side's rbp and
/// rbx. What is left on top of the other stack is where it resumes.
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
            "sub rsp, 8\n",
            $save_fp,
            "mov [rdx], rsp\n",
            // Become the other side.
            "mov rsp, rsi\n",
            $load_fp,
            "add rsp, 8\n",
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
/// Resumer to fiber, the half reached by the `call` in `switch_in`: saves
/// the resumer's rbx and rbp (its return address, pushed by the `call`,
/// stays on top of its stack), stores its stack pointer in `*rdx`, loads
/// the fiber's from rsi and jumps to wherever the fiber stopped.
///
/// It ends with a `jmp`, not a `ret`: the CPU's return-address predictor
/// still holds our `call`, and the fiber's `leave_fiber` will consume it.
#[unsafe(naked)]
unsafe extern "C" fn enter_fiber() {
    // rdi = arg, rsi = load_sp, rdx = save_sp
    core::arch::naked_asm!(swap_stacks!(fp_control), "pop rcx", "jmp rcx")
}

/// Fiber to resumer: the other half, reached only by the `jmp` in
/// `switch_back` with the fiber's resume address in rax, which it pushes
/// where a `call` would have. It ends with the `ret` that matches the
/// resumer's `call enter_fiber`.
///
/// The push happens here and not in `switch_back`: code inlined into a Rust
/// function must leave rsp where that function's unwind information says
/// it is, or a profiler that unwinds from a signal at that instruction reads
/// a saved register as a return address. Naked functions have no unwind
/// information at all, so a walk that starts in here stops cleanly.
#[unsafe(naked)]
unsafe extern "C" fn leave_fiber() {
    core::arch::naked_asm!("push rax", swap_stacks!(fp_control), "ret")
}

/// Continues a suspended (or fresh) fiber, which gets `arg` from its
/// `switch_back` (or as its first message). Returns the `arg` of the
/// fiber's next `switch_back`. `own_fp_control` says whether the fiber
/// keeps its own MXCSR and x87 control word (both sides of every switch
/// of one fiber must agree).
///
/// The `call` pushes the resumer's resume address, and rsp is back where it
/// was when the block ends. Every register the switch does not keep is
/// declared clobbered: `clobber_abi("C")` for the caller-saved ones, and
/// r12-r15 by hand, so the compiler saves those of the four it uses in the
/// enclosing function's prologue. Without `nostack` the compiler keeps
/// nothing in the red zone below rsp and enters the block with rsp
/// 16-aligned, so the saved frame is 16-aligned too.
///
/// # Safety
/// `load_sp` must be a context saved by `switch_back` (or built by
/// `init_stack`) on a live stack that is not running; `save_sp` must be
/// valid for a write.
#[inline(always)]
pub unsafe fn switch_in_fp(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
    own_fp_control: bool,
) -> usize {
    // SAFETY: the caller's promises; enter_fiber keeps rbx, rbp and rsp
    // (and the control words when asked) like any callee.
    unsafe {
        if own_fp_control {
            call_enter!(enter_fiber, arg, load_sp, save_sp)
        } else {
            call_enter!(enter_fiber_shared_fp, arg, load_sp, save_sp)
        }
    }
}

/// The `asm!` block of `switch_in_fp`, for either `enter_fiber`.
macro_rules! call_enter {
    ($enter:path, $arg:expr, $load_sp:expr, $save_sp:expr) => {{
        let reply: usize;
        core::arch::asm!(
            "call {enter}",
            enter = sym $enter,
            in("rdi") $arg,
            in("rsi") $load_sp,
            in("rdx") $save_sp,
            lateout("rax") reply,
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("C"),
        );
        reply
    }};
}
use call_enter;

/// Suspends the running fiber and continues its resumer, which gets `arg`
/// from its `switch_in`. Returns the `arg` of the next `switch_in`.
///
/// It puts the address of the label after the `jmp` in rax as the fiber's
/// resume address and jumps into `leave_fiber`. No `call` is made, so the
/// return-address predictor is left as the resumer's `call` set it, and rsp
/// does not move. The clobbers are those of `switch_in_fp`, for the same
/// reasons; after `leave_fiber`'s push of rax the frame has the call-like
/// alignment. `2` is a local label: safe to inline many times.
///
/// # Safety
/// Must run on a fiber's stack; `load_sp` is the resumer's context saved by
/// `switch_in_fp` with the same `own_fp_control`, and `save_sp` is valid
/// for a write.
#[inline(always)]
pub unsafe fn switch_back_fp(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
    own_fp_control: bool,
) -> usize {
    // SAFETY: the caller's promises; see above.
    unsafe {
        if own_fp_control {
            jump_to_leave!(leave_fiber, arg, load_sp, save_sp)
        } else {
            jump_to_leave!(leave_fiber_shared_fp, arg, load_sp, save_sp)
        }
    }
}

/// The `asm!` block of `switch_back_fp`, for either `leave_fiber`.
macro_rules! jump_to_leave {
    ($leave:path, $arg:expr, $load_sp:expr, $save_sp:expr) => {{
        let reply: usize;
        // ANCHOR: jump_to_leave_fiber
        core::arch::asm!(
            "lea rax, [rip + 2f]",
            "jmp {leave}",
            "2:",
            leave = sym $leave,
            in("rdi") $arg,
            in("rsi") $load_sp,
            in("rdx") $save_sp,
            out("rax") reply, // not `lateout`: written by the `lea` before the jump
            lateout("r12") _, lateout("r13") _, lateout("r14") _, lateout("r15") _,
            clobber_abi("C"),
        );
        // ANCHOR_END: jump_to_leave_fiber
        reply
    }};
}
use jump_to_leave;
// ANCHOR_END: switch

// ANCHOR: shared_fp
/// `enter_fiber` for a fiber that shares the thread's MXCSR and x87 control
/// word: the same frame, but the control-word slot is neither written nor
/// read.
#[unsafe(naked)]
unsafe extern "C" fn enter_fiber_shared_fp() {
    core::arch::naked_asm!(swap_stacks!(shared_fp), "pop rcx", "jmp rcx")
}

/// `leave_fiber` without the control words.
#[unsafe(naked)]
unsafe extern "C" fn leave_fiber_shared_fp() {
    core::arch::naked_asm!("push rax", swap_stacks!(shared_fp), "ret")
}

// ANCHOR_END: shared_fp

/// `switch_in_fp` for a fiber with its own control words, the default.
///
/// # Safety
/// As for `switch_in_fp`.
#[inline(always)]
pub unsafe fn switch_in(arg: usize, load_sp: StackPointer, save_sp: *mut StackPointer) -> usize {
    // SAFETY: the caller's promises.
    unsafe { switch_in_fp(arg, load_sp, save_sp, true) }
}

/// `switch_back_fp` for a fiber with its own control words.
///
/// # Safety
/// As for `switch_back_fp`.
#[inline(always)]
pub unsafe fn switch_back(arg: usize, load_sp: StackPointer, save_sp: *mut StackPointer) -> usize {
    // SAFETY: the caller's promises.
    unsafe { switch_back_fp(arg, load_sp, save_sp, true) }
}

/// `switch_in_fp` for a fiber that shares the thread's MXCSR and x87
/// control word: the control-word slot is neither written nor read.
///
/// # Safety
/// As for `switch_in_fp`.
#[inline(always)]
pub unsafe fn switch_in_shared_fp(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    // SAFETY: the caller's promises.
    unsafe { switch_in_fp(arg, load_sp, save_sp, false) }
}

/// `switch_back_fp` for a fiber that shares the thread's control words.
///
/// # Safety
/// As for `switch_back_fp`.
#[inline(always)]
pub unsafe fn switch_back_shared_fp(
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    // SAFETY: the caller's promises.
    unsafe { switch_back_fp(arg, load_sp, save_sp, false) }
}

// ANCHOR: trampoline
/// Where a fresh fiber starts: `enter_fiber` jumps here with the entry
/// function in rbx, the first message in rax, and the entry's data and the
/// stack top in the two words on top of the stack. Once both are popped the
/// stack pointer is 16-byte aligned, so the `call` leaves the entry function
/// exactly the alignment the ABI promises.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        "mov rdi, rax", // entry(arg,
        "pop rsi",      //       data,
        "pop rdx",      //       top)
        "call rbx",
        // The entry function never returns: it switches away for good.
        "ud2",
    )
}
// ANCHOR_END: trampoline

// ANCHOR: init_stack
/// Writes a fresh context below `frame_top` that `enter_fiber` can load: it
/// pops the control words, rbx = entry and rbp = 0, then jumps into
/// `trampoline`, which pops the entry's data and the stack top.
///
/// # Safety
/// `frame_top` must be 16-byte aligned with at least 48 writable bytes below
/// it that nothing else uses.
pub unsafe fn init_stack(
    frame_top: *mut u8,
    entry: EntryFn,
    data: *mut u8,
    top: *mut u8,
) -> StackPointer {
    // ANCHOR: lab_1_3_fresh_frame
    let control = u64::from(DEFAULT_MXCSR) | (u64::from(DEFAULT_X87_CONTROL_WORD) << 32);
    let frame: [u64; 6] = [
        control,
        entry as usize as u64,          // rbx
        0,                              // rbp
        trampoline as *const () as u64, // resume address
        data as u64,                    // popped into rsi
        top as u64,                     // popped into rdx
    ];
    // SAFETY: the caller gives us 48 aligned, writable, unused bytes below frame_top.
    unsafe {
        let sp = frame_top.sub(size_of_val(&frame));
        sp.cast::<[u64; 6]>().write(frame);
        sp
    }
    // ANCHOR_END: lab_1_3_fresh_frame
}
// ANCHOR_END: init_stack
