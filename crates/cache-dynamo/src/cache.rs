//! `DynamoCache` and its `Cache` implementation.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use cache_core::{Bytes, Cache, Capabilities, ErrorKind, Result, Ttl, async_trait, format_integer, parse_integer};

use crate::batch;
use crate::builder::{DynamoCacheBuilder, ServerTtl};
use crate::error::{Target, error, sdk};
use crate::keys::{STORED_MAX, stored_key};

/// DynamoDB's limit on one item: attribute names and values together.
const ITEM_MAX: usize = 400 * 1024;

/// The most a Number attribute takes: 38 significant digits at two a byte, plus one.
const NUMBER_MAX: usize = 21;

/// How often `incr` goes round its read-and-retry path before reporting contention.
/// Each turn means another writer changed the item in between; under a 50-way race
/// on a fresh key a caller needs two.
const INCR_ROUNDS: usize = 32;

/// The largest value that fits one item whatever its key: DynamoDB counts attribute
/// names and values, so the longest stored key, the names and the largest expiry
/// Number are set aside.
pub(crate) fn max_value_len(names: &Names) -> usize {
    let overhead = names.key.len() + STORED_MAX + names.value.len() + names.expiry.len() + NUMBER_MAX;
    ITEM_MAX.saturating_sub(overhead)
}

/// The attribute names of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) expiry: String,
}

impl Default for Names {
    fn default() -> Self {
        Names { key: "cache_key".to_owned(), value: "value".to_owned(), expiry: "expires_at".to_owned() }
    }
}

impl Names {
    /// `ExpressionAttributeNames` for the placeholders `#k`, `#v`, `#e` an expression
    /// uses. DynamoDB refuses unused names, so each request asks for exactly its own;
    /// placeholders also keep reserved words (`value`, `key`, `ttl`) usable as names.
    pub(crate) fn placeholders(&self, used: &[&str]) -> HashMap<String, String> {
        used.iter()
            .map(|&placeholder| {
                let name = match placeholder {
                    "#k" => &self.key,
                    "#v" => &self.value,
                    _ => &self.expiry,
                };
                (placeholder.to_owned(), name.clone())
            })
            .collect()
    }
}

/// What every clone of one cache shares: the client and the table.
pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) target: Target,
    pub(crate) names: Names,
    pub(crate) consistent_reads: bool,
    pub(crate) batch_deadline: Duration,
    pub(crate) server_ttl: ServerTtl,
}

impl Inner {
    pub(crate) fn key_item(&self, stored: String) -> HashMap<String, AttributeValue> {
        HashMap::from([(self.names.key.clone(), AttributeValue::S(stored))])
    }

    /// Whether `item` has not expired at `now` (epoch seconds). An item with no expiry
    /// attribute lives forever; one whose expiry is not a number is reported, not guessed.
    pub(crate) fn is_live(
        &self,
        operation: &'static str,
        key: &str,
        item: &HashMap<String, AttributeValue>,
        now: i64,
    ) -> Result<bool> {
        match item.get(&self.names.expiry) {
            None | Some(AttributeValue::Null(_)) => Ok(true),
            Some(AttributeValue::N(number)) => match parse_epoch(number) {
                Some(expires) => Ok(expires > now),
                None => Err(self.bad_item(operation, key, "its expiry is not a number of epoch seconds")),
            },
            Some(_) => Err(self.bad_item(operation, key, "its expiry attribute is not a Number")),
        }
    }

    /// The live value of `item`: binary as it is, a counter (Number) as decimal ASCII.
    pub(crate) fn decode(
        &self,
        operation: &'static str,
        key: &str,
        item: &HashMap<String, AttributeValue>,
        now: i64,
    ) -> Result<Option<Bytes>> {
        if !self.is_live(operation, key, item, now)? {
            return Ok(None);
        }
        match item.get(&self.names.value) {
            Some(AttributeValue::B(blob)) => Ok(Some(Bytes::from(blob.clone().into_inner()))),
            Some(AttributeValue::N(number)) => Ok(Some(match number.parse::<i64>() {
                Ok(integer) => format_integer(integer),
                // A number some other writer stored (1.5, 1E+3): shown as DynamoDB wrote it.
                Err(_) => Bytes::copy_from_slice(number.as_bytes()),
            })),
            // Written by hand or another tool as a string: its UTF-8 bytes.
            Some(AttributeValue::S(text)) => Ok(Some(Bytes::copy_from_slice(text.as_bytes()))),
            Some(_) => Err(self.bad_item(operation, key, "its value is not Binary, Number or String")),
            None => Err(self.bad_item(operation, key, "it has no value attribute")),
        }
    }

