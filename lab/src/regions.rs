//! Finding a lab's regions in a source file, and swapping their contents.
//!
//! ```text
//!     fn poll(...) -> Poll<Record> {
//!         // ANCHOR: lab_4_1_poll        <- begin marker (kept)
//!         let this = self.get_mut();      \
//!         loop { ... }                     > the region's body: the solution,
//!         // ANCHOR_END: lab_4_1_poll    / or the stub once the lab is started
//!     }
//! ```
//!
//! The markers are mdBook anchor lines, so the book's listings, which
//! include code by anchor, never show them.

/// Where a region lies in a file: the line numbers (from 0) of its markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub begin_marker: usize,
    pub end_marker: usize,
}

impl Span {
    /// The first line of the body, counted from 1, for messages.
    pub fn first_line(&self) -> usize {
        self.begin_marker + 2
    }
}

/// Is `line` the marker `ANCHOR: name` (or `ANCHOR_END: name`)?
fn is_marker(line: &str, keyword: &str, name: &str) -> bool {
    let Some(comment) = line.trim().strip_prefix("//") else {
        return false;
    };
    comment
        .trim()
        .strip_prefix(keyword)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest.trim() == name)
}

/// The anchor name of `line` if it is any `ANCHOR:` or `ANCHOR_END:` marker.
fn any_marker(line: &str) -> Option<&str> {
    let comment = line.trim().strip_prefix("//")?.trim();
    let rest = comment
        .strip_prefix("ANCHOR_END")
        .or_else(|| comment.strip_prefix("ANCHOR"))?;
    Some(rest.strip_prefix(':')?.trim())
}

/// Find the region `name` in `text`. A region may not hold other anchors'
/// markers: its stub would replace them, and the lab or book listing they
/// mark would be lost.
pub fn find(text: &str, name: &str) -> Result<Span, String> {
    let lines: Vec<&str> = text.lines().collect();
    let begins: Vec<usize> = (0..lines.len())
        .filter(|&i| is_marker(lines[i], "ANCHOR", name))
        .collect();
    let ends: Vec<usize> = (0..lines.len())
        .filter(|&i| is_marker(lines[i], "ANCHOR_END", name))
        .collect();
    match (begins.as_slice(), ends.as_slice()) {
        ([begin], [end]) if begin < end => {
            let inner = (begin + 1..*end).find_map(|i| Some((i, any_marker(lines[i])?)));
            if let Some((line, other)) = inner {
                return Err(format!(
                    "{name} holds the marker of `{other}` at line {}: anchors must not \
                     be nested inside a lab's region (its stub would delete them)",
                    line + 1
                ));
            }
            Ok(Span {
                begin_marker: *begin,
                end_marker: *end,
            })
        }
        ([], _) | (_, []) => Err(format!(
            "the markers `// ANCHOR: {name}` and `// ANCHOR_END: {name}` are missing \
             (were they deleted while editing?)"
        )),
        _ => Err(format!(
            "the markers of {name} must appear once each, begin before end"
        )),
    }
}

