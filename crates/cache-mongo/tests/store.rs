//! What `MongoCache` promises beyond the conformance suite, checked against the server
//! (and, for the documents' shape, with the plain driver).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::{Bytes, Cache, ErrorKind, Ttl};
use cache_mongo::{MAX_VALUE_LEN, MongoCache};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use tokio::sync::Barrier;

mod support;

/// A cache on a fresh collection, through its own client built from the URL.
async fn fresh(prefix: &str) -> (MongoCache, String) {
    let collection = support::unique_collection();
    (open(&collection, prefix).await, collection)
}

async fn open(collection: &str, prefix: &str) -> MongoCache {
    MongoCache::builder()
        .uri(support::url())
        .database(support::DATABASE)
        .collection(collection)
        .prefix(prefix)
        .operation_timeout(support::PATIENT)
        .build()
        .await
        .expect("building a MongoCache")
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn build_creates_the_ttl_index_and_builds_again() {
    cache_core::testkit::block_on(async {
        let (cache, collection) = fresh("").await;
        let again = open(&collection, "other:").await;
        again.set("k", bytes("v"), Ttl::Never).await.expect("set through the second build");
        let indexes: Vec<_> =
            cache.collection().list_indexes().await.expect("listIndexes").try_collect().await.expect("indexes");
        let ttl: Vec<_> = indexes.iter().filter(|index| index.keys == doc! { "expires_at": 1 }).collect();
        assert_eq!(ttl.len(), 1, "one index on expires_at: {indexes:?}");
        let expire_after = ttl[0].options.as_ref().and_then(|options| options.expire_after);
        assert_eq!(expire_after, Some(Duration::ZERO), "expireAfterSeconds must be 0: {:?}", ttl[0]);
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn an_index_with_other_options_is_invalid_config() {
    cache_core::testkit::block_on(async {
        let collection = support::unique_collection();
        let client = support::client().await;
        let raw = client.database(support::DATABASE).collection::<Document>(&collection);
        let index = mongodb::IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(mongodb::options::IndexOptions::builder().expire_after(Duration::from_secs(60)).build())
            .build();
        raw.create_index(index).await.expect("a conflicting TTL index");
        let error = MongoCache::builder()
            .client(client)
            .database(support::DATABASE)
            .collection(&collection)
            .build()
            .await
            .expect_err("an expires_at index with another expiry");
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
        assert!(error.to_string().contains("expireAfterSeconds 0"), "{error}");
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn documents_have_the_documented_shape() {
    cache_core::testkit::block_on(async {
        let (cache, _) = fresh("shape:").await;
        let raw = cache.collection().clone();
        let before = mongodb::bson::DateTime::now();
        cache.set("bytes", Bytes::from_static(b"\0\xffvalue"), Ttl::secs(60)).await.expect("set");
        cache.set("forever", bytes("x"), Ttl::Never).await.expect("set");
        cache.set("renewed", bytes("old"), Ttl::secs(60)).await.expect("set");
        cache.set("renewed", bytes("new"), Ttl::Never).await.expect("set again");
        cache.incr("counter", 41).await.expect("incr");
        cache.incr("counter", 1).await.expect("incr");
        cache.set("text-number", bytes("10"), Ttl::Never).await.expect("set");
        cache.incr("text-number", 5).await.expect("incr on text");

        let find = |id: &str| {
            let raw = raw.clone();
            let id = id.to_owned();
            async move { raw.find_one(doc! { "_id": &id }).await.expect("find").unwrap_or_else(|| panic!("no {id}")) }
        };
        let entry = find("shape:bytes").await;
        assert_eq!(entry.keys().collect::<Vec<_>>(), ["_id", "value", "expires_at"], "{entry:?}");
        match entry.get("value") {
            Some(Bson::Binary(binary)) => assert_eq!(binary.bytes, b"\0\xffvalue"),
            other => panic!("value is not binary: {other:?}"),
        }
        let expires_at = *entry.get_datetime("expires_at").expect("expires_at is a date");
        let in_a_minute = before.timestamp_millis() + 60_000;
        assert!(
            (in_a_minute..in_a_minute + 5_000).contains(&expires_at.timestamp_millis()),
            "expires_at {expires_at} is not a minute after {before}"
        );
        let forever = find("shape:forever").await;
        assert!(!forever.contains_key("expires_at"), "an entry that never expires has no expires_at: {forever:?}");
        let renewed = find("shape:renewed").await;
        assert!(!renewed.contains_key("expires_at"), "set without expiry must remove the old one: {renewed:?}");
        assert_eq!(find("shape:counter").await.get("value"), Some(&Bson::Int64(42)), "counters are Int64");
        assert_eq!(find("shape:text-number").await.get("value"), Some(&Bson::Int64(15)));
        assert_eq!(cache.get("counter").await.expect("get"), Some(bytes("42")), "get reads an Int64 as text");

        // A document written by someone else with the same shape reads back as ours.
        raw.insert_one(doc! { "_id": "shape:foreign", "value": 7_i64 }).await.expect("insert");
        assert_eq!(cache.get("foreign").await.expect("get"), Some(bytes("7")));
        assert_eq!(cache.incr("foreign", 1).await.expect("incr"), 8);
        raw.insert_one(doc! { "_id": "shape:odd", "value": "a string" }).await.expect("insert");
        let error = cache.get("odd").await.expect_err("a value of another type");
        assert_eq!(error.kind(), ErrorKind::Unexpected, "{error}");
        assert!(error.to_string().contains("\"odd\""), "errors name the key: {error}");
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn reads_filter_expired_documents_the_server_has_not_swept() {
    cache_core::testkit::block_on(async {
        let (cache, _) = fresh("swept:").await;
        let past = mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() - 10_000);
        let bin = |text: &str| mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: text.as_bytes().to_vec(),
        };
        let raw = cache.collection();
        raw.insert_one(doc! { "_id": "swept:old", "value": bin("stale"), "expires_at": past }).await.expect("insert");
        raw.insert_one(doc! { "_id": "swept:n", "value": 41_i64, "expires_at": past }).await.expect("insert");
        assert_eq!(cache.get("old").await.expect("get"), None);
        assert!(!cache.has("old").await.expect("has"));
        assert_eq!(cache.get_many(&["old", "n"]).await.expect("get_many"), [None, None]);
        assert!(!cache.delete("old").await.expect("delete"), "an expired entry is not live to delete");
        assert_eq!(cache.delete_many(&["old", "n"]).await.expect("delete_many"), 0, "only live entries count");
        assert_eq!(cache.incr("n", 1).await.expect("incr"), 1, "an expired counter counts from zero");
        assert!(cache.add("old", bytes("fresh"), Ttl::Never).await.expect("add"), "an expired entry is absent");
        assert_eq!(cache.get("old").await.expect("get"), Some(bytes("fresh")));
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn clear_takes_exactly_its_prefix_range() {
    cache_core::testkit::block_on(async {
        let collection = support::unique_collection();
        let prefixes = ["app", "app2", "a.b*", "aXbbb", "a.b", "xa.b*", "a.b*c", ""];
        let mut caches = Vec::new();
        for prefix in prefixes {
            let cache = open(&collection, prefix).await;
            cache.set("k", bytes(prefix), Ttl::Never).await.expect("set");
            caches.push(cache);
        }
        let alive = |caches: &[MongoCache]| {
            let caches = caches.to_vec();
            async move {
                let mut alive = Vec::new();
                for cache in &caches {
                    alive.push(cache.get("k").await.expect("get").is_some());
                }
                alive
            }
        };
        // `app2` takes `app2k` and nothing of `app`.
        caches[1].clear().await.expect("clear app2");
        assert_eq!(alive(&caches).await, [true, false, true, true, true, true, true, true], "clear of app2");
        // Regex characters are plain: `a.b*` takes `a.b*k` and `a.b*ck`, not `aXbbbk`,
        // `a.bk` or `xa.b*k`, which an unanchored or unescaped regex would.
        caches[2].clear().await.expect("clear a.b*");
        assert_eq!(alive(&caches).await, [true, false, false, true, true, true, false, true], "clear of a.b*");
        // The literal rule: `app` is a string prefix of `app2k`, so its clear takes it too.
        caches[1].set("k", bytes("again"), Ttl::Never).await.expect("set app2k again");
        caches[0].clear().await.expect("clear app");
        assert_eq!(alive(&caches).await, [false, false, false, true, true, true, false, true], "clear of app");
        // Without a prefix, clear empties the collection but keeps it and its index.
        caches[7].clear().await.expect("unprefixed clear");
        assert_eq!(alive(&caches).await, [false; 8]);
        caches[3].set("k", bytes("after"), Ttl::secs(60)).await.expect("set after clear");
        let indexes: Vec<String> = caches[3].collection().list_index_names().await.expect("index names");
        assert!(indexes.iter().any(|name| name.contains("expires_at")), "the TTL index must survive: {indexes:?}");
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn fifty_concurrent_adds_have_one_winner_on_a_missing_and_an_expired_key() {
    cache_core::testkit::block_on(async {
        let (first, collection) = fresh("race:").await;
        // Ten handles, each with its own client, as ten processes would have.
        let mut handles = vec![Arc::new(first)];
        for _ in 1..10 {
            handles.push(Arc::new(open(&collection, "race:").await));
        }
        for key in ["missing", "expired"] {
            if key == "expired" {
                handles[0].set(key, bytes("old"), Ttl::millis(1)).await.expect("set");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let barrier = Arc::new(Barrier::new(50));
            let mut racers = tokio::task::JoinSet::new();
            for racer in 0..50 {
                let (cache, barrier) = (Arc::clone(&handles[racer % handles.len()]), Arc::clone(&barrier));
                racers.spawn(async move {
                    barrier.wait().await;
                    (racer, cache.add(key, bytes(&racer.to_string()), Ttl::Never).await.expect("add"))
                });
            }
            let winners: Vec<usize> =
                racers.join_all().await.into_iter().filter_map(|(racer, won)| won.then_some(racer)).collect();
            assert_eq!(winners.len(), 1, "{key}: exactly one add must win: {winners:?}");
            assert_eq!(handles[3].get(key).await.expect("get"), Some(bytes(&winners[0].to_string())));
        }
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn sixty_concurrent_incrs_are_exact_on_new_text_and_expired_values() {
    cache_core::testkit::block_on(async {
        let (first, collection) = fresh("count:").await;
        let mut handles = vec![Arc::new(first)];
        for _ in 1..6 {
            handles.push(Arc::new(open(&collection, "count:").await));
        }
        handles[0].set("text", bytes("10"), Ttl::secs(600)).await.expect("set text");
        handles[0].set("expired", bytes("99"), Ttl::millis(1)).await.expect("set expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (key, start) in [("new", 0), ("text", 10), ("expired", 0)] {
            let barrier = Arc::new(Barrier::new(60));
            let mut racers = tokio::task::JoinSet::new();
            for racer in 0..60 {
                let (cache, barrier) = (Arc::clone(&handles[racer % handles.len()]), Arc::clone(&barrier));
                racers.spawn(async move {
                    barrier.wait().await;
                    cache.incr(key, 1).await.expect("incr")
                });
            }
            let mut seen = racers.join_all().await;
            seen.sort_unstable();
            assert_eq!(seen, ((start + 1)..=(start + 60)).collect::<Vec<i64>>(), "{key}: every incr a distinct step");
            assert_eq!(handles[1].get(key).await.expect("get"), Some(bytes(&(start + 60).to_string())));
        }
        // The text value kept its lifetime through the conversion to a counter.
        let raw = handles[0].collection().find_one(doc! { "_id": "count:text" }).await.expect("find");
        assert!(raw.is_some_and(|entry| entry.contains_key("expires_at")), "incr must keep the entry's lifetime");
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn counters_at_the_edges_of_i64() {
    cache_core::testkit::block_on(async {
        let (cache, _) = fresh("edge:").await;
        cache.set("n", bytes(&(i64::MAX - 1).to_string()), Ttl::Never).await.expect("set");
        assert_eq!(cache.incr("n", 1).await.expect("incr to MAX"), i64::MAX);
        let error = cache.incr("n", 1).await.expect_err("past MAX");
        assert_eq!(error.kind(), ErrorKind::IntegerOverflow, "{error}");
        assert_eq!(cache.get("n").await.expect("get"), Some(bytes(&i64::MAX.to_string())), "unchanged");
        assert_eq!(cache.incr("n", i64::MIN).await.expect("back down"), -1);
        assert_eq!(cache.incr("m", i64::MIN).await.expect("to MIN"), i64::MIN);
        let error = cache.incr("m", -1).await.expect_err("past MIN");
        assert_eq!(error.kind(), ErrorKind::IntegerOverflow, "{error}");
        assert_eq!(cache.incr("m", i64::MAX).await.expect("up"), -1);
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn oversized_documents_are_refused_before_sending() {
    cache_core::testkit::block_on(async {
        let (cache, _) = fresh("big:").await;
        let long_key = "k".repeat(20 * 1024);
        cache.set(&long_key, bytes("small"), Ttl::Never).await.expect("a 20 KiB key");
        let at_limit = Bytes::from(vec![b'v'; MAX_VALUE_LEN]);
        let error = cache.set(&long_key, at_limit.clone(), Ttl::Never).await.expect_err("key + value over 16 MiB");
        assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
        assert!(error.to_string().contains("16777216"), "the error names MongoDB's limit: {error}");
        assert_eq!(cache.get(&long_key).await.expect("get"), Some(bytes("small")), "the old value stays");
        let error = cache.set_many(&[("fine", bytes("x")), (&long_key, at_limit)], Ttl::Never).await;
        assert_eq!(error.expect_err("one oversized entry").kind(), ErrorKind::ValueTooLarge);
        assert_eq!(cache.get("fine").await.expect("get"), None, "a refused set_many sends nothing");
    });
}

#[test]
#[ignore = "needs mongodb: cargo xtask test"]
fn set_many_splits_batches_over_16_mib() {
    cache_core::testkit::block_on(async {
        let (cache, _) = fresh("batch:").await;
        let value = Bytes::from(vec![b'b'; 3 * 1024 * 1024]);
        let keys: Vec<String> = (0..7).map(|index| format!("k{index}")).collect();
        let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), value.clone())).collect();
        cache.set_many(&entries, Ttl::Never).await.expect("21 MiB in one set_many");
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = cache.get_many(&refs).await.expect("get_many of 21 MiB");
        assert!(got.iter().all(|got| got.as_ref() == Some(&value)), "every value came back whole");
    });
}

#[test]
fn an_unreachable_server_fails_the_build_quickly_without_credentials() {
    cache_core::testkit::block_on(async {
        // Port 1 on loopback refuses connections.
        let started = Instant::now();
        let error = MongoCache::builder()
            .uri("mongodb://ada:hunter2@127.0.0.1:1/?directConnection=true")
            .server_selection_timeout(Duration::from_millis(300))
            .build()
            .await
            .expect_err("nothing listens on port 1");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert!(error.is_temporary(), "unreachable is temporary: {error}");
        assert_eq!(error.operation(), "build");
        let mut everything = format!("{error} {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            everything.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(!everything.contains("hunter2"), "the password leaked: {everything}");

        let debug = format!("{:?}", MongoCache::builder().uri("mongodb://ada:hunter2@db.example:27017/"));
        assert!(!debug.contains("hunter2") && !debug.contains("ada"), "{debug}");
    });
}

#[test]
fn a_black_holed_server_fails_every_call_within_the_operation_timeout() {
    cache_core::testkit::block_on(async {
        // A listener that accepts and never answers: the build, which must reach the
        // server, gives up at the operation timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = silent.local_addr().expect("addr");
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let started = Instant::now();
        let error = MongoCache::builder()
            .uri(format!("mongodb://{addr}/?directConnection=true"))
            .operation_timeout(Duration::from_millis(500))
            .server_selection_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(30))
            .build()
            .await
            .expect_err("a server that never answers");
        assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        keep.abort();
    });
}
