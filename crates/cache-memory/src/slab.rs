//! Entries in one shard: a slab of slots addressed by `u32` index, and intrusive
//! doubly linked lists threaded through those slots.
//!
//! Indices instead of pointers keep the structure safe and compact (8 bytes of links per
//! entry), and a slot's index never changes while it is occupied, so the hash table and
//! the policy lists can both refer to it.

use std::sync::atomic::AtomicU8;

use bytes::Bytes;

/// "No slot": the end of a list or of the free list.
pub(crate) const NIL: u32 = u32::MAX;

/// A deadline that never comes.
pub(crate) const NEVER: u64 = u64::MAX;

/// The [`Entry::queue`] mark of a vacant slot.
pub(crate) const VACANT: u8 = u8::MAX;

/// Keys up to this many bytes live inside the entry.
const INLINE: usize = 22;

/// A stored key. Short keys (most keys) are kept inside the entry: no allocation on
/// insert, and no pointer to chase when a lookup compares keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Key {
    /// `prefix` followed by `key`.
    #[inline]
    pub(crate) fn new(prefix: &str, key: &str) -> Key {
        let len = prefix.len() + key.len();
        if len <= INLINE {
            let mut bytes = [0; INLINE];
            if prefix.is_empty() {
                copy_short(&mut bytes, key.as_bytes());
            } else {
                bytes[..prefix.len()].copy_from_slice(prefix.as_bytes());
                bytes[prefix.len()..len].copy_from_slice(key.as_bytes());
            }
            Key::Inline { len: len as u8, bytes }
        } else {
            Key::Heap([prefix, key].concat().into_boxed_str())
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(key) => key.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Built only from whole `&str`s, so always UTF-8; the check cannot fail.
            Key::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Key::Heap(key) => key,
        }
    }
}

/// One cache entry, or a vacant slot (empty key and value, `next` = next free slot).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The stored key: the handle's prefix followed by the caller's key.
    pub(crate) key: Key,
    pub(crate) value: Bytes,
    /// The hash of `key`, kept so the table can grow without rehashing strings.
    pub(crate) hash: u64,
    /// Nanoseconds since the store's epoch at which the entry expires; [`NEVER`] for none.
    pub(crate) deadline: u64,
    pub(crate) weight: u32,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Access bits the policy sets on a hit under the shared (read) lock.
    pub(crate) freq: AtomicU8,
    /// Which of the policy's lists holds the entry.
    pub(crate) queue: u8,
}

impl Entry {
    pub(crate) fn new(key: Key, value: Bytes, hash: u64, deadline: u64, weight: u32) -> Entry {
        Entry { key, value, hash, deadline, weight, prev: NIL, next: NIL, freq: AtomicU8::new(0), queue: 0 }
    }

    fn vacant(next_free: u32) -> Entry {
        Entry {
            key: Key::Inline { len: 0, bytes: [0; INLINE] },
            value: Bytes::new(),
            hash: 0,
            deadline: NEVER,
            weight: 0,
            prev: NIL,
            next: next_free,
            freq: AtomicU8::new(0),
            queue: VACANT,
        }
    }

    /// Whether this entry's key is `prefix` followed by `key`, without building that string.
    #[inline]
    pub(crate) fn is_key(&self, prefix: &str, key: &str) -> bool {
        let stored = self.key.as_bytes();
        if prefix.is_empty() {
            return eq_bytes(stored, key.as_bytes());
        }
        stored.len() == prefix.len() + key.len()
            && stored[..prefix.len()] == *prefix.as_bytes()
            && stored[prefix.len()..] == *key.as_bytes()
    }
}

