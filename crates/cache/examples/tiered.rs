//! A memory store in front of a slower one, with stats: what each read costs and where it
//! was served from. The far store is a directory here; with the `redis` feature it is
//! usually Redis (`cache::open("redis://...")`), and the code does not change.
//!
//! `cargo run -p cache --example tiered`

use std::sync::Arc;
use std::time::Duration;

use cache::fs::FsCache;
use cache::memory::MemoryCache;
use cache::{Bytes, Cache, Instrumented, Operation, Tiered, Ttl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let far = Instrumented::new(FsCache::builder(dir.path()).build().await?).sample_every(1);
    let far_stats = far.stats();
    let near = MemoryCache::builder().max_capacity(1_000).build()?;
    // Near copies live at most 5 s: another process's change shows here within 5 s.
    let tiered = Instrumented::new(Tiered::new(near, far).near_ttl_cap(Duration::from_secs(5))).sample_every(1);
    let stats = tiered.stats();
    let cache: Arc<dyn Cache> = Arc::new(tiered);
    println!("opened memory (near, 5 s cap) in front of files (far) at {}", dir.path().display());

    cache.set("report", Bytes::from_static(b"quarterly numbers"), Ttl::secs(3600)).await?;
    for _ in 0..1_000 {
        cache.get("report").await?;
    }
    let now = stats.snapshot();
    let far_now = far_stats.snapshot();
    println!(
        "1000 reads of one key: {} hits, {} of them reached the far store; get p50 {:?}, p99 {:?}",
        now.hits,
        far_now.operation(Operation::Get).calls,
        now.operation(Operation::Get).latency.p50,
        now.operation(Operation::Get).latency.p99,
    );

    println!("incr goes to the far store -> {}", cache.incr("visits", 1).await?);
    println!("incr goes to the far store -> {}", cache.incr("visits", 1).await?);
    println!("get after incr reads the far result -> {:?}", cache.get("visits").await?);
    println!("capabilities of the pair: {:?}", cache.capabilities());
    Ok(())
}
