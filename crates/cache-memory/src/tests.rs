//! The store's own rules, beyond the cache-core contract: capacity, policy order,
//! expired-before-live eviction, weights, stats, the listener, a model check, and
//! concurrent stress with a consistency check at the end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{ErrorKind, Ttl};
use proptest::prelude::*;

use crate::{EvictionPolicy, MemoryCache, RemovalCause};

const ALL_POLICIES: [EvictionPolicy; 5] =
    [EvictionPolicy::Lru, EvictionPolicy::Lfu, EvictionPolicy::Fifo, EvictionPolicy::Random, EvictionPolicy::S3Fifo];

fn cache(policy: EvictionPolicy, capacity: u64) -> MemoryCache {
    MemoryCache::builder().max_capacity(capacity).eviction_policy(policy).build().expect("build")
}

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Which of `keys` are present. A read, so callers use it once the order no longer matters.
fn present(cache: &MemoryCache, keys: &[&str]) -> Vec<bool> {
    keys.iter().map(|key| cache.sync().contains(key)).collect()
}

#[test]
fn build_rejects_zero_capacity_and_zero_lifetime() {
    let zero = MemoryCache::builder().max_capacity(0).build().expect_err("capacity 0");
    assert_eq!(zero.kind(), ErrorKind::InvalidConfig);
    let instant = MemoryCache::builder().time_to_live(Duration::ZERO).build().expect_err("zero ttl");
    assert_eq!(instant.kind(), ErrorKind::InvalidConfig);
}

#[test]
fn huge_capacities_build_and_work() {
    let cache = cache(EvictionPolicy::S3Fifo, u64::MAX);
    cache.sync().set("k", value("v"), Ttl::Never).expect("set");
    assert_eq!(cache.sync().get("k"), Some(value("v")));
}

#[test]
fn clones_share_single_flight_and_prefixes_do_not() {
    use cache_core::Cache;
    let cache = cache(EvictionPolicy::S3Fifo, 10);
    assert_eq!(cache.single_flight_scope(), cache.clone().single_flight_scope());
    assert_eq!(cache.single_flight_scope(), cache.with_prefix("").single_flight_scope());
    assert_ne!(cache.single_flight_scope(), cache.with_prefix("p:").single_flight_scope());
}

#[test]
fn never_holds_more_than_max_capacity() {
    for policy in ALL_POLICIES {
        for capacity in [1, 7, 1_000, 50_000] {
            let cache = cache(policy, capacity);
            let direct = cache.sync();
            for n in 0..(capacity * 3).min(120_000) {
                direct.set(&format!("key-{n}"), value("v"), Ttl::Never).expect("set");
                if n % 997 == 0 {
                    assert!(cache.len() as u64 <= capacity, "{policy:?} at {capacity}: {} entries", cache.len());
                    // Reads in between let the policies that count hits keep some keys.
                    direct.get(&format!("key-{}", n / 2));
                }
            }
            assert!(cache.len() as u64 <= capacity, "{policy:?} at {capacity}: {} entries", cache.len());
            assert!(cache.len() as u64 >= capacity / 2, "{policy:?} at {capacity} keeps too little: {}", cache.len());
            cache.check_invariants();
        }
    }
}

#[test]
fn small_caches_use_one_shard_so_the_policy_sees_every_key() {
    assert_eq!(cache(EvictionPolicy::Lru, 3).shard_count(), 1);
    assert!(cache(EvictionPolicy::Lru, 10_000_000).shard_count() > 1);
}

#[test]
fn an_asked_shard_count_is_a_power_of_two_that_the_capacity_can_fill() {
    let shards = |asked, capacity| {
        let cache = MemoryCache::builder().max_capacity(capacity).shards(asked).build().expect("build");
        (cache.shard_count(), cache.max_entry_weight())
    };
    assert_eq!(shards(8, 100_000), (8, 12_500));
    assert_eq!(shards(6, 100_000), (8, 12_500), "rounded up to a power of two");
    assert_eq!(shards(0, 100_000).0, 1, "at least one");
    assert_eq!(shards(1 << 20, u64::MAX).0, 1024, "at most 1024");
    assert_eq!(shards(64, 5).0, 4, "no shard without room for an entry");
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let cache = cache(EvictionPolicy::Lru, 3);
    let direct = cache.sync();
    for key in ["a", "b", "c"] {
        direct.set(key, value(key), Ttl::Never).expect("set");
    }
    assert!(direct.get("a").is_some());
    direct.set("d", value("d"), Ttl::Never).expect("set");
    assert_eq!(present(&cache, &["a", "b", "c", "d"]), [true, false, true, true], "b was least recently used");
    cache.check_invariants();
}

