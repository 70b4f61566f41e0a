//! What a fiber promises its user, one behaviour per test.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use fibers::{Fiber, FiberResult, Stack, Suspender};

#[test]
fn values_pass_both_ways_through_resume_and_suspend() {
    let mut fiber = Fiber::new(|suspender: &Suspender<i32, String>, first: i32| {
        let second = suspender.suspend(format!("got {first}"));
        let third = suspender.suspend(format!("got {second}"));
        first + second + third
    })
    .unwrap();
    assert_eq!(fiber.resume(1), FiberResult::Yield("got 1".to_string()));
    assert_eq!(fiber.resume(20), FiberResult::Yield("got 20".to_string()));
    assert_eq!(fiber.resume(300), FiberResult::Return(321));
    assert!(fiber.is_finished());
}

#[test]
fn a_fiber_suspends_from_any_call_depth() {
    fn descend(depth: u32, suspender: &Suspender<(), u32>) {
        if depth == 0 {
            return;
        }
        suspender.suspend(depth);
        descend(depth - 1, suspender);
    }
    let mut fiber = Fiber::new(|suspender: &Suspender<(), u32>, ()| descend(3, suspender)).unwrap();
    let mut yielded = Vec::new();
    while let FiberResult::Yield(depth) = fiber.resume(()) {
        yielded.push(depth);
    }
    assert_eq!(yielded, [3, 2, 1]);
}

#[test]
fn many_fibers_interleave_in_the_order_they_are_resumed() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut fibers: Vec<Fiber<(), (), ()>> = (0..4)
        .map(|id| {
            let log = Rc::clone(&log);
            Fiber::new(move |suspender: &Suspender<(), ()>, ()| {
                for step in 0..3 {
                    log.borrow_mut().push((id, step));
                    suspender.suspend(());
                }
            })
            .unwrap()
        })
        .collect();
    while fibers.iter().any(|f| !f.is_finished()) {
        for fiber in fibers.iter_mut().filter(|f| !f.is_finished()) {
            fiber.resume(());
        }
    }
    let expected: Vec<(i32, i32)> = (0..3)
        .flat_map(|step| (0..4).map(move |id| (id, step)))
        .collect();
    assert_eq!(*log.borrow(), expected);
}

#[test]
fn a_fiber_can_resume_another_fiber_nested_inside_it() {
    let mut outer = Fiber::new(|outer_suspender: &Suspender<(), &'static str>, ()| {
        let mut inner = Fiber::new(|inner_suspender: &Suspender<(), &'static str>, ()| {
            inner_suspender.suspend("inner 1");
            "inner done"
        })
        .unwrap();
        let FiberResult::Yield(first) = inner.resume(()) else {
            panic!("inner should suspend")
        };
        outer_suspender.suspend(first);
        let FiberResult::Return(last) = inner.resume(()) else {
            panic!("inner should return")
        };
        outer_suspender.suspend(last);
        "outer done"
    })
    .unwrap();
    assert_eq!(outer.resume(()), FiberResult::Yield("inner 1"));
    assert_eq!(outer.resume(()), FiberResult::Yield("inner done"));
    assert_eq!(outer.resume(()), FiberResult::Return("outer done"));
}

