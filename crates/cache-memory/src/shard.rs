//! One shard: a hash table of slot indices, the slab of entries, the policy, and a
//! heap of deadlines so expired entries leave before any live one is evicted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::policy::{EvictionPolicy, Policy};
use crate::slab::{Entry, Key, NEVER, Slab};
use crate::{RemovalCause, clock::Now};

/// Entries removed by eviction or expiry during one operation, handed to the eviction
/// listener after the shard lock is released (a listener may call back into the cache).
#[derive(Debug, Default)]
pub(crate) struct Removed {
    /// Whether anyone listens; when not, nothing is collected.
    pub(crate) keep: bool,
    pub(crate) entries: Vec<(Key, Bytes, RemovalCause)>,
}

impl Removed {
    fn push(&mut self, key: Key, value: Bytes, cause: RemovalCause) {
        if self.keep {
            self.entries.push((key, value, cause));
        }
    }
}

/// Counters changed only under the shard's exclusive lock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriteCounters {
    pub(crate) inserts: u64,
    pub(crate) evictions: u64,
    pub(crate) expirations: u64,
}

/// What [`ShardState::insert`] writes.
pub(crate) struct NewEntry {
    /// `None` only when overwriting an existing entry, whose stored key is kept: a write
    /// of a present key then builds no key.
    pub(crate) key: Option<Key>,
    pub(crate) hash: u64,
    pub(crate) value: Bytes,
    pub(crate) deadline: u64,
    pub(crate) weight: u32,
}

#[derive(Debug)]
pub(crate) struct ShardState {
    table: HashTable<u32>,
    slab: Slab,
    policy: Policy,
    /// `(deadline, hash)` of every entry written with a deadline, soonest first. Stale
    /// items (the entry was replaced or deleted) are skipped when they surface, and the
    /// heap is rebuilt when they outnumber live entries.
    expiry: BinaryHeap<Reverse<(u64, u64)>>,
    weight: u64,
    capacity: u64,
    pub(crate) counters: WriteCounters,
}

impl ShardState {
    pub(crate) fn new(kind: EvictionPolicy, capacity: u64, seed: u64) -> ShardState {
        ShardState {
            table: HashTable::new(),
            slab: Slab::new(),
            policy: Policy::new(kind, capacity, seed),
            expiry: BinaryHeap::new(),
            weight: 0,
            capacity,
            counters: WriteCounters::default(),
        }
    }

    /// How many entries the shard holds, expired ones not yet removed included.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The summed weight of the entries.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The slot of `prefix + key`, live or expired.
    #[inline]
    pub(crate) fn find(&self, hash: u64, prefix: &str, key: &str) -> Option<u32> {
        let slab = &self.slab;
        self.table.find(hash, |&index| slab[index].is_key(prefix, key)).copied()
    }

    /// The slot of `prefix + key` if it holds a live entry.
    #[inline]
    pub(crate) fn find_live(&self, hash: u64, prefix: &str, key: &str, now: &mut Now<'_>) -> Option<u32> {
        self.find(hash, prefix, key).filter(|&index| {
            let deadline = self.slab[index].deadline;
            deadline == NEVER || deadline > now.get()
        })
    }

    #[inline]
    pub(crate) fn entry(&self, index: u32) -> &Entry {
        &self.slab[index]
    }

    /// Records a hit under the exclusive lock (LRU reorders).
    pub(crate) fn touch(&mut self, index: u32) {
        self.policy.on_exclusive_hit(&mut self.slab, index);
    }

    /// Writes `new`, replacing any entry under its key and evicting (expired entries
    /// first) until it fits. Returns `false`, changing nothing, when `new` alone
    /// outweighs the shard.
    pub(crate) fn insert(&mut self, new: NewEntry, now: &mut Now<'_>, removed: &mut Removed) -> bool {
        self.purge_expired(now, removed);
        let existing = {
            let slab = &self.slab;
            self.table.find(new.hash, |&index| Some(&slab[index].key) == new.key.as_ref()).copied()
        };
        self.insert_at(new, existing, removed)
    }