    fn bad_item(&self, operation: &'static str, key: &str, why: &str) -> cache_core::Error {
        error(
            ErrorKind::Unexpected,
            operation,
            Some(key),
            format!("the item in table `{}` is not a cache entry: {why}", self.target.table),
        )
    }
}

/// The current time in whole epoch seconds, rounded down: an item whose expiry is
/// `e` is live while `now < e`.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

/// An expiry as written by us (integer seconds) or by another tool (a decimal).
fn parse_epoch(number: &str) -> Option<i64> {
    number.parse::<i64>().ok().or_else(|| {
        let float = number.parse::<f64>().ok().filter(|f| f.is_finite())?;
        // Saturating float-to-int conversion: absurd expiries mean "far future" or "past".
        Some(float.ceil() as i64)
    })
}

/// A DynamoDB table as a cache. Cheap to clone: clones share the SDK client.
///
/// See the [crate docs](crate) for the item layout, the requests each operation costs
/// and the guarantees.
#[derive(Clone)]
pub struct DynamoCache {
    inner: Arc<Inner>,
    prefix: Arc<str>,
    default_ttl: Option<Duration>,
    max_value_len: usize,
}

impl fmt::Debug for DynamoCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoCache")
            .field("table", &self.inner.target.table)
            .field("region", &self.inner.target.region)
            .field("endpoint", &self.inner.target.endpoint)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("consistent_reads", &self.inner.consistent_reads)
            .field("server_ttl", &self.inner.server_ttl)
            .finish_non_exhaustive()
    }
}

impl DynamoCache {
    /// Settings for a cache on `table` (before any namespace).
    pub fn builder(table: impl Into<String>) -> DynamoCacheBuilder {
        DynamoCacheBuilder::new(table)
    }

    /// A cache from the environment: [`DynamoCacheBuilder::from_env`], then `build`.
    pub async fn from_env() -> Result<DynamoCache> {
        DynamoCacheBuilder::from_env()?.build().await
    }

    pub(crate) fn new(
        inner: Arc<Inner>,
        prefix: String,
        default_ttl: Option<Duration>,
        lowered: Option<usize>,
    ) -> DynamoCache {
        let max_value_len =
            lowered.map_or(max_value_len(&inner.names), |lowered| lowered.min(max_value_len(&inner.names)));
        DynamoCache { inner, prefix: prefix.into(), default_ttl, max_value_len }
    }

    /// The table in use (namespace + table).
    pub fn table_name(&self) -> &str {
        &self.inner.target.table
    }

    /// The SDK client this cache sends its requests with.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Whether DynamoDB itself deletes this table's expired items, as found by `build`.
    pub fn server_ttl(&self) -> ServerTtl {
        self.inner.server_ttl
    }

    fn stored(&self, key: &str) -> String {
        stored_key(&self.prefix, key)
    }

    /// The expiry attribute for `ttl` written at `now`: whole seconds rounded up, so an
    /// entry never expires early; `None` (no attribute) for never, and for lifetimes
    /// too large to be a point in time.
    fn expiry(&self, ttl: Ttl) -> Option<AttributeValue> {
        let lifetime = ttl.lifetime(self.default_ttl)?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?;
        let at = now.checked_add(lifetime)?;
        // Rounded up, and at least the next whole second, so even `After(ZERO)` written
        // on a whole second is visible until that second ends instead of never.
        let secs = Ttl::whole_seconds(at).max(now.as_secs().saturating_add(1));
        i64::try_from(secs).ok().map(|secs| AttributeValue::N(secs.to_string()))
    }

    fn check_size(&self, operation: &'static str, key: &str, len: usize) -> Result<()> {
        if len > self.max_value_len {
            let limit = self.max_value_len;
            return Err(error(
                ErrorKind::ValueTooLarge,
                operation,
                Some(key),
                format!("{len} bytes, the limit is {limit} (DynamoDB's 400 KB item less key and names)"),
            ));
        }
        Ok(())
    }

