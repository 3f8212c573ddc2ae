//! The bulk requests: `BatchGetItem` (100 keys), `BatchWriteItem` (25 writes) and the
//! scan behind `clear`, each chunk sent concurrently, with the items DynamoDB leaves
//! unprocessed (throttling) retried after a jittered backoff until the batch deadline.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest};
use cache_core::{ErrorKind, Result};
use tokio::task::JoinSet;

use crate::cache::Inner;
use crate::error::{error, sdk};

/// DynamoDB's limits per request. Some emulators accept more; AWS does not.
const GET_CHUNK: usize = 100;
const WRITE_CHUNK: usize = 25;

/// Segments of the parallel scan behind `clear`: enough to overlap round trips, few
/// enough not to eat a small table's capacity at once.
const SCAN_SEGMENTS: i32 = 4;

type Item = HashMap<String, AttributeValue>;

/// Runs every future, concurrently when there are several, and returns their results
/// in order or the first error (dropping the set aborts the rest).
async fn all<T, F>(operation: &'static str, futures: Vec<F>) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    if futures.len() == 1 {
        let mut results = Vec::with_capacity(1);
        for future in futures {
            results.push(future.await?);
        }
        return Ok(results);
    }
    let mut set = JoinSet::new();
    for (index, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (index, future.await) });
    }
    let mut results: Vec<Option<T>> = std::iter::repeat_with(|| None).take(set.len()).collect();
    while let Some(joined) = set.join_next().await {
        let (index, result) = joined.map_err(|join| {
            error(ErrorKind::Unexpected, operation, None, "a batch task did not finish").with_source(join)
        })?;
        results[index] = Some(result?);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Exponential backoff with full jitter (AWS's advice for batch retries): a random wait
/// up to 25 ms, 50 ms, ... capped at 1 s, as long as the deadline allows.
struct Backoff {
    deadline: Instant,
    round: u32,
    random: RandomState,
}

impl Backoff {
    fn new(inner: &Inner) -> Backoff {
        Backoff { deadline: Instant::now() + inner.batch_deadline, round: 0, random: RandomState::new() }
    }

    async fn wait(&mut self, operation: &'static str, left: usize) -> Result<()> {
        let cap = Duration::from_millis(25).saturating_mul(1 << self.round.min(6)).min(Duration::from_secs(1));
        self.round += 1;
        let jitter = self.random.hash_one(self.round) % (cap.as_millis() as u64 + 1);
        let pause = Duration::from_millis(jitter.max(5));
        if Instant::now() + pause > self.deadline {
            return Err(error(
                ErrorKind::Unavailable,
                operation,
                None,
                format!("{left} items still unprocessed (throttled) when the batch deadline passed"),
            ));
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

/// The items stored under `keys` (distinct stored keys), by stored key. Missing keys
/// are simply absent; expiry is left to the caller.
pub(crate) async fn get(
    inner: &Arc<Inner>,
    operation: &'static str,
    keys: Vec<String>,
) -> Result<HashMap<String, Item>> {
    let chunks: Vec<_> = keys
        .chunks(GET_CHUNK)
        .map(|chunk| get_chunk(Arc::clone(inner), operation, chunk.iter().map(|k| inner.key_item(k.clone())).collect()))
        .collect();
    let mut found = HashMap::with_capacity(keys.len());
    for items in all(operation, chunks).await? {
        for item in items {
            if let Some(AttributeValue::S(key)) = item.get(&inner.names.key) {
                found.insert(key.clone(), item);
            }
        }
    }
    Ok(found)
}

async fn get_chunk(inner: Arc<Inner>, operation: &'static str, mut pending: Vec<Item>) -> Result<Vec<Item>> {
    let table = &inner.target.table;
    let mut backoff = Backoff::new(&inner);
    let mut items = Vec::with_capacity(pending.len());
    loop {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(pending))
            .consistent_read(inner.consistent_reads)
            .projection_expression("#k, #v, #e")
            .set_expression_attribute_names(Some(inner.names.placeholders(&["#k", "#v", "#e"])))
            .build()
            .map_err(|e| error(ErrorKind::Unexpected, operation, None, "building a batch read").with_source(e))?;
        let output = inner
            .client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(|failure| sdk(&inner.target, operation, None, failure))?;
        if let Some(mut responses) = output.responses {
            items.extend(responses.remove(table).unwrap_or_default());
        }
        pending =
            output.unprocessed_keys.and_then(|mut left| left.remove(table)).map(|left| left.keys).unwrap_or_default();
        if pending.is_empty() {
            return Ok(items);
        }
        backoff.wait(operation, pending.len()).await?;
    }
}

/// Writes `items` (distinct keys) with `BatchWriteItem`.
pub(crate) async fn put(inner: &Arc<Inner>, operation: &'static str, items: Vec<Item>) -> Result<()> {
    let mut requests = Vec::with_capacity(items.len());
    for item in items {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| error(ErrorKind::Unexpected, operation, None, "building a batch write").with_source(e))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    write(inner, operation, requests).await
}

/// Deletes the items under `keys` (distinct stored keys) with `BatchWriteItem`.
pub(crate) async fn delete(inner: &Arc<Inner>, operation: &'static str, keys: Vec<String>) -> Result<()> {
    let mut requests = Vec::with_capacity(keys.len());
    for key in keys {
        let delete = DeleteRequest::builder()
            .set_key(Some(inner.key_item(key)))
            .build()
            .map_err(|e| error(ErrorKind::Unexpected, operation, None, "building a batch delete").with_source(e))?;
        requests.push(WriteRequest::builder().delete_request(delete).build());
    }
    write(inner, operation, requests).await
}

async fn write(inner: &Arc<Inner>, operation: &'static str, requests: Vec<WriteRequest>) -> Result<()> {
    if requests.is_empty() {
        return Ok(());
    }
    let chunks: Vec<_> =
        requests.chunks(WRITE_CHUNK).map(|chunk| write_chunk(Arc::clone(inner), operation, chunk.to_vec())).collect();
    all(operation, chunks).await.map(drop)
}

async fn write_chunk(inner: Arc<Inner>, operation: &'static str, mut pending: Vec<WriteRequest>) -> Result<()> {
    let table = &inner.target.table;
    let mut backoff = Backoff::new(&inner);
    loop {
        let output = inner
            .client
            .batch_write_item()
            .request_items(table, pending)
            .send()
            .await
            .map_err(|failure| sdk(&inner.target, operation, None, failure))?;
        pending = output.unprocessed_items.and_then(|mut left| left.remove(table)).unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        backoff.wait(operation, pending.len()).await?;
    }
}

/// Deletes every item whose stored key starts with `prefix` (every item when it is
/// empty): a parallel scan, each page deleted before the next is read.
pub(crate) async fn clear(inner: &Arc<Inner>, prefix: &str) -> Result<()> {
    let segments: Vec<_> =
        (0..SCAN_SEGMENTS).map(|segment| clear_segment(Arc::clone(inner), prefix.to_owned(), segment)).collect();
    all("clear", segments).await.map(drop)
}

async fn clear_segment(inner: Arc<Inner>, prefix: String, segment: i32) -> Result<()> {
    let mut start: Option<Item> = None;
    loop {
        let mut scan = inner
            .client
            .scan()
            .table_name(&inner.target.table)
            .segment(segment)
            .total_segments(SCAN_SEGMENTS)
            .consistent_read(true)
            .projection_expression("#k")
            .set_expression_attribute_names(Some(inner.names.placeholders(&["#k"])))
            .set_exclusive_start_key(start.take());
        if !prefix.is_empty() {
            scan = scan
                .filter_expression("begins_with(#k, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()));
        }
        let page = scan.send().await.map_err(|failure| sdk(&inner.target, "clear", None, failure))?;
        let keys: Vec<String> = page
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut item| match item.remove(&inner.names.key) {
                Some(AttributeValue::S(key)) => Some(key),
                _ => None,
            })
            .collect();
        delete(&inner, "clear", keys).await?;
        match page.last_evaluated_key {
            Some(last) if !last.is_empty() => start = Some(last),
            _ => return Ok(()),
        }
    }
}
