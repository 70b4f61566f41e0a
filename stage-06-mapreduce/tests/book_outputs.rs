//! The outputs chapter 6 shows are what the programs print: every block of
//! the book announced by `<!-- output: cargo run -p stage-06-mapreduce ... -->`
//! is compared with a real run (see the `book-check` crate).

#[test]
fn the_books_example_outputs_are_what_the_examples_print() {
    book_check::Outputs::of("stage-06-mapreduce")
        .bin("mapreduce", env!("CARGO_BIN_EXE_mapreduce"))
        .check();
}
