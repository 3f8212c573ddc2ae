//! The blocking side: servers, generations, and every operation as calls of the blocking
//! meta-protocol client. Everything here runs on tokio's blocking pool, never on an async
//! worker thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use memcache::exp::{Arithmetic, Delete, Get, GetStatus, Meta, MetaClient, MutationStatus, Set};

use crate::error::Failure;
use crate::keys::{self, entry_key, exptime, generation_key, keep_exptime};
use crate::ring::Ring;

/// Commands per pipelined exchange. A batch is written whole before its answers are read;
/// 100 commands of at most ~270 bytes stay well inside the socket buffers, so memcached
/// never waits for us to read while we wait for it to read.
pub(crate) const BATCH: usize = 100;

/// Settings the blocking side needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_value_len: usize,
    pub(crate) generation_refresh: Duration,
}

/// One memcached server and its bounded connection pool.
pub(crate) struct Node {
    pub(crate) address: String,
    pub(crate) client: MetaClient,
}

/// What every clone and every prefix of one built cache share.
pub(crate) struct Shared {
    pub(crate) nodes: Vec<Node>,
    pub(crate) ring: Ring,
    pub(crate) settings: Settings,
    /// Per prefix, the cached generation on each server.
    generations: Mutex<HashMap<String, Arc<[GenerationSlot]>>>,
}

/// The generation of one prefix on one server, as last read or written by this process.
#[derive(Debug, Default)]
pub(crate) struct GenerationSlot {
    state: Mutex<GenerationState>,
}

#[derive(Debug, Default)]
struct GenerationState {
    /// The generation and when it was read.
    known: Option<(u64, Instant)>,
    /// Counts this process's clears, so a read that started before a clear never
    /// overwrites the clear's newer generation.
    clears: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is a plain cache that is valid whatever a panicking holder did.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GenerationSlot {
    /// The cached generation if younger than `max_age`, else the clear count to hand back
    /// with a fresh read.
    fn cached(&self, max_age: Duration) -> Result<u64, u64> {
        let state = lock(&self.state);
        match state.known {
            Some((generation, read)) if read.elapsed() < max_age => Ok(generation),
            _ => Err(state.clears),
        }
    }

    fn offer(&self, clears: u64, generation: u64) {
        let mut state = lock(&self.state);
        if state.clears == clears {
            state.known = Some((generation, Instant::now()));
        }
    }

    /// Drops what this process knows (after `flush_all` removed the generations).
    fn forget(&self) {
        let mut state = lock(&self.state);
        state.clears += 1;
        state.known = None;
    }

    fn cleared(&self, generation: u64) {
        let mut state = lock(&self.state);
        state.clears += 1;
        state.known = Some((generation, Instant::now()));
    }
}

/// A generation for a prefix with none on a server: the current Unix time in nanoseconds.
/// Clears count up by one from there, so a generation made after its key was lost (evicted,
/// server restarted) is larger than every one used before and never revives old entries.
fn fresh_generation() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

type Outcome<T> = Result<T, Failure>;

impl Shared {
    pub(crate) fn new(nodes: Vec<Node>, settings: Settings) -> Shared {
        let ring = Ring::new(nodes.iter().map(|node| node.address.as_str()));
        Shared { nodes, ring, settings, generations: Mutex::new(HashMap::new()) }
    }

    /// The generation slots of `prefix`, one per server, shared by every handle on it.
    pub(crate) fn slots(&self, prefix: &str) -> Arc<[GenerationSlot]> {
        let mut generations = lock(&self.generations);
        if let Some(slots) = generations.get(prefix) {
            return Arc::clone(slots);
        }
        let slots: Arc<[GenerationSlot]> = self.nodes.iter().map(|_| GenerationSlot::default()).collect();
        generations.insert(prefix.to_owned(), Arc::clone(&slots));
        slots
    }

