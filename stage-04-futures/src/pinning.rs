//! A self-referential future, made sound with `Pin` and `PhantomPinned`.
//!
//! An `async fn` may borrow one of its own locals across an `.await`:
//!
//! ```
//! # use stackless::coroutine::ready_after;
//! async fn first_word_later(text: [u8; 32], len: usize) -> String {
//!     let word: &[u8] = text[..len].split(|&b| b == b' ').next().unwrap_or(&[]);
//!     ready_after(1, ()).await;              // suspended while `word` borrows `text`
//!     String::from_utf8_lossy(word).into_owned()
//! }
//! ```
//!
//! The state machine for that holds both `text` and `word`, and `word` points
//! *into the same value*. Move the value after the borrow was taken and
//! `word` dangles:
//!
//! ```text
//!   at 0x1000 (polled once)              moved to 0x2000
//!   +-------------------------+         +-------------------------+
//!   | text: "hello world ..." |<--+     | text: "hello world ..." |
//!   | word: ptr 0x1000, len 5 |---+     | word: ptr 0x1000 ------------> old place:
//!   +-------------------------+         +-------------------------+     garbage
//! ```
//!
//! [`FirstWord`] is that state machine written by hand. `Future::poll` takes
//! `self: Pin<&mut Self>`: once a value has been pinned, safe code can no
//! longer move it (no `&mut FirstWord`, no `mem::swap`, no moving out).
//! `PhantomPinned` makes `FirstWord` `!Unpin`, which is what makes that
//! promise bind. Moving it *before* the first poll is fine: the borrow does
//! not exist yet.
//!
//! Moving it after pinning does not compile:
//!
//! ```compile_fail,E0596
//! use stackless::pinning::FirstWord;
//! let mut a = Box::pin(FirstWord::new(b"hello world", 1));
//! let mut b = Box::pin(FirstWord::new(b"good bye", 1));
//! // ... poll `a` once, so it borrows itself ...
//! std::mem::swap(&mut *a, &mut *b); // error: `FirstWord` is not `Unpin`
//! ```
//!
//! while the same lines without the swap do:
//!
//! ```
//! use stackless::pinning::FirstWord;
//! let a = Box::pin(FirstWord::new(b"hello world", 1));
//! let b = Box::pin(FirstWord::new(b"good bye", 1));
//! # drop((a, b));
//! ```

use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use crate::coroutine::{ReadyAfter, ready_after};

/// How many bytes of text a [`FirstWord`] holds inline.
pub const CAPACITY: usize = 32;

// ANCHOR: first_word
/// Finds the first word of a text it owns inline, then suspends while
/// holding a pointer to that word *inside itself*, then returns the word.
#[derive(Debug)]
pub struct FirstWord {
    /// The text, stored in the future itself (not on the heap, so moving the
    /// future moves the bytes).
    text: [u8; CAPACITY],
    len: usize,
    /// The self-reference: points into `text` once the first poll ran.
    word: Option<NonNull<[u8]>>,
    /// What it waits on while the borrow is held.
    wait: ReadyAfter<()>,
    /// Makes `FirstWord: !Unpin`: pinned means pinned for good.
    _pinned: PhantomPinned,
}
// ANCHOR_END: first_word

// ANCHOR: projection
/// `Pin<&mut FirstWord>`, split into its fields.
///
/// `wait` is *structurally pinned* (`Pin<&mut FirstWord>` gives
/// `Pin<&mut ReadyAfter<()>>`); `word` is not (a plain `&mut`); `text`, which
/// `word` points into, is handed out only shared, so it can be read but never
/// moved or written through the projection.
struct Projection<'a> {
    text: &'a [u8],
    word: &'a mut Option<NonNull<[u8]>>,
    wait: Pin<&'a mut ReadyAfter<()>>,
}

impl FirstWord {
    fn project(self: Pin<&mut Self>) -> Projection<'_> {
        // ANCHOR: lab_4_3_project
        // SAFETY: we must not move the `FirstWord` out of the `&mut` we get
        // here, and must keep the pinning promise for each field we hand out:
        // * `text` goes out as a shared slice: nobody can move or overwrite it
        //   through that, so `word`'s target stays where it is;
        // * `word` and `len` are plain data whose moves nobody depends on, so
        //   a plain `&mut` is fine (they are "not structurally pinned");
        // * `wait` goes out as `Pin<&mut _>`: structurally pinned, never moved;
        // * `FirstWord` has no `Drop` impl that could move a field, and it is
        //   `!Unpin` (via `PhantomPinned`), so `Pin` keeps safe code from
        //   moving the whole value after this projection was taken.
        let this = unsafe { self.get_unchecked_mut() };
        Projection {
            text: &this.text[..this.len],
            word: &mut this.word,
            // SAFETY: `this.wait` is a field of a pinned value that we never
            // move (see above), so it is pinned as well.
            wait: unsafe { Pin::new_unchecked(&mut this.wait) },
        }
        // ANCHOR_END: lab_4_3_project
    }
}
// ANCHOR_END: projection

