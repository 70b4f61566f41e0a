//! A fiber: a closure running on its own stack, which can suspend itself in
//! the middle of any call and be resumed later exactly where it stopped.
//!
//! Two sides take turns on one OS thread:
//!
//! ```text
//!   resumer (any stack)                      fiber (its own Stack)
//!   ───────────────────                      ─────────────────────
//!   fiber.resume(input) ──── switch ────▶   f(&suspender, input)  starts
//!                                               ...
//!          ◀──────────────── switch ────    suspender.suspend(y)
//!   gets FiberResult::Yield(y)
//!   fiber.resume(input2) ─── switch ────▶   suspend returns input2
//!                                               ...
//!          ◀──────────────── switch ────    f returns r (caught at the root)
//!   gets FiberResult::Return(r)
//! ```
//!
//! Each side finds the other through a 16-byte *link header* at the top of
//! the fiber's stack, so neither needs to know where the other's Rust
//! values live (the `Fiber` may move between resumes):
//!
//! ```text
//!   top-8   fiber's saved stack pointer    (written when the fiber suspends;
//!                                           null once the fiber has finished)
//!   top-16  resumer's saved stack pointer  (written when the fiber is resumed)
//! ```
//!
//! Values cross the switch as a pointer to an `Option<T>` on the sender's
//! stack: the receiver `take`s it at once, while the sender is still
//! suspended inside `switch` and its stack cannot change.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use crate::arch::{self, StackPointer};
use crate::stack::Stack;

/// Whether a fiber carries its own floating-point control state.
///
/// On x86-64 the System V ABI makes the control bits of MXCSR and the x87
/// control word callee-saved, so by default each fiber keeps its own (a
/// fresh fiber starts with the defaults, and a rounding mode set inside a
/// fiber stays inside it). That costs a save and a restore of both words
/// per switch. A fiber that never changes them can share the thread's
/// instead, as corosensei's coroutines do, and switch faster.
///
/// On AArch64 and RISC-V, FPCR and fcsr are thread state in the ABI and are
/// never switched: both choices behave as `Shared`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FpControl {
    /// The fiber keeps its own control words (x86-64), starting from the
    /// defaults.
    #[default]
    PerFiber,
    /// The fiber uses whatever control words the thread has when it is
    /// resumed, and a change it makes is seen by its resumer.
    Shared,
}

/// What `resume` hands back: the fiber either suspended with a value or
/// finished with its closure's result.
#[derive(Debug, PartialEq, Eq)]
pub enum FiberResult<Yield, Return> {
    /// The fiber called `suspend(value)` and can be resumed again.
    Yield(Yield),
    /// The fiber's closure returned; resuming it again is an error.
    Return(Return),
}

/// The resumer's messages to the fiber.
enum Command<Input> {
    /// Carry on, and here is the value `suspend` (or the closure) receives.
    Resume(Input),
    /// The fiber is being dropped: unwind its stack, dropping its locals.
    Unwind,
}

/// How a fiber ended, sent once by its root function.
enum Ending<Return> {
    Returned(Return),
    Panicked(Box<dyn Any + Send>),
    Unwound,
}

/// The panic payload used to unwind a fiber that is being dropped. It is
/// raised with `resume_unwind`, so the panic hook does not print it.
struct ForcedUnwind;

/// What `fiber_root` receives from `with_stack`: the closure, and the
/// lowest address of the fiber's stack for its `Suspender`.
struct Start<F> {
    closure: F,
    bottom: *mut u8,
    fp_control: FpControl,
}

/// Size of the link header at the top of every fiber stack.
const LINK_HEADER: usize = 16;

fn fiber_sp_slot(top: *mut u8) -> *mut StackPointer {
    top.wrapping_sub(8).cast()
}

fn resumer_sp_slot(top: *mut u8) -> *mut StackPointer {
    top.wrapping_sub(16).cast()
}

/// Takes the value a message pointer points to.
///
/// # Safety
/// `message` must come from a `switch` whose sender passed a pointer to a
/// live `Option<T>` of exactly this `T`.
unsafe fn take_message<T>(message: usize) -> T {
    // SAFETY: guaranteed by the caller.
    let slot = unsafe { &mut *(message as *mut Option<T>) };
    slot.take().expect("a fiber message is taken exactly once")
}

