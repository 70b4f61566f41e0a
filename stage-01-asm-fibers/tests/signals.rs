//! A signal may arrive at any instruction, in the middle of a switch too,
//! and its handler runs on whatever stack is current: the fiber's, while a
//! fiber runs. The kernel saves every register before the handler and
//! restores them all at `sigreturn`, so the handler may use the stack below
//! the stack pointer, scribble on every caller-saved register, change the
//! floating-point rounding mode and walk the stack, and the interrupted
//! switch must not notice.
//!
//! A child process ping-pongs between two fibers, one of each
//! floating-point kind, while a helper thread sends it SIGURG as fast as
//! the handler lets it. Every side of every switch sets sentinels in its
//! callee-saved registers (from assembly, `common/sentinels.rs`) and its
//! own rounding mode, and checks both after the switch back; the messages
//! are numbered and must arrive once each, in order. The handler (no
//! `SA_ONSTACK`) changes the floating-point control state without putting
//! it back, overwrites the caller-saved integer and vector registers, and
//! on x86-64 and AArch64 walks the stack with `_Unwind_Backtrace`. Which
//! addresses of the switch's naked functions the signals interrupted is
//! counted from the symbol table, so the test cannot pass without signals
//! landing inside switches.
//!
//! Under qemu-user (AArch64, RISC-V) a signal is delivered only between
//! translated blocks, so the child runs with `QEMU_SINGLESTEP`: one
//! instruction per block, and a signal can land on any of them.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common {
    pub mod report;
    pub mod sentinels;
    #[cfg_attr(target_arch = "riscv64", allow(dead_code))]
    pub mod walk;
}

use common::report::{self, report_of};
use common::sentinels::{Sentinels, lost_registers, sentinels, with_sentinels, without_fp_control};
use common::walk::interrupted_pc;
use fibers::{Fiber, FiberResult, FpControl, PerFiberFp, SharedFp, Stack, Suspender};

const CHILD_ROLE: &str = "STAGE01_SIGNALS_CHILD";
const TEST_NAME: &str =
    "a_signal_at_any_instruction_of_a_switch_changes_nothing_the_fibers_can_see";

/// Signals that must land inside the switch's naked functions (fewer
/// under qemu, where delivering one in single-step mode is slow).
const SIGNALS_IN_SWITCHES: usize = if test_support::EMULATED { 150 } else { 2000 };
/// Distinct addresses of the switch code they must land on, over all its
/// naked functions (54 instructions on x86-64, 48 on AArch64, more on
/// RISC-V): enough to show the signals are spread over the switch.
const SWITCH_ADDRESSES: usize = 20;
/// Round trips (one with each fiber) the child makes at least.
const MIN_ROUND_TRIPS: u64 = if test_support::EMULATED {
    1_000
} else {
    50_000
};
/// How long the child may take to land its signals before it gives up:
/// generous, the test does not measure speed.
const BUDGET: Duration = Duration::from_secs(if test_support::EMULATED { 240 } else { 90 });

/// The floating-point control state each side sets for itself, and how to
/// read it back. On x86-64 a `PerFiberFp` fiber keeps its own across
/// switches; everywhere else the state is the thread's, so after a switch
/// a side finds what the other side last set.
mod fp {
    use fibers::FpControl;

    #[derive(Clone, Copy)]
    pub enum Rounding {
        Nearest,
        Down,
        TowardZero,
    }

