//! The outputs the book shows for this stage's examples are what the
//! examples print: every block announced by
//! `<!-- output: cargo run -p stage-05-waker-reactor ... -->` (among them the
//! chapter "From here to tokio") is compared with a real run (see the
//! `book-check` crate).

#[test]
fn the_books_example_outputs_are_what_the_examples_print() {
    book_check::Outputs::of("stage-05-waker-reactor").check();
}
