//! A fixed-window rate limiter on Redis: every request is one atomic `INCRBY` on a counter
//! that expires with its window, so any number of processes share the limit.
//!
//! ```sh
//! eval "$(cargo xtask servers up redis)"
//! CACHE_URL="$CACHE_TEST_REDIS_URL/0?prefix=example:&ttl=10s" cargo run -p cache --features redis --example redis
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Requests allowed per user per window.
const LIMIT: i64 = 5;
/// The window's length; the URL's `ttl` should be at least this, so a counter outlives it.
const WINDOW_SECS: u64 = 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Ok(url) = std::env::var("CACHE_URL") else {
        eprintln!(
            "set CACHE_URL to a Redis URL, for example CACHE_URL='redis://127.0.0.1:6379/0?prefix=example:&ttl=10s'"
        );
        std::process::exit(2);
    };
    // Counters created by `incr` take the URL's `ttl`: the window cleans up after itself.
    let cache = cache::open(&url).await?;
    println!("opened {cache:?}");

    let window = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() / WINDOW_SECS;
    for request in 1..=8 {
        let count = cache.incr(&format!("rate:alice:{window}"), 1).await?;
        let verdict = if count <= LIMIT { "allowed" } else { "refused (429)" };
        println!("request {request} of alice in window {window}: count {count} -> {verdict}");
    }
    // Another user has a counter of their own.
    println!("request 1 of bob: count {}", cache.incr(&format!("rate:bob:{window}"), 1).await?);
    Ok(())
}
