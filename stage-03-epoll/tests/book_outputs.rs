//! The outputs chapter 3 shows are what the examples print: every block
//! of the book announced by `<!-- output: cargo run -p stage-03-epoll ... -->`
//! is compared with a real run (see the `book-check` crate).

#[test]
fn the_books_example_outputs_are_what_the_examples_print() {
    book_check::Outputs::of("stage-03-epoll").check();
}
