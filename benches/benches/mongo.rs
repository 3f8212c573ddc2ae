//! `MongoCache` beside the direct `mongodb` driver calls a user would otherwise write, in
//! the same run, against the same server, on one current-thread tokio runtime:
//!
//! - `mongo_cache`: `get`, `set`, `get_many(100)` through `MongoCache`;
//! - `driver`: `find_one({_id})`, `replace_one({_id}, doc).upsert(true)` and
//!   `find({_id: {$in: [...]}})` with `limit` and `batchSize` set to the number of keys
//!   (without the limit the server keeps the cursor open and a `getMore` follows: two round
//!   trips), on a `Collection<Document>` of the same client settings, with documents of the
//!   same shape and size.
//!
//! Values are 1 KiB. Before the timed runs the bench counts the commands each call sends
//! (a command-started event handler on each client) and prints round trips per call.
//!
//! Needs the MongoDB-wire test server:
//! `eval "$(cargo xtask servers up mongodb)"; cargo bench -p benches --bench mongo`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_mongo::MongoCache;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::TryStreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use tokio::runtime::Runtime;

const VALUE_LEN: usize = 1024;
const MANY: usize = 100;
const DATABASE: &str = "cache_mongo_bench";

fn url() -> String {
    std::env::var("CACHE_TEST_MONGO_URL")
        .unwrap_or_else(|_| panic!("the mongo bench needs a server: eval \"$(cargo xtask servers up mongodb)\" first"))
}

/// A client that counts the commands it sends, with the store's pool settings.
async fn counting_client(commands: Arc<AtomicU64>) -> Client {
    let mut options = ClientOptions::parse(url()).await.expect("parsing CACHE_TEST_MONGO_URL");
    options.max_pool_size = Some(cache_mongo::DEFAULT_MAX_POOL_SIZE);
    options.max_connecting = Some(cache_mongo::DEFAULT_MAX_CONNECTING);
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(_) = event {
            commands.fetch_add(1, Ordering::Relaxed);
        }
    }));
    Client::with_options(options).expect("a client")
}

fn keys() -> Vec<String> {
    (0..MANY).map(|index| format!("key-{index}")).collect()
}

fn document(id: &str, value: &Bytes) -> Document {
    doc! { "_id": id, "value": Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() } }
}

async fn driver_get(collection: &Collection<Document>, id: &str) -> Option<Document> {
    collection.find_one(doc! { "_id": id }).await.expect("find_one")
}

async fn driver_set(collection: &Collection<Document>, id: &str, value: &Bytes) {
    collection.replace_one(doc! { "_id": id }, document(id, value)).upsert(true).await.expect("replace_one");
}

async fn driver_get_many(collection: &Collection<Document>, ids: &[String]) -> Vec<Document> {
    let cursor = collection
        .find(doc! { "_id": { "$in": ids } })
        .limit(i64::try_from(ids.len()).unwrap_or(i64::MAX))
        .batch_size(u32::try_from(ids.len()).unwrap_or(u32::MAX))
        .await
        .expect("find");
    cursor.try_collect().await.expect("cursor")
}

struct Contenders {
    cache: MongoCache,
    cache_commands: Arc<AtomicU64>,
    driver: Collection<Document>,
    driver_commands: Arc<AtomicU64>,
}

async fn contenders() -> Contenders {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let cache_commands = Arc::new(AtomicU64::new(0));
    let cache = MongoCache::builder()
        .client(counting_client(Arc::clone(&cache_commands)).await)
        .database(DATABASE)
        .collection(format!("cache_{stamp:x}"))
        .prefix("bench:")
        .build()
        .await
        .expect("building the MongoCache");
    let driver_commands = Arc::new(AtomicU64::new(0));
    let driver = counting_client(Arc::clone(&driver_commands))
        .await
        .database(DATABASE)
        .collection::<Document>(&format!("driver_{stamp:x}"));
    let value = Bytes::from(vec![0x5a; VALUE_LEN]);
    let keys = keys();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), value.clone())).collect();
    cache.set_many(&entries, Ttl::Never).await.expect("prefill the cache");
    for key in &keys {
        driver_set(&driver, &format!("bench:{key}"), &value).await;
    }
    Contenders { cache, cache_commands, driver, driver_commands }
}