    /// The state a side finds after a switch back, given what it set
    /// before the switch and what the other side set before its own.
    pub fn after_switch<Fp: FpControl>(mine: u64, theirs: u64) -> u64 {
        if cfg!(target_arch = "x86_64") && Fp::PER_FIBER {
            mine
        } else {
            theirs
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod isa {
        use super::Rounding;

        /// MXCSR's control bits (its low six bits are sticky status flags),
        /// and the x87 control word above them.
        pub fn get() -> u64 {
            let mut mxcsr = 0u32;
            let mut x87 = 0u16;
            // SAFETY: both store only into the locals they are given.
            unsafe {
                core::arch::asm!(
                    "stmxcsr [{m}]",
                    "fnstcw [{c}]",
                    m = in(reg) &mut mxcsr,
                    c = in(reg) &mut x87,
                    options(nostack),
                );
            }
            u64::from(mxcsr & 0xFFC0) | (u64::from(x87) << 32)
        }

        pub fn set(rounding: Rounding) -> u64 {
            let bits: u32 = match rounding {
                Rounding::Nearest => 0b00,
                Rounding::Down => 0b01,
                Rounding::TowardZero => 0b11,
            };
            let now = get();
            let mxcsr = (now as u32 & 0xFFC0 & !(0b11 << 13)) | 0x1F80 | (bits << 13);
            let x87 = ((now >> 32) as u16 & !(0b11 << 10)) | ((bits as u16) << 10);
            // SAFETY: only the rounding bits change; exceptions stay masked.
            unsafe {
                core::arch::asm!(
                    "ldmxcsr [{m}]",
                    "fldcw [{c}]",
                    m = in(reg) &mxcsr,
                    c = in(reg) &x87,
                    options(nostack, readonly),
                );
            }
            get()
        }

        /// What a fresh `PerFiberFp` fiber starts with.
        pub fn fresh() -> u64 {
            u64::from(fibers::arch::DEFAULT_MXCSR)
                | (u64::from(fibers::arch::DEFAULT_X87_CONTROL_WORD) << 32)
        }
    }

    #[cfg(target_arch = "aarch64")]
    mod isa {
        use super::Rounding;
        use fibers::arch::{read_fpcr, write_fpcr};

        const RMODE: u64 = 0b11 << 22;

        pub fn get() -> u64 {
            read_fpcr()
        }

        pub fn set(rounding: Rounding) -> u64 {
            let bits: u64 = match rounding {
                Rounding::Nearest => 0b00,
                Rounding::Down => 0b10,
                Rounding::TowardZero => 0b11,
            };
            // SAFETY: the child puts round-to-nearest back before it ends.
            unsafe { write_fpcr((read_fpcr() & !RMODE) | (bits << 22)) };
            get()
        }

        pub fn fresh() -> u64 {
            unreachable!("FPCR is thread state: no fiber has its own")
        }
    }

    #[cfg(target_arch = "riscv64")]
    mod isa {
        use super::Rounding;
        use fibers::arch::{read_fcsr, write_fcsr};

        /// fcsr.frm; the rest of fcsr is sticky exception flags.
        const FRM: u64 = 0b111 << 5;

        pub fn get() -> u64 {
            read_fcsr() & FRM
        }

        pub fn set(rounding: Rounding) -> u64 {
            let bits: u64 = match rounding {
                Rounding::Nearest => 0b000,
                Rounding::TowardZero => 0b001,
                Rounding::Down => 0b010,
            };
            // SAFETY: the child puts round-to-nearest back before it ends.
            unsafe { write_fcsr((read_fcsr() & !FRM) | (bits << 5)) };
            get()
        }

        pub fn fresh() -> u64 {
            unreachable!("fcsr is thread state: no fiber has its own")
        }
    }

    pub use isa::{fresh, get, set};
}

/// What the handler does to the interrupted thread's state, as any real
/// handler may: the kernel must put it all back at `sigreturn`.
mod clobber {
    /// A recognisable value for every scribbled register.
    const GARBAGE: u64 = 0xBAD5_16BA_D516_BAD5;

    /// Changes the floating-point control state and does not restore it:
    /// rounding toward +infinity, and flush-to-zero where there is one.
    #[cfg(target_arch = "x86_64")]
    pub fn fp_control() {
        let mxcsr: u32 = 0x1F80 | (0b10 << 13) | 0x8000 | 0x0040; // up, FTZ, DAZ
        let x87: u16 = 0x007F | (0b10 << 10); // up, 24-bit precision
        // SAFETY: exceptions stay masked; the kernel restores both words.
        unsafe {
            core::arch::asm!(
                "ldmxcsr [{m}]",
                "fldcw [{c}]",
                m = in(reg) &mxcsr,
                c = in(reg) &x87,
                options(nostack, readonly),
            );
        }
    }

    #[cfg(target_arch = "aarch64")]
    pub fn fp_control() {
        let fpcr = fibers::arch::read_fpcr();
        // RMode = toward +infinity, FZ (flush to zero), DN (default NaN).
        let changed = (fpcr & !(0b11 << 22)) | (0b01 << 22) | (1 << 24) | (1 << 25);
        // SAFETY: the kernel restores FPCR at sigreturn.
        unsafe { fibers::arch::write_fpcr(changed) };
    }

    #[cfg(target_arch = "riscv64")]
    pub fn fp_control() {
        // frm = toward +infinity, and every exception flag raised.
        // SAFETY: the kernel restores fcsr at sigreturn.
        unsafe { fibers::arch::write_fcsr((0b011 << 5) | 0b11111) };
    }

    /// Overwrites every caller-saved integer register and every vector
    /// register the compiler lets it name.
    #[cfg(target_arch = "x86_64")]
    pub fn registers() {
        // SAFETY: touches registers only, all declared clobbered.
        unsafe {
            core::arch::asm!(
                "mov rcx, rax", "mov rdx, rax", "mov rsi, rax", "mov rdi, rax",
                "mov r8, rax", "mov r9, rax", "mov r10, rax", "mov r11, rax",
                "movq xmm0, rax", "movq xmm1, rax", "movq xmm2, rax", "movq xmm3, rax",
                "movq xmm4, rax", "movq xmm5, rax", "movq xmm6, rax", "movq xmm7, rax",
                "movq xmm8, rax", "movq xmm9, rax", "movq xmm10, rax", "movq xmm11, rax",
                "movq xmm12, rax", "movq xmm13, rax", "movq xmm14, rax", "movq xmm15, rax",
                inout("rax") GARBAGE => _,
                out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                options(nostack, nomem),
            );
        }
    }

    /// x0-x17 and all of v0-v31 (the compiler saves d8-d15 around this).
    #[cfg(target_arch = "aarch64")]
    pub fn registers() {
        // SAFETY: touches registers only, all declared clobbered.
        unsafe {
            core::arch::asm!(
                "mov x1, x0", "mov x2, x0", "mov x3, x0", "mov x4, x0", "mov x5, x0",
                "mov x6, x0", "mov x7, x0", "mov x8, x0", "mov x9, x0", "mov x10, x0",
                "mov x11, x0", "mov x12, x0", "mov x13, x0", "mov x14, x0", "mov x15, x0",
                "mov x16, x0", "mov x17, x0",
                "dup v0.2d, x0", "dup v1.2d, x0", "dup v2.2d, x0", "dup v3.2d, x0",
                "dup v4.2d, x0", "dup v5.2d, x0", "dup v6.2d, x0", "dup v7.2d, x0",
                "dup v8.2d, x0", "dup v9.2d, x0", "dup v10.2d, x0", "dup v11.2d, x0",
                "dup v12.2d, x0", "dup v13.2d, x0", "dup v14.2d, x0", "dup v15.2d, x0",
                "dup v16.2d, x0", "dup v17.2d, x0", "dup v18.2d, x0", "dup v19.2d, x0",
                "dup v20.2d, x0", "dup v21.2d, x0", "dup v22.2d, x0", "dup v23.2d, x0",
                "dup v24.2d, x0", "dup v25.2d, x0", "dup v26.2d, x0", "dup v27.2d, x0",
                "dup v28.2d, x0", "dup v29.2d, x0", "dup v30.2d, x0", "dup v31.2d, x0",
                inout("x0") GARBAGE => _,
                out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
                out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v8") _, out("v9") _, out("v10") _, out("v11") _,
                out("v12") _, out("v13") _, out("v14") _, out("v15") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
                options(nostack, nomem),
            );
        }
    }

    /// a0-a7, t0-t6, fa0-fa7 and ft0-ft11.
    #[cfg(target_arch = "riscv64")]
    pub fn registers() {
        // SAFETY: touches registers only, all declared clobbered.
        unsafe {
            core::arch::asm!(
                "mv a1, a0", "mv a2, a0", "mv a3, a0", "mv a4, a0", "mv a5, a0",
                "mv a6, a0", "mv a7, a0",
                "mv t0, a0", "mv t1, a0", "mv t2, a0", "mv t3, a0", "mv t4, a0",
                "mv t5, a0", "mv t6, a0",
                "fmv.d.x fa0, a0", "fmv.d.x fa1, a0", "fmv.d.x fa2, a0", "fmv.d.x fa3, a0",
                "fmv.d.x fa4, a0", "fmv.d.x fa5, a0", "fmv.d.x fa6, a0", "fmv.d.x fa7, a0",
                "fmv.d.x ft0, a0", "fmv.d.x ft1, a0", "fmv.d.x ft2, a0", "fmv.d.x ft3, a0",
                "fmv.d.x ft4, a0", "fmv.d.x ft5, a0", "fmv.d.x ft6, a0", "fmv.d.x ft7, a0",
                "fmv.d.x ft8, a0", "fmv.d.x ft9, a0", "fmv.d.x ft10, a0", "fmv.d.x ft11, a0",
                inout("a0") GARBAGE => _,
                out("a1") _, out("a2") _, out("a3") _, out("a4") _, out("a5") _,
                out("a6") _, out("a7") _,
                out("t0") _, out("t1") _, out("t2") _, out("t3") _, out("t4") _,
                out("t5") _, out("t6") _,
                out("fa0") _, out("fa1") _, out("fa2") _, out("fa3") _,
                out("fa4") _, out("fa5") _, out("fa6") _, out("fa7") _,
                out("ft0") _, out("ft1") _, out("ft2") _, out("ft3") _,
                out("ft4") _, out("ft5") _, out("ft6") _, out("ft7") _,
                out("ft8") _, out("ft9") _, out("ft10") _, out("ft11") _,
                options(nostack, nomem),
            );
        }
    }
}

/// The address ranges of the switch's naked functions, from this
/// executable's symbol table, moved to where the executable was loaded.
fn switch_code() -> Result<Vec<(usize, usize)>, String> {
    // Mangled names spell each path component as its length and name:
    // `..11enter_fiber17h<hash>E` in the legacy scheme, `..11enter_fiber`
    // at the end in the v0 scheme.
    #[cfg(target_arch = "x86_64")]
    const SWITCH_FUNCTIONS: &[&str] = &[
        "11enter_fiber",
        "11leave_fiber",
        "21enter_fiber_shared_fp",
        "21leave_fiber_shared_fp",
    ];
    #[cfg(not(target_arch = "x86_64"))]
    const SWITCH_FUNCTIONS: &[&str] = &["9switch_in", "10switch_out"];
    let names_one = |symbol: &str| {
        SWITCH_FUNCTIONS.iter().any(|f| {
            symbol
                .split_once(f)
                .is_some_and(|(_, rest)| rest.is_empty() || rest.starts_with("17h"))
        })
    };

    let path = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let elf = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let symbols = elf_symbols(&elf).ok_or("no readable symbol table in the test binary")?;
    let anchor = with_sentinels as *const () as usize;
    let Some(&(_, anchor_value, _)) = symbols
        .iter()
        .find(|(name, ..)| name.contains("with_sentinels"))
    else {
        return Err("with_sentinels is not in the symbol table".into());
    };
    let load_bias = anchor.wrapping_sub(anchor_value);
    let ranges: Vec<(usize, usize)> = symbols
        .iter()
        .filter(|(name, _, size)| *size > 0 && name.contains("fibers4arch") && names_one(name))
        .map(|&(_, value, size)| (value.wrapping_add(load_bias), size))
        .collect();
    if ranges.len() < 2 {
        return Err(format!(
            "found {} switch functions in the symbol table",
            ranges.len()
        ));
    }
    Ok(ranges)
}

/// (name, value, size) of every symbol in an ELF64 little-endian file.
fn elf_symbols(elf: &[u8]) -> Option<Vec<(String, usize, usize)>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at =
        |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?) as usize);
    let section_headers = u64_at(0x28)?;
    let header_size = usize::from(u16_at(0x3A)?);
    let section = |i: usize| section_headers + i * header_size;
    let symtab = (0..usize::from(u16_at(0x3C)?)).find(|&i| u32_at(section(i) + 4) == Some(2))?;
    let (offset, size) = (
        u64_at(section(symtab) + 0x18)?,
        u64_at(section(symtab) + 0x20)?,
    );
    let strings = u64_at(section(u32_at(section(symtab) + 0x28)? as usize) + 0x18)?;
    let mut symbols = Vec::new();
    for entry in (offset..offset + size).step_by(24) {
        let name_start = strings + u32_at(entry)? as usize;
        let name_len = elf.get(name_start..)?.iter().position(|&b| b == 0)?;
        let name = String::from_utf8_lossy(&elf[name_start..name_start + name_len]).into_owned();
        symbols.push((name, u64_at(entry + 8)?, u64_at(entry + 16)?));
    }
    Some(symbols)
}

