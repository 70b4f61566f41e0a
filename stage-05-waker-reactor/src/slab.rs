//! A slab: a `Vec` of slots that hands out small integer keys, reuses freed
//! slots, and stamps every key with a generation so an old key can never
//! reach a new occupant.
//!
//! The reactor uses it to map a mio [`Token`](mio::Token) to the state of one
//! registered socket; the executor uses it to keep the list of live tasks
//! (so shutdown can find and drop every one of them).
//!
//! ```text
//!   index:        0            1            2            3
//!   slots:   [Occupied g=4][Vacant g=2 ][Occupied g=1][Vacant g=7 ]
//!                            next=3 ─────────────────────^   next=END
//!   free list head = 1
//!
//!   key = (index, generation). remove() bumps the slot's generation, so a
//!   key kept from before (index 1, g=1) no longer matches (index 1, g=2).
//! ```
//!
//! Why generations: epoll may report an event for a socket in the same batch
//! in which that socket is deregistered and its slot handed to a new socket.
//! Without the generation, the stale event would wake the new socket's task.

/// Number of low bits of a packed key that hold the slot index.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Generations use the bits above the index, minus the top bit, which stays
/// clear so that `usize::MAX` is never a valid key (the reactor reserves it
/// for its cross-thread waker).
const GENERATION_MASK: usize = usize::MAX >> (INDEX_BITS + 1);
/// The most slots a slab can hold (about 16 million).
pub(crate) const MAX_SLOTS: usize = 1 << INDEX_BITS;

/// A slot index stamped with the generation of the slot when it was filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: usize,
}

impl Key {
    /// Pack into one `usize` (a mio token value).
    pub(crate) fn to_usize(self) -> usize {
        (self.generation << INDEX_BITS) | self.index as usize
    }

    /// Unpack a value made by [`Key::to_usize`]. Any `usize` gives some key;
    /// a key that was never handed out simply finds nothing in the slab.
    pub(crate) fn from_usize(value: usize) -> Key {
        Key {
            index: (value & INDEX_MASK) as u32,
            generation: (value >> INDEX_BITS) & GENERATION_MASK,
        }
    }
}

#[derive(Debug)]
enum Slot<T> {
    Occupied { generation: usize, value: T },
    Vacant { generation: usize, next_free: usize },
}

/// End of the free list.
const END: usize = usize::MAX;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free_head: usize,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab::new()
    }
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free_head: END,
            len: 0,
        }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Store `value`; `None` (and `value` back) when all [`MAX_SLOTS`] are
    /// taken.
    pub(crate) fn insert(&mut self, value: T) -> Result<Key, T> {
        if self.free_head != END {
            let index = self.free_head;
            let slot = &mut self.slots[index];
            let Slot::Vacant {
                generation,
                next_free,
            } = *slot
            else {
                unreachable!("the free list only links vacant slots");
            };
            self.free_head = next_free;
            *slot = Slot::Occupied { generation, value };
            self.len += 1;
            return Ok(Key {
                index: index as u32,
                generation,
            });
        }
        if self.slots.len() >= MAX_SLOTS {
            return Err(value);
        }
        let index = self.slots.len();
        self.slots.push(Slot::Occupied {
            generation: 0,
            value,
        });
        self.len += 1;
        Ok(Key {
            index: index as u32,
            generation: 0,
        })
    }

    /// The value under `key`, if `key` is still the slot's current occupant.
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(Slot::Occupied { generation, value }) if *generation == key.generation => {
                Some(value)
            }
            _ => None,
        }
    }

    // ANCHOR: slab_remove
    /// Take the value under `key` out, if `key` is still current. The slot's
    /// generation moves on, which retires `key` for good.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let index = key.index as usize;
        match self.slots.get(index) {
            Some(Slot::Occupied { generation, .. }) if *generation == key.generation => {}
            _ => return None,
        }
        let vacant = Slot::Vacant {
            generation: (key.generation + 1) & GENERATION_MASK,
            next_free: self.free_head,
        };
        let Slot::Occupied { value, .. } = std::mem::replace(&mut self.slots[index], vacant) else {
            unreachable!("checked just above");
        };
        self.free_head = index;
        self.len -= 1;
        Some(value)
    }
    // ANCHOR_END: slab_remove

    /// Remove every value, oldest slot first. Generations still move on.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for index in 0..self.slots.len() {
            if let Slot::Occupied { generation, .. } = self.slots[index] {
                let key = Key {
                    index: index as u32,
                    generation,
                };
                if let Some(value) = self.remove(key) {
                    out.push(value);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_find_their_values_and_freed_slots_are_reused() {
        let mut slab = Slab::new();
        let a = slab.insert("a").unwrap();
        let b = slab.insert("b").unwrap();
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.remove(a), Some("a"));
        let c = slab.insert("c").unwrap();
        assert_eq!(c.index, a.index, "the freed slot is reused");
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn a_stale_key_finds_nothing_after_its_slot_is_reused() {
        let mut slab = Slab::new();
        let old = slab.insert(1).unwrap();
        slab.remove(old);
        let new = slab.insert(2).unwrap();
        assert_eq!(slab.get(old), None);
        assert_eq!(slab.remove(old), None);
        assert_eq!(slab.get(new), Some(&2));
    }

    #[test]
    fn keys_survive_packing_into_a_token() {
        let mut slab = Slab::new();
        let mut keys = Vec::new();
        for i in 0..100 {
            keys.push(slab.insert(i).unwrap());
        }
        for (i, key) in keys.iter().enumerate() {
            let back = Key::from_usize(key.to_usize());
            assert_eq!(back, *key);
            assert_eq!(slab.get(back), Some(&i));
            assert_ne!(key.to_usize(), usize::MAX);
        }
    }

    #[test]
    fn drain_empties_the_slab_and_retires_every_key() {
        let mut slab = Slab::new();
        let keys: Vec<_> = (0..5).map(|i| slab.insert(i).unwrap()).collect();
        slab.remove(keys[2]);
        assert_eq!(slab.drain(), vec![0, 1, 3, 4]);
        assert_eq!(slab.len(), 0);
        assert!(keys.iter().all(|k| slab.get(*k).is_none()));
    }
}
