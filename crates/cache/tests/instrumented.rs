//! `Instrumented`: exact counts after a known sequence, on one thread and on many; the
//! whole conformance suite through the wrapper.

use std::sync::Arc;

use cache::memory::MemoryCache;
use cache::{Bytes, Cache, CacheExt, ErrorKind, Instrumented, Operation, Ttl};
use cache_core::testkit::Harness;

fn memory() -> MemoryCache {
    MemoryCache::builder().max_capacity(100_000).build().expect("building a MemoryCache")
}

struct InstrumentedMemory {
    store: MemoryCache,
}

impl Harness for InstrumentedMemory {
    type Cache = Instrumented<MemoryCache>;

    async fn isolated() -> Self {
        InstrumentedMemory { store: memory() }
    }

    async fn open(&self, prefix: &str) -> Self::Cache {
        Instrumented::new(self.store.with_prefix(prefix))
    }
}

cache_core::conformance_tests!(InstrumentedMemory);

#[tokio::test]
async fn counts_after_a_known_sequence() {
    let cache = Instrumented::new(memory()).sample_every(1);
    let stats = cache.stats();
    let cache: Arc<dyn Cache> = Arc::new(cache);

    cache.set("a", Bytes::from_static(b"1"), Ttl::Never).await.expect("set");
    cache
        .set_many(&[("b", Bytes::from_static(b"2")), ("c", Bytes::from_static(b"x"))], Ttl::Never)
        .await
        .expect("set_many");
    assert!(cache.add("d", Bytes::from_static(b"4"), Ttl::Never).await.expect("add"));
    assert!(!cache.add("d", Bytes::from_static(b"5"), Ttl::Never).await.expect("add again"));
    assert!(cache.get("a").await.expect("get").is_some());
    assert!(cache.get("zz").await.expect("get").is_none());
    let many = cache.get_many(&["a", "b", "nope", "d"]).await.expect("get_many");
    assert_eq!(many.iter().filter(|value| value.is_some()).count(), 3);
    assert!(cache.has("a").await.expect("has"));
    assert_eq!(cache.incr("a", 1).await.expect("incr"), 2);
    assert_eq!(cache.incr("c", 1).await.expect_err("not an integer").kind(), ErrorKind::NotAnInteger);
    assert!(cache.delete("a").await.expect("delete"));
    assert!(!cache.delete("a").await.expect("delete again"));
    assert_eq!(cache.delete_many(&["b", "c", "nope"]).await.expect("delete_many"), 2);
    cache.clear().await.expect("clear");
    // Through `CacheExt` too: a typed read is a get.
    assert_eq!(cache.get_as::<i64>("gone").await.expect("get_as"), None);

    let now = stats.snapshot();
    assert_eq!(now.hits, 1 + 3, "one get hit and three get_many hits");
    assert_eq!(now.misses, 1 + 1 + 1, "one get miss, one get_many miss, one typed miss");
    assert_eq!(now.sets, 1 + 2 + 1, "set, two set_many entries, the add that wrote");
    assert_eq!(now.deletes, 1 + 2, "the delete that removed and two of delete_many");
    assert_eq!(now.errors, vec![(ErrorKind::NotAnInteger, 1)]);
    assert_eq!(now.errors_of(ErrorKind::NotAnInteger), 1);
    assert_eq!(now.errors_other, 0);
    assert!((now.hit_ratio() - 4.0 / 7.0).abs() < 1e-9);
    let calls: Vec<(Operation, u64)> = now.operations.iter().map(|stats| (stats.operation, stats.calls)).collect();
    assert_eq!(
        calls,
        vec![
            (Operation::Get, 3),
            (Operation::Set, 1),
            (Operation::Add, 2),
            (Operation::Delete, 2),
            (Operation::Has, 1),
            (Operation::Incr, 2),
            (Operation::GetMany, 1),
            (Operation::SetMany, 1),
            (Operation::DeleteMany, 1),
            (Operation::Clear, 1),
        ]
    );
    let get = now.operation(Operation::Get);
    assert_eq!(get.latency.samples, 3, "every call is timed with sample_every(1)");
    assert!(get.latency.p50 <= get.latency.p99 && get.latency.p99 <= get.latency.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_add_up_across_threads() {
    const TASKS: usize = 16;
    const ROUNDS: u64 = 500;
    let cache = Instrumented::new(memory());
    let stats = cache.stats();
    let cache = Arc::new(cache);
    cache.set("hot", Bytes::from_static(b"x"), Ttl::Never).await.expect("set");
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let cache = Arc::clone(&cache);
        tasks.spawn(async move {
            for round in 0..ROUNDS {
                cache.get("hot").await.expect("get");
                cache.get(&format!("cold-{task}-{round}")).await.expect("get");
                cache.incr("counter", 1).await.expect("incr");
            }
        });
    }
    tasks.join_all().await;
    let now = stats.snapshot();
    let rounds = TASKS as u64 * ROUNDS;
    assert_eq!((now.hits, now.misses), (rounds, rounds));
    assert_eq!(now.operation(Operation::Incr).calls, rounds);
    assert_eq!(cache.get_as::<u64>("counter").await.expect("get_as"), Some(rounds));
    let sampled = now.operation(Operation::Get).latency.samples;
    assert!(sampled > 0 && sampled <= 2 * rounds, "one in eight gets is timed: {sampled}");
}

#[tokio::test]
async fn loads_are_shared_with_the_bare_store() {
    let store = memory();
    let wrapped = Instrumented::new(store.clone());
    assert_eq!(wrapped.single_flight_scope(), store.single_flight_scope());
    assert_eq!(wrapped.capabilities(), store.capabilities());
}

/// Spans record the operation, the key only when asked, the value never.
#[cfg(feature = "tracing")]
mod spans {
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::*;

    /// Every field value any span or event recorded, as text.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<String>>,
        next: std::sync::atomic::AtomicU64,
    }

    struct Collect<'a>(&'a mut Vec<String>);

    impl Visit for Collect<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push(format!("{}={value:?}", field.name()));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push(format!("{}={value}", field.name()));
        }
    }

    impl Subscriber for &'static Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut seen = self.seen.lock().expect("lock");
            seen.push(format!("span {}", span.metadata().name()));
            span.record(&mut Collect(&mut seen));
            Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            values.record(&mut Collect(&mut self.seen.lock().expect("lock")));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            event.record(&mut Collect(&mut self.seen.lock().expect("lock")));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn recorded(log_keys: bool) -> Vec<String> {
        let recorder: &'static Recorder = Box::leak(Box::default());
        tracing::subscriber::with_default(recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            runtime.block_on(async {
                let cache = Instrumented::new(memory()).log_keys(log_keys);
                cache.set("user:secret-key", Bytes::from_static(b"secret-value"), Ttl::Never).await.expect("set");
                cache.incr("user:secret-key", 1).await.expect_err("not an integer");
            });
        });
        recorder.seen.lock().expect("lock").clone()
    }

    #[test]
    fn keys_only_when_asked_and_values_never() {
        let quiet = recorded(false);
        assert!(quiet.iter().any(|line| line == "operation=set"), "{quiet:?}");
        assert!(quiet.iter().any(|line| line == "kind=NotAnInteger"), "the failure is logged with its kind: {quiet:?}");
        assert!(!quiet.iter().any(|line| line.contains("secret")), "nothing about the key or value: {quiet:?}");
        let keyed = recorded(true);
        assert!(keyed.iter().any(|line| line == "key=user:secret-key"), "{keyed:?}");
        assert!(!keyed.iter().any(|line| line.contains("secret-value")), "never the value: {keyed:?}");
    }
}