    /// Forgets every cached generation, of every prefix.
    pub(crate) fn forget_generations(&self) {
        for slots in lock(&self.generations).values() {
            slots.iter().for_each(GenerationSlot::forget);
        }
    }

    /// How long an operation of `exchanges` round trips may take at most: waiting for a
    /// pooled connection and dialing are each bounded by the connect timeout, every
    /// exchange by the I/O timeout.
    pub(crate) fn deadline(&self, exchanges: u32) -> Duration {
        self.settings.connect_timeout.saturating_mul(2).saturating_add(self.settings.timeout.saturating_mul(exchanges))
    }

    fn node(&self, server: usize) -> Outcome<&Node> {
        self.nodes.get(server).ok_or_else(|| Failure::unexpected("?", format!("no server number {server}")))
    }

    /// The generation of `prefix` on `server`: cached for `generation_refresh`, else read
    /// (and created when missing) in one or two round trips.
    pub(crate) fn generation(&self, server: usize, slots: &[GenerationSlot], prefix: &str) -> Outcome<u64> {
        let node = self.node(server)?;
        let slot = slots.get(server).ok_or_else(|| Failure::unexpected(&node.address, "no generation slot"))?;
        let clears = match slot.cached(self.settings.generation_refresh) {
            Ok(generation) => return Ok(generation),
            Err(clears) => clears,
        };
        let key = generation_key(prefix);
        // Two tries: a generation that vanishes between our failed add and the next read
        // (evicted, server restarted) is as good as absent; one that vanishes twice is not.
        for _ in 0..3 {
            let read = node.client.run(Get::new(&key)).map_err(|error| Failure::client(&node.address, error))?;
            if read.hit() {
                let generation = parse_generation(read.value.as_deref()).ok_or_else(|| {
                    Failure::unexpected(&node.address, format!("generation key {key:?} is not a number"))
                })?;
                slot.offer(clears, generation);
                return Ok(generation);
            }
            let generation = fresh_generation();
            let created = node
                .client
                .run(Set::new(&key, generation.to_string()).ttl_raw(0).add())
                .map_err(|error| Failure::client(&node.address, error))?;
            if created.status == MutationStatus::Applied {
                slot.offer(clears, generation);
                return Ok(generation);
            }
        }
        Err(Failure::unexpected(&node.address, format!("generation key {key:?} keeps disappearing")))
    }

    /// Moves `prefix` on to a new generation on `server`: its old entries become unreachable.
    pub(crate) fn bump_generation(&self, server: usize, slots: &[GenerationSlot], prefix: &str) -> Outcome<()> {
        let node = self.node(server)?;
        let slot = slots.get(server).ok_or_else(|| Failure::unexpected(&node.address, "no generation slot"))?;
        let key = generation_key(prefix);
        for _ in 0..3 {
            let bumped = node
                .client
                .run(Arithmetic::new(&key).delta(1))
                .map_err(|error| Failure::client(&node.address, error))?;
            if let (MutationStatus::Applied, Some(generation)) = (bumped.status, bumped.value) {
                slot.cleared(generation);
                return Ok(());
            }
            // No generation yet: a fresh one is newer than anything used before.
            let generation = fresh_generation();
            let created = node
                .client
                .run(Set::new(&key, generation.to_string()).ttl_raw(0).add())
                .map_err(|error| Failure::client(&node.address, error))?;
            if created.status == MutationStatus::Applied {
                slot.cleared(generation);
                return Ok(());
            }
        }
        Err(Failure::unexpected(&node.address, format!("generation key {key:?} keeps disappearing")))
    }

    /// The server and wire key of `key` under `prefix`.
    pub(crate) fn locate(&self, slots: &[GenerationSlot], prefix: &str, key: &str) -> Outcome<(usize, String)> {
        let server = self.ring.server_for(prefix, key);
        let generation = self.generation(server, slots, prefix)?;
        Ok((server, entry_key(prefix, key, generation)))
    }

