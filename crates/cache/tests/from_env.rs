//! `cache::from_env()`, alone in its binary: it changes the environment, which other
//! threads must not read at the same time.

use cache::{Bytes, Ttl};

#[tokio::test]
async fn from_env_reads_cache_url() {
    // SAFETY: this binary has no other test, so no other thread reads or writes the environment.
    unsafe { std::env::remove_var(cache::CACHE_URL) };
    let error = cache::from_env().await.expect_err("unset");
    assert_eq!(
        error.to_string(),
        "cache open: invalid configuration: CACHE_URL must hold a cache URL such as memory:// (environment variable \
         not found)"
    );
    // SAFETY: as above.
    unsafe { std::env::set_var(cache::CACHE_URL, "memory://?prefix=env:") };
    let store = cache::from_env().await.expect("from_env");
    assert!(store.set("k", Bytes::new(), Ttl::Never).await.is_ok());
}
