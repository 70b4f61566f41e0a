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
//! Values cross the switch as a pointer to a `Message<T>` on the sender's
//! stack: the receiver moves the value out at once, while the sender is
//! still suspended inside the switch and its stack cannot change. The
//! sender never drops it, so each value is owned by exactly one side. The
//! pointer itself carries the rest, so neither side reads memory to learn
//! what kind of message it got:
//!
//! ```text
//!   resumer -> fiber   &Message<Input>           resume with this input
//!                      0 (UNWIND)                unwind your stack and end
//!   fiber -> resumer   &Message<Yield>           suspended with this value
//!                      &Message<Ending> | 1      ended (returned, panicked, unwound)
//! ```

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

/// Whether a fiber carries its own floating-point control state: a type,
/// [`PerFiberFp`] (the default) or [`SharedFp`], chosen when the fiber is
/// built, so that every switch is compiled for its kind with no test at run
/// time.
///
/// On x86-64 the System V ABI makes the control bits of MXCSR and the x87
/// control word callee-saved, so by default each fiber keeps its own (a
/// fresh fiber starts with the defaults, and a rounding mode set inside a
/// fiber stays inside it). That costs a save and a restore of both words
/// per switch. A fiber that never changes them can share the thread's
/// instead, as corosensei's coroutines do, and switch faster.
///
/// On AArch64 and RISC-V, FPCR and fcsr are thread state in the ABI and are
/// never switched: both kinds behave as `SharedFp`.
pub trait FpControl: sealed::Sealed + 'static {
    /// Whether the switch saves and loads the control words.
    const PER_FIBER: bool;
}

/// The fiber keeps its own control words (x86-64), starting from the
/// defaults. Built by `Fiber::new` and `Fiber::with_stack`.
#[derive(Debug)]
pub enum PerFiberFp {}

/// The fiber uses whatever control words the thread has when it is
/// resumed, and a change it makes is seen by its resumer. Built by
/// `Fiber::with_shared_fp`.
#[derive(Debug)]
pub enum SharedFp {}

impl FpControl for PerFiberFp {
    const PER_FIBER: bool = true;
}

impl FpControl for SharedFp {
    const PER_FIBER: bool = false;
}

mod sealed {
    /// Only the two kinds above: the switch knows no other.
    pub trait Sealed {}
    impl Sealed for super::PerFiberFp {}
    impl Sealed for super::SharedFp {}
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

/// The resumer's messages to the fiber, as the fiber decodes them.
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
}

/// Size of the link header at the top of every fiber stack.
const LINK_HEADER: usize = 16;

fn fiber_sp_slot(top: *mut u8) -> *mut StackPointer {
    top.wrapping_sub(8).cast()
}

fn resumer_sp_slot(top: *mut u8) -> *mut StackPointer {
    top.wrapping_sub(16).cast()
}

/// A value on its way across a switch. At least 2-aligned, so the low bit
/// of a pointer to it is free to mark an ending.
#[repr(C)]
struct Message<T> {
    value: ManuallyDrop<T>,
    _even: [u16; 0],
}

impl<T> Message<T> {
    #[inline(always)]
    fn new(value: T) -> Self {
        Message {
            value: ManuallyDrop::new(value),
            _even: [],
        }
    }

    /// The word to hand to the switch.
    #[inline(always)]
    fn as_word(&mut self) -> usize {
        ptr::from_mut(self) as usize
    }
}

/// The resumer's word for "unwind": no message is ever at address 0.
const UNWIND: usize = 0;

/// Set in the fiber's last reply, which points at its `Ending`.
const ENDED: usize = 1;

/// Moves the value out of a message word (its `ENDED` bit ignored).
///
/// # Safety
/// `word` must come from a switch whose sender made it with
/// `Message::<T>::as_word` (of exactly this `T`) on a live message that it
/// will never touch again; and each message must be received exactly once.
#[inline(always)]
unsafe fn receive<T>(word: usize) -> T {
    let message = (word & !ENDED) as *mut Message<T>;
    // SAFETY: guaranteed by the caller.
    unsafe { ManuallyDrop::take(&mut (*message).value) }
}

/// Decodes the resumer's word.
///
/// # Safety
/// As for `receive`, for a word that `switch_in_with` sent.
#[inline(always)]
unsafe fn receive_command<Input>(word: usize) -> Command<Input> {
    if word == UNWIND {
        Command::Unwind
    } else {
        // SAFETY: the caller's promise.
        Command::Resume(unsafe { receive::<Input>(word) })
    }
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
pub struct Fiber<Input = (), Yield = (), Return = (), Fp: FpControl = PerFiberFp> {
    /// `stack.top()`, kept at hand: every switch starts from it.
    top: *mut u8,
    stack: Stack,
    finished: bool,
    _marker: FiberMarker<Input, Yield, Return>,
    _fp: PhantomData<Fp>,
}

impl<Input, Yield, Return, Fp: FpControl> fmt::Debug for Fiber<Input, Yield, Return, Fp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("stack", &self.stack)
            .field("finished", &self.finished)
            .field("fp_control_per_fiber", &Fp::PER_FIBER)
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
        Self::with_fp_control(stack, f)
    }
}