    /// The first half of a write that looks its key up once: removes expired entries,
    /// then finds `prefix + key`, which is live if found. Pass the answer to
    /// [`insert_at`](Self::insert_at) under the same lock.
    #[inline]
    pub(crate) fn prepare_write(
        &mut self,
        hash: u64,
        prefix: &str,
        key: &str,
        now: &mut Now<'_>,
        removed: &mut Removed,
    ) -> Option<u32> {
        self.purge_expired(now, removed);
        self.find(hash, prefix, key)
    }

    /// [`insert`](Self::insert) with the key already looked up: `existing` is the slot of
    /// `new.key` from [`prepare_write`](Self::prepare_write), or `None` (and then
    /// `new.key` must be given).
    pub(crate) fn insert_at(&mut self, new: NewEntry, existing: Option<u32>, removed: &mut Removed) -> bool {
        if u64::from(new.weight) > self.capacity {
            return false;
        }
        let mut key = new.key;
        if let Some(index) = existing {
            let old_weight = self.slab[index].weight;
            let weight = self.weight - u64::from(old_weight) + u64::from(new.weight);
            if weight <= self.capacity {
                let entry = &mut self.slab[index];
                entry.value = new.value;
                entry.deadline = new.deadline;
                entry.weight = new.weight;
                self.weight = weight;
                self.policy.on_update(&mut self.slab, index, old_weight);
                self.schedule(new.deadline, new.hash);
                self.counters.inserts += 1;
                return true;
            }
            // Growing past the capacity: start over as a new entry, so room is made
            // without the entry being written choosing itself as the victim.
            self.policy.on_remove(&mut self.slab, index);
            let (stored, _) = self.remove_slot(index);
            key = key.or(Some(stored));
        }
        // Every caller passes a key when there is no entry to take it from.
        let Some(key) = key else { return false };
        while self.weight + u64::from(new.weight) > self.capacity {
            let Some(victim) = self.policy.evict(&mut self.slab) else { break };
            let (key, value) = self.remove_slot(victim);
            self.counters.evictions += 1;
            removed.push(key, value, RemovalCause::Capacity);
        }
        let (hash, deadline, weight) = (new.hash, new.deadline, new.weight);
        let entry = Entry::new(key, new.value, hash, deadline, weight);
        let Some(index) = self.slab.insert(entry) else { return false };
        let slab = &self.slab;
        self.table.insert_unique(hash, index, |&index| slab[index].hash);
        self.weight += u64::from(weight);
        self.policy.on_insert(&mut self.slab, index);
        self.schedule(deadline, hash);
        self.counters.inserts += 1;
        true
    }

    /// Replaces the value of the live entry in slot `index`, keeping its deadline
    /// (`incr`). Returns `false`, changing nothing, when the new weight cannot fit.
    pub(crate) fn replace_value(
        &mut self,
        index: u32,
        value: Bytes,
        weight: u32,
        now: &mut Now<'_>,
        removed: &mut Removed,
    ) -> bool {
        let entry = &self.slab[index];
        let new = NewEntry { key: Some(entry.key.clone()), hash: entry.hash, value, deadline: entry.deadline, weight };
        if weight <= entry.weight {
            let old_weight = entry.weight;
            let entry = &mut self.slab[index];
            entry.value = new.value;
            entry.weight = weight;
            self.weight = self.weight - u64::from(old_weight) + u64::from(weight);
            self.policy.on_update(&mut self.slab, index, old_weight);
            self.counters.inserts += 1;
            return true;
        }
        self.insert(new, now, removed)
    }

