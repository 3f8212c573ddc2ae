//! DynamoDB-specific behaviour against the emulator: the table, the item shape other
//! tools see, request counts, limits and configuration errors.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use cache_core::{Bytes, Cache, ErrorKind, Ttl};
use cache_dynamo::{DynamoCache, ServerTtl};
use support::RequestCounter;

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn epoch_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// A cache on a fresh table, sending through a counted plain SDK client.
async fn counted(prefix: &str) -> (DynamoCache, RequestCounter) {
    let counter = RequestCounter::default();
    let table = support::unique_table();
    let cache = DynamoCache::builder(&table)
        .client(support::sdk_client(&counter))
        .max_value_len(support::MOTO_MAX_VALUE)
        .prefix(prefix)
        .create_table_if_missing(true)
        .build()
        .await
        .expect("creating a table through a given client");
    counter.take();
    (cache, counter)
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn creates_the_table_with_ttl_and_a_second_cache_reuses_it() {
    let table = support::unique_table();
    let first = support::builder(&table).prefix("one:").create_table_if_missing(true).build().await.expect("create");
    assert_eq!(first.table_name(), table);
    assert_eq!(first.server_ttl(), ServerTtl::Enabled, "moto implements UpdateTimeToLive");
    let ttl = first.client().describe_time_to_live().table_name(&table).send().await.expect("describe TTL");
    let description = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(description.attribute_name(), Some("expires_at"));

    first.set("k", bytes("v"), Ttl::Never).await.expect("set");
    // Without create_table_if_missing: the table exists, so this only checks it.
    let second = support::builder(&table).prefix("one:").build().await.expect("reuse the table");
    assert_eq!(second.get("k").await.expect("get"), Some(bytes("v")));
    assert_eq!(second.server_ttl(), ServerTtl::Enabled);
    // Creating again is harmless.
    let third = support::builder(&table).prefix("one:").create_table_if_missing(true).build().await.expect("again");
    assert_eq!(third.get("k").await.expect("get"), Some(bytes("v")));
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn a_namespace_is_prepended_to_the_table_name() {
    let table = support::unique_table();
    let cache =
        support::builder(&table).namespace("staging-").create_table_if_missing(true).build().await.expect("create");
    assert_eq!(cache.table_name(), format!("staging-{table}"));
    let described = cache.client().describe_table().table_name(format!("staging-{table}")).send().await;
    assert!(described.is_ok(), "the namespaced table exists: {described:?}");
    let plain = cache.client().describe_table().table_name(&table).send().await;
    assert!(plain.is_err(), "no table without the namespace was made");
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn a_missing_table_without_auto_creation_is_invalid_config() {
    let table = support::unique_table();
    let error = support::builder(&table).build().await.expect_err("the table does not exist");
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
    let message = error.to_string();
    assert!(message.contains(&table) && message.contains("does not exist"), "{message}");
    assert!(message.contains("us-east-1"), "the region is named: {message}");
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn a_table_with_another_key_is_invalid_config() {
    let counter = RequestCounter::default();
    let client = support::sdk_client(&counter);
    let table = support::unique_table();
    client
        .create_table()
        .table_name(&table)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("schema"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create a table keyed by id");
    let error = support::builder(&table).build().await.expect_err("key attribute mismatch");
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(error.to_string().contains("cache_key"), "{error}");
    // Pointed at the right attribute, the same table works.
    let cache = support::builder(&table).key_attribute("id").build().await.expect("matching key attribute");
    cache.set("k", bytes("v"), Ttl::Never).await.expect("set");
    assert_eq!(cache.get("k").await.expect("get"), Some(bytes("v")));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_temporary_error() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let error = DynamoCache::builder("some-table")
        .endpoint_url("http://127.0.0.1:1")
        .region("us-east-1")
        .credentials("id", "secret")
        .max_attempts(1)
        .build()
        .await
        .expect_err("nothing listens there");
    assert!(error.is_temporary(), "{error:?}");
    assert_eq!(error.operation(), "build");
}

#[tokio::test]
async fn bad_settings_are_refused_before_any_request() {
    let invalid = [
        DynamoCache::builder("no").endpoint_url("http://127.0.0.1:1"),
        DynamoCache::builder("bad name!").endpoint_url("http://127.0.0.1:1"),
        DynamoCache::builder("table").prefix("p".repeat(1001)).endpoint_url("http://127.0.0.1:1"),
        DynamoCache::builder("table").value_attribute("cache_key").endpoint_url("http://127.0.0.1:1"),
        DynamoCache::builder("table").max_attempts(0).endpoint_url("http://127.0.0.1:1"),
    ];
    for builder in invalid {
        let shown = format!("{builder:?}");
        let error = builder.region("us-east-1").credentials("id", "secret").build().await.expect_err(&shown);
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{shown}: {error}");
    }
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let builder = DynamoCache::builder("table")
        .endpoint_url("http://127.0.0.1:1")
        .region("us-east-1")
        .session_credentials("AKIDVISIBLE", "very-secret-key", "very-secret-token")
        .max_attempts(1);
    let shown = format!("{builder:?}");
    assert!(shown.contains("AKIDVISIBLE"), "the key id helps debugging: {shown}");
    assert!(!shown.contains("very-secret"), "{shown}");
    let error = builder.build().await.expect_err("nothing listens there");
    let mut chain = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!chain.contains("very-secret"), "{chain}");
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn clear_of_one_prefix_leaves_another() {
    let table = support::unique_table();
    let open = |prefix: &'static str| support::builder(&table).prefix(prefix).create_table_if_missing(true).build();
    let (users, sessions) = (open("users:").await.expect("users"), open("sessions:").await.expect("sessions"));
    let keys: Vec<String> = (0..60).map(|index| format!("k{index}")).collect();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), bytes(key))).collect();
    users.set_many(&entries, Ttl::Never).await.expect("set_many users");
    sessions.set_many(&entries, Ttl::Never).await.expect("set_many sessions");
    users.clear().await.expect("clear users");
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(users.get_many(&refs).await.expect("get_many").iter().all(Option::is_none), "clear left users");
    let left = sessions.get_many(&refs).await.expect("get_many");
    assert!(left.iter().all(Option::is_some), "clear of users: removed sessions");
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn sixty_concurrent_incrs_are_exact() {
    let cache = Arc::new(support::fresh("race:").await);
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let cache = Arc::clone(&cache);
        racers.spawn(async move { cache.incr("hits", 1).await.expect("incr") });
    }
    let seen: BTreeSet<i64> = racers.join_all().await.into_iter().collect();
    assert_eq!(seen, (1..=60).collect(), "every incr returns a distinct step");
    assert_eq!(cache.get("hits").await.expect("get"), Some(bytes("60")));
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn sixty_concurrent_incrs_on_text_and_with_a_default_ttl_are_exact() {
    // With a default TTL the first ADD may not create the item, and a value written by
    // `set` is text: both take the read-and-swap path under contention.
    let cache = Arc::new(
        support::builder(&support::unique_table())
            .default_ttl(Duration::from_secs(3600))
            .create_table_if_missing(true)
            .build()
            .await
            .expect("create"),
    );
    cache.set("text", bytes("100"), Ttl::Never).await.expect("set text");
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..60 {
        let cache = Arc::clone(&cache);
        let key = if racer % 2 == 0 { "text" } else { "fresh" };
        racers.spawn(async move { (key, cache.incr(key, 1).await.expect("incr")) });
    }
    let results = racers.join_all().await;
    let text: BTreeSet<i64> = results.iter().filter(|(key, _)| *key == "text").map(|(_, n)| *n).collect();
    let fresh: BTreeSet<i64> = results.iter().filter(|(key, _)| *key == "fresh").map(|(_, n)| *n).collect();
    assert_eq!(text, (101..=130).collect());
    assert_eq!(fresh, (1..=30).collect());
    let item = cache
        .client()
        .get_item()
        .table_name(cache.table_name())
        .key("cache_key", AttributeValue::S("fresh".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read the counter")
        .item
        .expect("the counter exists");
    let expires: i64 = item["expires_at"].as_n().expect("a Number expiry").parse().expect("integer seconds");
    assert!((epoch_now() + 3500..=epoch_now() + 3601).contains(&expires), "the default TTL: {expires}");
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn sixty_concurrent_adds_have_one_winner() {
    let cache = Arc::new(support::fresh("lock:").await);
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..60 {
        let cache = Arc::clone(&cache);
        racers.spawn(async move { (racer, cache.add("leader", bytes(&racer.to_string()), Ttl::Never).await) });
    }
    let winners: Vec<usize> =
        racers.join_all().await.into_iter().filter_map(|(racer, won)| won.expect("add").then_some(racer)).collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(cache.get("leader").await.expect("get"), Some(bytes(&winners[0].to_string())));
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn a_500_kb_value_is_refused_without_a_request() {
    let (cache, counter) = counted("big:").await;
    cache.set("k", bytes("small"), Ttl::Never).await.expect("set small");
    assert_eq!(counter.take(), ["PutItem"]);
    let big = Bytes::from(vec![7u8; 500 * 1024]);
    for result in [
        cache.set("k", big.clone(), Ttl::Never).await.err(),
        cache.add("k2", big.clone(), Ttl::Never).await.err(),
        cache.set_many(&[("a", bytes("fits")), ("k", big.clone())], Ttl::Never).await.err(),
    ] {
        let error = result.expect("refused");
        assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
        assert!(error.to_string().contains("512000 bytes"), "{error}");
    }
    assert_eq!(counter.take(), Vec::<String>::new(), "a refused value sends nothing");
    assert_eq!(cache.get_many(&["k", "a"]).await.expect("get"), vec![Some(bytes("small")), None], "nothing written");
    // The declared limit itself is accepted with the longest key there is.
    let limit = cache.capabilities().max_value_len.expect("a declared limit");
    let longest = "x".repeat(10 * 1024);
    cache.set(&longest, Bytes::from(vec![1u8; limit]), Ttl::secs(60)).await.expect("a value at the limit");
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn requests_per_call_are_as_documented() {
    let (cache, counter) = counted("count:").await;
    let keys: Vec<String> = (0..250).map(|index| format!("k{index}")).collect();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), bytes(key))).collect();
    cache.set_many(&entries, Ttl::Never).await.expect("set_many");
    assert_eq!(counter.take(), vec!["BatchWriteItem"; 10], "250 writes in chunks of 25");

    let mut asked: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    asked.push("k3");
    let got = cache.get_many(&asked).await.expect("get_many");
    assert_eq!(counter.take(), vec!["BatchGetItem"; 3], "250 distinct keys in chunks of 100");
    for (key, value) in asked.iter().zip(&got) {
        assert_eq!(value.as_deref(), Some(key.as_bytes()), "get_many answered {key} out of order");
    }

    cache.get("k1").await.expect("get");
    cache.set("k1", bytes("x"), Ttl::secs(60)).await.expect("set");
    cache.add("k1", bytes("y"), Ttl::Never).await.expect("add");
    cache.has("k1").await.expect("has");
    cache.delete("k1").await.expect("delete");
    assert_eq!(counter.take(), ["GetItem", "PutItem", "PutItem", "GetItem", "DeleteItem"]);

    assert_eq!(cache.incr("n", 1).await.expect("incr"), 1);
    assert_eq!(cache.incr("n", 1).await.expect("incr"), 2);
    assert_eq!(counter.take(), ["UpdateItem", "UpdateItem"], "a counter is one request per incr");

    let removed = cache.delete_many(&["k2", "k2", "k3", "nothing"]).await.expect("delete_many");
    assert_eq!(removed, 2, "a repeated key counts once");
    assert_eq!(counter.take(), ["BatchGetItem", "BatchWriteItem"]);
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn repeated_keys_in_one_batch_are_written_once() {
    let cache = support::fresh("dup:").await;
    cache
        .set_many(&[("a", bytes("1")), ("b", bytes("2")), ("a", bytes("3"))], Ttl::Never)
        .await
        .expect("DynamoDB refuses a batch naming a key twice: the cache must not send one");
    assert_eq!(cache.get_many(&["a", "b"]).await.expect("get_many"), vec![Some(bytes("3")), Some(bytes("2"))]);
    assert_eq!(cache.get_many(&["a", "a", "a"]).await.expect("get_many").len(), 3);
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn items_written_by_the_plain_sdk_are_read() {
    let cache = support::fresh("app:").await;
    let (client, table) = (cache.client(), cache.table_name());
    let put = |key: &str, value: AttributeValue, expires: Option<i64>| {
        let mut request = client
            .put_item()
            .table_name(table)
            .item("cache_key", AttributeValue::S(key.to_owned()))
            .item("value", value);
        if let Some(expires) = expires {
            request = request.item("expires_at", AttributeValue::N(expires.to_string()));
        }
        request.send()
    };
    put("app:blob", AttributeValue::B(Blob::new(b"\0bytes".to_vec())), None).await.expect("put blob");
    put("app:live", AttributeValue::B(Blob::new(b"soon".to_vec())), Some(epoch_now() + 60)).await.expect("put");
    put("app:gone", AttributeValue::B(Blob::new(b"old".to_vec())), Some(epoch_now() - 1)).await.expect("put");
    put("app:count", AttributeValue::N("41".to_owned()), None).await.expect("put counter");
    put("app:text", AttributeValue::S("plain text".to_owned()), None).await.expect("put string");

    assert_eq!(cache.get("blob").await.expect("get"), Some(Bytes::from_static(b"\0bytes")));
    assert_eq!(cache.get("live").await.expect("get"), Some(bytes("soon")));
    assert_eq!(cache.get("gone").await.expect("get"), None, "an expired item is a miss before DynamoDB deletes it");
    assert!(!cache.delete("gone").await.expect("delete"), "deleting an expired item removes nothing live");
    assert_eq!(cache.get("count").await.expect("get"), Some(bytes("41")), "a Number reads as decimal ASCII");
    assert_eq!(cache.incr("count", 1).await.expect("incr"), 42);
    assert_eq!(cache.get("text").await.expect("get"), Some(bytes("plain text")));
}

#[tokio::test]
#[ignore = "needs dynamodb: cargo xtask test"]
async fn items_written_by_the_cache_have_the_documented_shape() {
    let cache = support::fresh("app:").await;
    cache.set("user:7", bytes("Ada"), Ttl::secs(90)).await.expect("set");
    cache.set("forever", Bytes::from_static(b"\xff\x00"), Ttl::Never).await.expect("set");
    cache.incr("visits", 5).await.expect("incr");
    let read = |key: &'static str| {
        cache
            .client()
            .get_item()
            .table_name(cache.table_name())
            .key("cache_key", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
    };
    let user = read("app:user:7").await.expect("get_item").item.expect("stored under prefix + key");
    assert_eq!(user["value"].as_b().expect("a Binary value").as_ref(), b"Ada");
    let expires: i64 = user["expires_at"].as_n().expect("a Number expiry").parse().expect("epoch seconds");
    assert!((epoch_now() + 89..=epoch_now() + 91).contains(&expires), "{expires}");
    let forever = read("app:forever").await.expect("get_item").item.expect("stored");
    assert!(!forever.contains_key("expires_at"), "no expiry attribute means never");
    assert_eq!(forever["value"].as_b().expect("binary").as_ref(), b"\xff\x00");
    let visits = read("app:visits").await.expect("get_item").item.expect("stored");
    assert_eq!(visits["value"].as_n().expect("a counter is a Number"), "5");
}