impl<Input, Yield, Return> Fiber<Input, Yield, Return, SharedFp> {
    /// Creates a fiber that will run `f` on `stack` and share the thread's
    /// floating-point control state (see [`FpControl`]).
    pub fn with_shared_fp<F>(stack: Stack, f: F) -> Self
    where
        F: FnOnce(&Suspender<Input, Yield, SharedFp>, Input) -> Return + 'static,
    {
        Self::with_fp_control(stack, f)
    }
}

impl<Input, Yield, Return, Fp: FpControl> Fiber<Input, Yield, Return, Fp> {
    /// Creates a fiber of the kind `Fp` (named by the caller, e.g.
    /// `Fiber::<(), u64, (), SharedFp>::with_fp_control(stack, f)`) that
    /// will run `f` on `stack`.
    pub fn with_fp_control<F>(stack: Stack, f: F) -> Self
    where
        F: FnOnce(&Suspender<Input, Yield, Fp>, Input) -> Return + 'static,
    {
        let top = stack.top();
        let start = Start {
            closure: f,
            bottom: stack.bottom(),
        };
        let start = Box::into_raw(Box::new(start)).cast::<u8>();
        // SAFETY: the stack is ours and unused; the header and the initial
        // frame fit in its first page, which every stack has.
        unsafe {
            let frame_top = top.sub(LINK_HEADER);
            let initial_sp = arch::init_stack(
                frame_top,
                fiber_root::<F, Input, Yield, Return, Fp>,
                start,
                top,
            );
            fiber_sp_slot(top).write(initial_sp);
            resumer_sp_slot(top).write(ptr::null_mut());
        }
        Fiber {
            top,
            stack,
            finished: false,
            _marker: PhantomData,
            _fp: PhantomData,
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
        if self.finished {
            resumed_after_it_finished();
        }
        let mut message = Message::new(input);
        let reply = self.switch_in_with(message.as_word());
        if reply & ENDED != 0 {
            // SAFETY: the fiber has ended, so the reply is its ending.
            return unsafe { self.ended(reply) };
        }
        // SAFETY: a fiber that has not ended replies with a yield.
        FiberResult::Yield(unsafe { receive::<Yield>(reply) })
    }

    /// What `resume` returns once the fiber has ended: out of line, so that
    /// the common path (a yield) stays short.
    ///
    /// # Safety
    /// `reply` is the fiber's ending message.
    #[cold]
    #[inline(never)]
    unsafe fn ended(&mut self, reply: usize) -> FiberResult<Yield, Return> {
        self.finished = true;
        // SAFETY: the caller's promise.
        match unsafe { receive::<Ending<Return>>(reply) } {
            Ending::Returned(value) => FiberResult::Return(value),
            Ending::Panicked(payload) => panic::resume_unwind(payload),
            Ending::Unwound => unreachable!("a fiber unwinds only when asked to"),
        }
    }

    /// Asks the fiber to unwind and comes back with either a value it
    /// suspended with anyway (`Ok`) or how it ended (`Err`).
    fn switch_in_to_unwind(&mut self) -> Result<Yield, Ending<Return>> {
        let reply = self.switch_in_with(UNWIND);
        // SAFETY: an ended fiber's reply is its ending; otherwise a yield.
        unsafe {
            if reply & ENDED != 0 {
                self.finished = true;
                Err(receive::<Ending<Return>>(reply))
            } else {
                Ok(receive::<Yield>(reply))
            }
        }
    }

    /// Switches into the fiber with `word` (a message, or `UNWIND`), and
    /// returns the fiber's reply.
    #[inline(always)]
    fn switch_in_with(&mut self, word: usize) -> usize {
        let top = self.top;
        // SAFETY: the fiber is not finished, so its saved stack pointer is
        // either the fresh frame or the context saved by its last suspend,
        // on a stack we own; a message behind `word` lives until the fiber
        // has received it.
        unsafe {
            arch::switch_in_fp(
                word,
                fiber_sp_slot(top).read(),
                resumer_sp_slot(top),
                Fp::PER_FIBER,
            )
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
    ///
    /// The fiber is finished before anything else happens: a panic met on
    /// the way (the destructor of a value the fiber suspended with anyway,
    /// or the fiber's own ending) is raised only afterwards, because the
    /// stack must not be freed while frames on it are alive.
    fn unwind(&mut self) {
        let mut first_panic: Option<Box<dyn Any + Send>> = None;
        while !self.finished {
            let panicked = match self.switch_in_to_unwind() {
                // The fiber caught the unwind and suspended again: every
                // suspend during an unwind raises it anew, so keep asking.
                Ok(value) => panic::catch_unwind(AssertUnwindSafe(move || drop(value))).err(),
                Err(Ending::Panicked(payload)) => Some(payload),
                Err(_) => None,
            };
            if let Some(payload) = panicked {
                match first_panic {
                    None => first_panic = Some(payload),
                    Some(_) => drop_payload(payload),
                }
            }
        }
        if let Some(payload) = first_panic {
            if std::thread::panicking() {
                drop_payload(payload);
            } else {
                panic::resume_unwind(payload);
            }
        }
    }
    // ANCHOR_END: unwind
}

impl<Input, Yield, Return, Fp: FpControl> Drop for Fiber<Input, Yield, Return, Fp> {
    fn drop(&mut self) {
        self.unwind();
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
unsafe extern "C" fn fiber_root<F, Input, Yield, Return, Fp: FpControl>(
    first: usize,
    start: *mut u8,
    top: *mut u8,
) -> !
where
    F: FnOnce(&Suspender<Input, Yield, Fp>, Input) -> Return,
{
    // SAFETY: `with_stack` boxed a Start<F>; the first message is a Command<Input>.
    let (start, command) = unsafe {
        (
            Box::from_raw(start.cast::<Start<F>>()),
            receive_command::<Input>(first),
        )
    };
    let Start { closure, bottom } = *start;
    let ending = match command {
        Command::Resume(input) => {
            let suspender = Suspender {
                top,
                bottom,
                usable_size: top as usize - bottom as usize,
                unwinding: Cell::new(false),
                _marker: PhantomData,
                _fp: PhantomData,
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
    let mut message = Message::new(ending);
    let mut never_resumed: StackPointer = ptr::null_mut();
    // SAFETY: everything this frame owned has been moved into `message`,
    // which the resumer takes at once: the ENDED bit tells it that this
    // message is an ending (and the null saved stack pointer tells
    // `saved_stack_pointer` there is nothing left to resume). The resumer's
    // context was saved by the switch that brought us here, of this fiber's
    // kind.
    unsafe {
        fiber_sp_slot(top).write(ptr::null_mut());
        arch::switch_back_fp(
            message.as_word() | ENDED,
            resumer_sp_slot(top).read(),
            &raw mut never_resumed,
            Fp::PER_FIBER,
        );
    }
    unreachable!("a finished fiber is never resumed")
}
// ANCHOR_END: root

/// The fiber's side of the link: passed to the fiber's closure, it lets the
/// fiber suspend from any call depth.
///
/// `Fp` is the fiber's kind of floating-point control state, so that
/// `suspend` makes the switch its resumer's switch pairs with.
pub struct Suspender<Input, Yield, Fp: FpControl = PerFiberFp> {
    top: *mut u8,
    /// The lowest usable address of the fiber's stack: `suspend` checks
    /// that it runs between `bottom` and `top`.
    bottom: *mut u8,
    /// `top - bottom`.
    usable_size: usize,
    /// Set once `suspend` has been told to unwind the fiber.
    unwinding: Cell<bool>,
    _marker: PhantomData<fn(Yield) -> Input>,
    _fp: PhantomData<Fp>,
}

impl<Input, Yield, Fp: FpControl> fmt::Debug for Suspender<Input, Yield, Fp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suspender")
            .field("stack_top", &self.top)
            .finish()
    }
}

impl<Input, Yield, Fp: FpControl> Suspender<Input, Yield, Fp> {
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
        // Where are we? The address of a local is on the running stack.
        // (Checked before `value` goes into a message, so that the panic
        // still drops it.) One unsigned comparison: an address below
        // `bottom` wraps around to a huge offset.
        let probe = 0u8;
        let here = &raw const probe as usize;
        if here.wrapping_sub(self.bottom as usize) >= self.usable_size {
            called_outside_its_fiber();
        }
        let mut message = Message::new(value);
        // SAFETY: we run on the fiber's stack (checked above), so the fiber
        // is the one running and its resumer is suspended inside
        // `switch_in`, with its saved stack pointer in the header; the
        // resumer's switch was of the same kind.
        let reply = unsafe {
            arch::switch_back_fp(
                message.as_word(),
                resumer_sp_slot(self.top).read(),
                fiber_sp_slot(self.top),
                Fp::PER_FIBER,
            )
        };
        // SAFETY: the resumer always sends a Command<Input>.
        match unsafe { receive_command::<Input>(reply) } {
            Command::Resume(input) => input,
            Command::Unwind => {
                self.unwinding.set(true);
                panic::resume_unwind(Box::new(ForcedUnwind))
            }
        }
    }
    // ANCHOR_END: suspend
}

/// Drops a panic's payload, whose own destructor may panic too (a payload
/// is any value given to `panic_any`): that second payload is forgotten,
/// since there is nobody left to hand it to.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn resumed_after_it_finished() -> ! {
    panic!("resumed a fiber that has already finished")
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
