//! Eviction policies: the small interface a shard calls on insert, hit, update, remove
//! and evict, and one implementation per [`EvictionPolicy`].
//!
//! An enum rather than a trait object: the shard's hot path matches on a tag it already
//! has in cache instead of jumping through a vtable, and each policy's state lives inline.

use std::sync::atomic::Ordering;

use crate::slab::{Entry, List, Slab};

/// Which entry leaves when a shard is full. Expired entries always leave first,
/// whatever the policy.
///
/// ```
/// use cache_memory::{EvictionPolicy, MemoryCache};
///
/// # fn main() -> cache_core::Result<()> {
/// assert_eq!(EvictionPolicy::default(), EvictionPolicy::S3Fifo);
/// let lru = MemoryCache::builder().max_capacity(1_000).eviction_policy(EvictionPolicy::Lru).build()?;
/// assert_eq!(lru.eviction_policy(), EvictionPolicy::Lru);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EvictionPolicy {
    /// Least recently used. Exact, so every hit reorders a list under the shard's
    /// exclusive lock: reads of one shard do not run in parallel.
    Lru,
    /// Least frequently used, approximated the way Redis does: the least used of a few
    /// sampled entries leaves, and counts are halved now and then so old popularity fades.
    /// Hits take only the shared lock.
    Lfu,
    /// First in, first out: hits change nothing.
    Fifo,
    /// A uniformly random entry leaves: hits change nothing.
    Random,
    /// S3-FIFO (Yang et al., SOSP 2023): new entries wait in a small FIFO queue and only
    /// those hit while there move to the main queue, so one-time keys and scans pass
    /// through without displacing the working set. Hits set a counter under the shared
    /// lock. The default.
    #[default]
    S3Fifo,
}

impl EvictionPolicy {
    /// Whether a hit must reorder the policy's state under the shard's exclusive lock.
    #[inline]
    pub(crate) fn hit_needs_exclusive(self) -> bool {
        matches!(self, EvictionPolicy::Lru)
    }

    /// Records a hit under the shared lock. Stores only when the counter changes, so a
    /// hot entry whose counter is saturated leaves its cache line clean for other cores.
    #[inline]
    pub(crate) fn on_shared_hit(self, entry: &Entry) {
        let ceiling = match self {
            EvictionPolicy::S3Fifo => S3_MAX_FREQ,
            EvictionPolicy::Lfu => u8::MAX,
            EvictionPolicy::Lru | EvictionPolicy::Fifo | EvictionPolicy::Random => return,
        };
        let freq = entry.freq.load(Ordering::Relaxed);
        if freq < ceiling {
            // A lost update between two racing readers only costs one count.
            entry.freq.store(freq + 1, Ordering::Relaxed);
        }
    }
}

/// S3-FIFO counts hits up to this many; each pass of the main queue's hand takes one
/// off. The paper stops at 3; counting to 15 keeps the hottest keys through more passes,
/// which gained 0.1 to 0.2 points at the 0.1% and 1% sizes of `memory_sim` and changed
/// no 10% row beyond the ±0.02 the hashing seeds move them (nor the instruction count).
const S3_MAX_FREQ: u8 = 15;
/// The share of a shard's capacity the small queue may hold, in percent. The paper
/// uses 10; on the Zipf and scan traces of `benches/benches/memory_sim.rs` 3 keeps a
/// little more of the working set at small sizes and loses nothing at large ones.
const S3_SMALL_PERCENT: u64 = 3;
/// The ghost remembers this many evicted keys per hundred live entries.
const S3_GHOST_PERCENT: usize = 50;
/// How many entries LFU compares when it picks a victim.
const LFU_SAMPLES: usize = 8;

const SMALL: u8 = 0;
const MAIN: u8 = 1;

/// One shard's policy state.
#[derive(Debug)]
pub(crate) enum Policy {
    Lru(List),
    Fifo(List),
    /// The list only keeps membership and a fallback order; victims are sampled slots.
    Random {
        list: List,
        rng: Rng,
    },
    Lfu {
        list: List,
        rng: Rng,
        /// Insertions since the counters were last halved.
        since_aging: u64,
    },
    S3Fifo(S3Fifo),
}

impl Policy {
    pub(crate) fn new(kind: EvictionPolicy, capacity: u64, seed: u64) -> Policy {
        match kind {
            EvictionPolicy::Lru => Policy::Lru(List::default()),
            EvictionPolicy::Fifo => Policy::Fifo(List::default()),
            EvictionPolicy::Random => Policy::Random { list: List::default(), rng: Rng::new(seed) },
            EvictionPolicy::Lfu => Policy::Lfu { list: List::default(), rng: Rng::new(seed), since_aging: 0 },
            EvictionPolicy::S3Fifo => Policy::S3Fifo(S3Fifo::new(capacity)),
        }
    }