/// Marks a fiber's types as used and the fiber itself as `!Send` (the raw
/// pointer): its stack may hold thread-local references, `Rc`s, ...
///
/// `Input` must be *invariant*: the fiber may keep an input on its stack
/// across suspends. Were `Fiber` contravariant in `Input` (as a plain
/// `fn(Input)` would make it), a `Fiber<&'short T>` that holds a `&'short T`
/// could be turned into a `Fiber<&'static T>` and outlive the borrow.
/// `Yield` and `Return` only flow out, so covariance is fine for them.
type FiberMarker<Input, Yield, Return> =
    PhantomData<(*mut (), fn(Input) -> Input, fn() -> (Yield, Return))>;

/// A closure running on its own stack. `Input` is what each `resume` passes
/// in, `Yield` what each `suspend` passes out, `Return` the closure's result.
///
/// A fiber may hold on to its inputs, so it cannot be made to accept
/// longer-lived inputs than it was given (`Fiber` is invariant in `Input`):
///
/// ```compile_fail
/// use fibers::Fiber;
/// fn extend<'short>(fiber: Fiber<&'short str>) -> Fiber<&'static str> {
///     fiber // error: lifetime may not live long enough
/// }
/// ```
pub struct Fiber<Input = (), Yield = (), Return = ()> {
    stack: Stack,
    finished: bool,
    fp_control: FpControl,
    _marker: FiberMarker<Input, Yield, Return>,
}

impl<Input, Yield, Return> fmt::Debug for Fiber<Input, Yield, Return> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("stack", &self.stack)
            .field("finished", &self.finished)
            .field("fp_control", &self.fp_control)
            .finish()
    }
}

impl<Input, Yield, Return> Fiber<Input, Yield, Return> {
    /// Creates a fiber that will run `f` on a new stack of
    /// `Stack::DEFAULT_SIZE` bytes. Nothing runs until the first `resume`,
    /// whose input becomes `f`'s second argument.
    pub fn new<F>(f: F) -> io::Result<Self>
    where
        F: FnOnce(&Suspender<Input, Yield>, Input) -> Return + 'static,
    {
        Ok(Self::with_stack(Stack::new(Stack::DEFAULT_SIZE)?, f))
    }

    // ANCHOR: with_stack
    /// Creates a fiber that will run `f` on `stack` (for example one taken
    /// from a pool; get it back with `into_stack`).
    pub fn with_stack<F>(stack: Stack, f: F) -> Self
    where
        F: FnOnce(&Suspender<Input, Yield>, Input) -> Return + 'static,
    {
        Self::with_fp_control(stack, FpControl::PerFiber, f)
    }

    /// Creates a fiber that will run `f` on `stack`, keeping its own
    /// floating-point control state or sharing the thread's (see
    /// [`FpControl`]).
    pub fn with_fp_control<F>(stack: Stack, fp_control: FpControl, f: F) -> Self
    where
        F: FnOnce(&Suspender<Input, Yield>, Input) -> Return + 'static,
    {
        let top = stack.top();
        let start = Start {
            closure: f,
            bottom: stack.bottom(),
            fp_control,
        };
        let start = Box::into_raw(Box::new(start)).cast::<u8>();
        // SAFETY: the stack is ours and unused; the header and the initial
        // frame fit in its first page, which every stack has.
        unsafe {
            let frame_top = top.sub(LINK_HEADER);
            let initial_sp =
                arch::init_stack(frame_top, fiber_root::<F, Input, Yield, Return>, start, top);
            fiber_sp_slot(top).write(initial_sp);
            resumer_sp_slot(top).write(ptr::null_mut());
        }
        Fiber {
            stack,
            finished: false,
            fp_control,
            _marker: PhantomData,
        }
    }
    // ANCHOR_END: with_stack

    // ANCHOR: resume
    /// Runs the fiber until it suspends or finishes.
    ///
    /// If the fiber panics, the panic is raised again here, in the resumer.
    ///
    /// # Panics
    /// When the fiber has already finished (returned or panicked).
    #[inline(always)]
    pub fn resume(&mut self, input: Input) -> FiberResult<Yield, Return> {
        assert!(!self.finished, "resumed a fiber that has already finished");
        match self.switch_in(Command::Resume(input)) {
            Ok(value) => FiberResult::Yield(value),
            Err(Ending::Returned(value)) => FiberResult::Return(value),
            Err(Ending::Panicked(payload)) => panic::resume_unwind(payload),
            Err(Ending::Unwound) => unreachable!("a fiber unwinds only when asked to"),
        }
    }

