//! The switch keeps exactly what the ABI says a callee must keep.
//!
//! Each side of a switch loads *sentinels* (distinct, recognisable values)
//! into every callee-saved register from assembly, then calls into Rust
//! code that performs a real switch. The other side has loaded sentinels of
//! its own into the same registers, so if the switch forgot one register,
//! the value that comes back is the other side's, not ours.

use std::ffi::c_void;

use fibers::{Fiber, FiberResult, FpControl, PerFiberFp, SharedFp, Stack, Suspender};

#[cfg(target_arch = "x86_64")]
mod isa {
    use std::ffi::c_void;

    /// rbx, rbp, r12-r15, then the SSE and x87 control state.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Sentinels {
        pub general: [u64; 6],
        pub mxcsr: u32,
        pub x87_control: u16,
        pub padding: u16,
    }

    /// Control bits only: the low six MXCSR bits are sticky status flags
    /// that any floating-point instruction may set.
    const MXCSR_CONTROL_BITS: u32 = 0xFFC0;

    pub fn sentinels(seed: u64, rounding: u32) -> Sentinels {
        let mut s = Sentinels::default();
        for (i, register) in s.general.iter_mut().enumerate() {
            *register = 0x5E57_0000_0000_0000 | (seed << 16) | i as u64;
        }
        // All exceptions stay masked (0x1F80); vary rounding and flush-to-zero.
        s.mxcsr = 0x1F80 | (rounding << 13) | if seed.is_multiple_of(2) { 0x8000 } else { 0 };
        // All exceptions masked (0x7F); vary rounding (bits 10-11) and precision (8-9).
        s.x87_control = 0x007F
            | ((rounding as u16) << 10)
            | if seed.is_multiple_of(2) {
                0x0200
            } else {
                0x0300
            };
        s
    }

    pub fn comparable(mut s: Sentinels) -> Sentinels {
        s.mxcsr &= MXCSR_CONTROL_BITS;
        s
    }

    /// Every register by name with its value.
    pub fn named(s: &Sentinels) -> Vec<(&'static str, u64)> {
        let names = ["rbx", "rbp", "r12", "r13", "r14", "r15"];
        let mut all: Vec<_> = names.into_iter().zip(s.general).collect();
        all.push(("MXCSR (control bits)", u64::from(s.mxcsr)));
        all.push(("x87 control word", u64::from(s.x87_control)));
        all
    }

    /// Leaves out the control words, which a fiber with
    /// `SharedFp` shares with its resumer.
    pub fn without_fp_control(mut s: Sentinels) -> Sentinels {
        s.mxcsr = 0;
        s.x87_control = 0;
        s
    }

    /// Saves the caller's callee-saved state, loads `values` into it, calls
    /// `f(ctx)`, stores what the registers hold afterwards in `out`, and
    /// restores the caller's state.
    #[unsafe(naked)]
    pub unsafe extern "C" fn with_sentinels(
        values: *const Sentinels,
        out: *mut Sentinels,
        f: extern "C" fn(*mut c_void),
        ctx: *mut c_void,
    ) {
        core::arch::naked_asm!(
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "sub rsp, 24", // [rsp]: our MXCSR and CW, [rsp+8]: out; rsp is now 16-aligned
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "mov [rsp + 8], rsi",
            "ldmxcsr [rdi + 48]",
            "fldcw [rdi + 52]",
            "mov rbx, [rdi]",
            "mov rbp, [rdi + 8]",
            "mov r12, [rdi + 16]",
            "mov r13, [rdi + 24]",
            "mov r14, [rdi + 32]",
            "mov r15, [rdi + 40]",
            "mov rdi, rcx",
            "call rdx",
            "mov rax, [rsp + 8]",
            "mov [rax], rbx",
            "mov [rax + 8], rbp",
            "mov [rax + 16], r12",
            "mov [rax + 24], r13",
            "mov [rax + 32], r14",
            "mov [rax + 40], r15",
            "stmxcsr [rax + 48]",
            "fnstcw [rax + 52]",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 24",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "ret",
        )
    }

    /// The caller's stack pointer just before its `call`, which the ABI
    /// says is a multiple of 16.
    #[unsafe(naked)]
    pub extern "C" fn stack_pointer_before_call() -> usize {
        core::arch::naked_asm!("lea rax, [rsp + 8]", "ret")
    }
}