/// Filled before the signals start, read by the handler.
static SWITCH_CODE: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
/// Entry points of the functions a walk from the ping-pong may reach.
static KNOWN_FRAMES: OnceLock<Vec<usize>> = OnceLock::new();

/// Set while the thread does nothing but the ping-pong, so that every walk
/// starts in code the test knows.
static ARMED: AtomicBool = AtomicBool::new(false);

/// The handler's counts: atomics only.
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static ARMED_SIGNALS: AtomicUsize = AtomicUsize::new(0);
static IN_SWITCH: AtomicUsize = AtomicUsize::new(0);
static WALKS: AtomicUsize = AtomicUsize::new(0);
static REACHED_KNOWN_FRAME: AtomicUsize = AtomicUsize::new(0);
static STOPPED_AT_NO_UNWIND_INFO: AtomicUsize = AtomicUsize::new(0);
static ASTRAY: AtomicUsize = AtomicUsize::new(0);
static FIRST_ASTRAY_PC: AtomicUsize = AtomicUsize::new(0);

/// The distinct switch addresses interrupted, as an open-addressing set.
static INTERRUPTED_AT: [AtomicUsize; 512] = [const { AtomicUsize::new(0) }; 512];

fn remember_interrupted(pc: usize) {
    let slots = INTERRUPTED_AT.len();
    for probe in 0..slots {
        let slot = &INTERRUPTED_AT[(pc / 2 + probe) % slots];
        match slot.compare_exchange(0, pc, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) if seen == pc => return,
            Err(_) => {}
        }
    }
}

