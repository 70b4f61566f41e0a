//! What a hostile fiber cannot break: the message protocol (odd types, every
//! value dropped exactly once), live registers through many nested
//! switches, the stack check of `suspend`, and `Pin`'s promise that a
//! pinned local is dropped before its memory is freed, even when a fiber
//! fights its own forced unwind.

use std::cell::Cell;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;

use fibers::{Fiber, FiberResult, FpControl, PerFiberFp, SharedFp, Stack, Suspender};

/// Counts its own drops in a shared counter.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Panics when dropped if armed.
struct PanicOnDrop(bool);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if self.0 {
            panic!("PanicOnDrop dropped while armed");
        }
    }
}

fn silence_panics<R>(f: impl FnOnce() -> R) -> R {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let r = f();
    panic::set_hook(hook);
    r
}

/// A fiber that catches its forced unwind and yields a value whose `Drop`
/// panics: `Fiber::drop` must still finish the fiber (dropping its pinned
/// local) before it raises that panic and frees the stack.
#[test]
fn a_panicking_yield_during_a_forced_unwind_still_drops_the_pinned_locals_first() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    let fiber = Fiber::new(move |s: &Suspender<(), PanicOnDrop>, ()| {
        // A pinned local: Pin promises its destructor runs before its memory
        // is reused or freed.
        let pinned = pin!(Counted(d));
        black_box(&pinned);
        let _ = panic::catch_unwind(AssertUnwindSafe(|| s.suspend(PanicOnDrop(false))));
        // Asked to unwind, caught it: suspend once more with a value whose
        // drop panics in the resumer's unwind loop.
        s.suspend(PanicOnDrop(true));
    })
    .unwrap();
    let mut fiber = fiber;
    assert!(matches!(
        fiber.resume(()),
        FiberResult::Yield(PanicOnDrop(false))
    ));
    let dropped = silence_panics(|| panic::catch_unwind(AssertUnwindSafe(move || drop(fiber))));
    assert!(dropped.is_err(), "the yielded value's drop panicked");
    assert_eq!(
        drops.get(),
        1,
        "the fiber's stack was freed while the fiber was still suspended: its pinned local \
         was never dropped (Pin's drop guarantee is broken)"
    );
}

