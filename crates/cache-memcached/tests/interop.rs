//! What other memcached clients see: the documented key form, exact bytes, `incr` shared
//! with a raw client, prefixes that stay apart, long lifetimes and the size limit, all on
//! the real server in `CACHE_TEST_MEMCACHED_ADDR`.

mod support;

use cache_core::testkit::unique_prefix;
use cache_core::{Bytes, Cache, ErrorKind, Ttl};
use sha2::{Digest, Sha256};
use support::{Raw, SINGLE, addresses, cache_on};

fn server() -> String {
    addresses(SINGLE).remove(0)
}

/// The generation of `prefix` as another client reads it: `get P#g`.
fn generation(raw: &mut Raw, prefix: &str) -> String {
    let value = raw.get(&format!("{prefix}#g")).expect("the generation key exists once the prefix is used");
    String::from_utf8(value).expect("a generation is decimal text")
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn a_raw_client_reads_the_exact_bytes_under_the_documented_key() {
    let prefix = unique_prefix();
    let cache = cache_on(SINGLE).await.with_prefix(&prefix);
    let every_byte: Vec<u8> = (0..=255u8).collect();
    cache.set("user:7", Bytes::from(every_byte.clone()), Ttl::Never).await.expect("set");

    let mut raw = Raw::connect(&server());
    let generation = generation(&mut raw, &prefix);
    let wire = format!("{prefix}user:7#{generation}");
    assert_eq!(raw.get(&wire), Some(every_byte), "the raw client read other bytes under {wire}");
    let location = cache.locate("user:7").await.expect("locate");
    assert_eq!((location.server, location.key), (server(), wire));

    // A key memcached cannot take is found under its documented digest form.
    cache.set("a key with spaces", Bytes::from_static(b"spaced"), Ttl::Never).await.expect("set");
    let mut hasher = Sha256::new();
    hasher.update(generation.parse::<u64>().expect("decimal").to_le_bytes());
    hasher.update(prefix.as_bytes());
    hasher.update(b"a key with spaces");
    let digest: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(raw.get(&format!("{digest}#d")).as_deref(), Some(&b"spaced"[..]));

    // And what a raw client writes under the form, the cache reads.
    let written = format!("{prefix}from-raw#{generation}");
    assert_eq!(raw.command(&format!("set {written} 0 0 5\r\nhello\r\n")), "STORED");
    assert_eq!(cache.get("from-raw").await.expect("get").as_deref(), Some(&b"hello"[..]));
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn incr_interleaves_with_a_raw_incr() {
    let prefix = unique_prefix();
    let cache = cache_on(SINGLE).await.with_prefix(&prefix);
    assert_eq!(cache.incr("hits", 5).await.expect("incr"), 5);
    let mut raw = Raw::connect(&server());
    let wire = format!("{prefix}hits#{}", generation(&mut raw, &prefix));
    assert_eq!(raw.command(&format!("incr {wire} 3\r\n")), "8");
    assert_eq!(cache.incr("hits", 1).await.expect("incr"), 9);
    assert_eq!(raw.command(&format!("incr {wire} 1\r\n")), "10");
    assert_eq!(cache.get("hits").await.expect("get").as_deref(), Some(&b"10"[..]));
    // memcached's decr clamps at 0 and would store "9 " padded; the cache goes below 0
    // and stores plain decimal text.
    assert_eq!(cache.incr("hits", -15).await.expect("decr"), -5);
    assert_eq!(raw.get(&wire).as_deref(), Some(&b"-5"[..]));
    assert_eq!(cache.incr("hits", 6).await.expect("incr back over 0"), 1);
    assert_eq!(raw.command(&format!("incr {wire} 1\r\n")), "2", "a raw incr works again once it is positive");
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn incr_refuses_what_memcached_would_wrap() {
    let prefix = unique_prefix();
    let cache = cache_on(SINGLE).await.with_prefix(&prefix);
    // A u64 that is no i64: memcached would wrap it to a small number.
    let huge = u64::MAX.to_string();
    cache.set("huge", Bytes::from(huge.clone()), Ttl::Never).await.expect("set");
    let error = cache.incr("huge", 2).await.expect_err("not an i64");
    assert_eq!(error.kind(), ErrorKind::NotAnInteger, "{error}");
    assert_eq!(cache.get("huge").await.expect("get"), Some(Bytes::from(huge)));
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn clear_of_one_prefix_leaves_another_and_other_programs_keys() {
    let store = cache_on(SINGLE).await;
    let (mine, other) = (store.with_prefix(&unique_prefix()), store.with_prefix(&unique_prefix()));
    mine.set("k", Bytes::from_static(b"mine"), Ttl::Never).await.expect("set");
    other.set("k", Bytes::from_static(b"other"), Ttl::Never).await.expect("set");
    let mut raw = Raw::connect(&server());
    let outsider = format!("{}outsider", unique_prefix());
    assert_eq!(raw.command(&format!("set {outsider} 0 0 4\r\nkeep\r\n")), "STORED");

    mine.clear().await.expect("clear");
    assert_eq!(mine.get("k").await.expect("get"), None);
    assert_eq!(other.get("k").await.expect("get").as_deref(), Some(&b"other"[..]), "clear crossed a prefix");
    assert_eq!(raw.get(&outsider).as_deref(), Some(&b"keep"[..]), "clear touched another program's key");

    // A cache built separately (another process, say) sees the clear once its generation
    // refresh has passed.
    let separate = cache_on(SINGLE).await.with_prefix(mine.prefix());
    assert_eq!(separate.get("k").await.expect("get"), None);
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn long_lifetimes_are_sent_as_unix_times() {
    let prefix = unique_prefix();
    let cache = cache_on(SINGLE).await.with_prefix(&prefix);
    const DAY: u64 = 24 * 3600;
    cache.set("month", Bytes::from_static(b"m"), Ttl::secs(31 * DAY)).await.expect("set");
    cache.set("decade", Bytes::from_static(b"d"), Ttl::secs(3653 * DAY)).await.expect("set");
    let mut raw = Raw::connect(&server());
    let generation = generation(&mut raw, &prefix);
    for (key, days) in [("month", 31), ("decade", 3653)] {
        // `mg KEY t` answers the seconds left: about the lifetime asked, not a 1970 date.
        let answer = raw.command(&format!("mg {prefix}{key}#{generation} t\r\n"));
        let left: u64 = answer
            .strip_prefix("HD t")
            .and_then(|secs| secs.parse().ok())
            .unwrap_or_else(|| panic!("{key}: unexpected answer {answer:?}"));
        let asked = days * DAY;
        assert!((asked - 5..=asked + 5).contains(&left), "{key}: {left} s left, asked {asked}");
    }
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn two_mebibytes_are_refused_and_the_old_value_stays() {
    let cache = cache_on(SINGLE).await.with_prefix(&unique_prefix());
    cache.set("big", Bytes::from_static(b"old"), Ttl::Never).await.expect("set");
    let error = cache.set("big", Bytes::from(vec![7; 2 << 20]), Ttl::Never).await.expect_err("2 MiB");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
    assert!(error.to_string().contains("\"big\""), "the error names the key: {error}");
    assert_eq!(cache.get("big").await.expect("get").as_deref(), Some(&b"old"[..]));
    let limit = cache.capabilities().max_value_len.expect("a limit");
    cache.set("big", Bytes::from(vec![7; limit]), Ttl::Never).await.expect("the limit itself fits the server");
    let error = cache.set_many(&[("small", Bytes::new()), ("big", Bytes::from(vec![1; limit + 1]))], Ttl::Never).await;
    assert_eq!(error.expect_err("over").kind(), ErrorKind::ValueTooLarge);
    assert_eq!(cache.get("small").await.expect("get"), None, "nothing of a refused set_many is sent");
}

#[tokio::test]
#[ignore = "needs memcached: cargo xtask test"]
async fn a_generation_lost_to_eviction_never_revives_cleared_entries() {
    let prefix = unique_prefix();
    let cache = cache_on(SINGLE).await.with_prefix(&prefix);
    cache.set("k", Bytes::from_static(b"before"), Ttl::Never).await.expect("set");
    cache.clear().await.expect("clear");
    // As if memcached evicted the generation key: the next one comes from the clock.
    let mut raw = Raw::connect(&server());
    assert_eq!(raw.command(&format!("delete {prefix}#g\r\n")), "DELETED");
    let fresh = cache_on(SINGLE).await.with_prefix(&prefix);
    assert_eq!(fresh.get("k").await.expect("get"), None, "a cleared entry came back");
    fresh.set("k", Bytes::from_static(b"after"), Ttl::Never).await.expect("set");
    assert_eq!(fresh.get("k").await.expect("get").as_deref(), Some(&b"after"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs memcached: cargo xtask test"]
async fn racing_decrements_and_increments_lose_nothing() {
    const TASKS: i64 = 10;
    const STEPS: i64 = 20;
    let cache = std::sync::Arc::new(cache_on(SINGLE).await.with_prefix(&unique_prefix()));
    // Decrements go by compare-and-swap, increments of a non-negative value by memcached's
    // incr; racing, they must still add up.
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..2 * TASKS {
        let cache = std::sync::Arc::clone(&cache);
        tasks.spawn(async move {
            let delta = if task % 2 == 0 { -1 } else { 1 };
            let mut seen = Vec::new();
            for _ in 0..STEPS {
                seen.push(cache.incr("n", delta).await.expect("incr"));
            }
            seen
        });
    }
    let seen: Vec<i64> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(seen.len() as i64, 2 * TASKS * STEPS);
    assert_eq!(cache.get("n").await.expect("get").as_deref(), Some(&b"0"[..]), "a step was lost");

    let down = std::sync::Arc::clone(&cache);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let cache = std::sync::Arc::clone(&down);
        tasks.spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..STEPS {
                seen.push(cache.incr("down", -1).await.expect("decr"));
            }
            seen
        });
    }
    let mut seen: Vec<i64> = tasks.join_all().await.into_iter().flatten().collect();
    seen.sort_unstable();
    assert_eq!(seen, (-TASKS * STEPS..=-1).collect::<Vec<_>>(), "every decrement must return a distinct step");
}