fn distinct_interrupted() -> usize {
    INTERRUPTED_AT
        .iter()
        .filter(|slot| slot.load(Ordering::Relaxed) != 0)
        .count()
}

extern "C" fn on_signal(_: c_int, _: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is this thread's; it is put back before returning.
    let errno = unsafe { *libc::__errno_location() };
    if ARMED.load(Ordering::Relaxed) {
        ARMED_SIGNALS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: an SA_SIGINFO handler's third argument is a ucontext.
        let pc = unsafe { interrupted_pc(context) };
        let in_switch = SWITCH_CODE.get().is_some_and(|code| {
            code.iter()
                .any(|&(start, size)| pc.wrapping_sub(start) < size)
        });
        if in_switch {
            IN_SWITCH.fetch_add(1, Ordering::Relaxed);
            remember_interrupted(pc);
        }
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        check_walk(pc);
    }
    clobber::fp_control();
    clobber::registers();
    // Some arithmetic under the handler's rounding mode.
    let third = std::hint::black_box(1.0f64) / std::hint::black_box(3.0f64);
    std::hint::black_box(third * third);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    HANDLED.fetch_add(1, Ordering::Release);
}

/// Walks the stack as a sampling profiler would. The walk must cross the
/// signal frame to the interrupted instruction, and from there either
/// follow correct unwind information to a frame the test knows, or stop
/// at once in code without unwind information (the naked functions). A
/// walk that follows a wrong rule may crash the child: that fails too.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn check_walk(pc: usize) {
    use common::walk::{Walk, has_unwind_info};
    WALKS.fetch_add(1, Ordering::Relaxed);
    let walk = Walk::from_here();
    let frames = walk.frames();
    let known = KNOWN_FRAMES.get().map_or(&[][..], Vec::as_slice);
    let fine = match frames.iter().position(|&(ip, _)| ip == pc) {
        Some(interrupted) => {
            let rest = &frames[interrupted..];
            if rest.iter().any(|(_, start)| known.contains(start)) {
                REACHED_KNOWN_FRAME.fetch_add(1, Ordering::Relaxed);
                true
            } else if rest.len() == 1 && !has_unwind_info(pc) {
                STOPPED_AT_NO_UNWIND_INFO.fetch_add(1, Ordering::Relaxed);
                true
            } else {
                false
            }
        }
        None => false,
    };
    if !fine && ASTRAY.fetch_add(1, Ordering::Relaxed) == 0 {
        FIRST_ASTRAY_PC.store(pc, Ordering::Relaxed);
    }
}