/// `Suspender::suspend` called from the wrong stack panics, and the value
/// it was handed is dropped, not leaked.
#[test]
fn a_suspend_from_the_wrong_stack_drops_the_value_it_was_given() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    let mut outer = Fiber::new(move |outer_s: &Suspender<(), Counted>, ()| {
        // Give the outer suspender to a nested fiber (its input).
        let d2 = Rc::clone(&d);
        let mut inner = Fiber::new(
            move |_: &Suspender<&Suspender<(), Counted>, ()>, s: &Suspender<(), Counted>| {
                s.suspend(Counted(d2));
            },
        )
        .unwrap();
        let r = panic::catch_unwind(AssertUnwindSafe(|| inner.resume(outer_s)));
        assert!(r.is_err());
    })
    .unwrap();
    let r = silence_panics(|| outer.resume(()));
    assert!(matches!(r, FiberResult::Return(())));
    assert_eq!(
        drops.get(),
        1,
        "the value passed to a suspend that panicked was never dropped"
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
struct Zst64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
struct Big64([u64; 9]);

fn messages_of_odd_types<Fp: FpControl>() {
    // ZST over-aligned input and yield, u8 return.
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    let mut f = Fiber::<Zst64, Zst64, u8, Fp>::with_fp_control(stack, |s, z: Zst64| {
        let mut n = 0u8;
        let mut z = z;
        for _ in 0..10 {
            assert_eq!(&raw const z as usize % 64, 0);
            z = s.suspend(z);
            n += 1;
        }
        n
    });
    for _ in 0..10 {
        assert_eq!(f.resume(Zst64), FiberResult::Yield(Zst64));
    }
    assert_eq!(f.resume(Zst64), FiberResult::Return(10));

    // u8 both ways (the message is 2 bytes: the ENDED bit must still be free).
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    let mut f = Fiber::<u8, u8, u8, Fp>::with_fp_control(stack, |s, mut x: u8| {
        for _ in 0..50 {
            x = s.suspend(x.wrapping_add(1));
        }
        x
    });
    for i in 0..50u8 {
        assert_eq!(f.resume(i), FiberResult::Yield(i.wrapping_add(1)));
    }
    assert_eq!(f.resume(200), FiberResult::Return(200));

    // Over-aligned non-ZST.
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    let mut f = Fiber::<Big64, Big64, Big64, Fp>::with_fp_control(stack, |s, mut x: Big64| {
        for _ in 0..5 {
            x.0[8] += 1;
            x = s.suspend(x);
        }
        x
    });
    let mut v = Big64([7; 9]);
    for _ in 0..5 {
        let FiberResult::Yield(y) = f.resume(v) else {
            panic!()
        };
        assert_eq!(y.0[8], v.0[8] + 1);
        v = y;
    }
    assert_eq!(f.resume(v), FiberResult::Return(v));

    // [u8; 0] and () too.
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    let mut f = Fiber::<[u8; 0], (), [u8; 0], Fp>::with_fp_control(stack, |s, a| {
        s.suspend(());
        a
    });
    assert_eq!(f.resume([]), FiberResult::Yield(()));
    assert_eq!(f.resume([]), FiberResult::Return([]));
}

#[test]
fn messages_of_zst_over_aligned_and_byte_types_cross_intact() {
    messages_of_odd_types::<PerFiberFp>();
    messages_of_odd_types::<SharedFp>();
}

/// Every value that crosses is dropped exactly once, whatever point the
/// fiber is dropped at.
fn drop_accounting<Fp: FpControl>() {
    for stop_after in 0..6 {
        let created = Rc::new(Cell::new(0usize));
        let drops = Rc::new(Cell::new(0usize));
        let mk = {
            let created = Rc::clone(&created);
            let drops = Rc::clone(&drops);
            move || {
                created.set(created.get() + 1);
                Counted(Rc::clone(&drops))
            }
        };
        let mk_fiber = mk.clone();
        let captured = mk();
        let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
        let mut f =
            Fiber::<Counted, Counted, Counted, Fp>::with_fp_control(stack, move |s, input| {
                let _captured = captured;
                let _held = input;
                let mut last = None;
                for _ in 0..3 {
                    let local = mk_fiber();
                    last = Some(s.suspend(mk_fiber()));
                    drop(local);
                }
                drop(last);
                mk_fiber()
            });
        for i in 0..stop_after {
            if f.is_finished() {
                break;
            }
            match f.resume(mk()) {
                FiberResult::Yield(y) => drop(y),
                FiberResult::Return(r) => drop(r),
            }
            let _ = i;
        }
        if stop_after % 2 == 0 {
            drop(f);
        } else {
            let stack = f.into_stack();
            drop(stack);
        }
        assert_eq!(
            created.get(),
            drops.get(),
            "stop after {stop_after}: {} values made, {} dropped",
            created.get(),
            drops.get()
        );
    }
}

#[test]
fn every_value_that_crosses_is_dropped_exactly_once() {
    drop_accounting::<PerFiberFp>();
    drop_accounting::<SharedFp>();
}

/// Many live values on both sides across switches, nested fibers, both kinds.
#[inline(never)]
fn churn<Fp: FpControl>(seed: u64) -> u64 {
    let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
    let mut inner = Fiber::<u64, u64, u64, Fp>::with_fp_control(stack, move |s, mut x| {
        let (mut a, mut b, mut c, mut d, mut e, mut g, mut h, mut i) =
            (x, x ^ 1, x ^ 2, x ^ 3, x ^ 4, x ^ 5, x ^ 6, x ^ 7);
        for k in 0..200u64 {
            x = s.suspend(a.wrapping_add(b) ^ c.rotate_left(3) ^ d ^ e ^ g ^ h ^ i ^ k);
            a = a.wrapping_mul(31).wrapping_add(x);
            b = b.rotate_left(7) ^ a;
            c = c.wrapping_add(b);
            d ^= c;
            e = e.wrapping_add(d);
            g ^= e;
            h = h.wrapping_add(g);
            i ^= h;
        }
        a ^ b ^ c ^ d ^ e ^ g ^ h ^ i
    });
    let (mut p, mut q, mut r, mut t, mut u, mut v) = (
        seed,
        !seed,
        seed.wrapping_mul(3),
        seed.wrapping_mul(5),
        seed.wrapping_mul(7),
        1,
    );
    let mut acc = 0u64;
    loop {
        match inner.resume(p ^ q ^ r) {
            FiberResult::Yield(y) => {
                acc = acc.wrapping_add(y ^ t ^ u ^ v);
                p = p.wrapping_add(y);
                q = q.rotate_right(5) ^ p;
                r = r.wrapping_mul(3) ^ q;
                t = t.wrapping_add(r);
                u ^= t;
                v = v.wrapping_add(u);
            }
            FiberResult::Return(x) => return acc ^ x ^ p ^ q ^ r ^ t ^ u ^ v,
        }
    }
}

/// The same computation with a plain closure instead of a fiber.
#[inline(never)]
fn churn_reference(seed: u64) -> u64 {
    let mut state: Option<[u64; 9]> = None; // a, b, c, d, e, g, h, i, k
    let mut step = |x_in: u64| -> Result<u64, u64> {
        let st = state.get_or_insert_with(|| {
            let x = x_in;
            [x, x ^ 1, x ^ 2, x ^ 3, x ^ 4, x ^ 5, x ^ 6, x ^ 7, 0]
        });
        let [a, b, c, d, e, g, h, i, k] = st;
        if *k > 0 {
            let x = x_in;
            *a = a.wrapping_mul(31).wrapping_add(x);
            *b = b.rotate_left(7) ^ *a;
            *c = c.wrapping_add(*b);
            *d ^= *c;
            *e = e.wrapping_add(*d);
            *g ^= *e;
            *h = h.wrapping_add(*g);
            *i ^= *h;
        }
        if *k == 200 {
            return Err(*a ^ *b ^ *c ^ *d ^ *e ^ *g ^ *h ^ *i);
        }
        let y = a.wrapping_add(*b) ^ c.rotate_left(3) ^ *d ^ *e ^ *g ^ *h ^ *i ^ *k;
        *k += 1;
        Ok(y)
    };
    let (mut p, mut q, mut r, mut t, mut u, mut v) = (
        seed,
        !seed,
        seed.wrapping_mul(3),
        seed.wrapping_mul(5),
        seed.wrapping_mul(7),
        1,
    );
    let mut acc = 0u64;
    loop {
        match step(p ^ q ^ r) {
            Ok(y) => {
                acc = acc.wrapping_add(y ^ t ^ u ^ v);
                p = p.wrapping_add(y);
                q = q.rotate_right(5) ^ p;
                r = r.wrapping_mul(3) ^ q;
                t = t.wrapping_add(r);
                u ^= t;
                v = v.wrapping_add(u);
            }
            Err(x) => return acc ^ x ^ p ^ q ^ r ^ t ^ u ^ v,
        }
    }
}

#[test]
fn live_values_survive_many_switches_on_both_sides_and_when_nested() {
    for seed in [1u64, 0xDEAD_BEEF, u64::MAX / 3] {
        let want = churn_reference(seed);
        assert_eq!(churn::<PerFiberFp>(seed), want);
        assert_eq!(churn::<SharedFp>(seed), want);
        // Nested: an outer fiber of each kind runs the churn of the other.
        let mut outer = Fiber::<(), u64, u64, PerFiberFp>::new(move |s, ()| {
            let a = churn::<SharedFp>(seed);
            s.suspend(a);
            churn::<PerFiberFp>(seed)
        })
        .unwrap();
        assert_eq!(outer.resume(()), FiberResult::Yield(want));
        assert_eq!(outer.resume(()), FiberResult::Return(want));
        let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
        let mut outer = Fiber::<(), u64, u64, SharedFp>::with_shared_fp(stack, move |s, ()| {
            let a = churn::<PerFiberFp>(seed);
            s.suspend(a);
            churn::<SharedFp>(seed)
        });
        assert_eq!(outer.resume(()), FiberResult::Yield(want));
        assert_eq!(outer.resume(()), FiberResult::Return(want));
    }
}

/// A backtrace taken inside a fiber ends at the trampoline, the first code
/// on its stack, right after `fiber_root`: the walk stops there because the
/// trampoline has no unwind information.
#[test]
fn a_backtrace_inside_a_fiber_ends_at_the_trampoline_after_fiber_root() {
    let mut f = Fiber::new(|_: &Suspender<(), ()>, ()| {
        format!("{}", std::backtrace::Backtrace::force_capture())
    })
    .unwrap();
    let FiberResult::Return(bt) = f.resume(()) else {
        panic!("the fiber returns its backtrace")
    };
    let frames: Vec<&str> = bt
        .lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.trim().parse::<u32>().is_ok())
        })
        .collect();
    let [.., before_last, last] = frames.as_slice() else {
        panic!("a backtrace of at least two frames:\n{bt}")
    };
    assert!(
        last.contains("trampoline") && before_last.contains("fiber_root"),
        "the walk should end at the trampoline, right after fiber_root; it ends with \
         {before_last:?} then {last:?}; whole backtrace:\n{bt}"
    );
}

