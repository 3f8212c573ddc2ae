//! Refresh-ahead (`CacheExt::get_or_refresh_with`) under concurrency: 200 readers across
//! an expiry, one reload, nobody waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache::memory::MemoryCache;
use cache::{Bytes, Cache, CacheExt, ErrorKind, Refresh, Ttl};
use tokio::sync::Semaphore;

fn store() -> Arc<dyn Cache> {
    Arc::new(MemoryCache::builder().max_capacity(10_000).build().expect("building a MemoryCache"))
}

#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the origin is down")
    }
}

impl std::error::Error for Down {}

/// The loader the tests share: counts its calls, answers `v<call>`, and from its second
/// call on holds until `gate` gives a permit, so the test decides when a reload ends.
fn gated_loader(
    calls: &Arc<AtomicUsize>,
    gate: &Arc<Semaphore>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<Bytes, Down>> + Send>> + Send + Sync + 'static {
    let (calls, gate) = (Arc::clone(calls), Arc::clone(gate));
    move || {
        let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
        Box::pin(async move {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if call > 1 {
                gate.acquire().await.map_err(|_| Down)?.forget();
            }
            Ok(Bytes::from(format!("v{call}")))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_readers_across_an_expiry_load_once_and_never_wait() {
    const READERS: usize = 200;
    let cache = store();
    let (calls, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    let policy = Refresh::new(Duration::from_millis(400)).refresh_after(0.5).stale_for(Duration::from_secs(30));
    let loaded = Instant::now();
    let first = cache.get_or_refresh_with("hot", policy, gated_loader(&calls, &gate)).await.expect("first load");
    assert_eq!(first, Bytes::from_static(b"v1"));

    // Into the refresh window; the readers then read every 20 ms until well past expiry
    // (400 ms), while the one reload they start is held at the gate.
    tokio::time::sleep_until((loaded + Duration::from_millis(250)).into()).await;
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..READERS {
        let (cache, loader) = (Arc::clone(&cache), gated_loader(&calls, &gate));
        let loader = Arc::new(loader);
        readers.spawn(async move {
            let mut seen = Vec::new();
            while loaded.elapsed() < Duration::from_millis(700) {
                let loader = Arc::clone(&loader);
                seen.push(cache.get_or_refresh_with("hot", policy, move || loader()).await.expect("read"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        });
    }
    // The reload cannot finish before every reader is done: a reader that waited on it
    // would never finish, so a deadline here catches one.
    let seen =
        tokio::time::timeout(Duration::from_secs(20), readers.join_all()).await.expect("a reader waited on the reload");
    assert!(loaded.elapsed() > Duration::from_millis(400), "the readers must read across the expiry");
    assert!(seen.iter().flatten().all(|value| value == "v1"), "every reader is served the current value");
    assert!(seen.iter().all(|reads| reads.len() >= 2), "every reader read more than once");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one initial load and exactly one reload for 200 readers");

    // Let the reload finish: the next read sees its value, and no other load ran.
    gate.add_permits(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value =
            cache.get_or_refresh_with("hot", policy, gated_loader(&calls, &gate)).await.expect("read after the reload");
        if value == "v2" {
            break;
        }
        assert!(Instant::now() < deadline, "the reload never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miss_loads_once_for_every_concurrent_caller() {
    let cache = store();
    let loads = Arc::new(AtomicUsize::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
        callers.spawn(async move {
            cache
                .get_or_refresh_with("cold", Duration::from_secs(60), move || {
                    let loads = Arc::clone(&loads);
                    async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, Down>(Bytes::from_static(b"loaded"))
                    }
                })
                .await
                .expect("get_or_refresh_with")
        });
    }
    assert!(callers.join_all().await.iter().all(|value| value == "loaded"));
    assert_eq!(loads.load(Ordering::SeqCst), 1, "a miss loads once");
}

#[tokio::test]
async fn a_failed_load_is_an_error_and_a_failed_reload_keeps_the_value() {
    let cache = store();
    let error = cache
        .get_or_refresh_with("k", Duration::from_secs(1), || async { Err::<Bytes, _>(Down) })
        .await
        .expect_err("the only load failed");
    assert_eq!(error.kind(), ErrorKind::LoaderFailed);
    assert_eq!(cache.get("k").await.expect("get"), None, "a failed load stores nothing");

    // Every read reloads (refresh_after(0)), and every reload fails: the value stays.
    let policy = Refresh::new(Duration::from_secs(60)).refresh_after(0.0);
    let ok = cache.get_or_refresh_with("k", policy, || async { Ok::<_, Down>(Bytes::from_static(b"good")) }).await;
    assert_eq!(ok.expect("load"), "good");
    for _ in 0..5 {
        let value = cache.get_or_refresh_with("k", policy, || async { Err::<Bytes, _>(Down) }).await;
        assert_eq!(value.expect("served despite failing reloads"), "good");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn xfetch_refreshes_a_hot_key_before_it_expires() {
    // With refresh_after(1.0) only XFetch can start a reload before expiry. A read 60 s
    // before expiry of a value whose load took 100 ms reloads when 0.1 s * beta * -ln(u)
    // reaches 60 s: with beta 1e9, unless u > 1 - 6e-7.
    let cache = store();
    let loads = Arc::new(AtomicUsize::new(0));
    let loader = {
        let loads = Arc::clone(&loads);
        move || {
            let loads = Arc::clone(&loads);
            async move {
                let load = loads.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, Down>(Bytes::from(format!("v{load}")))
            }
        }
    };
    let loader = Arc::new(loader);
    let read = |policy: Refresh| {
        let (cache, loader) = (Arc::clone(&cache), Arc::clone(&loader));
        async move { cache.get_or_refresh_with("hot", policy, move || loader()).await.expect("read") }
    };
    let plain = Refresh::new(Duration::from_secs(60)).refresh_after(1.0);
    assert_eq!(read(plain).await, "v1");
    assert_eq!(read(plain).await, "v1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(loads.load(Ordering::SeqCst), 1, "without XFetch nothing reloads an hour before expiry");
    assert_eq!(read(plain.xfetch(1e9)).await, "v1", "the current value is served");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(loads.load(Ordering::SeqCst), 2, "XFetch started one early reload");
    assert_eq!(read(plain).await, "v2");
}

#[tokio::test]
async fn a_value_written_some_other_way_is_replaced() {
    let cache = store();
    cache.set("k", Bytes::from_static(b"plain"), Ttl::Never).await.expect("set");
    let value = cache
        .get_or_refresh_with("k", Duration::from_secs(60), || async { Ok::<_, Down>(Bytes::from_static(b"loaded")) })
        .await
        .expect("get_or_refresh_with");
    assert_eq!(value, "loaded");
}