fn install_handler() {
    // SAFETY: a plain SA_SIGINFO handler on the current stack (no
    // SA_ONSTACK), installed before any SIGURG is sent.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// A numbered message, and the floating-point control state its sender
/// had set just before the switch.
#[derive(Clone, Copy, Default)]
struct Note {
    seq: u64,
    fp_control: u64,
}

/// The resumer's last message: the fiber returns.
const STOP: u64 = u64::MAX;

type PingPongFiber<Fp> = Fiber<Note, Note, Result<(), String>, Fp>;

fn kind<Fp: FpControl>() -> &'static str {
    if Fp::PER_FIBER {
        "PerFiberFp"
    } else {
        "SharedFp"
    }
}

/// The resumer's half of the ping-pong with one fiber.
struct Exchange<Fp: FpControl> {
    fiber: PingPongFiber<Fp>,
    next_seq: u64,
    failure: Option<String>,
}

/// One resume, called by `with_sentinels` with the resumer's sentinels in
/// the callee-saved registers.
extern "C" fn resume_once<Fp: FpControl>(exchange: *mut c_void) {
    // SAFETY: `round_trip` passes its live Exchange<Fp>.
    let exchange = unsafe { &mut *exchange.cast::<Exchange<Fp>>() };
    let mine = fp::set(fp::Rounding::Down);
    let seq = exchange.next_seq;
    let note = Note {
        seq,
        fp_control: mine,
    };
    // A panic must not unwind into the assembly helper: it is a failure.
    let reply = match panic::catch_unwind(AssertUnwindSafe(|| exchange.fiber.resume(note))) {
        Ok(reply) => reply,
        Err(payload) => {
            exchange.failure = Some(format!(
                "resuming the {} fiber with message {seq} panicked: {}",
                kind::<Fp>(),
                panic_message(&*payload)
            ));
            return;
        }
    };
    let now = fp::get();
    match reply {
        FiberResult::Yield(reply) if reply.seq != seq + 1 => {
            exchange.failure = Some(format!(
                "the resumer sent message {seq} to the {} fiber and got back message {}, \
                 expected {}",
                kind::<Fp>(),
                reply.seq,
                seq + 1
            ));
        }
        FiberResult::Yield(reply) => {
            let expected = fp::after_switch::<Fp>(mine, reply.fp_control);
            if now != expected {
                exchange.failure = Some(format!(
                    "the resumer's floating-point control state after message {seq} to the {} \
                     fiber is {now:#x}, expected {expected:#x}",
                    kind::<Fp>()
                ));
            }
            exchange.next_seq = seq + 2;
        }
        FiberResult::Return(Err(why)) => exchange.failure = Some(why),
        FiberResult::Return(Ok(())) => {
            exchange.failure = Some(format!("the {} fiber ended early", kind::<Fp>()));
        }
    }
}