#[cfg(target_arch = "aarch64")]
mod isa {
    use std::ffi::c_void;

    /// x19-x29, then d8-d15.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Sentinels {
        pub general: [u64; 11],
        pub float: [u64; 8],
    }

    pub fn sentinels(seed: u64, _rounding: u32) -> Sentinels {
        let mut s = Sentinels::default();
        for (i, register) in s.general.iter_mut().enumerate() {
            *register = 0x5E57_0000_0000_0000 | (seed << 16) | i as u64;
        }
        for (i, register) in s.float.iter_mut().enumerate() {
            *register = f64::to_bits(seed as f64 * 1000.0 + i as f64 + 0.25);
        }
        s
    }

    pub fn comparable(s: Sentinels) -> Sentinels {
        s
    }

    /// Every register by name with its value.
    pub fn named(s: &Sentinels) -> Vec<(&'static str, u64)> {
        let general = [
            "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29",
        ];
        let float = ["d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15"];
        let mut all: Vec<_> = general.into_iter().zip(s.general).collect();
        all.extend(float.into_iter().zip(s.float));
        all
    }

    /// FPCR is not among the sentinels: nothing to leave out.
    pub fn without_fp_control(s: Sentinels) -> Sentinels {
        s
    }

    /// Saves the caller's callee-saved state, loads `values` into it, calls
    /// `f(ctx)`, stores what the registers hold afterwards in `out`, and
    /// restores the caller's state.
    #[unsafe(naked)]
    pub unsafe extern "C" fn with_sentinels(
        values: *const Sentinels,
        out: *mut Sentinels,
        f: extern "C" fn(*mut c_void),
        ctx: *mut c_void,
    ) {
        core::arch::naked_asm!(
            "stp x29, x30, [sp, #-176]!",
            "stp x19, x20, [sp, #16]",
            "stp x21, x22, [sp, #32]",
            "stp x23, x24, [sp, #48]",
            "stp x25, x26, [sp, #64]",
            "stp x27, x28, [sp, #80]",
            "stp d8, d9, [sp, #96]",
            "stp d10, d11, [sp, #112]",
            "stp d12, d13, [sp, #128]",
            "stp d14, d15, [sp, #144]",
            "str x1, [sp, #160]",
            "ldp x19, x20, [x0]",
            "ldp x21, x22, [x0, #16]",
            "ldp x23, x24, [x0, #32]",
            "ldp x25, x26, [x0, #48]",
            "ldp x27, x28, [x0, #64]",
            "ldr x29, [x0, #80]",
            "ldp d8, d9, [x0, #88]",
            "ldp d10, d11, [x0, #104]",
            "ldp d12, d13, [x0, #120]",
            "ldp d14, d15, [x0, #136]",
            "mov x0, x3",
            "blr x2",
            "ldr x1, [sp, #160]",
            "stp x19, x20, [x1]",
            "stp x21, x22, [x1, #16]",
            "stp x23, x24, [x1, #32]",
            "stp x25, x26, [x1, #48]",
            "stp x27, x28, [x1, #64]",
            "str x29, [x1, #80]",
            "stp d8, d9, [x1, #88]",
            "stp d10, d11, [x1, #104]",
            "stp d12, d13, [x1, #120]",
            "stp d14, d15, [x1, #136]",
            "ldp x19, x20, [sp, #16]",
            "ldp x21, x22, [sp, #32]",
            "ldp x23, x24, [sp, #48]",
            "ldp x25, x26, [sp, #64]",
            "ldp x27, x28, [sp, #80]",
            "ldp d8, d9, [sp, #96]",
            "ldp d10, d11, [sp, #112]",
            "ldp d12, d13, [sp, #128]",
            "ldp d14, d15, [sp, #144]",
            "ldp x29, x30, [sp], #176",
            "ret",
        )
    }

    /// The stack pointer at this call, which AAPCS64 keeps 16-aligned.
    #[unsafe(naked)]
    pub extern "C" fn stack_pointer_before_call() -> usize {
        core::arch::naked_asm!("mov x0, sp", "ret")
    }
}