#[test]
fn fifo_evicts_the_oldest_even_when_read() {
    let cache = cache(EvictionPolicy::Fifo, 3);
    let direct = cache.sync();
    for key in ["a", "b", "c"] {
        direct.set(key, value(key), Ttl::Never).expect("set");
    }
    assert!(direct.get("a").is_some());
    direct.set("d", value("d"), Ttl::Never).expect("set");
    assert_eq!(present(&cache, &["a", "b", "c", "d"]), [false, true, true, true], "a was first in");
}

#[test]
fn lfu_keeps_the_frequently_used() {
    let cache = cache(EvictionPolicy::Lfu, 100);
    let direct = cache.sync();
    for n in 0..10 {
        direct.set(&format!("hot-{n}"), value("hot"), Ttl::Never).expect("set");
        for _ in 0..20 {
            direct.get(&format!("hot-{n}"));
        }
    }
    for n in 0..1_000 {
        direct.set(&format!("cold-{n}"), value("cold"), Ttl::Never).expect("set");
    }
    let kept = (0..10).filter(|n| direct.contains(&format!("hot-{n}"))).count();
    assert!(kept >= 8, "LFU kept only {kept} of 10 hot keys");
}

#[test]
fn s3fifo_keeps_the_working_set_through_a_scan() {
    let cache = cache(EvictionPolicy::S3Fifo, 100);
    let direct = cache.sync();
    for round in 0..3 {
        for n in 0..50 {
            let key = format!("hot-{n}");
            if direct.get(&key).is_none() {
                assert_eq!(round, 0, "{key} was lost before the scan");
                direct.set(&key, value("hot"), Ttl::Never).expect("set");
            }
        }
    }
    for n in 0..10_000 {
        direct.set(&format!("scan-{n}"), value("once"), Ttl::Never).expect("set");
    }
    let kept = (0..50).filter(|n| direct.contains(&format!("hot-{n}"))).count();
    assert_eq!(kept, 50, "a one-pass scan displaced the working set");
    cache.check_invariants();
}

#[test]
fn s3fifo_readmits_a_key_it_just_evicted_to_the_main_queue() {
    let cache = cache(EvictionPolicy::S3Fifo, 20);
    let direct = cache.sync();
    direct.set("returning", value("1"), Ttl::Never).expect("set");
    for n in 0..20 {
        direct.set(&format!("filler-{n}"), value("x"), Ttl::Never).expect("set");
    }
    assert!(!direct.contains("returning"), "never read, it must leave first");
    // The ghost remembers it: back in, it joins the main queue and outlives new keys.
    direct.set("returning", value("2"), Ttl::Never).expect("set");
    for n in 0..10 {
        direct.set(&format!("later-{n}"), value("x"), Ttl::Never).expect("set");
    }
    assert!(direct.contains("returning"), "a ghost hit must go to the main queue");
}

#[test]
fn expired_entries_leave_before_live_ones_under_every_policy() {
    for policy in ALL_POLICIES {
        let cache = cache(policy, 3);
        let direct = cache.sync();
        direct.set("live-1", value("1"), Ttl::Never).expect("set");
        direct.set("gone", value("x"), Ttl::After(Duration::ZERO)).expect("set");
        direct.set("live-2", value("2"), Ttl::Never).expect("set");
        direct.set("live-3", value("3"), Ttl::Never).expect("set");
        assert_eq!(present(&cache, &["live-1", "live-2", "live-3", "gone"]), [true, true, true, false], "{policy:?}");
        assert_eq!(cache.stats().expirations, 1, "{policy:?}");
        assert_eq!(cache.stats().evictions, 0, "{policy:?}");
        cache.check_invariants();
    }
}

#[test]
fn default_lifetime_applies_to_ttl_default_only() {
    let cache = MemoryCache::builder().time_to_live(Duration::from_nanos(1)).build().expect("build");
    let direct = cache.sync();
    direct.set("default", value("x"), Ttl::Default).expect("set");
    direct.set("never", value("x"), Ttl::Never).expect("set");
    std::thread::sleep(Duration::from_millis(1));
    assert_eq!(present(&cache, &["default", "never"]), [false, true]);
    assert_eq!(direct.incr("counter", 1).expect("incr"), 1);
    std::thread::sleep(Duration::from_millis(1));
    assert_eq!(direct.incr("counter", 1).expect("incr"), 1, "incr creates with the default lifetime");
}

