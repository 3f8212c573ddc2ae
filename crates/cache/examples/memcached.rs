//! Rendered pages cached in memcached, computed once however many requests race for them
//! (`get_or_insert_with` is single flight), and dropped by `clear` without touching any other
//! prefix on the same servers.
//!
//! ```sh
//! eval "$(cargo xtask servers up memcached)"
//! CACHE_URL="memcache://$CACHE_TEST_MEMCACHED_ADDR?prefix=pages:&ttl=1m" cargo run -p cache --features memcached --example memcached
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache::{Bytes, CacheExt, Ttl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Ok(url) = std::env::var("CACHE_URL") else {
        eprintln!(
            "set CACHE_URL to a memcached URL, for example CACHE_URL='memcache://127.0.0.1:11211?prefix=pages:&ttl=1m'"
        );
        std::process::exit(2);
    };
    let cache = cache::open(&url).await?;
    println!("opened {cache:?}");
    cache.clear().await?; // a fresh start for this prefix only

    let renders = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut requests = Vec::new();
    for _ in 0..20 {
        let (cache, renders) = (Arc::clone(&cache), Arc::clone(&renders));
        requests.push(tokio::spawn(async move {
            cache
                .get_or_insert_with("/products/42", Ttl::Default, || async move {
                    renders.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await; // a slow template
                    Ok::<_, std::io::Error>(Bytes::from_static(b"<h1>Teapot</h1>"))
                })
                .await
        }));
    }
    for request in requests {
        request.await??;
    }
    println!(
        "20 concurrent requests for /products/42: rendered {} time(s) in {:?}",
        renders.load(Ordering::Relaxed),
        started.elapsed()
    );
    let page = cache.get("/products/42").await?;
    println!("a later request is a hit: {:?}", page.as_deref().map(String::from_utf8_lossy));
    cache.clear().await?;
    println!("after clear: {:?}", cache.get("/products/42").await?);
    Ok(())
}