impl FirstWord {
    /// A future over (at most [`CAPACITY`] bytes of) `text`, which will
    /// suspend `pending` times while it borrows the first word.
    pub fn new(text: &[u8], pending: u32) -> Self {
        let len = text.len().min(CAPACITY);
        let mut inline = [0; CAPACITY];
        inline[..len].copy_from_slice(&text[..len]);
        FirstWord {
            text: inline,
            len,
            word: None,
            wait: ready_after(pending, ()),
            _pinned: PhantomPinned,
        }
    }

    /// Whether the borrow has been taken and points inside this very value.
    pub fn borrows_itself(self: Pin<&Self>) -> bool {
        let Some(word) = self.word else {
            return false;
        };
        let start = self.text.as_ptr_range().start as usize;
        let end = self.text.as_ptr_range().end as usize;
        let at = word.as_ptr() as *const u8 as usize;
        (start..=end).contains(&at) && at + word.len() <= end
    }
}

// ANCHOR: first_word_poll
impl Future for FirstWord {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        // ANCHOR: lab_4_3_poll
        let this = self.project();
        if this.word.is_none() {
            // First poll: take the borrow. From here on `FirstWord` points
            // into itself, which is fine because it is pinned.
            let word = this.text.split(|&b| b == b' ').next().unwrap_or(&[]);
            *this.word = Some(NonNull::from(word));
        }
        if this.wait.poll(cx).is_pending() {
            return Poll::Pending; // suspended while holding the borrow
        }
        let word = this.word.expect("set on the first poll");
        // SAFETY: `word` was made from `text` on an earlier poll. Since then
        // the value has been pinned (the first poll already required
        // `Pin<&mut Self>`), so `text` has not moved; it is never written
        // after `new`, and it lives as long as `self`. So the pointer is
        // valid for reads of `word.len()` initialized bytes.
        let word = unsafe { word.as_ref() };
        Poll::Ready(String::from_utf8_lossy(word).into_owned())
        // ANCHOR_END: lab_4_3_poll
    }
}
// ANCHOR_END: first_word_poll

// SAFETY: the only non-`Send` field is `word`, a pointer that only ever
// points into `text`, which belongs to this same value; sending the future
// to another thread sends the bytes it points at along with it, and there is
// no other alias to them.
unsafe impl Send for FirstWord {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CountingWaker, poll_once};

    #[test]
    fn the_borrow_stays_valid_across_polls_after_pinning() {
        let (_, waker) = CountingWaker::new();
        let mut future = Box::pin(FirstWord::new(b"hello pinned world", 3));
        assert!(!future.as_ref().borrows_itself());
        for _ in 0..3 {
            assert!(poll_once(future.as_mut(), &waker).is_pending());
            assert!(future.as_ref().borrows_itself());
        }
        assert_eq!(
            poll_once(future.as_mut(), &waker),
            Poll::Ready("hello".to_string())
        );
    }

    #[test]
    fn moving_before_the_first_poll_is_fine() {
        let (_, waker) = CountingWaker::new();
        let future = FirstWord::new(b"moved twice", 1);
        let moved = vec![future]; // a move, before any borrow exists
        let future = moved.into_iter().next().expect("one element");
        let mut future = std::pin::pin!(future);
        assert!(poll_once(future.as_mut(), &waker).is_pending());
        assert_eq!(
            poll_once(future.as_mut(), &waker),
            Poll::Ready("moved".to_string())
        );
    }

    #[test]
    fn a_text_without_spaces_is_one_word_and_long_texts_are_cut() {
        let (_, waker) = CountingWaker::new();
        let (word, _) = crate::testing::poll_to_completion(FirstWord::new(b"word", 0), &waker);
        assert_eq!(word, "word");
        let long = [b'a'; 100];
        let (word, _) = crate::testing::poll_to_completion(FirstWord::new(&long, 0), &waker);
        assert_eq!(word.len(), CAPACITY);
        let (word, _) = crate::testing::poll_to_completion(FirstWord::new(b"", 0), &waker);
        assert_eq!(word, "");
    }

    #[test]
    fn the_async_fn_form_agrees_with_the_hand_written_one() {
        // ANCHOR: first_word_later
        async fn first_word_later(text: [u8; CAPACITY], len: usize, pending: u32) -> String {
            let word: &[u8] = text[..len].split(|&b| b == b' ').next().unwrap_or(&[]);
            ready_after(pending, ()).await; // suspended while `word` borrows `text`
            String::from_utf8_lossy(word).into_owned()
        }
        // ANCHOR_END: first_word_later
        let (_, waker) = CountingWaker::new();
        for text in [&b"one two"[..], b" leading", b"x", b"trailing "] {
            let mut inline = [0; CAPACITY];
            inline[..text.len()].copy_from_slice(text);
            let by_compiler =
                crate::testing::poll_to_completion(first_word_later(inline, text.len(), 2), &waker);
            let by_hand = crate::testing::poll_to_completion(FirstWord::new(text, 2), &waker);
            assert_eq!(by_hand, by_compiler);
        }
    }
}