#[test]
fn weigher_bounds_the_total_weight() {
    let cache = MemoryCache::builder()
        .max_capacity(10_000)
        .weigher(|_, value| u32::try_from(value.len()).unwrap_or(u32::MAX))
        .build()
        .expect("build");
    let direct = cache.sync();
    for n in 0..1_000 {
        direct.set(&format!("k{n}"), Bytes::from(vec![0u8; 100 + n % 50]), Ttl::Never).expect("set");
        assert!(cache.weighted_size() <= 10_000);
    }
    assert!(cache.len() < 100, "{} entries of 100+ bytes in 10 000", cache.len());
    let limit = usize::try_from(cache.max_entry_weight()).expect("fits");
    direct.set("big", value("small"), Ttl::Never).expect("set");
    let error = direct.set("big", Bytes::from(vec![0u8; limit + 1]), Ttl::Never).expect_err("too heavy");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(direct.get("big"), Some(value("small")), "a refused set keeps the old value");
    cache.check_invariants();
}

#[test]
fn stats_count_reads_writes_evictions_and_expirations() {
    let cache = cache(EvictionPolicy::Fifo, 2);
    let direct = cache.sync();
    direct.set("a", value("1"), Ttl::Never).expect("set");
    direct.get("a");
    direct.get("missing");
    direct.set("b", value("2"), Ttl::Never).expect("set");
    direct.set("c", value("3"), Ttl::Never).expect("set");
    direct.set("d", value("4"), Ttl::After(Duration::ZERO)).expect("set");
    direct.set("e", value("5"), Ttl::Never).expect("set");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 5));
    assert_eq!((stats.evictions, stats.expirations), (2, 1));
    assert!((stats.hit_ratio() - 0.5).abs() < f64::EPSILON);
}

#[test]
fn listener_hears_evictions_and_expirations_but_not_deletes() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let cache = {
        let heard = Arc::clone(&heard);
        MemoryCache::builder()
            .max_capacity(2)
            .eviction_policy(EvictionPolicy::Lru)
            .prefix("p:")
            .eviction_listener(move |key, value, cause| {
                heard.lock().expect("lock").push((key.to_owned(), value, cause));
            })
            .build()
            .expect("build")
    };
    let direct = cache.sync();
    direct.set("a", value("1"), Ttl::Never).expect("set");
    direct.set("b", value("2"), Ttl::After(Duration::ZERO)).expect("set");
    direct.set("c", value("3"), Ttl::Never).expect("set");
    direct.set("d", value("4"), Ttl::Never).expect("set");
    direct.delete("d");
    let heard = heard.lock().expect("lock").clone();
    assert_eq!(
        heard,
        [("p:b".to_owned(), value("2"), RemovalCause::Expired), ("p:a".to_owned(), value("1"), RemovalCause::Capacity)]
    );
}

#[test]
fn prefixes_share_storage_and_clear_only_their_own() {
    let root = cache(EvictionPolicy::S3Fifo, 100);
    let users = root.with_prefix("users:");
    users.sync().set("1", value("ada"), Ttl::Never).expect("set");
    assert_eq!(root.sync().get("users:1"), Some(value("ada")), "the stored key is prefix + key");
    assert_eq!(root.with_prefix("users").sync().get(":1"), Some(value("ada")), "any split of one key is one key");
    root.sync().set("other", value("x"), Ttl::Never).expect("set");
    users.sync().clear();
    assert_eq!(present(&root, &["users:1", "other"]), [false, true]);
    root.sync().clear();
    assert!(root.is_empty());
}

#[test]
fn long_prefixed_keys_hash_like_their_stored_form() {
    let root = cache(EvictionPolicy::S3Fifo, 100);
    let prefix = "p".repeat(100);
    let key = "k".repeat(150);
    root.with_prefix(prefix.as_str()).sync().set(&key, value("v"), Ttl::Never).expect("set");
    assert_eq!(root.sync().get(&format!("{prefix}{key}")), Some(value("v")));
    assert_eq!(root.with_prefix(&prefix[..37]).sync().get(&format!("{}{key}", &prefix[37..])), Some(value("v")));
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8, Life),
    Add(u8, u8, Life),
    Get(u8),
    Delete(u8),
    Incr(u8, i8),
    Clear,
}

