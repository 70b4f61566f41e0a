//! Sentinels: distinct, recognisable values that a test loads into every
//! callee-saved register from assembly, around a call into Rust code that
//! switches. If a switch forgot a register, the value that comes back is
//! the other side's. Shared by `registers.rs` and `signals.rs`; each uses a
//! part of it.
#![allow(dead_code)]

#[cfg(target_arch = "x86_64")]
pub mod isa {
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
pub mod isa {
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
pub mod isa {
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

pub use isa::*;

/// Every register whose value did not survive, by name, both values in hex.
pub fn lost_registers(seen: Sentinels, expected: Sentinels) -> Vec<String> {
    named(&seen)
        .into_iter()
        .zip(named(&expected))
        .filter(|((_, got), (_, want))| got != want)
        .map(|((name, got), (_, want))| format!("  {name}: was {want:#x}, came back as {got:#x}"))
        .collect()
}

/// Fails naming every register whose value did not survive, in hex.
#[track_caller]
pub fn assert_registers_survived(seen: Sentinels, expected: Sentinels, whose: &str) {
    let lost = lost_registers(seen, expected);
    assert!(
        lost.is_empty(),
        "{whose}: the switch lost {} callee-saved register(s):\n{}",
        lost.len(),
        lost.join("\n")
    );
}