/// The text between the markers (without them).
pub fn body(text: &str, span: Span) -> String {
    let mut body = String::new();
    for line in text
        .lines()
        .skip(span.begin_marker + 1)
        .take(span.end_marker - span.begin_marker - 1)
    {
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// `text` with the region's body replaced by `new_body` (whole lines).
/// Every other line keeps its own ending, and the body takes the end
/// marker's: a file saved with CRLF endings stays so.
pub fn replace(text: &str, span: Span, new_body: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let eol = if lines[span.end_marker].ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i == span.end_marker {
            for body_line in new_body.lines() {
                out.push_str(body_line);
                out.push_str(eol);
            }
        }
        if i <= span.begin_marker || i >= span.end_marker {
            out.push_str(line);
        }
    }
    out
}

/// The stub as it stands in the region: each line indented like the
/// region's first non-blank line (or its begin marker).
pub fn indented_stub(text: &str, span: Span, stub: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let model = lines[span.begin_marker + 1..span.end_marker]
        .iter()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(&lines[span.begin_marker]);
    let indent: String = model.chars().take_while(|c| c.is_whitespace()).collect();
    let mut out = String::new();
    for line in stub.trim_end().lines() {
        if !line.trim().is_empty() {
            out.push_str(&indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Does the body hold the stub (whatever the indentation)?
pub fn holds_stub(body: &str, stub: &str) -> bool {
    squeeze(body) == squeeze(stub)
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "\
fn poll() -> u32 {
    // ANCHOR: lab_4_1_poll
    let x = 1;
    x + 1
    // ANCHOR_END: lab_4_1_poll
}
";

    #[test]
    fn a_region_is_the_lines_between_its_markers() {
        let span = find(SOURCE, "lab_4_1_poll").unwrap();
        assert_eq!(
            span,
            Span {
                begin_marker: 1,
                end_marker: 4
            }
        );
        assert_eq!(span.first_line(), 3);
        assert_eq!(body(SOURCE, span), "    let x = 1;\n    x + 1\n");
    }

    #[test]
    fn a_stub_replaces_the_body_and_keeps_the_markers_and_the_rest() {
        let span = find(SOURCE, "lab_4_1_poll").unwrap();
        let stub = indented_stub(SOURCE, span, "todo!(\"lab 4.1\")");
        let blanked = replace(SOURCE, span, &stub);
        assert_eq!(
            blanked,
            "fn poll() -> u32 {\n    // ANCHOR: lab_4_1_poll\n    todo!(\"lab 4.1\")\n    \
             // ANCHOR_END: lab_4_1_poll\n}\n"
        );
        let span = find(&blanked, "lab_4_1_poll").unwrap();
        assert!(holds_stub(&body(&blanked, span), "todo!(\"lab 4.1\")"));
        // Putting the body back gives the file back, byte for byte.
        let restored = replace(
            &blanked,
            span,
            &body(SOURCE, find(SOURCE, "lab_4_1_poll").unwrap()),
        );
        assert_eq!(restored, SOURCE);
    }

    #[test]
    fn a_file_with_crlf_line_endings_keeps_them_through_a_stub_and_back() {
        let crlf = SOURCE.replace('\n', "\r\n");
        let span = find(&crlf, "lab_4_1_poll").unwrap();
        let solution = body(&crlf, span);
        let stub = indented_stub(&crlf, span, "todo!()");
        let blanked = replace(&crlf, span, &stub);
        assert_eq!(
            blanked.matches('\n').count(),
            blanked.matches("\r\n").count()
        );
        assert!(blanked.contains("    todo!()\r\n"), "{blanked:?}");
        let span = find(&blanked, "lab_4_1_poll").unwrap();
        assert_eq!(replace(&blanked, span, &solution), crlf);
    }

    #[test]
    fn a_region_holding_another_anchors_markers_is_refused_as_nested() {
        // Blanking the outer region would delete the inner markers: the
        // other lab (or the book's listing) would be lost with them.
        let nested = "\
// ANCHOR: lab_4_1_outer
let a = 1;
// ANCHOR: lab_4_2_inner
let b = 2;
// ANCHOR_END: lab_4_2_inner
// ANCHOR_END: lab_4_1_outer
";
        let error = find(nested, "lab_4_1_outer").expect_err("nested");
        assert!(
            error.contains("lab_4_2_inner") && error.contains("line 3"),
            "{error}"
        );
        assert!(
            find(nested, "lab_4_2_inner").is_ok(),
            "the inner region is fine"
        );
        let overlapping = "\
// ANCHOR: lab_4_1_a
// ANCHOR: lab_4_1_b
// ANCHOR_END: lab_4_1_a
// ANCHOR_END: lab_4_1_b
";
        assert!(find(overlapping, "lab_4_1_a").is_err());
        assert!(find(overlapping, "lab_4_1_b").is_err());
        let book_anchor =
            "// ANCHOR: lab_4_1_a\n// ANCHOR_END: listing\n// ANCHOR_END: lab_4_1_a\n";
        assert!(find(book_anchor, "lab_4_1_a").is_err());
    }

    #[test]
    fn a_marker_must_match_the_name_exactly() {
        assert!(find(SOURCE, "lab_4_1").is_err());
        assert!(find("// ANCHOR: a\n// ANCHOR: a\n// ANCHOR_END: a\n", "a").is_err());
        assert!(find("// ANCHOR_END: a\n// ANCHOR: a\n", "a").is_err());
        assert!(is_marker("  //ANCHOR:a", "ANCHOR", "a"));
        assert!(!is_marker("let s = \"// ANCHOR: a\";", "ANCHOR", "a"));
    }
}