/// Lifetimes a test can reason about without a clock: gone at once, or outliving it.
#[derive(Debug, Clone, Copy)]
enum Life {
    Expired,
    Hour,
    Never,
}

impl Life {
    fn ttl(self) -> Ttl {
        match self {
            Life::Expired => Ttl::After(Duration::ZERO),
            Life::Hour => Ttl::secs(3600),
            Life::Never => Ttl::Never,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..24;
    let life = prop_oneof![Just(Life::Expired), Just(Life::Hour), Just(Life::Never)];
    prop_oneof![
        4 => (key.clone(), any::<u8>(), life.clone()).prop_map(|(k, v, l)| Op::Set(k, v, l)),
        2 => (key.clone(), any::<u8>(), life).prop_map(|(k, v, l)| Op::Add(k, v, l)),
        4 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Delete),
        2 => (key, any::<i8>()).prop_map(|(k, d)| Op::Incr(k, d)),
        1 => Just(Op::Clear),
    ]
}

fn policy() -> impl Strategy<Value = EvictionPolicy> {
    prop_oneof![
        Just(EvictionPolicy::Lru),
        Just(EvictionPolicy::Lfu),
        Just(EvictionPolicy::Fifo),
        Just(EvictionPolicy::Random),
        Just(EvictionPolicy::S3Fifo),
    ]
}

proptest! {
    /// Random operations against a model (a `BTreeMap` of live values; expired entries
    /// are simply absent from it). With room for every key the cache must agree exactly;
    /// with less, it may have evicted a key but never returns a value the model does not
    /// hold, and never holds more than its capacity.
    #[test]
    fn agrees_with_a_model(policy in policy(), capacity in prop_oneof![Just(4u64), Just(64)], ops in prop::collection::vec(op(), 1..200)) {
        let cache = cache(policy, capacity);
        let direct = cache.sync();
        let roomy = capacity >= 24;
        let mut model: BTreeMap<u8, Bytes> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set(k, v, life) => {
                    direct.set(&k.to_string(), Bytes::from(vec![v]), life.ttl()).expect("set");
                    model.remove(&k);
                    if !matches!(life, Life::Expired) {
                        model.insert(k, Bytes::from(vec![v]));
                    }
                }
                Op::Add(k, v, life) => {
                    let added = direct.add(&k.to_string(), Bytes::from(vec![v]), life.ttl()).expect("add");
                    if roomy {
                        prop_assert_eq!(added, !model.contains_key(&k));
                    } else if !model.contains_key(&k) {
                        prop_assert!(added, "add of an absent key must win");
                    }
                    if added {
                        model.remove(&k);
                        if !matches!(life, Life::Expired) {
                            model.insert(k, Bytes::from(vec![v]));
                        }
                    }
                }
                Op::Get(k) => {
                    let got = direct.get(&k.to_string());
                    if roomy {
                        prop_assert_eq!(got.as_ref(), model.get(&k));
                    } else if let Some(got) = got {
                        prop_assert_eq!(Some(&got), model.get(&k), "a value the model does not hold");
                    } else {
                        model.remove(&k);
                    }
                }
                Op::Delete(k) => {
                    let removed = direct.delete(&k.to_string());
                    let expected = model.remove(&k).is_some();
                    if roomy {
                        prop_assert_eq!(removed, expected);
                    } else {
                        prop_assert!(!removed || expected, "deleted a key the model does not hold");
                    }
                }
                Op::Incr(k, delta) => {
                    let delta = i64::from(delta);
                    let current = model.get(&k).map(|value| cache_core::parse_integer(value));
                    let got = direct.incr(&k.to_string(), delta);
                    match (current, got) {
                        (Some(None), Err(error)) => prop_assert_eq!(error.kind(), ErrorKind::NotAnInteger),
                        (Some(Some(n)), Ok(got)) => prop_assert!(got == n + delta || (!roomy && got == delta)),
                        (Some(None), Ok(got)) => prop_assert!(!roomy && got == delta, "incr of a non-integer"),
                        (None, Ok(got)) => prop_assert_eq!(got, delta),
                        (_, Err(error)) => prop_assert!(false, "incr failed: {error}"),
                    }
                    if let Some(now) = direct.get(&k.to_string()) {
                        model.insert(k, now);
                    } else {
                        prop_assert!(!roomy, "incr's result vanished");
                        model.remove(&k);
                    }
                }
                Op::Clear => {
                    direct.clear();
                    model.clear();
                }
            }
            prop_assert!(cache.len() as u64 <= capacity);
        }
        cache.check_invariants();
    }
}