/// One round trip with one fiber, the resumer's callee-saved registers
/// holding sentinels throughout.
#[inline(never)]
fn round_trip<Fp: FpControl>(exchange: &mut Exchange<Fp>, seed: u64) -> Result<(), String> {
    let values = sentinels(seed, 0);
    let mut seen = Sentinels::default();
    // SAFETY: all three pointers are to live locals.
    unsafe {
        with_sentinels(
            &values,
            &mut seen,
            resume_once::<Fp>,
            std::ptr::from_mut(exchange).cast(),
        );
    }
    if let Some(why) = exchange.failure.take() {
        return Err(why);
    }
    if without_fp_control(seen) != without_fp_control(values) {
        let lost = lost_registers(without_fp_control(seen), without_fp_control(values));
        return Err(format!(
            "the resumer lost callee-saved registers in a round trip with the {} fiber \
             (message {}):\n{}",
            kind::<Fp>(),
            exchange.next_seq - 2,
            lost.join("\n")
        ));
    }
    Ok(())
}

/// The fiber's side of one suspend, called by `with_sentinels` with the
/// fiber's sentinels in the callee-saved registers.
struct Suspension<'a, Fp: FpControl> {
    suspender: &'a Suspender<Note, Note, Fp>,
    rounding: fp::Rounding,
    send_seq: u64,
    mine: u64,
    received: Note,
    control_after: u64,
    failure: Option<String>,
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(not a string)"
    }
}