    /// Switches into the fiber with `command` and comes back with either a
    /// suspended value (`Ok`) or how the fiber ended (`Err`).
    #[inline(always)]
    fn switch_in(&mut self, command: Command<Input>) -> Result<Yield, Ending<Return>> {
        let top = self.stack.top();
        let mut message = Some(command);
        // SAFETY: the fiber is not finished, so its saved stack pointer is
        // either the fresh frame or the context saved by its last suspend,
        // on a stack we own; `message` lives until the fiber has taken it.
        let reply = unsafe {
            let (arg, load_sp, save_sp) = (
                &raw mut message as usize,
                fiber_sp_slot(top).read(),
                resumer_sp_slot(top),
            );
            // Two direct calls, not a call through a chosen pointer: the
            // branch is predicted, an indirect call costs a little more.
            match self.fp_control {
                FpControl::PerFiber => arch::switch_in(arg, load_sp, save_sp),
                FpControl::Shared => arch::switch_in_shared_fp(arg, load_sp, save_sp),
            }
        };
        // SAFETY: the fiber's root clears the fiber's saved stack pointer
        // before it sends its ending; otherwise the message is a yield.
        unsafe {
            if fiber_sp_slot(top).read().is_null() {
                self.finished = true;
                Err(take_message::<Ending<Return>>(reply))
            } else {
                Ok(take_message::<Yield>(reply))
            }
        }
    }
    // ANCHOR_END: resume

    /// Whether the fiber has returned or panicked.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The fiber's stack, for inspection (the `show_stack` example).
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Where the fiber's registers are saved while it is suspended (or not
    /// yet started); `None` once it has finished.
    pub fn saved_stack_pointer(&self) -> Option<*const u8> {
        // SAFETY: the header lies in our own stack's first page.
        let sp = unsafe { fiber_sp_slot(self.stack.top()).read() };
        (!self.finished && !sp.is_null()).then_some(sp.cast_const())
    }

    /// Ends the fiber (unwinding it if it is suspended) and gives its stack
    /// back for reuse.
    pub fn into_stack(mut self) -> Stack {
        // Before `ManuallyDrop`: if the fiber's ending is a panic, it is
        // raised here and `self` is dropped normally, unmapping the stack.
        self.unwind();
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the stack is
        // moved out exactly once.
        unsafe { ptr::read(&this.stack) }
    }

    // ANCHOR: unwind
    /// Drops everything the fiber's stack owns: a fiber that never started
    /// drops its closure, a suspended one unwinds from its `suspend` call up
    /// to its root, running every destructor on the way.
    ///
    /// A fiber that suspends *from a destructor* while it is being unwound
    /// cannot be finished: the next unwind would start inside a destructor
    /// that runs during unwinding, and Rust aborts the process ("panic in a
    /// destructor during cleanup"). Never suspend in `Drop`.
    fn unwind(&mut self) {
        while !self.finished {
            match self.switch_in(Command::Unwind) {
                // The fiber caught the unwind and suspended again: every
                // suspend during an unwind raises it anew, so keep asking.
                Ok(value) => drop(value),
                Err(Ending::Panicked(payload)) if !std::thread::panicking() => {
                    panic::resume_unwind(payload)
                }
                Err(_) => {}
            }
        }
    }
    // ANCHOR_END: unwind
}

impl<Input, Yield, Return> Drop for Fiber<Input, Yield, Return> {
    fn drop(&mut self) {
        self.unwind();
    }
}

/// The fiber's half of the switch that matches its resumer's.
///
/// # Safety
/// As for `arch::switch_back`; `fp_control` is the fiber's own.
#[inline(always)]
unsafe fn switch_back(
    fp_control: FpControl,
    arg: usize,
    load_sp: StackPointer,
    save_sp: *mut StackPointer,
) -> usize {
    // SAFETY: the caller's promises; the resumer used the switch_in of the
    // same kind, so the frames match.
    unsafe {
        match fp_control {
            FpControl::PerFiber => arch::switch_back(arg, load_sp, save_sp),
            FpControl::Shared => arch::switch_back_shared_fp(arg, load_sp, save_sp),
        }
    }
}