/// A minimal intrusive registry, sound by Pin's drop guarantee alone: a
/// pinned `Node` registers its address and unregisters in `Drop`, so the
/// registry may read every registered node.
mod registry {
    use std::cell::RefCell;
    use std::marker::PhantomPinned;
    use std::pin::Pin;
    use std::rc::Rc;

    #[derive(Default, Clone)]
    pub struct Registry(Rc<RefCell<Vec<*const Node>>>);

    pub struct Node {
        value: u64,
        registry: Registry,
        _pin: PhantomPinned,
    }

    impl Node {
        pub fn new(value: u64, registry: &Registry) -> Self {
            Node {
                value,
                registry: registry.clone(),
                _pin: PhantomPinned,
            }
        }
        pub fn register(self: Pin<&mut Self>) {
            let p: *const Node = &*self;
            self.registry.0.borrow_mut().push(p);
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let p: *const Node = self;
            self.registry.0.borrow_mut().retain(|&q| q != p);
        }
    }

    impl Registry {
        pub fn sum(&self) -> u64 {
            // SAFETY: a node is in the list only while pinned and not yet
            // dropped, and Pin guarantees drop before its memory goes away.
            self.0.borrow().iter().map(|&p| unsafe { (*p).value }).sum()
        }
    }
}

/// The same fight seen from safe code: a registry that relies on `Pin`
/// alone must never read a node on a freed fiber stack (a child process,
/// so that a SIGSEGV would fail this test and not the harness).
#[test]
fn safe_code_never_reads_a_freed_fiber_stack_after_a_panicking_yield_during_a_forced_unwind() {
    const ROLE: &str = "ATTACKS_PIN_CHILD";
    if std::env::var(ROLE).is_ok() {
        let reg = registry::Registry::default();
        let r2 = reg.clone();
        let mut fiber = Fiber::new(move |s: &Suspender<(), PanicOnDrop>, ()| {
            let mut node = pin!(registry::Node::new(42, &r2));
            node.as_mut().register();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| s.suspend(PanicOnDrop(false))));
            s.suspend(PanicOnDrop(true));
        })
        .unwrap();
        assert!(matches!(
            fiber.resume(()),
            FiberResult::Yield(PanicOnDrop(false))
        ));
        assert_eq!(reg.sum(), 42);
        let _ = silence_panics(|| panic::catch_unwind(AssertUnwindSafe(move || drop(fiber))));
        // Were the node still registered, this would read the freed stack.
        assert_eq!(
            reg.sum(),
            0,
            "the pinned node was dropped, so it left the registry"
        );
        return;
    }
    let out = test_support::run_this_test_alone(
        "safe_code_never_reads_a_freed_fiber_stack_after_a_panicking_yield_during_a_forced_unwind",
        ROLE,
        "1",
    );
    assert!(
        out.status.success(),
        "the child failed ({:?}): the registry kept, or read, a pinned node on the fiber's \
         freed stack; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(target_arch = "x86_64")]
mod shared_fp_exact {
    use super::*;

    /// MXCSR's control bits and the x87 control word, as they are now.
    fn read() -> (u32, u16) {
        let (mut m, mut c) = (0u32, 0u16);
        // SAFETY: stores into two locals of the right sizes.
        unsafe {
            core::arch::asm!("stmxcsr [{}]", "fnstcw [{}]", in(reg) &mut m, in(reg) &mut c, options(nostack))
        };
        (m & 0xFFC0, c)
    }
    /// Loads both control words.
    fn write(m: u32, c: u16) {
        // SAFETY: loads from two locals holding valid control words (all
        // exceptions stay masked in every value the test uses).
        unsafe {
            core::arch::asm!("ldmxcsr [{}]", "fldcw [{}]", in(reg) &m, in(reg) &c, options(nostack))
        };
    }

    /// A `SharedFp` switch must hand over the control words exactly (not
    /// just one rounding bit), in both directions, and never load the
    /// frame's uninitialised slot.
    #[test]
    fn a_shared_fp_switch_hands_over_both_control_words_exactly_both_ways() {
        let saved = read();
        let a = (0x1F80 | 0x6000, 0x037F & !0x0300 | 0x0C00); // RZ, 24-bit precision, x87 RZ
        let f = (0x1F80 | 0x8000 | 0x2000, 0x027F | 0x0400); // FTZ + round down; 53-bit, x87 down
        let b = (0x1F80 | 0x4000, 0x037F | 0x0800); // round up
        let stack = Stack::new(Stack::DEFAULT_SIZE).unwrap();
        let mut fiber =
            Fiber::with_shared_fp(stack, move |s: &Suspender<(), (u32, u16), SharedFp>, ()| {
                let seen_at_start = read();
                write(f.0, f.1);
                s.suspend(seen_at_start);
                read()
            });
        write(a.0, a.1);
        let r1 = fiber.resume(());
        let after_suspend = read();
        write(b.0, b.1);
        let r2 = fiber.resume(());
        write(saved.0, saved.1);
        assert_eq!(
            r1,
            FiberResult::Yield(a),
            "the fiber starts with the resumer's words"
        );
        assert_eq!(after_suspend, f, "the resumer gets the fiber's words back");
        assert_eq!(
            r2,
            FiberResult::Return(b),
            "the resumed fiber has the resumer's new words"
        );
    }
}