#[test]
fn a_panic_inside_a_fiber_reaches_the_resumer_with_its_message() {
    let mut fiber = Fiber::new(|suspender: &Suspender<(), ()>, ()| {
        suspender.suspend(());
        panic!("boom in the fiber");
    })
    .unwrap();
    assert_eq!(fiber.resume(()), FiberResult::Yield(()));
    let payload = panic::catch_unwind(AssertUnwindSafe(|| fiber.resume(()))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in the fiber"));
    assert!(fiber.is_finished(), "a panicked fiber is finished");
}

#[test]
#[should_panic(expected = "resumed a fiber that has already finished")]
fn resuming_a_finished_fiber_is_a_clear_panic() {
    let mut fiber = Fiber::new(|_: &Suspender<(), ()>, ()| 7).unwrap();
    assert_eq!(fiber.resume(()), FiberResult::Return(7));
    fiber.resume(());
}

/// Counts how many of its values have been dropped.
#[derive(Clone)]
struct DropCounter(Rc<Cell<usize>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn dropping_a_suspended_fiber_drops_the_locals_on_its_stack() {
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(Rc::clone(&drops));
    let mut fiber = Fiber::new(move |suspender: &Suspender<(), ()>, ()| {
        let _captured = counter;
        let _local = DropCounter(Rc::clone(&_captured.0));
        fn deeper(suspender: &Suspender<(), ()>, counter: &DropCounter) {
            let _deeper_local = counter.clone();
            loop {
                suspender.suspend(());
            }
        }
        deeper(suspender, &_local);
    })
    .unwrap();
    assert_eq!(fiber.resume(()), FiberResult::Yield(()));
    assert_eq!(drops.get(), 0);
    drop(fiber);
    assert_eq!(
        drops.get(),
        3,
        "captured value, local, and the deeper frame's local"
    );
}

#[test]
fn dropping_a_fiber_that_never_ran_drops_its_closure() {
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(Rc::clone(&drops));
    let fiber = Fiber::new(move |_: &Suspender<(), ()>, ()| drop(counter)).unwrap();
    drop(fiber);
    assert_eq!(drops.get(), 1);
}

#[test]
fn into_stack_unwinds_a_suspended_fiber_and_returns_its_stack_for_reuse() {
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(Rc::clone(&drops));
    let mut fiber = Fiber::with_stack(
        Stack::new(32 * 1024).unwrap(),
        move |suspender: &Suspender<(), ()>, ()| {
            let _held = counter;
            suspender.suspend(());
        },
    );
    fiber.resume(());
    let stack = fiber.into_stack();
    assert_eq!(drops.get(), 1);
    assert_eq!(stack.usable_size(), 32 * 1024);
    let mut reused = Fiber::with_stack(stack, |_: &Suspender<(), ()>, ()| "ran on a reused stack");
    assert_eq!(
        reused.resume(()),
        FiberResult::Return("ran on a reused stack")
    );
}

#[test]
fn fibers_run_on_several_os_threads_at_once() {
    let handles: Vec<_> = (0..4u64)
        .map(|id| {
            std::thread::spawn(move || {
                let mut fiber =
                    Fiber::new(move |suspender: &Suspender<u64, u64>, mut total: u64| {
                        for _ in 0..1000 {
                            total += suspender.suspend(total);
                        }
                        total
                    })
                    .unwrap();
                let mut result = fiber.resume(id);
                while let FiberResult::Yield(_) = result {
                    result = fiber.resume(1);
                }
                result
            })
        })
        .collect();
    for (id, handle) in handles.into_iter().enumerate() {
        assert_eq!(
            handle.join().unwrap(),
            FiberResult::Return(id as u64 + 1000)
        );
    }
}

#[test]
fn a_suspended_fiber_dropped_while_its_owner_unwinds_still_drops_its_locals() {
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(Rc::clone(&drops));
    let mut fiber = Fiber::new(move |suspender: &Suspender<(), ()>, ()| {
        let _held = counter;
        suspender.suspend(());
    })
    .unwrap();
    fiber.resume(());
    // The fiber is dropped by the unwinding of a panic on the resumer's side.
    let caught = panic::catch_unwind(AssertUnwindSafe(move || {
        let _owned = fiber;
        panic!("the owner panics");
    }));
    assert!(caught.is_err());
    assert_eq!(drops.get(), 1, "the fiber's local was dropped");
}

#[test]
fn a_fiber_that_catches_its_forced_unwind_and_suspends_again_is_unwound_again() {
    let drops = Rc::new(Cell::new(0));
    let caught_unwinds = Rc::new(Cell::new(0));
    let counter = DropCounter(Rc::clone(&drops));
    let caught = Rc::clone(&caught_unwinds);
    let mut fiber = Fiber::new(move |suspender: &Suspender<(), ()>, ()| {
        let _held = counter;
        let first = panic::catch_unwind(AssertUnwindSafe(|| suspender.suspend(())));
        caught.set(caught.get() + usize::from(first.is_err()));
        suspender.suspend(()); // the drop asks again: this one is not caught
        unreachable!("a fiber being dropped is never resumed normally");
    })
    .unwrap();
    fiber.resume(());
    drop(fiber);
    assert_eq!(caught_unwinds.get(), 1, "the fiber saw the first unwind");
    assert_eq!(drops.get(), 1, "and was unwound to its root by the second");
}

/// Panics when dropped (unless the thread is already panicking).
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("PanicsWhenDropped was dropped");
        }
    }
}

