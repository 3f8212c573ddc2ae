//! Product prices cached in a MongoDB collection: a whole page of them read and written in one
//! request each (`get_many` is one `find` with `$in`, `set_many` one bulk update), and a view
//! counter that is the server's atomic `$inc`.
//!
//! ```sh
//! eval "$(cargo xtask servers up mongodb)"
//! CACHE_URL="$CACHE_TEST_MONGO_URL/shop?collection=cache&prefix=prices:&ttl=10m" cargo run -p cache --features mongo --example mongo
//! ```

use cache::{Bytes, Ttl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Ok(url) = std::env::var("CACHE_URL") else {
        eprintln!(
            "set CACHE_URL to a MongoDB URL, for example CACHE_URL='mongodb://127.0.0.1:27017/shop?collection=cache&prefix=prices:'"
        );
        std::process::exit(2);
    };
    let cache = cache::open(&url).await?;
    println!("opened {cache:?}");

    let page = ["sku-1", "sku-2", "sku-3", "sku-4"];
    let cached = cache.get_many(&page).await?;
    let missing: Vec<&str> =
        page.iter().zip(&cached).filter(|(_, value)| value.is_none()).map(|(sku, _)| *sku).collect();
    println!("{} of {} prices cached; looking up {missing:?}", page.len() - missing.len(), page.len());
    // The slow price service, asked only for what the cache lacks.
    let fetched: Vec<(&str, Bytes)> =
        missing.iter().enumerate().map(|(index, sku)| (*sku, Bytes::from(format!("{}.99", index + 3)))).collect();
    cache.set_many(&fetched, Ttl::Default).await?;
    for (sku, value) in page.iter().zip(cache.get_many(&page).await?) {
        println!("{sku}: {}", value.as_deref().map(String::from_utf8_lossy).unwrap_or_default());
    }
    println!("page views: {}", cache.incr("views:catalog", 1).await?);
    Ok(())
}
