//! Print how big the coroutine's state machines are.
//!
//! `cargo run -p stage-04-futures --example sizes`

use stackless::coroutine::sizes;

fn main() {
    let sizes = sizes();
    println!(
        "lookup_then_fetch (async fn)      {:>5} bytes",
        sizes.async_fn
    );
    println!(
        "LookupThenFetch (hand-written)    {:>5} bytes",
        sizes.hand_written
    );
    println!(
        "  fields of its largest variant   {:>5} bytes",
        sizes.largest_variant_fields
    );
    println!(
        "1 KiB buffer dead at the await    {:>5} bytes",
        sizes.buffer_dead_at_await
    );
    println!(
        "1 KiB buffer live across it       {:>5} bytes",
        sizes.buffer_live_at_await
    );
    // A whole HTTP GET, connect to answer, suspended at any of its awaits:
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
    let get = stackless::http::get(addr, "/1/x");
    println!(
        "http::get (a whole request)       {:>5} bytes",
        std::mem::size_of_val(&get)
    );
}
