//! A slab: a `Vec` of slots that hands out small integer keys and reuses the
//! slots of removed values.
//!
//! The scheduler keeps every live green thread in one slab. A [`GreenId`]
//! carries the slot number (for an O(1) lookup) together with a serial number
//! that is never reused, so a stale id (of a thread that finished, whose slot
//! now holds another thread) simply finds nothing.
//!
//! ```text
//!   slots:  [ T(serial 7) | free -> 3 | T(serial 9) | free -> end ]
//!   free list head: 1
//! ```
//!
//! [`GreenId`]: crate::GreenId

/// One slot: a value, or a link in the free list.
#[derive(Debug)]
enum Slot<T> {
    Occupied(T),
    /// Vacant; holds the index of the next vacant slot (`usize::MAX` = none).
    Vacant(usize),
}

/// A growable table of values addressed by `usize` keys.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Head of the free list threaded through the vacant slots.
    free_head: usize,
    len: usize,
}

const NONE: usize = usize::MAX;

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free_head: NONE,
            len: 0,
        }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key the next `insert` will use.
    pub(crate) fn vacant_key(&self) -> usize {
        if self.free_head == NONE {
            self.slots.len()
        } else {
            self.free_head
        }
    }

    /// Stores `value` and returns its key.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.vacant_key();
        if key == self.slots.len() {
            self.slots.push(Slot::Occupied(value));
        } else {
            let Slot::Vacant(next) = self.slots[key] else {
                unreachable!("free list points at an occupied slot");
            };
            self.free_head = next;
            self.slots[key] = Slot::Occupied(value);
        }
        self.len += 1;
        key
    }

    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        match self.slots.get(key) {
            Some(Slot::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.slots.get_mut(key) {
            Some(Slot::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    /// Removes and returns the value at `key`, if there is one.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        if matches!(slot, Slot::Vacant(_)) {
            return None;
        }
        let Slot::Occupied(value) = std::mem::replace(slot, Slot::Vacant(self.free_head)) else {
            unreachable!("checked above");
        };
        self.free_head = key;
        self.len -= 1;
        Some(value)
    }

    /// Keys of all occupied slots, in slot order.
    pub(crate) fn keys(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(slot, Slot::Occupied(_)))
            .map(|(key, _)| key)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_slots_are_reused_and_stale_keys_find_nothing() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        let c = slab.insert("c");
        assert_eq!(c, a, "the freed slot is reused first");
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.keys(), vec![a, b]);
    }
}
