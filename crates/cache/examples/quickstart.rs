//! The main job on the embedded default: an in-process cache, no server needed; then the
//! registry of versioned files.
//!
//! `cargo run --example quickstart`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache::memory::MemoryCache;
use cache::{Bytes, Cache, CacheExt, Ttl};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Any store fits behind `Arc<dyn Cache>`; this one lives in process memory.
    let cache: Arc<dyn Cache> =
        Arc::new(MemoryCache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(300)).build()?);
    println!("opened {cache:?}");

    cache.set("greeting", Bytes::from_static(b"hello"), Ttl::Default).await?;
    println!("set greeting -> {:?}", cache.get("greeting").await?);

    let ada = User { id: 7, name: "Ada".into() };
    cache.set_as("user:7", &ada, Ttl::secs(60)).await?;
    let back: Option<User> = cache.get_as("user:7").await?;
    println!("typed round trip -> {back:?}");

    println!("incr visits -> {}", cache.incr("visits", 1).await?);
    println!("incr visits -> {}", cache.incr("visits", 1).await?);
    println!("add visits (already there) -> {}", cache.add("visits", Bytes::from_static(b"0"), Ttl::Never).await?);

    // Ten callers ask for one missing key at once: the loader runs once.
    let loads = Arc::new(AtomicUsize::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
        callers.spawn(async move {
            cache
                .get_or_insert_with("report", Ttl::secs(30), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, std::io::Error>(Bytes::from_static(b"expensive report"))
                })
                .await
        });
    }
    for value in callers.join_all().await {
        value?;
    }
    println!("get_or_insert_with from 10 callers -> loader ran {} time(s)", loads.load(Ordering::SeqCst));

    cache.set("flash", Bytes::from_static(b"gone soon"), Ttl::millis(50)).await?;
    tokio::time::sleep(Duration::from_millis(80)).await;
    println!("entry with a 50 ms TTL after 80 ms -> {:?}", cache.get("flash").await?);

    match cache.incr("greeting", 1).await {
        Err(error) => println!("incr of a non-integer -> error: {error}"),
        Ok(value) => println!("incr of a non-integer unexpectedly gave {value}"),
    }

    let keys = ["greeting", "user:7", "visits", "missing"];
    let found = cache.get_many(&keys).await?.iter().filter(|value| value.is_some()).count();
    println!("get_many of {} keys -> {found} found", keys.len());

    // Versioned files with status and searchable attributes. The registry is synchronous
    // SQLite, so async code calls it on the blocking pool.
    let (version, text, matches) =
        tokio::task::spawn_blocking(|| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            use cache::registry::{Filter, NewItem, Registry};
            use std::io::{Read, Write};

            let dir = tempfile::tempdir()?;
            let registry = Registry::open(dir.path())?;
            let uri = "https://example.org/sales.csv";
            let params = serde_json::json!({"year": 2024, "region": "eu"});
            // Each create is a new version of (uri, params); its file is written through a guard.
            let item = registry.create(uri, &params, &NewItem::new().label("daily").attr("rows", 2))?;
            let mut writer = item.write()?; // Uninitialized -> Write
            writer.write_all(b"day,total\nmon,3\ntue,5\n")?;
            writer.commit()?; // the file moves into place, then Write -> Ready
            // Key order in params never matters: this finds the newest Ready version.
            let best =
                registry.best(uri, &serde_json::json!({"region": "eu", "year": 2024}))?.ok_or("no Ready version")?;
            let mut text = String::new();
            best.open()?.read_to_string(&mut text)?; // .gz/.bz2/.xz and zip/tar members read the same way
            let matches = registry.search(Filter::attr("rows").ge(2).and(Filter::label("daily")))?;
            Ok((best.version(), text, matches.len()))
        })
        .await??;
    println!("registry: best is version {version} ({} bytes); {matches} item(s) with rows >= 2", text.len());
    Ok(())
}