extern "C" fn suspend_once<Fp: FpControl>(suspension: *mut c_void) {
    // SAFETY: `fiber_body` passes its live Suspension<Fp>.
    let suspension = unsafe { &mut *suspension.cast::<Suspension<'_, Fp>>() };
    suspension.mine = fp::set(suspension.rounding);
    let note = Note {
        seq: suspension.send_seq,
        fp_control: suspension.mine,
    };
    // A panic must not unwind into the assembly helper: it is a failure.
    match panic::catch_unwind(AssertUnwindSafe(|| suspension.suspender.suspend(note))) {
        Ok(received) => suspension.received = received,
        Err(payload) => {
            suspension.failure = Some(format!(
                "suspending with message {} panicked: {}",
                note.seq,
                panic_message(&*payload)
            ));
        }
    }
    suspension.control_after = fp::get();
}

/// Answers every message with the next number, checking after every
/// switch its registers, its floating-point control state and the number
/// it got. A failure ends the fiber with its description.
#[inline(never)]
fn fiber_body<Fp: FpControl>(
    suspender: &Suspender<Note, Note, Fp>,
    first: Note,
    rounding: fp::Rounding,
    seed: u64,
) -> Result<(), String> {
    let kind = kind::<Fp>();
    let mut received = first;
    let mut control = fp::get();
    let mut expected_control = if cfg!(target_arch = "x86_64") && Fp::PER_FIBER {
        fp::fresh()
    } else {
        first.fp_control
    };
    for expected_seq in (0..).step_by(2) {
        if received.seq == STOP {
            return Ok(());
        }
        if received.seq != expected_seq {
            return Err(format!(
                "the {kind} fiber got message {}, expected {expected_seq}",
                received.seq
            ));
        }
        if control != expected_control {
            return Err(format!(
                "the {kind} fiber's floating-point control state on receiving message \
                 {expected_seq} is {control:#x}, expected {expected_control:#x}"
            ));
        }
        let values = sentinels(seed + expected_seq / 2 % 256, 0);
        let mut seen = Sentinels::default();
        let mut suspension = Suspension {
            suspender,
            rounding,
            send_seq: expected_seq + 1,
            mine: 0,
            received: Note::default(),
            control_after: 0,
            failure: None,
        };
        // SAFETY: all three pointers are to live locals.
        unsafe {
            with_sentinels(
                &values,
                &mut seen,
                suspend_once::<Fp>,
                (&raw mut suspension).cast(),
            );
        }
        if let Some(why) = suspension.failure {
            return Err(format!("the {kind} fiber: {why}"));
        }
        if without_fp_control(seen) != without_fp_control(values) {
            let lost = lost_registers(without_fp_control(seen), without_fp_control(values));
            return Err(format!(
                "the {kind} fiber lost callee-saved registers while suspended after message \
                 {expected_seq}:\n{}",
                lost.join("\n")
            ));
        }
        received = suspension.received;
        control = suspension.control_after;
        expected_control = fp::after_switch::<Fp>(suspension.mine, received.fp_control);
    }
    unreachable!("the messages ran out of numbers")
}

/// The armed part: round trips with both fibers until enough signals have
/// landed inside switches (or the budget is spent).
#[inline(never)]
fn ping_pong(
    per_fiber: &mut Exchange<PerFiberFp>,
    shared: &mut Exchange<SharedFp>,
) -> Result<u64, String> {
    let deadline = Instant::now() + BUDGET;
    let mut round_trips = 0u64;
    ARMED.store(true, Ordering::Relaxed);
    let result = loop {
        if let Err(why) = round_trip(per_fiber, 0x100 + round_trips % 256)
            .and_then(|()| round_trip(shared, 0x200 + round_trips % 256))
        {
            break Err(why);
        }
        round_trips += 1;
        if round_trips.is_multiple_of(64)
            && ((round_trips >= MIN_ROUND_TRIPS
                && IN_SWITCH.load(Ordering::Relaxed) >= SIGNALS_IN_SWITCHES)
                || Instant::now() > deadline)
        {
            break Ok(round_trips);
        }
    };
    ARMED.store(false, Ordering::Relaxed);
    result
}

/// Ends the child with the description of a failure, at once: nothing
/// is dropped, so no fiber is unwound through the assembly helpers.
fn fail(why: &str) -> ! {
    eprintln!("{why}");
    std::process::exit(1)
}

/// The child's whole run: returns its report, or fails.
fn run_child() -> String {
    install_handler();
    let code = switch_code().unwrap_or_else(|why| fail(&why));
    let switch_bytes: usize = code.iter().map(|&(_, size)| size).sum();
    SWITCH_CODE.set(code).expect("set once");
    KNOWN_FRAMES
        .set(vec![
            ping_pong as *const () as usize,
            round_trip::<PerFiberFp> as *const () as usize,
            round_trip::<SharedFp> as *const () as usize,
            resume_once::<PerFiberFp> as *const () as usize,
            resume_once::<SharedFp> as *const () as usize,
            suspend_once::<PerFiberFp> as *const () as usize,
            suspend_once::<SharedFp> as *const () as usize,
            fiber_body::<PerFiberFp> as *const () as usize,
            fiber_body::<SharedFp> as *const () as usize,
        ])
        .expect("set once");

    let stack =
        || Stack::new(Stack::DEFAULT_SIZE).unwrap_or_else(|e| fail(&format!("a fiber stack: {e}")));
    let mut per_fiber = Exchange {
        fiber: Fiber::with_fp_control(stack(), |suspender, first| {
            fiber_body::<PerFiberFp>(suspender, first, fp::Rounding::TowardZero, 0x300)
        }),
        next_seq: 0,
        failure: None,
    };
    let mut shared = Exchange {
        fiber: Fiber::with_shared_fp(stack(), |suspender, first| {
            fiber_body::<SharedFp>(suspender, first, fp::Rounding::Nearest, 0x400)
        }),
        next_seq: 0,
        failure: None,
    };
    // Both fibers start (through the trampoline and `fiber_root`, which
    // the walks do not know) before the signals count.
    round_trip(&mut per_fiber, 0).unwrap_or_else(|why| fail(&why));
    round_trip(&mut shared, 0).unwrap_or_else(|why| fail(&why));

    // SAFETY: pthread_self has no preconditions.
    let target = unsafe { libc::pthread_self() };
    let stop = AtomicBool::new(false);
    let (round_trips, sent) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut sent = 0u64;
            let mut jitter = 0x9E37_79B9_7F4A_7C15u64;
            while !stop.load(Ordering::Relaxed) {
                let handled = HANDLED.load(Ordering::Acquire);
                // SAFETY: the target thread outlives this scope.
                let error = unsafe { libc::pthread_kill(target, libc::SIGURG) };
                assert_eq!(error, 0, "pthread_kill");
                sent += 1;
                // The next signal only once this one is handled, so that
                // the target makes progress between signals (yielding, in
                // case both threads share a core); then a varying pause,
                // so that they land all over the switch.
                while HANDLED.load(Ordering::Acquire) == handled && !stop.load(Ordering::Relaxed) {
                    std::thread::yield_now();
                }
                jitter ^= jitter << 13;
                jitter ^= jitter >> 7;
                jitter ^= jitter << 17;
                for _ in 0..jitter % 128 {
                    std::hint::spin_loop();
                }
            }
            sent
        });
        let round_trips = ping_pong(&mut per_fiber, &mut shared);
        stop.store(true, Ordering::Relaxed);
        (round_trips, sender.join().expect("the sender thread"))
    });
    let round_trips = round_trips.unwrap_or_else(|why| fail(&why));

    for (name, result) in [
        (
            "PerFiberFp",
            per_fiber.fiber.resume(Note {
                seq: STOP,
                fp_control: 0,
            }),
        ),
        (
            "SharedFp",
            shared.fiber.resume(Note {
                seq: STOP,
                fp_control: 0,
            }),
        ),
    ] {
        match result {
            FiberResult::Return(Ok(())) => {}
            FiberResult::Return(Err(why)) => fail(&why),
            FiberResult::Yield(_) => fail(&format!("the {name} fiber did not stop")),
        }
    }
    fp::set(fp::Rounding::Nearest);

    let count = |counter: &AtomicUsize| counter.load(Ordering::Relaxed);
    let report = format!(
        "round trips: {round_trips}, signals sent: {sent}, handled while ping-ponging: {}, \
         inside a switch: {}, at distinct switch addresses: {} (of {switch_bytes} bytes of \
         switch code), walks: {}, reached a known frame: {}, stopped at code without unwind \
         information: {}, went astray: {}",
        count(&ARMED_SIGNALS),
        count(&IN_SWITCH),
        distinct_interrupted(),
        count(&WALKS),
        count(&REACHED_KNOWN_FRAME),
        count(&STOPPED_AT_NO_UNWIND_INFO),
        count(&ASTRAY),
    );
    if count(&ASTRAY) > 0 {
        fail(&format!(
            "{report}\nfirst walk astray: interrupted at {:#x}",
            count(&FIRST_ASTRAY_PC)
        ));
    }
    report
}