    fn item(&self, key: &str, value: AttributeValue, ttl: Ttl) -> HashMap<String, AttributeValue> {
        let mut item = self.inner.key_item(self.stored(key));
        item.insert(self.inner.names.value.clone(), value);
        if let Some(expiry) = self.expiry(ttl) {
            item.insert(self.inner.names.expiry.clone(), expiry);
        }
        item
    }

    async fn get_item(
        &self,
        operation: &'static str,
        key: &str,
        projection: &str,
        used: &[&str],
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let inner = &self.inner;
        let output = inner
            .client
            .get_item()
            .table_name(&inner.target.table)
            .set_key(Some(inner.key_item(self.stored(key))))
            .consistent_read(inner.consistent_reads)
            .projection_expression(projection)
            .set_expression_attribute_names(Some(inner.names.placeholders(used)))
            .send()
            .await
            .map_err(|failure| sdk(&inner.target, operation, Some(key), failure))?;
        Ok(output.item)
    }

    /// The live entry under `key`, read strongly consistent whatever the setting: `incr`
    /// decides what to write from it.
    async fn read_for_update(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let inner = &self.inner;
        let output = inner
            .client
            .get_item()
            .table_name(&inner.target.table)
            .set_key(Some(inner.key_item(self.stored(key))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|failure| sdk(&inner.target, "incr", Some(key), failure))?;
        match output.item {
            Some(item) if inner.is_live("incr", key, &item, now_secs())? => Ok(Some(item)),
            _ => Ok(None),
        }
    }

    /// A conditional put: true if written, false if the condition failed.
    async fn put_if(
        &self,
        operation: &'static str,
        key: &str,
        item: HashMap<String, AttributeValue>,
        condition: &str,
        used: &[&str],
        values: HashMap<String, AttributeValue>,
    ) -> Result<bool> {
        let inner = &self.inner;
        let result = inner
            .client
            .put_item()
            .table_name(&inner.target.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(inner.names.placeholders(used)))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(failure) if failure.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(failure) => Err(sdk(&inner.target, operation, Some(key), failure)),
        }
    }

    /// Puts `item` if `key` has no live entry.
    async fn put_if_absent(
        &self,
        operation: &'static str,
        key: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<bool> {
        let values = HashMap::from([(":now".to_owned(), AttributeValue::N(now_secs().to_string()))]);
        self.put_if(operation, key, item, "attribute_not_exists(#k) OR #e <= :now", &["#k", "#e"], values).await
    }

    /// One `UpdateItem` with `condition`: the new value, or `None` if the condition failed.
    async fn update_if(
        &self,
        key: &str,
        update: &str,
        condition: &str,
        used: &[&str],
        values: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let inner = &self.inner;
        let result = inner
            .client
            .update_item()
            .table_name(&inner.target.table)
            .set_key(Some(inner.key_item(self.stored(key))))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(inner.names.placeholders(used)))
            .set_expression_attribute_values(Some(values))
            // ALL_NEW, not UPDATED_NEW: moto leaves out an attribute that ADD 0 did not change.
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(failure) if failure.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(None)
            }
            Err(failure) => Err(sdk(&inner.target, "incr", Some(key), failure)),
        }
    }

    /// The integer `ADD` left in the value attribute.
    fn counter(&self, key: &str, attributes: &HashMap<String, AttributeValue>) -> Result<i64> {
        match attributes.get(&self.inner.names.value) {
            Some(AttributeValue::N(number)) => number.parse().map_err(|_| {
                error(ErrorKind::Unexpected, "incr", Some(key), format!("the counter came back as {number:?}"))
            }),
            _ => Err(error(ErrorKind::Unexpected, "incr", Some(key), "the counter did not come back as a Number")),
        }
    }
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn not_an_integer(key: &str, what: &str) -> cache_core::Error {
    error(ErrorKind::NotAnInteger, "incr", Some(key), what.to_owned())
}

fn overflow(key: &str, current: i64, delta: i64) -> cache_core::Error {
    error(ErrorKind::IntegerOverflow, "incr", Some(key), format!("{current} + {delta} does not fit an i64"))
}

