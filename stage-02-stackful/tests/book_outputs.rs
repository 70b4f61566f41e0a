//! The outputs chapter 2 shows are what the examples print: every block
//! of the book announced by `<!-- output: cargo run -p stage-02-stackful ... -->`
//! is compared with a real run (see the `book-check` crate).

#[test]
fn the_books_example_outputs_are_what_the_examples_print() {
    book_check::Outputs::of("stage-02-stackful").check();
}