/// Commands per call, counted over `calls` calls of each operation.
async fn round_trips(contenders: &Contenders) {
    const CALLS: u64 = 50;
    let value = Bytes::from(vec![0x33; VALUE_LEN]);
    let keys = keys();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let ids: Vec<String> = keys.iter().map(|key| format!("bench:{key}")).collect();
    let per_call = |counter: &AtomicU64, before: u64| (counter.load(Ordering::Relaxed) - before) as f64 / CALLS as f64;
    let (cache, driver) = (&contenders.cache, &contenders.driver);
    let (ours, theirs) = (&contenders.cache_commands, &contenders.driver_commands);

    let before = ours.load(Ordering::Relaxed);
    for _ in 0..CALLS {
        cache.get("key-1").await.expect("get");
    }
    let cache_get = per_call(ours, before);
    let before = ours.load(Ordering::Relaxed);
    for _ in 0..CALLS {
        cache.set("key-1", value.clone(), Ttl::Never).await.expect("set");
    }
    let cache_set = per_call(ours, before);
    let before = ours.load(Ordering::Relaxed);
    for _ in 0..CALLS {
        cache.get_many(&refs).await.expect("get_many");
    }
    let cache_many = per_call(ours, before);

    let before = theirs.load(Ordering::Relaxed);
    for _ in 0..CALLS {
        driver_get(driver, "bench:key-1").await;
    }
    let driver_get_trips = per_call(theirs, before);
    let before = theirs.load(Ordering::Relaxed);
    for _ in 0..CALLS {
        driver_set(driver, "bench:key-1", &value).await;
    }
    let driver_set_trips = per_call(theirs, before);
    let before = theirs.load(Ordering::Relaxed);
    for _ in 0..CALLS {
        driver_get_many(driver, &ids).await;
    }
    let driver_many = per_call(theirs, before);
    println!("round trips per call (MongoCache / driver):");
    println!("  get          {cache_get:.2} / {driver_get_trips:.2}");
    println!("  set          {cache_set:.2} / {driver_set_trips:.2}");
    println!("  get_many(100) {cache_many:.2} / {driver_many:.2}");
}

fn bench(c: &mut Criterion) {
    let runtime: Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let contenders = runtime.block_on(contenders());
    runtime.block_on(round_trips(&contenders));
    let value = Bytes::from(vec![0x77; VALUE_LEN]);
    let keys = keys();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let ids: Vec<String> = keys.iter().map(|key| format!("bench:{key}")).collect();
    let Contenders { cache, driver, .. } = &contenders;

    let mut group = c.benchmark_group("mongo/get");
    group.bench_function("mongo_cache", |b| {
        b.to_async(&runtime).iter(|| async { black_box(cache.get("key-7").await.expect("get")) });
    });
    group.bench_function("driver", |b| {
        b.to_async(&runtime).iter(|| async { black_box(driver_get(driver, "bench:key-7").await) });
    });
    group.finish();

    let mut group = c.benchmark_group("mongo/set");
    group.bench_function("mongo_cache", |b| {
        b.to_async(&runtime).iter(|| async { cache.set("key-8", value.clone(), Ttl::Never).await.expect("set") });
    });
    group.bench_function("driver", |b| {
        b.to_async(&runtime).iter(|| async { driver_set(driver, "bench:key-8", &value).await });
    });
    group.finish();

    let mut group = c.benchmark_group("mongo/get_many_100");
    group.bench_function("mongo_cache", |b| {
        b.to_async(&runtime).iter(|| async { black_box(cache.get_many(&refs).await.expect("get_many")) });
    });
    group.bench_function("driver", |b| {
        b.to_async(&runtime).iter(|| async { black_box(driver_get_many(driver, &ids).await) });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // A Python server answers in about a millisecond: 30 samples over 5 s are plenty.
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