    /// Forgets every entry (the slab is being cleared too).
    pub(crate) fn clear(&mut self) {
        match self {
            Policy::Lru(list) | Policy::Fifo(list) => *list = List::default(),
            Policy::Random { list, .. } => *list = List::default(),
            Policy::Lfu { list, since_aging, .. } => {
                *list = List::default();
                *since_aging = 0;
            }
            Policy::S3Fifo(s3) => s3.clear(),
        }
    }

    /// A hit under the exclusive lock, for policies whose hits reorder.
    pub(crate) fn on_exclusive_hit(&mut self, slab: &mut Slab, index: u32) {
        if let Policy::Lru(list) = self {
            list.move_to_front(slab, index);
        }
    }

    /// A new entry in slot `index`.
    pub(crate) fn on_insert(&mut self, slab: &mut Slab, index: u32) {
        *slab[index].freq.get_mut() = 0;
        match self {
            Policy::Lru(list) | Policy::Fifo(list) | Policy::Random { list, .. } => {
                slab[index].queue = MAIN;
                list.push_front(slab, index);
            }
            Policy::Lfu { list, since_aging, .. } => {
                // New entries start with one use, so they are not the first victims
                // before they had a chance to be read.
                *slab[index].freq.get_mut() = 1;
                slab[index].queue = MAIN;
                list.push_front(slab, index);
                *since_aging += 1;
                if *since_aging > u64::from(list.len) * 4 {
                    *since_aging = 0;
                    age(slab);
                }
            }
            Policy::S3Fifo(s3) => s3.insert(slab, index),
        }
    }

    /// Slot `index` got a new value whose weight replaced `old_weight`; counts as a use.
    pub(crate) fn on_update(&mut self, slab: &mut Slab, index: u32, old_weight: u32) {
        let new_weight = u64::from(slab[index].weight);
        let list = match self {
            Policy::Lru(list) | Policy::Fifo(list) | Policy::Random { list, .. } | Policy::Lfu { list, .. } => list,
            Policy::S3Fifo(s3) => s3.list_of(slab[index].queue),
        };
        list.weight = list.weight - u64::from(old_weight) + new_weight;
        match self {
            Policy::Lru(list) => list.move_to_front(slab, index),
            Policy::Lfu { .. } => EvictionPolicy::Lfu.on_shared_hit(&slab[index]),
            Policy::S3Fifo(_) => EvictionPolicy::S3Fifo.on_shared_hit(&slab[index]),
            Policy::Fifo(_) | Policy::Random { .. } => {}
        }
    }

    /// Slot `index` is leaving for a reason of its own (deleted, expired, replaced).
    pub(crate) fn on_remove(&mut self, slab: &mut Slab, index: u32) {
        match self {
            Policy::Lru(list) | Policy::Fifo(list) | Policy::Random { list, .. } | Policy::Lfu { list, .. } => {
                list.unlink(slab, index);
            }
            Policy::S3Fifo(s3) => s3.list_of(slab[index].queue).unlink(slab, index),
        }
    }

    /// How many entries the policy's lists hold and their summed weight.
    #[cfg(test)]
    pub(crate) fn totals(&self) -> (u32, u64) {
        match self {
            Policy::Lru(list) | Policy::Fifo(list) | Policy::Random { list, .. } | Policy::Lfu { list, .. } => {
                (list.len, list.weight)
            }
            Policy::S3Fifo(s3) => (s3.small.len + s3.main.len, s3.small.weight + s3.main.weight),
        }
    }

    /// Picks the entry to evict and unlinks it; `None` when the shard is empty.
    pub(crate) fn evict(&mut self, slab: &mut Slab) -> Option<u32> {
        let (list, victim) = match self {
            Policy::Lru(list) | Policy::Fifo(list) => {
                let victim = list.back()?;
                (list, victim)
            }
            Policy::Random { list, rng } => {
                let victim = sample(slab, rng, 1).or_else(|| list.back())?;
                (list, victim)
            }
            Policy::Lfu { list, rng, .. } => {
                let victim = sample(slab, rng, LFU_SAMPLES).or_else(|| list.back())?;
                (list, victim)
            }
            Policy::S3Fifo(s3) => return s3.evict(slab),
        };
        list.unlink(slab, victim);
        Some(victim)
    }
}

/// Halves every use count, so LFU forgets what was popular long ago.
fn age(slab: &mut Slab) {
    for entry in slab.slots_mut() {
        let freq = entry.freq.get_mut();
        *freq /= 2;
    }
}