#[test]
fn concurrent_stress_leaves_every_shard_consistent() {
    for policy in ALL_POLICIES {
        let cache = MemoryCache::builder()
            .max_capacity(2_000)
            .eviction_policy(policy)
            .weigher(|key, value| u32::try_from(key.len() + value.len()).unwrap_or(u32::MAX))
            .build()
            .expect("build");
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    let direct = cache.sync();
                    let mut state = thread.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                    for _ in 0..20_000 {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let key = format!("k{}", state % 500);
                        match (state >> 32) % 10 {
                            0..=3 => {
                                let ttl = if state % 7 == 0 { Ttl::After(Duration::ZERO) } else { Ttl::Never };
                                direct.set(&key, Bytes::from(key.clone()), ttl).expect("set");
                            }
                            4..=7 => {
                                if let Some(value) = direct.get(&key) {
                                    assert!(value == key.as_bytes() || cache_core::parse_integer(&value).is_some());
                                }
                            }
                            8 => {
                                direct.delete(&key);
                            }
                            _ => {
                                let counter = format!("n{}", state % 8);
                                direct.incr(&counter, 1).expect("incr");
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a stress thread panicked");
        }
        assert!(cache.weighted_size() <= 2_000, "{policy:?}");
        cache.check_invariants();
    }
}

#[test]
fn concurrent_incr_and_add_are_atomic() {
    let cache = cache(EvictionPolicy::S3Fifo, 10_000);
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let direct = cache.sync();
                let won = (0..1_000)
                    .filter(|n| direct.add(&format!("slot-{n}"), Bytes::from(vec![thread]), Ttl::Never).expect("add"))
                    .count();
                for _ in 0..1_000 {
                    direct.incr("total", 1).expect("incr");
                }
                won
            })
        })
        .collect();
    let won: usize = threads.into_iter().map(|thread| thread.join().expect("thread")).sum();
    assert_eq!(won, 1_000, "each slot has exactly one winner");
    assert_eq!(cache.sync().incr("total", 0).expect("incr"), 4_000);
    cache.check_invariants();
}

#[test]
fn stored_keys_of_every_length_keep_their_bytes() {
    let text = "abcdefghijklmnopqrstuvwxyz0123456789";
    for len in 0..=text.len() {
        for prefix in ["", "p:"] {
            let key = crate::slab::Key::new(prefix, &text[..len]);
            assert_eq!(key.as_str(), format!("{prefix}{}", &text[..len]), "length {len}, prefix {prefix:?}");
        }
    }
}

#[test]
fn get_or_insert_with_makes_a_value_once_and_counts_one_read() {
    let cache = cache(EvictionPolicy::S3Fifo, 100);
    let users = cache.with_prefix("users:");
    let mut made = 0;
    for _ in 0..3 {
        let value = users
            .sync()
            .get_or_insert_with("7", Ttl::Never, || {
                made += 1;
                value("Ada")
            })
            .expect("get_or_insert_with");
        assert_eq!(&value[..], b"Ada");
    }
    assert_eq!(made, 1, "made on the first call only");
    assert_eq!(cache.sync().get("users:7").as_deref(), Some(&b"Ada"[..]), "stored under the prefix");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (3, 1, 1), "two hits, a miss, then the get above");
}

#[test]
fn get_or_insert_with_refuses_a_value_heavier_than_a_shard() {
    let cache = MemoryCache::builder()
        .max_capacity(8)
        .weigher(|_, value| u32::try_from(value.len()).unwrap_or(u32::MAX))
        .build()
        .expect("build");
    let error = cache.sync().get_or_insert_with("big", Ttl::Never, || value("0123456789")).expect_err("too heavy");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge);
    assert!(error.to_string().contains("get_or_insert_with"), "names the operation: {error}");
    assert!(cache.is_empty());
}

#[test]
fn get_or_insert_with_expires_like_set() {
    let cache = cache(EvictionPolicy::S3Fifo, 100);
    let direct = cache.sync();
    direct.get_or_insert_with("k", Ttl::millis(20), || value("old")).expect("insert");
    std::thread::sleep(Duration::from_millis(40));
    let fresh = direct.get_or_insert_with("k", Ttl::Never, || value("new")).expect("reinsert");
    assert_eq!(&fresh[..], b"new", "the expired entry was replaced");
    assert_eq!(direct.get("k").as_deref(), Some(&b"new"[..]));
}