// ANCHOR: root
/// The bottom frame of every fiber: runs the closure, catches whatever
/// panic comes out of it, and sends the ending to the resumer. A panic must
/// never unwind past this point: above it there is only `trampoline`, which
/// has no unwind information, and then the end of the stack.
///
/// # Safety
/// Called only by `trampoline`, with the message of the first resume, the
/// `Start` boxed by `with_stack`, and the top of the fiber's stack.
unsafe extern "C" fn fiber_root<F, Input, Yield, Return>(
    first: usize,
    start: *mut u8,
    top: *mut u8,
) -> !
where
    F: FnOnce(&Suspender<Input, Yield>, Input) -> Return,
{
    // SAFETY: `with_stack` boxed a Start<F>; the first message is a Command<Input>.
    let (start, command) = unsafe {
        (
            Box::from_raw(start.cast::<Start<F>>()),
            take_message::<Command<Input>>(first),
        )
    };
    let Start {
        closure,
        bottom,
        fp_control,
    } = *start;
    let ending = match command {
        Command::Resume(input) => {
            let suspender = Suspender {
                top,
                bottom,
                fp_control,
                unwinding: Cell::new(false),
                _marker: PhantomData,
            };
            match panic::catch_unwind(AssertUnwindSafe(|| closure(&suspender, input))) {
                Ok(value) => Ending::Returned(value),
                // Only the unwind this fiber was asked for; the same payload
                // smuggled in from another fiber is an ordinary panic here.
                Err(payload) if payload.is::<ForcedUnwind>() && suspender.unwinding.get() => {
                    Ending::Unwound
                }
                Err(payload) => Ending::Panicked(payload),
            }
        }
        // Dropped before it ever ran. Dropping the closure runs the
        // destructors of what it captured: user code, which may panic too.
        Command::Unwind => match panic::catch_unwind(AssertUnwindSafe(move || drop(closure))) {
            Ok(()) => Ending::Unwound,
            Err(payload) => Ending::Panicked(payload),
        },
    };
    let mut message = Some(ending);
    let mut never_resumed: StackPointer = ptr::null_mut();
    // SAFETY: everything this frame owned has been moved into `message`,
    // which the resumer takes at once. The null fiber stack pointer tells it
    // that this message is an ending; the resumer's context was saved by the
    // switch that brought us here.
    unsafe {
        fiber_sp_slot(top).write(ptr::null_mut());
        switch_back(
            fp_control,
            &raw mut message as usize,
            resumer_sp_slot(top).read(),
            &raw mut never_resumed,
        );
    }
    unreachable!("a finished fiber is never resumed")
}
// ANCHOR_END: root

/// The fiber's side of the link: passed to the fiber's closure, it lets the
/// fiber suspend from any call depth.
pub struct Suspender<Input, Yield> {
    top: *mut u8,
    /// The lowest usable address of the fiber's stack: `suspend` checks
    /// that it runs between `bottom` and `top`.
    bottom: *mut u8,
    /// Which switch the fiber's resumer used, so `suspend` uses its pair.
    fp_control: FpControl,
    /// Set once `suspend` has been told to unwind the fiber.
    unwinding: Cell<bool>,
    _marker: PhantomData<fn(Yield) -> Input>,
}

impl<Input, Yield> fmt::Debug for Suspender<Input, Yield> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suspender")
            .field("stack_top", &self.top)
            .finish()
    }
}

impl<Input, Yield> Suspender<Input, Yield> {
    // ANCHOR: suspend
    /// Hands `value` to the resumer and sleeps until the next `resume`,
    /// whose input is returned.
    ///
    /// If the fiber is dropped instead of resumed, this call does not
    /// return: it unwinds the fiber's stack so its locals are dropped.
    ///
    /// # Panics
    /// When called anywhere but on this fiber's own stack, for example from
    /// a fiber nested inside it that was handed this `Suspender` as input:
    /// the fiber would be saved in the middle of another fiber's stack.
    #[inline(always)]
    pub fn suspend(&self, value: Yield) -> Input {
        let mut message = Some(value);
        let here = &raw const message as usize;
        if !(self.bottom as usize..self.top as usize).contains(&here) {
            called_outside_its_fiber();
        }
        // SAFETY: we run on the fiber's stack (checked above), so the fiber
        // is the one running and its resumer is suspended inside
        // `switch_in`, with its saved stack pointer in the header.
        let reply = unsafe {
            switch_back(
                self.fp_control,
                &raw mut message as usize,
                resumer_sp_slot(self.top).read(),
                fiber_sp_slot(self.top),
            )
        };
        // SAFETY: the resumer always sends a Command<Input>.
        match unsafe { take_message::<Command<Input>>(reply) } {
            Command::Resume(input) => input,
            Command::Unwind => {
                self.unwinding.set(true);
                panic::resume_unwind(Box::new(ForcedUnwind))
            }
        }
    }
    // ANCHOR_END: suspend
}

#[cold]
#[inline(never)]
fn called_outside_its_fiber() -> ! {
    panic!(
        "Suspender::suspend called outside its own fiber (from another fiber's stack, \
         e.g. a nested fiber given the outer fiber's Suspender): only the fiber that \
         received a Suspender may suspend with it"
    )
}
