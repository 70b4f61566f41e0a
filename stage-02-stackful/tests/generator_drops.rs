//! Dropping generators (`SharedFp` fibers) in the middle of an iteration,
//! nested and panicking: everything they made is dropped exactly once.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;

use green::{Generator, Yielder};

struct Counted(Rc<Cell<usize>>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

struct PanicOnDrop(bool);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if self.0 {
            panic!("armed PanicOnDrop dropped");
        }
    }
}

fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let r = f();
    panic::set_hook(hook);
    r
}

/// A generator that catches its forced unwind and yields a value whose drop
/// panics: dropping it mid-iteration still drops its pinned local before
/// the stack is freed.
#[test]
fn a_generator_dropped_mid_iteration_drops_its_pinned_locals_even_when_it_fights_the_unwind() {
    let drops = Rc::new(Cell::new(0));
    let d = Rc::clone(&drops);
    let mut g = Generator::new(move |y: &Yielder<'_, PanicOnDrop>| {
        let pinned = pin!(Counted(d));
        std::hint::black_box(&pinned);
        let _ = panic::catch_unwind(AssertUnwindSafe(|| y.yield_(PanicOnDrop(false))));
        y.yield_(PanicOnDrop(true));
    })
    .unwrap();
    assert!(matches!(g.next(), Some(PanicOnDrop(false))));
    let r = quietly(|| panic::catch_unwind(AssertUnwindSafe(move || drop(g))));
    assert!(r.is_err());
    assert_eq!(
        drops.get(),
        1,
        "the generator's pinned local was never dropped"
    );
}

/// Nested generators, each dropped half-way, with a panic in the middle of
/// one: everything made is dropped once, and a panicked generator is done.
#[test]
fn nested_generators_drop_everything_once_and_stop_after_a_panic() {
    let made = Rc::new(Cell::new(0usize));
    let drops = Rc::new(Cell::new(0usize));
    let mk = {
        let made = Rc::clone(&made);
        let drops = Rc::clone(&drops);
        move || {
            made.set(made.get() + 1);
            Counted(Rc::clone(&drops))
        }
    };
    let mk2 = mk.clone();
    let mut outer = Generator::new(move |y: &Yielder<'_, Counted>| {
        let mk3 = mk2.clone();
        let mut inner = Generator::new(move |yi: &Yielder<'_, Counted>| {
            let _local = mk3();
            for _ in 0..3 {
                yi.yield_(mk3());
            }
            panic!("inner gives up");
        })
        .unwrap();
        let _hold = mk2();
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| inner.next())) {
                Ok(Some(v)) => y.yield_(v),
                Ok(None) => break,
                Err(_) => {
                    assert!(inner.is_finished());
                    assert!(inner.next().is_none());
                    y.yield_(mk2());
                    break;
                }
            }
        }
        y.yield_(mk2());
    })
    .unwrap();
    let got: Vec<Counted> = quietly(|| outer.by_ref().take(4).collect());
    assert_eq!(got.len(), 4);
    drop(got);
    drop(outer);
    drop(mk);
    assert_eq!(
        made.get(),
        drops.get(),
        "made {} dropped {}",
        made.get(),
        drops.get()
    );
}