    pub(crate) fn exptime(&self, lifetime: Option<Duration>) -> u32 {
        exptime(lifetime, SystemTime::now())
    }

    pub(crate) fn get(&self, slots: &[GenerationSlot], prefix: &str, key: &str) -> Outcome<Option<Bytes>> {
        let (server, wire) = self.locate(slots, prefix, key)?;
        let node = self.node(server)?;
        let read = node.client.run(Get::new(&wire)).map_err(|error| Failure::client(&node.address, error))?;
        Ok(hit_value(read.status, read.value))
    }

    pub(crate) fn has(&self, slots: &[GenerationSlot], prefix: &str, key: &str) -> Outcome<bool> {
        let (server, wire) = self.locate(slots, prefix, key)?;
        let node = self.node(server)?;
        // No value asked for: a 1 MiB entry costs no more than an empty one.
        let read =
            node.client.run(Get::new(&wire).without_value()).map_err(|error| Failure::client(&node.address, error))?;
        Ok(read.status == GetStatus::Hit)
    }

    /// `set` (`add = false`) or `add`; whether the value was stored.
    pub(crate) fn store(
        &self,
        slots: &[GenerationSlot],
        prefix: &str,
        key: &str,
        value: &[u8],
        exptime: u32,
        add: bool,
    ) -> Outcome<bool> {
        let (server, wire) = self.locate(slots, prefix, key)?;
        let node = self.node(server)?;
        let set = Set::new(&wire, value).ttl_raw(exptime);
        let set = if add { set.add() } else { set };
        let stored = node.client.run(set).map_err(|error| Failure::client(&node.address, error))?;
        match stored.status {
            MutationStatus::Applied => Ok(true),
            MutationStatus::AlreadyExists if add => Ok(false),
            other => Err(Failure::unexpected(&node.address, format!("set answered {other:?}"))),
        }
    }

    pub(crate) fn delete(&self, slots: &[GenerationSlot], prefix: &str, key: &str) -> Outcome<bool> {
        let (server, wire) = self.locate(slots, prefix, key)?;
        let node = self.node(server)?;
        let deleted = node.client.run(Delete::new(&wire)).map_err(|error| Failure::client(&node.address, error))?;
        Ok(deleted.status == MutationStatus::Applied)
    }

    /// `get_many`'s share of one server: `keys` are `(position, key)` pairs; the answer
    /// gives the value per position.
    pub(crate) fn get_group(
        &self,
        server: usize,
        slots: &[GenerationSlot],
        prefix: &str,
        keys: &[(usize, String)],
    ) -> Outcome<Vec<(usize, Option<Bytes>)>> {
        let node = self.node(server)?;
        let generation = self.generation(server, slots, prefix)?;
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let reads = node
                .client
                .run_many(chunk.iter().map(|(_, key)| Get::new(entry_key(prefix, key, generation))))
                .map_err(|error| Failure::client(&node.address, error))?;
            for ((position, _), read) in chunk.iter().zip(reads) {
                let read = read.map_err(|error| Failure::client(&node.address, error))?;
                values.push((*position, hit_value(read.status, read.value)));
            }
        }
        Ok(values)
    }

    /// `set_many`'s share of one server.
    pub(crate) fn set_group(
        &self,
        server: usize,
        slots: &[GenerationSlot],
        prefix: &str,
        entries: &[(String, Bytes)],
        exptime: u32,
    ) -> Outcome<()> {
        let node = self.node(server)?;
        let generation = self.generation(server, slots, prefix)?;
        for chunk in entries.chunks(BATCH) {
            let writes = node
                .client
                .run_many(
                    chunk
                        .iter()
                        .map(|(key, value)| Set::new(entry_key(prefix, key, generation), value).ttl_raw(exptime)),
                )
                .map_err(|error| Failure::client(&node.address, error))?;
            for write in writes {
                let write = write.map_err(|error| Failure::client(&node.address, error))?;
                if write.status != MutationStatus::Applied {
                    return Err(Failure::unexpected(&node.address, format!("set answered {:?}", write.status)));
                }
            }
        }
        Ok(())
    }

