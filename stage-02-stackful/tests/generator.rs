//! Stackful generators: yielding from any call depth.

use std::cell::Cell;
use std::rc::Rc;

use green::{Generator, GeneratorState, Runtime, Yielder};

/// A binary search tree, walked recursively.
enum Tree {
    Leaf,
    Node(Box<Tree>, i32, Box<Tree>),
}

impl Tree {
    fn insert(self, value: i32) -> Tree {
        match self {
            Tree::Leaf => Tree::Node(Box::new(Tree::Leaf), value, Box::new(Tree::Leaf)),
            Tree::Node(left, v, right) if value < v => {
                Tree::Node(Box::new(left.insert(value)), v, right)
            }
            Tree::Node(left, v, right) => Tree::Node(left, v, Box::new(right.insert(value))),
        }
    }
}

/// In-order walk: the yield happens deep inside the recursion.
fn walk(tree: &Tree, y: &Yielder<'_, i32>) {
    if let Tree::Node(left, value, right) = tree {
        walk(left, y);
        y.yield_(*value);
        walk(right, y);
    }
}

#[test]
fn a_recursive_tree_walk_yields_every_value_in_order() {
    let input = [50, 30, 70, 20, 40, 60, 80, 35, 45, 65];
    let tree = input.iter().fold(Tree::Leaf, |t, &v| t.insert(v));
    let walked: Vec<i32> = Generator::new(move |y| walk(&tree, y)).unwrap().collect();
    let mut sorted = input.to_vec();
    sorted.sort();
    assert_eq!(walked, sorted);
}

#[test]
fn values_can_be_yielded_from_deep_recursion() {
    fn countdown(n: u32, y: &Yielder<'_, u32>) {
        if n > 0 {
            countdown(n - 1, y);
            y.yield_(n);
        }
    }
    let values: Vec<u32> = Generator::new(|y| countdown(200, y)).unwrap().collect();
    assert_eq!(values, (1..=200).collect::<Vec<_>>());
}

#[test]
fn resume_reports_yields_then_the_return_value_then_nothing() {
    let mut generator = Generator::new(|y| {
        y.yield_(1);
        y.yield_(2);
        "done"
    })
    .unwrap();
    assert_eq!(generator.resume(), Some(GeneratorState::Yielded(1)));
    assert_eq!(generator.resume(), Some(GeneratorState::Yielded(2)));
    assert_eq!(generator.resume(), Some(GeneratorState::Complete("done")));
    assert!(generator.is_finished());
    assert_eq!(generator.resume(), None);
}

#[test]
fn a_panic_inside_the_generator_reaches_the_consumer() {
    let mut generator = Generator::new(|y: &Yielder<'_, u8>| {
        y.yield_(1);
        panic!("generator failed");
    })
    .unwrap();
    assert_eq!(generator.next(), Some(1));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| generator.next()));
    assert_eq!(
        caught.unwrap_err().downcast_ref::<&str>(),
        Some(&"generator failed")
    );
    assert!(generator.is_finished());
    assert_eq!(generator.next(), None);
}

struct DropCounter(Rc<Cell<u32>>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_half_consumed_generator_drops_its_locals() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let mut generator = Generator::new(move |y| {
        let _local = DropCounter(d);
        for i in 0.. {
            y.yield_(i);
        }
    })
    .unwrap();
    assert_eq!(generator.next(), Some(0));
    assert_eq!(drops.get(), 0);
    drop(generator);
    assert_eq!(drops.get(), 1, "the suspended stack was unwound");
}

#[test]
fn generators_work_inside_green_threads_and_interleave_with_them() {
    let (a, b) = Runtime::new()
        .block_on(|| {
            let evens = green::spawn(|| {
                let g = Generator::new(|y| (0..5).for_each(|i| y.yield_(i * 2))).unwrap();
                let mut out = Vec::new();
                for v in g {
                    out.push(v);
                    green::yield_now(); // the generator stays suspended meanwhile
                }
                out
            });
            let odds = green::spawn(|| {
                Generator::new(|y| (0..5).for_each(|i| y.yield_(i * 2 + 1)))
                    .unwrap()
                    .collect::<Vec<_>>()
            });
            (evens.join().unwrap(), odds.join().unwrap())
        })
        .unwrap();
    assert_eq!(a, [0, 2, 4, 6, 8]);
    assert_eq!(b, [1, 3, 5, 7, 9]);
}

#[test]
fn blocking_inside_a_generator_is_refused_with_a_panic() {
    let error = Runtime::new()
        .block_on(|| {
            green::spawn(|| {
                let mut g = Generator::new(|y: &Yielder<'_, ()>| {
                    green::yield_now(); // would suspend the wrong fiber
                    y.yield_(());
                })
                .unwrap();
                g.next();
            })
            .join()
            .unwrap_err()
        })
        .unwrap();
    assert!(
        error
            .panic_message()
            .unwrap()
            .contains("inside a Generator"),
        "{error}"
    );
}

/// A generator is driven like a function its consumer calls again and
/// again, so it runs with the consumer's floating-point control state
/// (`SharedFp` in stage 1), and a rounding mode it sets is the
/// consumer's too, as after any function call that sets one.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_generator_shares_its_consumers_floating_point_control_state() {
    fn read_mxcsr() -> u32 {
        let mut value = 0u32;
        // SAFETY: stmxcsr only writes the 4 bytes we point it at.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack)) };
        value
    }
    fn write_mxcsr(value: u32) {
        // SAFETY: ldmxcsr reads 4 bytes; only rounding changes, every
        // exception stays masked.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack)) };
    }
    const ROUND_TOWARD_ZERO: u32 = 0x6000;
    let before = read_mxcsr();
    let mut generator = Generator::new(|y: &Yielder<'_, u32>| {
        y.yield_(read_mxcsr());
        write_mxcsr(read_mxcsr() | ROUND_TOWARD_ZERO);
        y.yield_(0);
    })
    .unwrap();
    let inherited = generator.next().expect("a first value");
    generator.next();
    let after = read_mxcsr();
    write_mxcsr(before);
    assert_eq!(
        inherited & 0xFFC0,
        before & 0xFFC0,
        "the generator starts with its consumer's MXCSR"
    );
    assert_eq!(
        after & ROUND_TOWARD_ZERO,
        ROUND_TOWARD_ZERO,
        "a rounding mode the generator sets is its consumer's (MXCSR {after:#06x})"
    );
}