#[async_trait]
impl Cache for DynamoCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.get_item("get", key, "#v, #e", &["#v", "#e"]).await? {
            Some(item) => self.inner.decode("get", key, &item, now_secs()),
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.check_size("set", key, value.len())?;
        let item = self.item(key, AttributeValue::B(Blob::new(Vec::from(value))), ttl);
        let inner = &self.inner;
        inner
            .client
            .put_item()
            .table_name(&inner.target.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|failure| sdk(&inner.target, "set", Some(key), failure))?;
        Ok(())
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.check_size("add", key, value.len())?;
        let item = self.item(key, AttributeValue::B(Blob::new(Vec::from(value))), ttl);
        self.put_if_absent("add", key, item).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let inner = &self.inner;
        let output = inner
            .client
            .delete_item()
            .table_name(&inner.target.table)
            .set_key(Some(inner.key_item(self.stored(key))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|failure| sdk(&inner.target, "delete", Some(key), failure))?;
        match output.attributes {
            Some(old) if !old.is_empty() => inner.is_live("delete", key, &old, now_secs()),
            _ => Ok(false),
        }
    }

    async fn has(&self, key: &str) -> Result<bool> {
        match self.get_item("has", key, "#k, #e", &["#k", "#e"]).await? {
            Some(item) => self.inner.is_live("has", key, &item, now_secs()),
            None => Ok(false),
        }
    }

