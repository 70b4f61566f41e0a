//! `cargo run -p book-check --example lint`: every page's problems (length,
//! captions, words about how the course was made), one a line.

fn main() {
    let book = book_check::workspace_root().join("docs").join("src");
    let mut pages: Vec<_> = std::fs::read_dir(&book)
        .expect("docs/src")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let mut count = 0;
    for page in pages {
        let name = page
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        println!(
            "{name}: {} words of prose",
            book_check::lint::prose_words(&text)
        );
        for problem in book_check::lint::problems(&name, &text) {
            println!("  {problem}");
            count += 1;
        }
    }
    println!("{count} problems");
}