#[cfg(target_arch = "riscv64")]
mod isa {
    use std::ffi::c_void;

    /// s0-s11, then fs0-fs11.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Sentinels {
        pub general: [u64; 12],
        pub float: [u64; 12],
    }

    pub fn sentinels(seed: u64, _rounding: u32) -> Sentinels {
        let mut s = Sentinels::default();
        for (i, register) in s.general.iter_mut().enumerate() {
            *register = 0x5E57_0000_0000_0000 | (seed << 16) | i as u64;
        }
        for (i, register) in s.float.iter_mut().enumerate() {
            *register = f64::to_bits(seed as f64 * 1000.0 + i as f64 + 0.25);
        }
        s
    }

    pub fn comparable(s: Sentinels) -> Sentinels {
        s
    }

    /// Every register by name with its value.
    pub fn named(s: &Sentinels) -> Vec<(&'static str, u64)> {
        let general = [
            "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
        ];
        let float = [
            "fs0", "fs1", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
        ];
        let mut all: Vec<_> = general.into_iter().zip(s.general).collect();
        all.extend(float.into_iter().zip(s.float));
        all
    }

    /// fcsr is not among the sentinels: nothing to leave out.
    pub fn without_fp_control(s: Sentinels) -> Sentinels {
        s
    }

    /// Saves the caller's callee-saved state, loads `values` into it, calls
    /// `f(ctx)`, stores what the registers hold afterwards in `out`, and
    /// restores the caller's state.
    #[unsafe(naked)]
    pub unsafe extern "C" fn with_sentinels(
        values: *const Sentinels,
        out: *mut Sentinels,
        f: extern "C" fn(*mut c_void),
        ctx: *mut c_void,
    ) {
        core::arch::naked_asm!(
            "addi sp, sp, -208",
            "sd ra, 0(sp)",
            "sd s0, 8(sp)",
            "sd s1, 16(sp)",
            "sd s2, 24(sp)",
            "sd s3, 32(sp)",
            "sd s4, 40(sp)",
            "sd s5, 48(sp)",
            "sd s6, 56(sp)",
            "sd s7, 64(sp)",
            "sd s8, 72(sp)",
            "sd s9, 80(sp)",
            "sd s10, 88(sp)",
            "sd s11, 96(sp)",
            "fsd fs0, 104(sp)",
            "fsd fs1, 112(sp)",
            "fsd fs2, 120(sp)",
            "fsd fs3, 128(sp)",
            "fsd fs4, 136(sp)",
            "fsd fs5, 144(sp)",
            "fsd fs6, 152(sp)",
            "fsd fs7, 160(sp)",
            "fsd fs8, 168(sp)",
            "fsd fs9, 176(sp)",
            "fsd fs10, 184(sp)",
            "fsd fs11, 192(sp)",
            "sd a1, 200(sp)",
            "ld s0, 0(a0)",
            "ld s1, 8(a0)",
            "ld s2, 16(a0)",
            "ld s3, 24(a0)",
            "ld s4, 32(a0)",
            "ld s5, 40(a0)",
            "ld s6, 48(a0)",
            "ld s7, 56(a0)",
            "ld s8, 64(a0)",
            "ld s9, 72(a0)",
            "ld s10, 80(a0)",
            "ld s11, 88(a0)",
            "fld fs0, 96(a0)",
            "fld fs1, 104(a0)",
            "fld fs2, 112(a0)",
            "fld fs3, 120(a0)",
            "fld fs4, 128(a0)",
            "fld fs5, 136(a0)",
            "fld fs6, 144(a0)",
            "fld fs7, 152(a0)",
            "fld fs8, 160(a0)",
            "fld fs9, 168(a0)",
            "fld fs10, 176(a0)",
            "fld fs11, 184(a0)",
            "mv a0, a3",
            "jalr a2",
            "ld a1, 200(sp)",
            "sd s0, 0(a1)",
            "sd s1, 8(a1)",
            "sd s2, 16(a1)",
            "sd s3, 24(a1)",
            "sd s4, 32(a1)",
            "sd s5, 40(a1)",
            "sd s6, 48(a1)",
            "sd s7, 56(a1)",
            "sd s8, 64(a1)",
            "sd s9, 72(a1)",
            "sd s10, 80(a1)",
            "sd s11, 88(a1)",
            "fsd fs0, 96(a1)",
            "fsd fs1, 104(a1)",
            "fsd fs2, 112(a1)",
            "fsd fs3, 120(a1)",
            "fsd fs4, 128(a1)",
            "fsd fs5, 136(a1)",
            "fsd fs6, 144(a1)",
            "fsd fs7, 152(a1)",
            "fsd fs8, 160(a1)",
            "fsd fs9, 168(a1)",
            "fsd fs10, 176(a1)",
            "fsd fs11, 184(a1)",
            "ld ra, 0(sp)",
            "ld s0, 8(sp)",
            "ld s1, 16(sp)",
            "ld s2, 24(sp)",
            "ld s3, 32(sp)",
            "ld s4, 40(sp)",
            "ld s5, 48(sp)",
            "ld s6, 56(sp)",
            "ld s7, 64(sp)",
            "ld s8, 72(sp)",
            "ld s9, 80(sp)",
            "ld s10, 88(sp)",
            "ld s11, 96(sp)",
            "fld fs0, 104(sp)",
            "fld fs1, 112(sp)",
            "fld fs2, 120(sp)",
            "fld fs3, 128(sp)",
            "fld fs4, 136(sp)",
            "fld fs5, 144(sp)",
            "fld fs6, 152(sp)",
            "fld fs7, 160(sp)",
            "fld fs8, 168(sp)",
            "fld fs9, 176(sp)",
            "fld fs10, 184(sp)",
            "fld fs11, 192(sp)",
            "addi sp, sp, 208",
            "ret",
        )
    }

    /// The stack pointer at this call, which the psABI keeps 16-aligned.
    #[unsafe(naked)]
    pub extern "C" fn stack_pointer_before_call() -> usize {
        core::arch::naked_asm!("mv a0, sp", "ret")
    }
}