/// The newcomer's program (issue 14): 60 tasks ask for the weather of 3 cities through
/// get-or-compute; 3 loads go upstream, so both the wrapper and the store count 3 misses
/// and 57 requests served (hits, or coalesced into another task's load), not 60+ misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_counts_each_request_once() {
    let store = memory();
    let cache = Instrumented::new(store.clone());
    let counters = cache.stats();
    let cache: Arc<dyn Cache> = Arc::new(cache);
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(60));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..60 {
        let (cache, loads, barrier) = (Arc::clone(&cache), Arc::clone(&loads), Arc::clone(&barrier));
        tasks.spawn(async move {
            let city = ["Lima", "Oslo", "Pune"][task % 3];
            barrier.wait().await;
            cache
                .get_or_insert_as(&format!("weather:{city}"), Ttl::secs(60), || async move {
                    loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    Ok::<_, std::io::Error>(format!("sunny in {city}"))
                })
                .await
                .expect("get_or_insert_as")
        });
    }
    for forecast in tasks.join_all().await {
        assert!(forecast.starts_with("sunny in "), "{forecast}");
    }
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 3, "one load per city");

    let wrapper = counters.snapshot();
    assert_eq!((wrapper.misses, wrapper.hits + wrapper.coalesced), (3, 57), "{wrapper:?}");
    assert!((wrapper.hit_ratio() - 0.95).abs() < 1e-9, "{wrapper:?}");
    let inner = cache.stats().expect("MemoryCache counts");
    assert_eq!(inner, store.stats(), "the wrapper reports the store's own counters");
    assert_eq!((inner.misses, inner.hits + inner.coalesced, inner.inserts), (3, 57, 3), "{inner:?}");
}
