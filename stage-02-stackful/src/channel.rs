//! An unbounded multi-producer, single-consumer channel for green threads.
//!
//! `send` never blocks (the queue grows); `recv` parks the receiving green
//! thread while the queue is empty, and returns an error once it is empty
//! *and* every `Sender` is gone, so a consumer loop ends by itself.
//!
//! ```text
//!   Sender ─┐                         ┌──────── Receiver::recv
//!   Sender ─┼─ push_back ─> [ v1 v2 v3 ] ─ pop_front
//!   Sender ─┘   │                     ^ empty? add current() to `waiting`, park()
//!               └─ unpark(oldest waiting) ┘
//! ```
//!
//! All green threads of a runtime share one OS thread, so the channel needs
//! no atomics or locks: `Rc` and `RefCell` suffice, and the types are not
//! `Send`. A `Receiver` shared by reference among several green threads
//! works too: each parked one is queued and woken in turn, and leaves the
//! queue when its `recv` returns, so a wake-up always goes to a thread that
//! still waits. Between "the queue is empty" and `park()` no other green
//! thread can run, and `unpark` leaves a token anyway, so no wake-up is lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use crate::GreenId;

struct Shared<T> {
    queue: RefCell<VecDeque<T>>,
    senders: Cell<usize>,
    receiver_alive: Cell<bool>,
    /// Green threads parked in `recv`, oldest first. Normally at most one,
    /// but a `&Receiver` shared (through an `Rc`) by several green threads
    /// may have several: each must get its own wake-up.
    waiting: RefCell<VecDeque<GreenId>>,
}

impl<T> Shared<T> {
    /// A value arrived: wake the longest-waiting receiver.
    fn wake_one(&self) {
        let next = self.waiting.borrow_mut().pop_front();
        if let Some(id) = next {
            crate::unpark(id);
        }
    }

    /// The last sender left: every waiting receiver must see it.
    fn wake_all(&self) {
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for id in waiting {
            crate::unpark(id);
        }
    }
}

/// Creates a channel; clone the [`Sender`] for more producers.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(Shared {
        queue: RefCell::new(VecDeque::new()),
        senders: Cell::new(1),
        receiver_alive: Cell::new(true),
        waiting: RefCell::new(VecDeque::new()),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending half. Cloneable.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

/// The receiving half.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
}

/// The receiver is gone; the value comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Every sender is gone and the queue is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

/// Why `try_recv` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued, but a sender may still send.
    Empty,
    /// Nothing queued and every sender is gone.
    Disconnected,
}

impl<T> Sender<T> {
    /// Queues `value` and wakes the receiver if it waits. Never blocks.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if !self.shared.receiver_alive.get() {
            return Err(SendError(value));
        }
        self.shared.queue.borrow_mut().push_back(value);
        self.shared.wake_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.set(self.shared.senders.get() + 1);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let left = self.shared.senders.get() - 1;
        self.shared.senders.set(left);
        if left == 0 {
            // Receivers must see the disconnection.
            self.shared.wake_all();
        }
    }
}

impl<T> Receiver<T> {
    // ANCHOR: recv
    /// Takes the next value, parking the green thread while the queue is
    /// empty. `Err(RecvError)` once the queue is empty and every sender is
    /// gone. Panics if it must wait outside a green thread.
    pub fn recv(&self) -> Result<T, RecvError> {
        // ANCHOR: lab_2_3_recv
        let mut me = None;
        let result = loop {
            match self.try_recv() {
                Ok(value) => break Ok(value),
                Err(TryRecvError::Disconnected) => break Err(RecvError),
                Err(TryRecvError::Empty) => {
                    let id = *me.get_or_insert_with(crate::current);
                    let mut waiting = self.shared.waiting.borrow_mut();
                    if !waiting.contains(&id) {
                        waiting.push_back(id);
                    }
                    drop(waiting);
                    crate::park();
                }
            }
        };
        // Woken by someone else (a spurious wake-up) while still queued?
        // Leave the queue, or the next `send` would wake us, who no longer
        // wait, instead of a receiver that does.
        if let Some(id) = me {
            self.shared.waiting.borrow_mut().retain(|&w| w != id);
        }
        result
        // ANCHOR_END: lab_2_3_recv
    }
    // ANCHOR_END: recv

    /// Takes the next value if there is one, without blocking.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.shared.queue.borrow_mut().pop_front() {
            Some(value) => Ok(value),
            None if self.shared.senders.get() == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// An iterator of received values that ends when every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receiver_alive.set(false);
        // Values no one will receive are dropped now, not when the last
        // sender goes.
        let unreceived = std::mem::take(&mut *self.shared.queue.borrow_mut());
        drop(unreceived);
    }
}

/// Iterator over [`Receiver::recv`] results, until disconnection.
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("queued", &self.shared.queue.borrow().len())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("queued", &self.shared.queue.borrow().len())
            .finish()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a channel whose receiver is gone")
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty channel whose senders are all gone")
    }
}

impl<T> std::error::Error for SendError<T> {}
impl std::error::Error for RecvError {}
