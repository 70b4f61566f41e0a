//! Every page of the book reads in one sitting (at most 2,000 words of
//! prose), names the file of every listing, and speaks to the learner
//! only. `cargo run -p book-check --example lint` prints the same report.

#[test]
fn every_page_reads_in_one_sitting_and_captions_its_listings() {
    let book = book_check::workspace_root().join("docs").join("src");
    let mut problems = Vec::new();
    let mut pages = 0;
    for entry in std::fs::read_dir(&book).expect("docs/src").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        pages += 1;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("a readable page");
        problems.extend(book_check::lint::problems(&name, &text));
    }
    assert!(
        pages > 10,
        "only {pages} pages found under {}",
        book.display()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
