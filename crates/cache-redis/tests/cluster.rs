//! Bulk calls on the Redis Cluster: keys spread over all three primaries, answers come
//! back in the caller's order, and `clear` empties the prefix on every primary.

mod support;

use std::time::Duration;

use bytes::Bytes;
use cache_core::testkit::unique_prefix;
use cache_core::{Cache, Ttl};
use cache_redis::RedisCache;
use support::redis_cli;

/// How many keys under `prefix` each node holds (`redis-cli --scan` on that node only).
fn per_node(nodes: &[String], prefix: &str) -> Vec<usize> {
    nodes
        .iter()
        .map(|node| {
            let listed = redis_cli(node, &["--scan", "--pattern", &format!("{prefix}*")]);
            listed.lines().filter(|line| !line.is_empty()).count()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-cluster: cargo xtask test"]
async fn bulk_calls_spread_over_every_primary_and_answer_in_order() {
    let nodes = support::cluster_nodes();
    assert_eq!(nodes.len(), 3, "the xtask starts three primaries");
    let prefix = unique_prefix();
    let cache = RedisCache::builder().cluster_nodes(nodes.clone()).prefix(&prefix).build().await.expect("connecting");
    assert!(cache.is_cluster());

    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), Bytes::from(key.clone()))).collect();
    cache.set_many(&entries[..150], Ttl::Never).await.expect("set_many without expiry (MSET per slot)");
    cache.set_many(&entries[150..], Ttl::secs(600)).await.expect("set_many with expiry (a pipeline per slot)");

    let counts = per_node(&nodes, &prefix);
    assert_eq!(counts.iter().sum::<usize>(), 300, "every key is on exactly one node: {counts:?}");
    assert!(counts.iter().all(|&count| count > 0), "keys must land on all three primaries: {counts:?}");

    let mut asked: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    asked.insert(7, "missing");
    asked.push("k3");
    let got = cache.get_many(&asked).await.expect("get_many");
    for (key, value) in asked.iter().zip(&got) {
        let expected = (*key != "missing").then(|| Bytes::from(key.to_string()));
        assert_eq!(value, &expected, "{key} answered out of order");
    }

    let doomed: Vec<&str> = keys[..100].iter().map(String::as_str).chain(["missing", "k0"]).collect();
    assert_eq!(cache.delete_many(&doomed).await.expect("delete_many"), 100);
    assert_eq!(per_node(&nodes, &prefix).iter().sum::<usize>(), 200);

    cache.clear().await.expect("clear");
    assert_eq!(per_node(&nodes, &prefix), vec![0, 0, 0], "clear must empty the prefix on every primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-cluster: cargo xtask test"]
async fn incr_with_a_default_ttl_runs_as_one_transaction_on_the_cluster() {
    let prefix = unique_prefix();
    let cache = RedisCache::builder()
        .cluster_nodes(support::cluster_nodes())
        .prefix(&prefix)
        .default_ttl(Duration::from_secs(60))
        .build()
        .await
        .expect("connecting");
    let keys: Vec<String> = (0..20).map(|i| format!("counter-{i}")).collect();
    for key in &keys {
        assert_eq!(cache.incr(key, 2).await.expect("incr"), 2);
        assert_eq!(cache.incr(key, -5).await.expect("decr"), -3);
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(cache.get_many(&refs).await.expect("get_many").iter().all(|value| value.as_deref() == Some(&b"-3"[..])));
    cache.clear().await.expect("clear");
}