/// Copies `from` (at most [`INLINE`] bytes) to the start of `to` in two overlapping
/// fixed-size moves instead of a call into `memcpy`, which costs more than the copy
/// for keys this short.
#[inline]
fn copy_short(to: &mut [u8; INLINE], from: &[u8]) {
    fn chunk<const N: usize>(to: &mut [u8], from: &[u8], at: usize) {
        if let (Some(to), Some(from)) = (to.get_mut(at..at + N), from.get(at..at + N)) {
            to.copy_from_slice(from);
        }
    }
    let len = from.len();
    match len {
        16..=INLINE => {
            chunk::<16>(to, from, 0);
            chunk::<8>(to, from, len - 8);
        }
        8..16 => {
            chunk::<8>(to, from, 0);
            chunk::<8>(to, from, len - 8);
        }
        4..8 => {
            chunk::<4>(to, from, 0);
            chunk::<4>(to, from, len - 4);
        }
        _ => {
            for (to, from) in to.iter_mut().zip(from) {
                *to = *from;
            }
        }
    }
}

/// `a == b`, without a call into `memcmp` for keys of 8 to 16 bytes (most keys): two
/// overlapping 8-byte words from each end cover every byte.
#[inline]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if (8..=16).contains(&len) {
        let word = |bytes: &[u8], at: usize| bytes.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok());
        return word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8);
    }
    a == b
}

/// Slots with a free list, so removed slots are reused and indices stay stable.
#[derive(Debug)]
pub(crate) struct Slab {
    slots: Vec<Entry>,
    free: u32,
}

impl Slab {
    pub(crate) fn new() -> Slab {
        Slab { slots: Vec::new(), free: NIL }
    }

    /// Stores `entry`; `None` when the shard already holds `u32::MAX - 1` slots.
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<u32> {
        if self.free != NIL {
            let index = self.free;
            let slot = &mut self.slots[index as usize];
            self.free = slot.next;
            *slot = entry;
            Some(index)
        } else {
            let index = u32::try_from(self.slots.len()).ok().filter(|&index| index != NIL)?;
            self.slots.push(entry);
            Some(index)
        }
    }

    /// Vacates slot `index` and returns its key and value.
    pub(crate) fn remove(&mut self, index: u32) -> (Key, Bytes) {
        let slot = std::mem::replace(&mut self.slots[index as usize], Entry::vacant(self.free));
        self.free = index;
        (slot.key, slot.value)
    }

    /// Every slot, vacant ones (`queue == VACANT`) included.
    pub(crate) fn slots(&self) -> &[Entry] {
        &self.slots
    }

    pub(crate) fn slots_mut(&mut self) -> &mut [Entry] {
        &mut self.slots
    }

    /// Drops every entry and releases the memory.
    pub(crate) fn clear(&mut self) {
        self.slots = Vec::new();
        self.free = NIL;
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Entry;

    #[inline]
    fn index(&self, index: u32) -> &Entry {
        &self.slots[index as usize]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    #[inline]
    fn index_mut(&mut self, index: u32) -> &mut Entry {
        &mut self.slots[index as usize]
    }
}

/// A doubly linked list through [`Entry::prev`]/[`Entry::next`]: head is the newest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct List {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: u32,
    /// The summed weight of the entries on the list.
    pub(crate) weight: u64,
}

impl Default for List {
    fn default() -> Self {
        List { head: NIL, tail: NIL, len: 0, weight: 0 }
    }
}

impl List {
    pub(crate) fn push_front(&mut self, slab: &mut Slab, index: u32) {
        let old_head = self.head;
        let entry = &mut slab[index];
        entry.prev = NIL;
        entry.next = old_head;
        self.weight += u64::from(entry.weight);
        if old_head == NIL {
            self.tail = index;
        } else {
            slab[old_head].prev = index;
        }
        self.head = index;
        self.len += 1;
    }

    pub(crate) fn unlink(&mut self, slab: &mut Slab, index: u32) {
        let entry = &mut slab[index];
        let (prev, next) = (entry.prev, entry.next);
        entry.prev = NIL;
        entry.next = NIL;
        self.weight -= u64::from(entry.weight);
        if prev == NIL {
            self.head = next;
        } else {
            slab[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            slab[next].prev = prev;
        }
        self.len -= 1;
    }

    pub(crate) fn move_to_front(&mut self, slab: &mut Slab, index: u32) {
        if self.head != index {
            self.unlink(slab, index);
            self.push_front(slab, index);
        }
    }

    /// The oldest entry.
    pub(crate) fn back(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }
}