use isa::{Sentinels, comparable, named, sentinels, with_sentinels, without_fp_control};

/// Fails naming every register whose value did not survive, in hex.
#[track_caller]
fn assert_registers_survived(seen: Sentinels, expected: Sentinels, whose: &str) {
    let lost: Vec<String> = named(&seen)
        .into_iter()
        .zip(named(&expected))
        .filter(|((_, got), (_, want))| got != want)
        .map(|((name, got), (_, want))| format!("  {name}: was {want:#x}, came back as {got:#x}"))
        .collect();
    assert!(
        lost.is_empty(),
        "{whose}: the switch lost {} callee-saved register(s):\n{}",
        lost.len(),
        lost.join("\n")
    );
}

type SentinelFiber<Fp> = Fiber<(), (), Sentinels, Fp>;

extern "C" fn suspend_once<Fp: FpControl>(suspender: *mut c_void) {
    // SAFETY: the fiber below passes a pointer to its own live Suspender.
    let suspender = unsafe { &*(suspender as *const Suspender<(), (), Fp>) };
    suspender.suspend(());
}

struct Resumer<Fp: FpControl> {
    fiber: SentinelFiber<Fp>,
    last: Option<FiberResult<(), Sentinels>>,
}

extern "C" fn resume_once<Fp: FpControl>(resumer: *mut c_void) {
    // SAFETY: the test passes a pointer to its own live Resumer.
    let resumer = unsafe { &mut *(resumer as *mut Resumer<Fp>) };
    resumer.last = Some(resumer.fiber.resume(()));
}

