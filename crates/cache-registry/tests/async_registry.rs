//! The async face: the same registry from Tokio code, item files as AsyncRead/AsyncWrite.

#![cfg(feature = "async")]
#![allow(clippy::unwrap_used, reason = "a test helper that fails should panic with the error")]

use std::time::Duration;

use cache_registry::{AsyncBestOrNew, AsyncRegistry, Cleanup, ErrorKind, Filter, NewItem, Registry, Status};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|index| u8::try_from(index % 251).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_stream_goes_in_through_async_write_and_out_through_async_read() {
    let dir = tempfile::tempdir().unwrap();
    let registry = AsyncRegistry::open(dir.path()).await.unwrap();
    let options = NewItem::new().ext("bin").attr("size", 1_000_003usize);
    let item = registry.create("https://h/big.bin", &json!({"n": 1}), &options).await.unwrap();
    let content = pattern(1_000_003);
    let mut writer = registry.write(&item).await.unwrap();
    // Odd-sized writes cross the 64 KiB chunk boundary at every offset.
    for piece in content.chunks(7_919) {
        writer.write_all(piece).await.unwrap();
    }
    let ready = writer.commit().await.unwrap();
    assert_eq!(ready.status(), Status::Ready);
    assert_eq!(ready.size(), Some(1_000_003));

    let mut back = Vec::new();
    registry.open_item(&ready).await.unwrap().read_to_end(&mut back).await.unwrap();
    assert_eq!(back, content);
    let found = registry.search(Filter::attr("size").eq(1_000_003u64)).await.unwrap();
    assert_eq!(found.len(), 1);
    let best = registry.best("https://h/big.bin", &json!({"n": 1})).await.unwrap().unwrap();
    assert_eq!(best.version(), 1);
    // The sync registry it wraps sees the same database.
    assert_eq!(registry.sync().versions("https://h/big.bin", &json!({"n": 1})).unwrap().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn best_or_new_then_found_and_tokio_copy_streams_in() {
    let dir = tempfile::tempdir().unwrap();
    let registry = AsyncRegistry::from(Registry::open(dir.path()).unwrap());
    let AsyncBestOrNew::New(mut writer) = registry.best_or_new("u", &json!({}), &NewItem::new()).await.unwrap() else {
        panic!("nothing was Ready yet");
    };
    assert_eq!(writer.item().status(), Status::Write);
    let mut body: &[u8] = b"streamed body";
    tokio::io::copy(&mut body, &mut writer).await.unwrap();
    let made = writer.commit().await.unwrap();
    let AsyncBestOrNew::Found(found) = registry.best_or_new("u", &json!({}), &NewItem::new()).await.unwrap() else {
        panic!("the committed version should be found");
    };
    assert_eq!(found.version(), made.version());
    let mut text = String::new();
    registry.open_item(&found).await.unwrap().read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "streamed body");
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_async_writer_marks_the_version_failed_and_abort_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let registry = AsyncRegistry::open(dir.path()).await.unwrap();
    let item = registry.create("u", &json!(1), &NewItem::new()).await.unwrap();
    let mut writer = registry.write(&item).await.unwrap();
    writer.write_all(b"half").await.unwrap();
    drop(writer);
    // The drop hands the writer to the blocking pool; wait for it, boundedly.
    let key = item.key().to_owned();
    let mut status = Status::Write;
    for _ in 0..500 {
        status = registry.get(&key, 1).await.unwrap().unwrap().status();
        if status == Status::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, Status::Failed);
    assert!(!item.path().exists());

    let second = registry.create("u", &json!(1), &NewItem::new()).await.unwrap();
    registry.write(&second).await.unwrap().abort().await.unwrap();
    assert_eq!(registry.get(&key, 2).await.unwrap().unwrap().status(), Status::Failed);
    assert_eq!(registry.write(&second).await.unwrap_err().kind(), ErrorKind::InvalidTransition);
    let report = registry.cleanup(&Cleanup::new()).await.unwrap();
    assert_eq!(report.removed.len(), 2);
    let trashed = registry.run(|sync| sync.versions("u", &json!(1))).await.unwrap();
    assert!(trashed.is_empty());
}

#[test]
fn outside_a_runtime_calls_fail_with_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut open = Box::pin(AsyncRegistry::open(dir.path()));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(Err(error)) = open.as_mut().poll(&mut cx) else {
        panic!("the call should fail at once");
    };
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(error.to_string().contains("Tokio runtime"), "{error}");
}