#[test]
fn a_signal_at_any_instruction_of_a_switch_changes_nothing_the_fibers_can_see() {
    if std::env::var(CHILD_ROLE).is_ok() {
        eprintln!("{}", run_child());
        return;
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut child = test_support::command(exe);
    child
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, "1")
        .env("RUST_BACKTRACE", "0")
        // qemu-user: one instruction per translated block (the option's
        // name before and after qemu 8.1), so signals land anywhere.
        .env("QEMU_SINGLESTEP", "1")
        .env("QEMU_ONE_INSN_PER_TB", "1");
    let output = test_support::output_within(&mut child, test_support::hang_limit())
        .unwrap_or_else(|e| panic!("{TEST_NAME}, in a child process: {e}"));
    let stderr = report_of(&output);
    let count = |what: &str| report::count(&stderr, what);
    eprint!("{stderr}");
    assert!(
        count("inside a switch:") >= SIGNALS_IN_SWITCHES,
        "too few signals landed inside switches to say anything:\n{stderr}"
    );
    assert!(
        count("distinct switch addresses:") >= SWITCH_ADDRESSES,
        "the signals landed on too few instructions of the switch (under qemu: does it \
         honour QEMU_SINGLESTEP?):\n{stderr}"
    );
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(
            count("walks:"),
            count("handled while ping-ponging:"),
            "the handler walks the stack at every signal:\n{stderr}"
        );
        assert!(
            count("known frame:") > 0 && count("unwind information:") > 0,
            "walks both through unwind information and into the switch:\n{stderr}"
        );
    }
}