    /// Removes the entry under `prefix + key`; returns whether it was live.
    pub(crate) fn remove(&mut self, hash: u64, prefix: &str, key: &str, now: &mut Now<'_>) -> bool {
        let Some(index) = self.find(hash, prefix, key) else { return false };
        let deadline = self.slab[index].deadline;
        let live = deadline == NEVER || deadline > now.get();
        self.policy.on_remove(&mut self.slab, index);
        self.remove_slot(index);
        live
    }

    /// Removes every entry whose key starts with `prefix`; all of them when it is empty.
    pub(crate) fn clear(&mut self, prefix: &str) {
        if prefix.is_empty() {
            self.table = HashTable::new();
            self.slab.clear();
            self.policy.clear();
            self.expiry = BinaryHeap::new();
            self.weight = 0;
            return;
        }
        let doomed: Vec<u32> = {
            let slab = &self.slab;
            self.table
                .iter()
                .copied()
                .filter(|&index| slab[index].key.as_bytes().starts_with(prefix.as_bytes()))
                .collect()
        };
        for index in doomed {
            self.policy.on_remove(&mut self.slab, index);
            self.remove_slot(index);
        }
    }

    /// Removes every entry whose deadline has passed.
    #[inline]
    pub(crate) fn purge_expired(&mut self, now: &mut Now<'_>, removed: &mut Removed) {
        // Most stores never set a deadline: no clock read, no call.
        if !self.expiry.is_empty() {
            self.purge_expired_slow(now, removed);
        }
    }

    fn purge_expired_slow(&mut self, now: &mut Now<'_>, removed: &mut Removed) {
        while let Some(&Reverse((deadline, hash))) = self.expiry.peek() {
            if deadline > now.get() {
                break;
            }
            self.expiry.pop();
            let found = {
                let slab = &self.slab;
                self.table.find(hash, |&index| slab[index].hash == hash && slab[index].deadline == deadline).copied()
            };
            if let Some(index) = found {
                self.policy.on_remove(&mut self.slab, index);
                let (key, value) = self.remove_slot(index);
                self.counters.expirations += 1;
                removed.push(key, value, RemovalCause::Expired);
            }
        }
    }

    fn schedule(&mut self, deadline: u64, hash: u64) {
        if deadline == NEVER {
            return;
        }
        self.expiry.push(Reverse((deadline, hash)));
        if self.expiry.len() > 2 * self.table.len() + 64 {
            let slab = &self.slab;
            self.expiry = self
                .table
                .iter()
                .map(|&index| &slab[index])
                .filter(|entry| entry.deadline != NEVER)
                .map(|entry| Reverse((entry.deadline, entry.hash)))
                .collect();
        }
    }

    /// Takes slot `index` (already unlinked from the policy) out of the table and slab.
    fn remove_slot(&mut self, index: u32) -> (Key, Bytes) {
        let hash = self.slab[index].hash;
        if let Ok(found) = self.table.find_entry(hash, |&candidate| candidate == index) {
            found.remove();
        }
        self.weight -= u64::from(self.slab[index].weight);
        self.slab.remove(index)
    }

    /// Panics unless the table, slab, policy lists and weights agree.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let occupied: Vec<&Entry> =
            self.slab.slots().iter().filter(|entry| entry.queue != crate::slab::VACANT).collect();
        assert_eq!(occupied.len(), self.table.len(), "table and slab disagree");
        for &index in &self.table {
            let entry = &self.slab[index];
            assert_ne!(entry.queue, crate::slab::VACANT, "the table points at a vacant slot");
            assert_eq!(
                self.find(entry.hash, "", entry.key.as_str()),
                Some(index),
                "an entry cannot be found by its key"
            );
        }
        let weight: u64 = occupied.iter().map(|entry| u64::from(entry.weight)).sum();
        assert_eq!(weight, self.weight, "the shard's weight is off");
        assert!(self.weight <= self.capacity, "over capacity: {} > {}", self.weight, self.capacity);
        assert_eq!(self.policy.totals(), (occupied.len() as u32, weight), "the policy lists are off");
    }
}