/// The least used of `samples` occupied slots picked at random; `None` when random
/// probing found none (a nearly empty slab), so the caller falls back to its list.
fn sample(slab: &Slab, rng: &mut Rng, samples: usize) -> Option<u32> {
    let slots = slab.slots();
    let len = u32::try_from(slots.len()).ok().filter(|&len| len > 0)?;
    let mut best: Option<(u8, u32)> = None;
    let mut found = 0;
    // Bounded: a slab that is mostly vacant after deletions falls back to the list.
    for _ in 0..samples * 8 {
        let index = rng.below(len);
        let entry = &slots[index as usize];
        if entry.queue == crate::slab::VACANT {
            continue;
        }
        let freq = entry.freq.load(Ordering::Relaxed);
        if best.is_none_or(|(best_freq, _)| freq < best_freq) {
            best = Some((freq, index));
        }
        found += 1;
        if found == samples {
            break;
        }
    }
    best.map(|(_, index)| index)
}

/// xorshift64*: victims need to be unpredictable to the workload, not to an adversary.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..bound` (Lemire's multiply-shift, without the rejection step).
    fn below(&mut self, bound: u32) -> u32 {
        (((self.next() >> 32) * u64::from(bound)) >> 32) as u32
    }
}

/// S3-FIFO's state: the small and main queues and the ghost of keys recently evicted
/// from the small queue.
#[derive(Debug)]
pub(crate) struct S3Fifo {
    small: List,
    main: List,
    ghost: Ghost,
    small_target: u64,
}

impl S3Fifo {
    fn new(capacity: u64) -> S3Fifo {
        S3Fifo {
            small: List::default(),
            main: List::default(),
            ghost: Ghost::default(),
            // In u128: a capacity near `u64::MAX` must not overflow.
            small_target: (u128::from(capacity) * u128::from(S3_SMALL_PERCENT) / 100) as u64,
        }
    }

    fn clear(&mut self) {
        self.small = List::default();
        self.main = List::default();
        self.ghost = Ghost::default();
    }

    fn list_of(&mut self, queue: u8) -> &mut List {
        if queue == SMALL { &mut self.small } else { &mut self.main }
    }

    fn insert(&mut self, slab: &mut Slab, index: u32) {
        // A key evicted from the small queue a short while ago has shown it returns:
        // it goes straight to the main queue.
        if self.ghost.contains(slab[index].hash) {
            slab[index].queue = MAIN;
            self.main.push_front(slab, index);
        } else {
            slab[index].queue = SMALL;
            self.small.push_front(slab, index);
        }
    }

    fn evict(&mut self, slab: &mut Slab) -> Option<u32> {
        loop {
            if self.small.weight > self.small_target || self.main.len == 0 {
                let tail = self.small.back()?;
                self.small.unlink(slab, tail);
                let entry = &mut slab[tail];
                if *entry.freq.get_mut() > 0 {
                    *entry.freq.get_mut() = 0;
                    entry.queue = MAIN;
                    self.main.push_front(slab, tail);
                } else {
                    let live = (self.small.len + self.main.len) as usize;
                    self.ghost.insert(entry.hash, live * S3_GHOST_PERCENT / 100);
                    return Some(tail);
                }
            } else {
                let tail = self.main.back()?;
                let freq = slab[tail].freq.get_mut();
                if *freq > 0 {
                    *freq -= 1;
                    self.main.move_to_front(slab, tail);
                } else {
                    self.main.unlink(slab, tail);
                    return Some(tail);
                }
            }
        }
    }
}

/// Hashes of keys recently evicted from the small queue: a direct-mapped table of whole
/// hashes, sized in proportion to the number of live entries. A newer ghost overwrites an
/// older one in its slot, so membership is one load and compare, and remembering one is
/// one store: no FIFO order or hash set to keep, which cost four table operations per
/// eviction. A collision forgets a ghost early; a false "seen" needs two equal 64-bit hashes.
#[derive(Debug, Default)]
struct Ghost {
    /// 0 marks an empty slot (a key whose hash is 0 is never remembered, at no cost).
    slots: Box<[u64]>,
    /// `64 - log2(slots.len())`: the slot is the top bits of the hash, remixed.
    shift: u32,
}

impl Ghost {
    #[inline]
    fn slot(&self, hash: u64) -> Option<usize> {
        // The shard and the main table already use some of the hash's bits (all of this
        // shard's keys share the shard's); a multiply spreads every bit over the top ones.
        (!self.slots.is_empty()).then(|| (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize)
    }

    #[inline]
    fn contains(&self, hash: u64) -> bool {
        self.slot(hash).is_some_and(|slot| self.slots[slot] == hash && hash != 0)
    }

    fn insert(&mut self, hash: u64, capacity: usize) {
        let wanted = capacity.max(16).next_power_of_two();
        if wanted > self.slots.len() {
            self.grow(wanted);
        }
        if let Some(slot) = self.slot(hash) {
            self.slots[slot] = hash;
        }
    }

    /// Moves every remembered hash into a table of `len` slots.
    fn grow(&mut self, len: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; len].into_boxed_slice());
        self.shift = 64 - len.trailing_zeros();
        for hash in old.iter().copied().filter(|&hash| hash != 0) {
            if let Some(slot) = self.slot(hash) {
                self.slots[slot] = hash;
            }
        }
    }
}