    /// One `UpdateItem ADD` when the key holds a live counter (or, without a default
    /// TTL, is missing); otherwise a consistent read decides: a missing or expired key
    /// is created by a conditional put, a decimal value written by `set` is swapped for
    /// the sum by a put conditioned on the old value. A lost race goes round again.
    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        // DynamoDB numbers hold 38 digits, so the i64 bound is part of the condition:
        // an overflowing ADD fails the condition and leaves the value as it was. The
        // limit always fits: MAX - positive and MIN - negative stay in range.
        let bound = match delta {
            0 => None,
            1.. => Some((" AND #v <= :limit", i64::MAX - delta)),
            _ => Some((" AND #v >= :limit", i64::MIN - delta)),
        };
        let bound_text = bound.map_or("", |(text, _)| text);
        let live_counter =
            format!("(attribute_type(#v, :number) AND (attribute_not_exists(#e) OR #e > :now){bound_text})");
        // Without a default TTL a missing key can be created by the ADD itself; with one,
        // creation must also write the expiry, which ADD cannot do only on creation.
        let condition = if self.default_ttl.is_none() {
            format!("attribute_not_exists(#k) OR {live_counter}")
        } else {
            format!("attribute_exists(#k) AND {live_counter}")
        };
        for _ in 0..INCR_ROUNDS {
            let mut values = HashMap::from([
                (":delta".to_owned(), number(delta)),
                (":number".to_owned(), AttributeValue::S("N".to_owned())),
                (":now".to_owned(), number(now_secs())),
            ]);
            if let Some((_, limit)) = bound {
                values.insert(":limit".to_owned(), number(limit));
            }
            let added = self.update_if(key, "ADD #v :delta", &condition, &["#k", "#v", "#e"], values).await?;
            if let Some(attributes) = added {
                return self.counter(key, &attributes);
            }
            match self.read_for_update(key).await? {
                None => {
                    let item = self.item(key, number(delta), Ttl::Default);
                    if self.put_if_absent("incr", key, item).await? {
                        return Ok(delta);
                    }
                }
                Some(item) => {
                    let current = match item.get(&self.inner.names.value) {
                        Some(AttributeValue::N(stored)) => stored
                            .parse::<i64>()
                            .map_err(|_| not_an_integer(key, &format!("the stored number {stored} is not an i64")))?,
                        Some(AttributeValue::B(blob)) => parse_integer(blob.as_ref())
                            .ok_or_else(|| not_an_integer(key, "the stored value is not decimal ASCII of an i64"))?,
                        Some(AttributeValue::S(text)) => parse_integer(text.as_bytes())
                            .ok_or_else(|| not_an_integer(key, "the stored value is not decimal ASCII of an i64"))?,
                        _ => return Err(not_an_integer(key, "the stored value is not a number")),
                    };
                    let sum = current.checked_add(delta).ok_or_else(|| overflow(key, current, delta))?;
                    if let Some(AttributeValue::N(_)) = item.get(&self.inner.names.value) {
                        // A live counter that fits: the ADD lost a race; go round again.
                        continue;
                    }
                    // Decimal text written by `set`: swap it for the sum, as a Number, if
                    // nobody changed it meanwhile; the lifetime stays.
                    let old = item.get(&self.inner.names.value).cloned().unwrap_or(AttributeValue::Null(true));
                    let mut replaced = item;
                    replaced.insert(self.inner.names.value.clone(), number(sum));
                    let values = HashMap::from([(":old".to_owned(), old), (":now".to_owned(), number(now_secs()))]);
                    let swapped = self
                        .put_if(
                            "incr",
                            key,
                            replaced,
                            "#v = :old AND (attribute_not_exists(#e) OR #e > :now)",
                            &["#v", "#e"],
                            values,
                        )
                        .await?;
                    if swapped {
                        return Ok(sum);
                    }
                }
            }
        }
        Err(error(
            ErrorKind::Unavailable,
            "incr",
            Some(key),
            format!("the item changed under {INCR_ROUNDS} attempts in a row (heavy contention)"),
        ))
    }

    /// `BatchGetItem` in chunks of 100 distinct keys, sent concurrently.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<String> = keys.iter().map(|key| self.stored(key)).collect();
        let found = batch::get(&self.inner, "get_many", distinct(&stored)).await?;
        let now = now_secs();
        let mut values = Vec::with_capacity(keys.len());
        for (key, stored) in keys.iter().zip(&stored) {
            values.push(match found.get(stored) {
                Some(item) => self.inner.decode("get_many", key, item, now)?,
                None => None,
            });
        }
        Ok(values)
    }

    /// `BatchWriteItem` in chunks of 25 distinct keys (the last value of a repeated key
    /// wins), sent concurrently. Every size is checked before the first request.
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        for (key, value) in entries {
            self.check_size("set_many", key, value.len())?;
        }
        let mut last: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        for (index, (key, _)) in entries.iter().enumerate() {
            last.insert(self.stored(key), index);
        }
        let mut indexes: Vec<usize> = last.into_values().collect();
        indexes.sort_unstable();
        let items = indexes
            .into_iter()
            .map(|index| {
                let (key, value) = &entries[index];
                self.item(key, AttributeValue::B(Blob::new(value.to_vec())), ttl)
            })
            .collect();
        batch::put(&self.inner, "set_many", items).await
    }

    /// Counts the live entries among `keys` with `BatchGetItem` (chunks of 100), then
    /// deletes all of them with `BatchWriteItem` (chunks of 25). `BatchWriteItem` does
    /// not say what it removed, so the count is of entries live just before the delete:
    /// exact unless another writer touches the same keys in between.
    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let stored: Vec<String> = keys.iter().map(|key| self.stored(key)).collect();
        let unique = distinct(&stored);
        let found = batch::get(&self.inner, "delete_many", unique.clone()).await?;
        let now = now_secs();
        let mut live = 0;
        for (stored, item) in &found {
            live += usize::from(self.inner.is_live("delete_many", stored, item, now)?);
        }
        batch::delete(&self.inner, "delete_many", unique).await?;
        Ok(live)
    }

    /// A parallel scan for keys starting with the prefix (all items without one),
    /// deleting each page in `BatchWriteItem`s of 25. The table itself stays.
    async fn clear(&self) -> Result<()> {
        batch::clear(&self.inner, &self.prefix).await
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::default();
        capabilities.max_value_len = Some(self.max_value_len);
        capabilities.ttl_resolution = Duration::from_secs(1);
        capabilities.clear = true;
        capabilities.shared_between_processes = true;
        capabilities
    }

    fn single_flight_scope(&self) -> (usize, &str) {
        (Arc::as_ptr(&self.inner).cast::<()>() as usize, &self.prefix)
    }
}

/// Each stored key once, in first-seen order: DynamoDB rejects a batch that names a key
/// twice.
fn distinct(stored: &[String]) -> Vec<String> {
    let mut seen = HashSet::with_capacity(stored.len());
    stored.iter().filter(|key| seen.insert(key.as_str())).cloned().collect()
}
