//! `DynamoCache` beside direct `aws-sdk-dynamodb` calls, in the same run, on one table of
//! the emulator (moto), through one shared SDK client, so both sides use the same
//! connections, timeouts and retry settings:
//!
//! - `dynamo_cache`: `get`, `set`, `get_many(100)` through `DynamoCache`;
//! - `sdk`: what a user would write instead: `GetItem` (strongly consistent, the value
//!   and expiry projected), `PutItem` of the same item, `BatchGetItem` of the same 100 keys.
//!
//! Values are 1 KiB. Each side's requests per call are counted by an SDK interceptor and
//! printed after the groups. The emulator's absolute speed means little; the ratio is
//! what this measures (the target is `dynamo_cache` at ≥ 0.9× the SDK's throughput).
//!
//! ```sh
//! eval "$(cargo xtask servers up dynamodb)"
//! cargo bench -p benches --bench dynamo
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_dynamo::DynamoCache;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const VALUE_LEN: usize = 1024;
const MANY: usize = 100;

/// Counts requests sent, for the requests-per-call figures.
#[derive(Debug, Clone, Default)]
struct Requests(Arc<Mutex<usize>>);

impl Requests {
    fn take(&self) -> usize {
        std::mem::take(&mut *self.0.lock().expect("counter lock"))
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock().expect("counter lock") += 1;
        Ok(())
    }
}

struct Setup {
    runtime: Runtime,
    cache: DynamoCache,
    client: Client,
    table: String,
    keys: Vec<String>,
    value: Bytes,
    requests: Requests,
}

fn setup() -> Setup {
    let endpoint = std::env::var("CACHE_TEST_DYNAMO_ENDPOINT").unwrap_or_else(|_| {
        panic!("CACHE_TEST_DYNAMO_ENDPOINT is not set: run `eval \"$(cargo xtask servers up dynamodb)\"` first")
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let requests = Requests::default();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::v2025_08_07())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .interceptor(requests.clone())
        .build();
    let client = Client::from_conf(config);
    let table = format!("bench-{}", std::process::id());
    let cache = runtime
        .block_on(DynamoCache::builder(&table).client(client.clone()).create_table_if_missing(true).build())
        .expect("creating the bench table");
    let keys: Vec<String> = (0..MANY).map(|index| format!("bench-key-{index}")).collect();
    let value = Bytes::from(vec![0x5a; VALUE_LEN]);
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), value.clone())).collect();
    runtime.block_on(cache.set_many(&entries, Ttl::Never)).expect("prefill");
    requests.take();
    Setup { runtime, cache, client, table, keys, value, requests }
}

fn key(stored: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("cache_key".to_owned(), AttributeValue::S(stored.to_owned()))])
}

async fn sdk_get(s: &Setup) -> Option<Vec<u8>> {
    let output = s
        .client
        .get_item()
        .table_name(&s.table)
        .set_key(Some(key(&s.keys[0])))
        .consistent_read(true)
        .projection_expression("#v, #e")
        .expression_attribute_names("#v", "value")
        .expression_attribute_names("#e", "expires_at")
        .send()
        .await
        .expect("GetItem");
    match output.item?.remove("value")? {
        AttributeValue::B(blob) => Some(blob.into_inner()),
        _ => None,
    }
}

async fn sdk_set(s: &Setup) {
    let mut item = key(&s.keys[1]);
    item.insert("value".to_owned(), AttributeValue::B(Blob::new(s.value.to_vec())));
    s.client.put_item().table_name(&s.table).set_item(Some(item)).send().await.expect("PutItem");
}

async fn sdk_get_many(s: &Setup) -> usize {
    let keys = KeysAndAttributes::builder()
        .set_keys(Some(s.keys.iter().map(|stored| key(stored)).collect()))
        .consistent_read(true)
        .projection_expression("#k, #v, #e")
        .expression_attribute_names("#k", "cache_key")
        .expression_attribute_names("#v", "value")
        .expression_attribute_names("#e", "expires_at")
        .build()
        .expect("keys");
    let output = s.client.batch_get_item().request_items(&s.table, keys).send().await.expect("BatchGetItem");
    assert!(output.unprocessed_keys.is_none_or(|left| left.is_empty()), "moto does not throttle");
    output.responses.and_then(|mut tables| tables.remove(&s.table)).map_or(0, |items| items.len())
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let refs: Vec<&str> = s.keys.iter().map(String::as_str).collect();
    let mut per_call = Vec::new();
    let mut count = |name: &str, requests: &Requests, calls: usize| {
        per_call.push(format!("{name}: {:.2} requests per call", requests.take() as f64 / calls as f64));
    };

    // Requests per call, measured on ten calls of each before timing anything.
    for _ in 0..10 {
        s.runtime.block_on(s.cache.get(&s.keys[0])).expect("get");
    }
    count("dynamo_cache get", &s.requests, 10);
    for _ in 0..10 {
        s.runtime.block_on(sdk_get(&s));
    }
    count("sdk get", &s.requests, 10);
    for _ in 0..10 {
        s.runtime.block_on(s.cache.set(&s.keys[1], s.value.clone(), Ttl::Never)).expect("set");
    }
    count("dynamo_cache set", &s.requests, 10);
    for _ in 0..10 {
        s.runtime.block_on(sdk_set(&s));
    }
    count("sdk set", &s.requests, 10);
    for _ in 0..10 {
        let got = s.runtime.block_on(s.cache.get_many(&refs)).expect("get_many");
        assert!(got.iter().all(Option::is_some));
    }
    count("dynamo_cache get_many(100)", &s.requests, 10);
    for _ in 0..10 {
        assert_eq!(s.runtime.block_on(sdk_get_many(&s)), MANY);
    }
    count("sdk get_many(100)", &s.requests, 10);

    let mut group = c.benchmark_group("dynamo/get");
    group.bench_function("dynamo_cache", |b| {
        b.to_async(&s.runtime).iter(|| async { black_box(s.cache.get(&s.keys[0]).await.expect("get")) });
    });
    group.bench_function("sdk", |b| b.to_async(&s.runtime).iter(|| async { black_box(sdk_get(&s).await) }));
    group.finish();

    let mut group = c.benchmark_group("dynamo/set");
    group.bench_function("dynamo_cache", |b| {
        b.to_async(&s.runtime)
            .iter(|| async { s.cache.set(&s.keys[1], s.value.clone(), Ttl::Never).await.expect("set") });
    });
    group.bench_function("sdk", |b| b.to_async(&s.runtime).iter(|| sdk_set(&s)));
    group.finish();

    let mut group = c.benchmark_group("dynamo/get_many_100");
    group.bench_function("dynamo_cache", |b| {
        b.to_async(&s.runtime).iter(|| async { black_box(s.cache.get_many(&refs).await.expect("get_many")) });
    });
    group.bench_function("sdk", |b| b.to_async(&s.runtime).iter(|| async { black_box(sdk_get_many(&s).await) }));
    group.finish();

    for line in per_call {
        println!("{line}");
    }
}

criterion_group! {
    name = benches;
    // moto answers a few hundred requests a second: fewer, longer samples.
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(10));
    targets = bench
}
criterion_main!(benches);
