//! The ring: keys spread over the three servers in `CACHE_TEST_MEMCACHED_RING_ADDRS`, each
//! stored where `locate` says, and batches split per server.

mod support;

use std::collections::HashMap;

use cache_core::testkit::unique_prefix;
use cache_core::{Bytes, Cache, Ttl};
use support::{RING, Raw, addresses, cache_on};

#[tokio::test]
#[ignore = "needs memcached-ring: cargo xtask test"]
async fn ten_thousand_keys_spread_over_all_three_servers() {
    const KEYS: usize = 10_000;
    let servers = addresses(RING);
    assert_eq!(servers.len(), 3, "the ring has three servers");
    let cache = cache_on(RING).await.with_prefix(&unique_prefix());
    let keys: Vec<String> = (0..KEYS).map(|index| format!("spread-{index}")).collect();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), Bytes::from(key.clone()))).collect();
    cache.set_many(&entries, Ttl::Never).await.expect("set_many of 10 000");

    // Where each key is, and that a raw client finds it exactly there.
    let mut raws: HashMap<String, Raw> = servers.iter().map(|server| (server.clone(), Raw::connect(server))).collect();
    let mut held: HashMap<String, usize> = HashMap::new();
    for key in &keys {
        let location = cache.locate(key).await.expect("locate");
        let raw = raws.get_mut(&location.server).expect("a ring server");
        assert_eq!(raw.get(&location.key).as_deref(), Some(key.as_bytes()), "{key} is not on {}", location.server);
        *held.entry(location.server).or_default() += 1;
    }
    for server in &servers {
        let share = held.get(server).copied().unwrap_or(0) as f64 / KEYS as f64;
        assert!((0.25..=0.42).contains(&share), "{server} holds {:.1}% of the keys: {held:?}", share * 100.0);
    }

    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = cache.get_many(&asked).await.expect("get_many of 10 000 over three servers");
    assert!(values.iter().zip(&keys).all(|(value, key)| value.as_deref() == Some(key.as_bytes())));
    assert_eq!(cache.delete_many(&asked).await.expect("delete_many"), KEYS);
}

#[tokio::test]
#[ignore = "needs memcached-ring: cargo xtask test"]
async fn clear_moves_every_server_on() {
    let store = cache_on(RING).await;
    let (mine, other) = (store.with_prefix(&unique_prefix()), store.with_prefix(&unique_prefix()));
    let keys: Vec<String> = (0..60).map(|index| format!("k{index}")).collect();
    for key in &keys {
        mine.set(key, Bytes::from_static(b"x"), Ttl::Never).await.expect("set");
        other.set(key, Bytes::from_static(b"y"), Ttl::Never).await.expect("set");
    }
    mine.clear().await.expect("clear");
    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(mine.get_many(&asked).await.expect("get_many").iter().all(Option::is_none), "clear missed a server");
    assert!(other.get_many(&asked).await.expect("get_many").iter().all(|value| value.as_deref() == Some(b"y")));
}
