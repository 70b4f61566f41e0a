//! The switch keeps exactly what the ABI says a callee must keep.
//!
//! Each side of a switch loads *sentinels* (distinct, recognisable values)
//! into every callee-saved register from assembly, then calls into Rust
//! code that performs a real switch. The other side has loaded sentinels of
//! its own into the same registers, so if the switch forgot one register,
//! the value that comes back is the other side's, not ours.

use std::ffi::c_void;

use fibers::{Fiber, FiberResult, FpControl, PerFiberFp, SharedFp, Stack, Suspender};

mod common {
    pub mod sentinels;
}

use common::sentinels::{
    self as isa, Sentinels, assert_registers_survived, comparable, sentinels, with_sentinels,
    without_fp_control,
};

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
