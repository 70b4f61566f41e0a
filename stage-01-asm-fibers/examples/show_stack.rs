//! Prints the top of a fiber's stack, word by word, when the fiber is fresh
//! and again when it is suspended, so you can check the diagrams in
//! `src/arch/<your ISA>.rs` against real memory. Each word that points into
//! the program's code is labelled with the function it points into, and each
//! word that points into the fiber's stack with its distance from the top.
//!
//! Run: `cargo run -p stage-01-asm-fibers --example show_stack`

use fibers::{Fiber, Stack, Suspender, arch};

/// The functions of this program: (start, size, name), sorted by start,
/// read from the ELF symbol table of the running executable.
type Symbols = Vec<(usize, usize, String)>;

// ANCHOR: print_context
fn print_context(fiber: &Fiber<(), (), ()>, title: &str, describe: &dyn Fn(usize) -> String) {
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
    let line = |address: usize, meaning: &str| {
        let value = word(address);
        println!("{address:#18x}  {value:#18x}  {meaning}{}", describe(value));
    };
    // Top down, like the diagrams: the link header first...
    line(top - 8, "link header: fiber's saved sp");
    line(top - 16, "link header: resumer's saved sp");
    // ...then whatever the fiber's own frames hold...
    let frames = (top - 16).saturating_sub(context_top);
    if frames > 0 {
        println!(
            "{:>18}  {:>18}  ({frames} bytes of the fiber's own frames)",
            "...", "..."
        );
    }
    // ...and at the bottom the context the switch saved, as the diagram shows it.
    for (index, name) in arch::SAVED_CONTEXT.iter().enumerate().rev() {
        line(sp + 8 * index, &format!("saved {name}"));
    }
}
// ANCHOR_END: print_context

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
    let (bottom, top) = (stack.bottom() as usize, stack.top() as usize);
    let symbols = symbols();
    // ANCHOR: describe
    // A closure that captures the symbol table and the stack's bounds: it
    // names what a word points to, if it points anywhere we know.
    let describe = |value: usize| -> String {
        if (bottom..=top).contains(&value) {
            return format!("  (this stack, top - {})", top - value);
        }
        let index = symbols.partition_point(|(start, _, _)| *start <= value);
        match index.checked_sub(1).map(|i| &symbols[i]) {
            Some((start, size, name)) if value < start + size.max(&1) => match value - start {
                0 => format!("  -> {name}"),
                offset => format!("  -> {name} + {offset:#x}"),
            },
            _ => String::new(),
        }
    };
    // ANCHOR_END: describe
    let mut fiber = Fiber::with_stack(stack, |suspender: &Suspender<(), ()>, ()| {
        let marker = 0xC0FFEE_u64;
        suspender.suspend(());
        std::hint::black_box(marker);
    });
    print_context(
        &fiber,
        "fresh fiber (switch will 'return' into the trampoline)",
        &describe,
    );
    fiber.resume(());
    print_context(
        &fiber,
        "suspended fiber (inside Suspender::suspend)",
        &describe,
    );
    fiber.resume(());
    println!("\nfinished: {}", fiber.is_finished());
    Ok(())
}

/// The program's functions from the symbol table of `/proc/self/exe`
/// (ELF64, little-endian: x86-64, AArch64 and RISC-V 64 Linux), moved to
/// where they are loaded. Empty if the table cannot be read (a stripped
/// binary): the dump is then printed without names.
fn symbols() -> Symbols {
    let Ok(elf) = std::fs::read("/proc/self/exe") else {
        return Vec::new();
    };
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap())) as usize
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return Vec::new();
    }
    let (sections, size, count) = (u64_at(0x28), u16_at(0x3A) as usize, u16_at(0x3C) as usize);
    let mut found = Vec::new();
    for section in (0..count).map(|i| sections + i * size) {
        const SYMTAB: u32 = 2;
        if u32_at(section + 4) != SYMTAB {
            continue;
        }
        let (table, table_size) = (u64_at(section + 0x18), u64_at(section + 0x20));
        let strings = u64_at(sections + u32_at(section + 0x28) as usize * size + 0x18);
        for symbol in (table..table + table_size).step_by(24) {
            const FUNC: u8 = 2;
            if elf.get(symbol + 4).is_none_or(|info| info & 0xF != FUNC) {
                continue;
            }
            let name_at = strings + u32_at(symbol) as usize;
            let name = elf[name_at.min(elf.len())..]
                .split(|&b| b == 0)
                .next()
                .unwrap_or_default();
            let name = demangle(&String::from_utf8_lossy(name));
            found.push((u64_at(symbol + 8), u64_at(symbol + 16), name));
        }
    }
    // Position-independent code: everything moved by as much as `main` did.
    let Some(linked_main) = found.iter().find(|(_, _, name)| name == "show_stack::main") else {
        return Vec::new();
    };
    let bias = (main as fn() -> std::io::Result<()> as usize).wrapping_sub(linked_main.0);
    let mut symbols: Symbols = found
        .into_iter()
        .map(|(start, size, name)| (start.wrapping_add(bias), size, name))
        .collect();
    symbols.sort();
    symbols
}

/// `_ZN6fibers4arch10trampoline17h0123456789abcdefE` -> `fibers::arch::trampoline`
/// (Rust's legacy mangling; anything else is returned unchanged).
fn demangle(symbol: &str) -> String {
    let Some(mut rest) = symbol.strip_prefix("_ZN") else {
        return symbol.to_string();
    };
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&n| n > 0) {
        let Ok(len) = rest[..digits].parse::<usize>() else {
            break;
        };
        let Some(part) = rest.get(digits..digits + len) else {
            break;
        };
        // A part that starts with an escape is written with a `_` before it.
        parts.push(part.strip_prefix("_$").map_or(part, |_| &part[1..]));
        rest = &rest[digits + len..];
    }
    if parts
        .last()
        .is_some_and(|last| last.len() == 17 && last.starts_with('h'))
    {
        parts.pop(); // the hash
    }
    let mut name = parts.join("::");
    for (code, text) in [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$RF$", "&"),
        ("$BP$", "*"),
        ("$C$", ","),
        ("$u20$", " "),
        ("$u27$", "'"),
        ("$u5b$", "["),
        ("$u5d$", "]"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("$u7e$", "~"),
        ("..", "::"),
    ] {
        name = name.replace(code, text);
    }
    name
}
