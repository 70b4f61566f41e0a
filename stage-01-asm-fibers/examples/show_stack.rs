//! Prints the top of a fiber's stack, word by word, when the fiber is fresh
//! and again when it is suspended, so you can check the diagrams in
//! `src/arch/<your ISA>.rs` against real memory.
//!
//! Run: `cargo run -p stage-01-asm-fibers --example show_stack`

use fibers::{Fiber, Stack, Suspender, arch};

fn print_context(fiber: &Fiber<(), (), ()>, title: &str) {
    let top = fiber.stack().top() as usize;
    let sp = fiber.saved_stack_pointer().expect("fiber is not finished") as usize;
    let context_top = sp + 8 * arch::SAVED_CONTEXT.len();
    println!(
        "\n{title}: saved stack pointer {sp:#x}, {} bytes below the top",
        top - sp
    );
    println!("{:>18}  {:>18}  meaning", "address", "value");
    let word = |address: usize| {
        // SAFETY: every address from sp to top lies inside the fiber's
        // stack, which is alive and not running while we read it.
        unsafe { (address as *const usize).read() }
    };
    // Top down, like the diagrams: the link header first...
    for (offset, meaning) in [
        (8, "link header: fiber's saved sp"),
        (16, "link header: resumer's saved sp"),
    ] {
        println!(
            "{:#18x}  {:#18x}  {meaning}",
            top - offset,
            word(top - offset)
        );
    }
    // ...then whatever the fiber's own frames hold...
    let frames = (top - 16).saturating_sub(context_top);
    if frames > 0 {
        println!(
            "{:>18}  {:>18}  ({frames} bytes of the fiber's own frames)",
            "...", "..."
        );
    }
    // ...and at the bottom the context `switch` saved, as the diagram shows it.
    for (index, name) in arch::SAVED_CONTEXT.iter().enumerate().rev() {
        let address = sp + 8 * index;
        println!("{address:#18x}  {:#18x}  saved {name}", word(address));
    }
}

fn main() -> std::io::Result<()> {
    let stack = Stack::new(16 * 1024)?;
    println!(
        "stack: guard page {:#x}..{:#x}, usable {:#x}..{:#x} ({} KiB)",
        stack.guard().start,
        stack.guard().end,
        stack.bottom() as usize,
        stack.top() as usize,
        stack.usable_size() / 1024
    );
    let mut fiber = Fiber::with_stack(stack, |suspender: &Suspender<(), ()>, ()| {
        let marker = 0xC0FFEE_u64;
        suspender.suspend(());
        std::hint::black_box(marker);
    });
    print_context(
        &fiber,
        "fresh fiber (switch will 'return' into the trampoline)",
    );
    fiber.resume(());
    print_context(&fiber, "suspended fiber (inside Suspender::suspend)");
    fiber.resume(());
    println!("\nfinished: {}", fiber.is_finished());
    Ok(())
}
