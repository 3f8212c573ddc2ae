//! The main job on the embedded default: an in-process cache, no server needed.
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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    Ok(())
}
