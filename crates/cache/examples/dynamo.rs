//! Sessions in a DynamoDB table: typed values with a lifetime, and `add` as a lock that only
//! one of many racing logins wins (a conditional put).
//!
//! ```sh
//! eval "$(cargo xtask servers up dynamodb)"
//! CACHE_URL="dynamodb://id:secret@sessions?region=us-east-1&endpoint=$CACHE_TEST_DYNAMO_ENDPOINT&create_table=true" \
//!     cargo run -p cache --features dynamo --example dynamo
//! ```

use cache::{Bytes, CacheExt, Ttl};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    user: String,
    roles: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Ok(url) = std::env::var("CACHE_URL") else {
        eprintln!(
            "set CACHE_URL to a DynamoDB URL, for example \
             CACHE_URL='dynamodb://sessions?region=eu-west-1&create_table=true' (credentials from the AWS chain)"
        );
        std::process::exit(2);
    };
    let cache = cache::open(&url).await?;
    println!("opened {cache:?}");

    let session = Session { user: "ada".into(), roles: vec!["admin".into()] };
    cache.set_as("session:8f3a", &session, Ttl::secs(1800)).await?;
    let back: Option<Session> = cache.get_as("session:8f3a").await?;
    println!("session:8f3a -> {back:?}");

    // Three logins of one user race for the lock; exactly one gets it.
    let mut winners = 0;
    for device in ["phone", "laptop", "tablet"] {
        let won = cache.add("login-lock:ada", Bytes::from(device), Ttl::secs(30)).await?;
        println!("{device} asks for the login lock: {}", if won { "granted" } else { "held by another" });
        winners += usize::from(won);
    }
    println!("{winners} lock holder(s)");
    println!("logout removes the session: {}", cache.delete("session:8f3a").await?);
    cache.delete("login-lock:ada").await?;
    Ok(())
}
