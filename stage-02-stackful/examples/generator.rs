//! Stackful generators: a recursive tree walk that yields from deep inside
//! the recursion, consumed lazily as an `Iterator`.
//!
//! ```text
//! cargo run -p stage-02-stackful --example generator
//! ```

use green::{Generator, Yielder};

/// A binary search tree.
enum Tree {
    Leaf,
    Node(Box<Tree>, u32, Box<Tree>),
}

impl Tree {
    fn insert(self, value: u32) -> Tree {
        match self {
            Tree::Leaf => Tree::Node(Box::new(Tree::Leaf), value, Box::new(Tree::Leaf)),
            Tree::Node(left, v, right) if value < v => {
                Tree::Node(Box::new(left.insert(value)), v, right)
            }
            Tree::Node(left, v, right) => Tree::Node(left, v, Box::new(right.insert(value))),
        }
    }
}

// ANCHOR: walk
/// An ordinary recursive in-order walk. The only unusual thing is `y`:
/// `yield_` suspends the whole generator, however deep the recursion is.
fn walk(tree: &Tree, depth: usize, y: &Yielder<'_, (u32, usize)>) {
    if let Tree::Node(left, value, right) = tree {
        walk(left, depth + 1, y);
        y.yield_((*value, depth));
        walk(right, depth + 1, y);
    }
}
// ANCHOR_END: walk

fn main() -> std::io::Result<()> {
    let values = [50, 30, 70, 20, 40, 60, 80, 35, 45, 65, 10, 90];
    let tree = values.iter().fold(Tree::Leaf, |tree, &v| tree.insert(v));

    // ANCHOR: consume
    let in_order = Generator::new(move |y| walk(&tree, 0, y))?;
    for (value, depth) in in_order {
        println!(
            "{:indent$}{value}  (yielded at recursion depth {depth})",
            "",
            indent = depth * 4
        );
    }
    // ANCHOR_END: consume

    // Lazy: an endless generator, of which we take only what we need.
    let fibonacci = Generator::new(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.yield_(a);
            (a, b) = (b, a + b);
        }
    })?;
    let first: Vec<u64> = fibonacci.take(12).collect();
    println!("first Fibonacci numbers: {first:?}");
    Ok(())
}