/// Sets sentinels from assembly on the resumer's side, resumes a fiber that
/// sets its own sentinels and suspends, and returns what each side finds
/// in its registers when it gets control back.
fn round_trip<Fp: FpControl>(
    resumer_values: [Sentinels; 2],
    fiber_values: Sentinels,
) -> ([Sentinels; 2], Sentinels) {
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    let fiber = SentinelFiber::<Fp>::with_fp_control(
        stack,
        move |suspender: &Suspender<(), (), Fp>, ()| {
            let mut seen = Sentinels::default();
            // SAFETY: both pointers are to live locals; suspend_once gets our Suspender.
            unsafe {
                with_sentinels(
                    &fiber_values,
                    &mut seen,
                    suspend_once::<Fp>,
                    suspender as *const _ as *mut c_void,
                );
            }
            seen
        },
    );
    let mut resumer = Resumer { fiber, last: None };
    let mut seen = [Sentinels::default(); 2];
    for (values, seen) in resumer_values.iter().zip(&mut seen) {
        // SAFETY: all pointers are to live locals.
        unsafe {
            with_sentinels(
                values,
                seen,
                resume_once::<Fp>,
                &mut resumer as *mut Resumer<Fp> as *mut c_void,
            )
        };
    }
    let Some(FiberResult::Return(fiber_seen)) = resumer.last else {
        panic!("the fiber should have finished after two resumes")
    };
    (seen, fiber_seen)
}

#[test]
fn callee_saved_registers_survive_a_round_trip_into_a_fiber_that_overwrites_them() {
    let resumer_values = [sentinels(0xA1, 3), sentinels(0xA2, 1)];
    let fiber_values = sentinels(0xF0, 2);
    let (resumer_seen, fiber_seen) = round_trip::<PerFiberFp>(resumer_values, fiber_values);
    assert_registers_survived(
        comparable(resumer_seen[0]),
        comparable(resumer_values[0]),
        "resumer, after the fiber suspended",
    );
    assert_registers_survived(
        comparable(resumer_seen[1]),
        comparable(resumer_values[1]),
        "resumer, after the fiber returned",
    );
    assert_registers_survived(
        comparable(fiber_seen),
        comparable(fiber_values),
        "fiber, after being resumed",
    );
}

#[test]
fn callee_saved_registers_survive_a_round_trip_into_a_fiber_that_shares_fp_control() {
    let resumer_values = [sentinels(0xB1, 3), sentinels(0xB2, 1)];
    let fiber_values = sentinels(0xE0, 2);
    let (resumer_seen, fiber_seen) = round_trip::<SharedFp>(resumer_values, fiber_values);
    for (i, (seen, set)) in resumer_seen.iter().zip(&resumer_values).enumerate() {
        assert_registers_survived(
            without_fp_control(*seen),
            without_fp_control(*set),
            &format!("resumer, after switch {i} back from the fiber"),
        );
    }
    assert_registers_survived(
        without_fp_control(fiber_seen),
        without_fp_control(fiber_values),
        "fiber, after being resumed",
    );
}

#[test]
fn the_stack_pointer_is_aligned_at_a_fibers_entry_and_in_the_functions_it_calls() {
    #[inline(never)]
    fn nested(depth: u32, out: &mut Vec<usize>) {
        out.push(isa::stack_pointer_before_call());
        if depth > 0 {
            nested(depth - 1, out);
        }
    }
    let mut fiber = Fiber::new(|_: &Suspender<(), ()>, ()| {
        let mut seen = vec![isa::stack_pointer_before_call()];
        nested(5, &mut seen);
        seen
    })
    .unwrap();
    let FiberResult::Return(seen) = fiber.resume(()) else {
        panic!("fiber should return")
    };
    assert_eq!(seen.len(), 7);
    for sp in seen {
        assert_eq!(sp % 16, 0, "stack pointer {sp:#x} is not 16-byte aligned");
    }
}

#[cfg(target_arch = "x86_64")]
mod floating_point_control {
    use super::*;