    /// `delete_many`'s share of one server: how many live entries it removed.
    pub(crate) fn delete_group(
        &self,
        server: usize,
        slots: &[GenerationSlot],
        prefix: &str,
        keys: &[String],
    ) -> Outcome<usize> {
        let node = self.node(server)?;
        let generation = self.generation(server, slots, prefix)?;
        let mut removed = 0;
        for chunk in keys.chunks(BATCH) {
            let deletes = node
                .client
                .run_many(chunk.iter().map(|key| Delete::new(entry_key(prefix, key, generation))))
                .map_err(|error| Failure::client(&node.address, error))?;
            for delete in deletes {
                let delete = delete.map_err(|error| Failure::client(&node.address, error))?;
                removed += usize::from(delete.status == MutationStatus::Applied);
            }
        }
        Ok(removed)
    }

    /// `incr`; see the crate docs ("Counters") for why it reads first and when it falls
    /// back to compare-and-swap.
    pub(crate) fn incr(
        &self,
        slots: &[GenerationSlot],
        prefix: &str,
        key: &str,
        delta: i64,
        deadline: Instant,
    ) -> Outcome<i64> {
        let (server, wire) = self.locate(slots, prefix, key)?;
        let node = self.node(server)?;
        let failed = |error| Failure::client(&node.address, error);
        loop {
            if Instant::now() >= deadline {
                return Err(Failure::Contended);
            }
            let read = node.client.run(Get::new(&wire).meta(Meta::NONE.cas().ttl())).map_err(failed)?;
            let Some(value) = hit_value(read.status, read.value) else {
                // Missing: create it race-free; if another writer got there first, start over.
                let exptime = self.exptime(self.settings.default_ttl);
                let created =
                    node.client.run(Set::new(&wire, delta.to_string()).ttl_raw(exptime).add()).map_err(failed)?;
                if created.status == MutationStatus::Applied {
                    return Ok(delta);
                }
                continue;
            };
            let old = cache_core::parse_integer(&value).ok_or(Failure::NotAnInteger)?;
            let new = old.checked_add(delta).ok_or(Failure::Overflow)?;
            if old >= 0 && delta >= 0 {
                let step = delta.unsigned_abs();
                // memcached's own incr: atomic however many writers race, and it interleaves
                // with other clients' incr.
                let bumped = match node.client.run(Arithmetic::new(&wire).delta(step)) {
                    Ok(bumped) => bumped,
                    // Replaced by a non-number since the read (a racing compare-and-swap made
                    // it negative): the next read says so. The server's refusal is a definite
                    // answer, not applied, even when the client wraps it as ambiguous.
                    Err(memcache::exp::Error::Rejected(_)) => continue,
                    Err(memcache::exp::Error::Ambiguous { source, .. })
                        if matches!(*source, memcache::exp::Error::Rejected(_)) =>
                    {
                        continue;
                    }
                    Err(error) => return Err(failed(error)),
                };
                let Some(result) = bumped.value.filter(|_| bumped.status == MutationStatus::Applied) else {
                    // Deleted since the read.
                    continue;
                };
                if result >= step && i64::try_from(result).is_ok() {
                    return i64::try_from(result).map_err(|_| Failure::Overflow);
                }
                // Another writer moved the value out of i64 between our read and our incr
                // (memcached wraps at 2^64): put it back and report what happened.
                self.undo_increment(node, &wire, step, deadline)?;
                return Err(if result < step || result - step > i64::MAX as u64 {
                    Failure::NotAnInteger
                } else {
                    Failure::Overflow
                });
            }
            // A negative value or delta: memcached's incr cannot hold or reach it, and its
            // decr pads shorter results with spaces. Compare-and-swap the new text instead,
            // keeping the entry's flags and remaining lifetime.
            let Some(cas) = read.item.cas else {
                return Err(Failure::unexpected(&node.address, "get did not return the CAS it was asked for"));
            };
            let exptime = keep_exptime(read.item.ttl, SystemTime::now());
            let swap = Set::new(&wire, new.to_string())
                .ttl_raw(exptime)
                .client_flags(read.client_flags.unwrap_or(0))
                .compare_cas(cas);
            let swapped = node.client.run(swap).map_err(failed)?;
            if swapped.status == MutationStatus::Applied {
                return Ok(new);
            }
            // Changed or deleted since the read: try again with what is there now.
        }
    }