#[test]
fn a_panic_while_dropping_a_never_started_fibers_closure_reaches_the_dropper() {
    let captured = PanicsWhenDropped;
    let fiber = Fiber::new(move |_: &Suspender<(), ()>, ()| drop(captured)).unwrap();
    let payload = panic::catch_unwind(AssertUnwindSafe(move || drop(fiber))).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"PanicsWhenDropped was dropped")
    );
}

#[test]
fn into_stack_raises_a_panic_from_dropping_a_never_started_fibers_closure() {
    let captured = PanicsWhenDropped;
    let fiber = Fiber::new(move |_: &Suspender<(), ()>, ()| drop(captured)).unwrap();
    let payload = panic::catch_unwind(AssertUnwindSafe(move || fiber.into_stack())).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"PanicsWhenDropped was dropped")
    );
}

#[test]
fn a_suspender_called_from_another_fibers_stack_is_a_clear_panic_at_the_call() {
    // The outer fiber hands its own Suspender to an inner fiber as input;
    // calling it there would save the outer fiber's context on the inner
    // fiber's stack. It must panic at the call instead, naming the mistake.
    type Outer = Suspender<(), ()>;
    let mut outer = Fiber::new(|outer_suspender: &Outer, ()| {
        let mut inner = Fiber::new(|_: &Suspender<&Outer, ()>, smuggled: &Outer| {
            smuggled.suspend(());
        })
        .unwrap();
        inner.resume(outer_suspender);
    })
    .unwrap();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| outer.resume(())));
    let payload = match outcome {
        Ok(result) => panic!(
            "the misplaced suspend was obeyed: the outer fiber's resumer got {result:?}; \
             expected a panic at the suspend call"
        ),
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<not a string>");
    assert!(
        message.contains("Suspender::suspend called outside its own fiber"),
        "panic message: {message:?}"
    );
    assert!(outer.is_finished(), "the outer fiber ended with the panic");
    drop(outer); // and dropping it is quiet
}

#[test]
fn a_forced_unwind_payload_rethrown_in_another_fiber_is_an_ordinary_panic_there() {
    // While a fiber is dropped, its `suspend` unwinds with a private payload.
    // Code that catches that payload and raises it again in a *different*
    // fiber must not make that fiber look as if it had been asked to unwind.
    let mut outer = Fiber::new(|suspender: &Suspender<(), ()>, ()| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| suspender.suspend(())));
        let payload = caught.expect_err("the outer fiber is being dropped");
        let payload_type = (*payload).type_id();
        let mut inner = Fiber::new(move |_: &Suspender<(), ()>, ()| {
            panic::resume_unwind(payload);
        })
        .unwrap();
        let inner_ended = panic::catch_unwind(AssertUnwindSafe(|| inner.resume(())));
        let came_back = inner_ended.expect_err("the inner fiber's ending is a panic");
        assert!(
            (*came_back).type_id() == payload_type,
            "the inner fiber's resumer must get the same payload back, got {:?}",
            came_back.downcast_ref::<String>()
        );
    })
    .unwrap();
    assert_eq!(outer.resume(()), FiberResult::Yield(()));
    drop(outer);
}