    fn read_mxcsr() -> u32 {
        let mut value = 0u32;
        // SAFETY: stmxcsr only writes the 4 bytes we point it at.
        unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack)) };
        value
    }

    fn write_mxcsr(value: u32) {
        // SAFETY: ldmxcsr reads 4 bytes; callers only change rounding and
        // keep every exception masked.
        unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack)) };
    }

    const ROUND_TOWARD_ZERO: u32 = 0x6000;

    #[test]
    fn each_fiber_has_its_own_sse_rounding_mode() {
        let before = read_mxcsr();
        let mut fiber = Fiber::new(|suspender: &Suspender<(), u32>, ()| {
            write_mxcsr(read_mxcsr() | ROUND_TOWARD_ZERO);
            suspender.suspend(read_mxcsr());
            read_mxcsr()
        })
        .unwrap();
        let FiberResult::Yield(inside) = fiber.resume(()) else {
            panic!("fiber should suspend")
        };
        assert_eq!(
            inside & ROUND_TOWARD_ZERO,
            ROUND_TOWARD_ZERO,
            "the fiber changed its own mode"
        );
        let after = read_mxcsr();
        assert!(
            after & 0xFFC0 == before & 0xFFC0,
            "the resumer's MXCSR control bits were {:#06x} before the fiber ran and {:#06x} \
             after it suspended: the fiber's rounding mode leaked out through the switch",
            before & 0xFFC0,
            after & 0xFFC0
        );
        let FiberResult::Return(after_resume) = fiber.resume(()) else {
            panic!("fiber should return")
        };
        assert_eq!(
            after_resume & ROUND_TOWARD_ZERO,
            ROUND_TOWARD_ZERO,
            "the fiber's mode came back with it"
        );
    }

    #[test]
    fn a_fiber_that_shares_fp_control_changes_the_threads_rounding_mode() {
        let before = read_mxcsr();
        let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
        let mut fiber =
            Fiber::with_shared_fp(stack, |suspender: &Suspender<(), u32, SharedFp>, ()| {
                let inherited = read_mxcsr();
                write_mxcsr(inherited | ROUND_TOWARD_ZERO);
                suspender.suspend(inherited);
            });
        let FiberResult::Yield(inherited) = fiber.resume(()) else {
            panic!("fiber should suspend")
        };
        let after = read_mxcsr();
        write_mxcsr(before);
        assert_eq!(
            inherited & 0xFFC0,
            before & 0xFFC0,
            "the fiber starts with the thread's MXCSR"
        );
        assert_eq!(
            after & ROUND_TOWARD_ZERO,
            ROUND_TOWARD_ZERO,
            "the fiber's change is the thread's: MXCSR {after:#06x} after the switch back"
        );
    }

    #[test]
    fn a_fresh_fiber_starts_with_the_default_control_state() {
        write_mxcsr(read_mxcsr() | ROUND_TOWARD_ZERO);
        let mut fiber = Fiber::new(|_: &Suspender<(), ()>, ()| read_mxcsr()).unwrap();
        let inside = fiber.resume(());
        write_mxcsr(read_mxcsr() & !ROUND_TOWARD_ZERO);
        let FiberResult::Return(inside) = inside else {
            panic!("fiber should return")
        };
        assert!(
            inside & 0xFFC0 == fibers::arch::DEFAULT_MXCSR,
            "a fresh fiber's MXCSR control bits are {:#06x}, expected the default {:#06x}: \
             did init_stack write the default control words, and does the switch load them?",
            inside & 0xFFC0,
            fibers::arch::DEFAULT_MXCSR
        );
    }
}

#[cfg(target_arch = "aarch64")]
mod floating_point_control {
    use super::*;
    use fibers::arch::{read_fpcr, write_fpcr};

    /// FPCR.RMode (bits 22-23) = 0b11: round toward zero.
    const ROUND_TOWARD_ZERO: u64 = 0b11 << 22;