    /// Takes `step` back off a value that an incr pushed out of `i64`, by compare-and-swap
    /// so that concurrent increments are kept.
    fn undo_increment(&self, node: &Node, wire: &str, step: u64, deadline: Instant) -> Outcome<()> {
        let failed = |error| Failure::client(&node.address, error);
        while Instant::now() < deadline {
            let read = node.client.run(Get::new(wire).meta(Meta::NONE.cas().ttl())).map_err(failed)?;
            let (Some(value), Some(cas)) = (hit_value(read.status, read.value), read.item.cas) else {
                return Ok(());
            };
            // memcached writes its results as digits, padded with spaces when shorter.
            let Some(current) = std::str::from_utf8(&value).ok().and_then(|text| text.trim_end().parse::<u64>().ok())
            else {
                // Replaced by something else meanwhile: nothing of ours is left to undo.
                return Ok(());
            };
            let restored = current.wrapping_sub(step).to_string();
            let exptime = keep_exptime(read.item.ttl, SystemTime::now());
            let swap =
                Set::new(wire, restored).ttl_raw(exptime).client_flags(read.client_flags.unwrap_or(0)).compare_cas(cas);
            if node.client.run(swap).map_err(failed)?.status == MutationStatus::Applied {
                return Ok(());
            }
        }
        Err(Failure::Contended)
    }

    /// memcached's `flush_all` on every server: removes everything, every prefix and every
    /// other program's keys.
    pub(crate) fn flush_server(&self, server: usize) -> Outcome<()> {
        let node = self.node(server)?;
        // The meta client has no flush; the key-less classic command is sent over a
        // short-lived connection of the classic client with the same timeouts.
        let url = format!("memcache://{}?protocol=ascii&timeout={}", node.address, self.settings.timeout.as_secs_f64());
        let classic = memcache::Client::builder()
            .add_server(url)
            .and_then(|builder| builder.with_connection_timeout(self.settings.connect_timeout).build())
            .map_err(|error| Failure::unexpected(&node.address, format!("flush_all: {error}")))?;
        classic.flush().map_err(|error| Failure::unexpected(&node.address, format!("flush_all: {error}")))
    }
}

/// The value of a read, `None` for a miss. An empty item another client holds as a lease
/// placeholder (`Pending`) is a miss too: nobody has stored a value yet.
fn hit_value(status: GetStatus, value: Option<Vec<u8>>) -> Option<Bytes> {
    match status {
        GetStatus::Hit => Some(Bytes::from(value.unwrap_or_default())),
        _ => None,
    }
}

fn parse_generation(value: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(value?).ok()?.trim_end().parse().ok()
}

/// Checks a value against the limit before anything is sent: memcached answers a too-large
/// `set` by deleting the old value, which the contract forbids.
pub(crate) fn check_len(len: usize, limit: usize) -> Outcome<()> {
    if len > limit { Err(Failure::TooLarge { len, limit }) } else { Ok(()) }
}

/// How much larger than the largest value memcached's item size must be: the item header
/// (about 60 bytes) and the longest key (250), rounded up.
pub(crate) const ITEM_OVERHEAD: usize = 512;

const _: () = assert!(ITEM_OVERHEAD > keys::MAX_KEY_LEN + 64);
