//! The outputs chapter 1 shows are what the examples print: every block
//! of the book announced by `<!-- output: cargo run -p stage-01-asm-fibers ... -->`
//! is compared with a real run (see the `book-check` crate).

#[test]
fn the_books_example_outputs_are_what_the_examples_print() {
    book_check::Outputs::of("stage-01-asm-fibers").check();
}