    #[test]
    fn fpcr_is_thread_state_that_a_fiber_shares_with_its_resumer() {
        let before = read_fpcr();
        let mut fiber = Fiber::new(|suspender: &Suspender<(), ()>, ()| {
            // SAFETY: the test restores the original FPCR below.
            unsafe { write_fpcr(read_fpcr() | ROUND_TOWARD_ZERO) };
            suspender.suspend(());
            read_fpcr()
        })
        .unwrap();
        assert_eq!(fiber.resume(()), FiberResult::Yield(()));
        let seen_by_resumer = read_fpcr();
        // SAFETY: back to the value compiled code expects.
        unsafe { write_fpcr(before) };
        assert_eq!(
            seen_by_resumer & ROUND_TOWARD_ZERO,
            ROUND_TOWARD_ZERO,
            "FPCR is global: a switch does not save or restore it"
        );
        let FiberResult::Return(seen_by_fiber) = fiber.resume(()) else {
            panic!("fiber should return")
        };
        assert_eq!(
            seen_by_fiber, before,
            "the fiber sees the thread's FPCR too"
        );
    }

    /// The rule after exercise 3 of chapter 1 (FPCR carried per fiber).
    #[test]
    #[ignore = "exercise 3: carry FPCR per fiber"]
    fn exercise_3_each_fiber_has_its_own_fpcr() {
        let before = read_fpcr();
        let mut fiber = Fiber::new(|suspender: &Suspender<(), u64>, ()| {
            let fresh = read_fpcr();
            // SAFETY: after exercise 3 this stays inside the fiber.
            unsafe { write_fpcr(fresh | ROUND_TOWARD_ZERO) };
            suspender.suspend(fresh);
            read_fpcr()
        })
        .unwrap();
        let FiberResult::Yield(fresh) = fiber.resume(()) else {
            panic!("fiber should suspend")
        };
        let seen_by_resumer = read_fpcr();
        // SAFETY: back to the value compiled code expects, whatever happened.
        unsafe { write_fpcr(before) };
        assert_eq!(
            fresh, 0,
            "a fresh fiber starts with FPCR = 0, got {fresh:#x}"
        );
        assert_eq!(
            seen_by_resumer, before,
            "the fiber's rounding mode stays in the fiber: the resumer's FPCR was {before:#x}, \
             is {seen_by_resumer:#x}"
        );
        let FiberResult::Return(seen_by_fiber) = fiber.resume(()) else {
            panic!("fiber should return")
        };
        assert_eq!(
            seen_by_fiber & ROUND_TOWARD_ZERO,
            ROUND_TOWARD_ZERO,
            "the fiber's FPCR came back with it: {seen_by_fiber:#x}"
        );
    }
}

#[cfg(target_arch = "riscv64")]
mod floating_point_control {
    use super::*;
    use fibers::arch::{read_fcsr, write_fcsr};

    /// fcsr.frm (bits 5-7) = 0b001: round toward zero.
    const ROUND_TOWARD_ZERO: u64 = 0b001 << 5;
    const FRM: u64 = 0b111 << 5;

    #[test]
    fn fcsr_is_thread_state_that_a_fiber_shares_with_its_resumer() {
        let before = read_fcsr();
        let mut fiber = Fiber::new(|suspender: &Suspender<(), ()>, ()| {
            // SAFETY: the test restores the original fcsr below.
            unsafe { write_fcsr((read_fcsr() & !FRM) | ROUND_TOWARD_ZERO) };
            suspender.suspend(());
            read_fcsr()
        })
        .unwrap();
        assert_eq!(fiber.resume(()), FiberResult::Yield(()));
        let seen_by_resumer = read_fcsr();
        // SAFETY: back to the value compiled code expects.
        unsafe { write_fcsr(before) };
        assert_eq!(
            seen_by_resumer & FRM,
            ROUND_TOWARD_ZERO,
            "fcsr is thread state: a switch does not save or restore it"
        );
        let FiberResult::Return(seen_by_fiber) = fiber.resume(()) else {
            panic!("fiber should return")
        };
        assert_eq!(
            seen_by_fiber & FRM,
            before & FRM,
            "the fiber sees the thread's fcsr too"
        );
    }
}
