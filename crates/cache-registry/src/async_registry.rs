//! The registry for async code: the same calls, run on Tokio's blocking pool, and item files
//! read and written through `AsyncRead` and `AsyncWrite`.
//!
//! It wraps the synchronous [`Registry`] thinly rather than being a second implementation:
//! every call moves its arguments into `spawn_blocking`, runs the synchronous call there, and
//! hands back its result, so SQLite and file I/O never block an async worker thread.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

use crate::cleanup::{Cleanup, CleanupReport};
use crate::error::{Error, ErrorKind, Result};
use crate::item::{Item, NewItem};
use crate::query::Query;
use crate::read::Reader;
use crate::registry::{BestOrNew, Registry};
use crate::write::Writer;

/// How many bytes one blocking read or write moves: large enough that the hand-off to the
/// blocking pool (a few microseconds) is small beside the I/O, small enough to stream.
const CHUNK: usize = 64 * 1024;

/// A [`Registry`] for async code. Each call runs the synchronous call on Tokio's blocking
/// pool (`spawn_blocking`), so SQLite's locks and file I/O never stall an async worker;
/// [`open`](AsyncRegistry::open_item) gives an [`AsyncRead`] and [`write`](AsyncRegistry::write)
/// an [`AsyncWrite`], so a download can stream straight into an item.
///
/// Cheap to clone; [`sync`](AsyncRegistry::sync) gives the synchronous registry it wraps (the
/// same database and pool), and `From<Registry>` wraps one. Must be used inside a Tokio
/// runtime; outside one, calls fail with [`ErrorKind::InvalidConfig`] rather than panic.
///
/// ```
/// use cache_registry::{AsyncRegistry, NewItem};
/// use serde_json::json;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = AsyncRegistry::open(dir.path()).await?;
/// let item = registry.create("https://example.org/report.txt", &json!({"day": 1}), &NewItem::new()).await?;
///
/// // Stream bytes in (any AsyncRead can be copied in with tokio::io::copy) ...
/// let mut writer = registry.write(&item).await?;
/// writer.write_all(b"all good\n").await?;
/// let ready = writer.commit().await?;
///
/// // ... and back out.
/// let mut text = String::new();
/// registry.open_item(&ready).await?.read_to_string(&mut text).await?;
/// assert_eq!(text, "all good\n");
///
/// // Anything else the synchronous API does, off the async workers:
/// let versions = registry.run(|sync| sync.versions("https://example.org/report.txt", &json!({"day": 1}))).await?;
/// assert_eq!(versions.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AsyncRegistry {
    registry: Registry,
}

impl From<Registry> for AsyncRegistry {
    fn from(registry: Registry) -> Self {
        AsyncRegistry { registry }
    }
}

/// Runs `f` on the blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| no_runtime(operation))?;
    match handle.spawn_blocking(f).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => {
            Err(Error::new(ErrorKind::Io, operation).with_context("the runtime shut down").with_source(error))
        }
    }
}

fn no_runtime(operation: &'static str) -> Error {
    Error::new(ErrorKind::InvalidConfig, operation)
        .with_context("the async registry must be used inside a Tokio runtime")
}

/// The params as a JSON value the blocking task can own.
fn owned_params<P: Serialize + ?Sized>(params: &P, operation: &'static str) -> Result<serde_json::Value> {
    serde_json::to_value(params)
        .map_err(|error| Error::invalid_input(operation, "params are not JSON").with_source(error))
}

impl AsyncRegistry {
    /// Opens (creating if needed) the registry in `dir` with default settings, off the async
    /// workers. For other settings, open a [`Registry`] with [`Registry::builder`] inside
    /// [`spawn_blocking`](tokio::task::spawn_blocking) and wrap it with `From`.
    ///
    /// # Errors
    ///
    /// As [`RegistryBuilder::open`](crate::RegistryBuilder::open).
    ///
    /// ```
    /// use cache_registry::AsyncRegistry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// assert_eq!(registry.sync().dir(), dir.path());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(dir: impl AsRef<Path>) -> Result<AsyncRegistry> {
        let dir = dir.as_ref().to_path_buf();
        blocking("open", move || Registry::open(dir)).await.map(AsyncRegistry::from)
    }

    /// The synchronous registry this wraps, for calls that do no I/O or for code that is
    /// already on a blocking thread.
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("u", &(), &NewItem::new()).await?;
    /// // Reading fields does no I/O; the sync registry is the same database.
    /// assert_eq!(registry.sync().dir(), dir.path());
    /// assert_eq!(item.version(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn sync(&self) -> &Registry {
        &self.registry
    }

    /// Runs `f` with the synchronous registry on the blocking pool: any call the async face
    /// has no method for, such as [`Item::trash`] or [`Item::set_attributes`].
    ///
    /// # Errors
    ///
    /// What `f` returns; [`ErrorKind::InvalidConfig`] outside a Tokio runtime.
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let mut item = registry.create("u", &(), &NewItem::new()).await?;
    /// item = registry.run(move |_| { item.trash()?; Ok(item) }).await?;
    /// assert_eq!(item.status(), cache_registry::Status::Trash);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Registry) -> Result<T> + Send + 'static) -> Result<T> {
        let registry = self.registry.clone();
        blocking("run", move || f(&registry)).await
    }

    /// As [`Registry::create`].
    ///
    /// # Errors
    ///
    /// As [`Registry::create`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new()).await?;
    /// assert_eq!(item.version(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create<P: Serialize + ?Sized>(&self, uri: &str, params: &P, options: &NewItem) -> Result<Item> {
        let (uri, params, options) = (uri.to_owned(), owned_params(params, "create")?, options.clone());
        self.run(move |registry| registry.create(&uri, &params, &options)).await
    }

    /// As [`Registry::get`].
    ///
    /// # Errors
    ///
    /// As [`Registry::get`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("u", &(), &NewItem::new()).await?;
    /// assert!(registry.get(item.key(), 1).await?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get(&self, key: &str, version: u64) -> Result<Option<Item>> {
        let key = key.to_owned();
        self.run(move |registry| registry.get(&key, version)).await
    }

    /// As [`Registry::best`].
    ///
    /// # Errors
    ///
    /// As [`Registry::best`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("https://example.org/a.txt", &(), &NewItem::new()).await?;
    /// let mut writer = registry.write(&item).await?;
    /// writer.write_all(b"hello").await?;
    /// writer.commit().await?;
    /// assert_eq!(registry.best("https://example.org/a.txt", &()).await?.map(|item| item.version()), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn best<P: Serialize + ?Sized>(&self, uri: &str, params: &P) -> Result<Option<Item>> {
        let (uri, params) = (uri.to_owned(), owned_params(params, "best")?);
        self.run(move |registry| registry.best(&uri, &params)).await
    }

    /// As [`Registry::best_or_new`], with an [`AsyncWriter`] for a new version.
    ///
    /// # Errors
    ///
    /// As [`Registry::best_or_new`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let found = registry.best_or_new("u", &(), &NewItem::new()).await?;
    /// assert!(matches!(found, cache_registry::AsyncBestOrNew::New(_)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn best_or_new<P: Serialize + ?Sized>(
        &self,
        uri: &str,
        params: &P,
        options: &NewItem,
    ) -> Result<AsyncBestOrNew> {
        let (uri, params, options) = (uri.to_owned(), owned_params(params, "best or new")?, options.clone());
        let found = self.run(move |registry| registry.best_or_new(&uri, &params, &options)).await?;
        Ok(match found {
            BestOrNew::Found(item) => AsyncBestOrNew::Found(item),
            BestOrNew::New(writer) => AsyncBestOrNew::New(AsyncWriter::new(writer)),
        })
    }

    /// As [`Registry::versions`].
    ///
    /// # Errors
    ///
    /// As [`Registry::versions`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// registry.create("u", &(), &NewItem::new()).await?;
    /// registry.create("u", &(), &NewItem::new()).await?;
    /// assert_eq!(registry.versions("u", &()).await?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn versions<P: Serialize + ?Sized>(&self, uri: &str, params: &P) -> Result<Vec<Item>> {
        let (uri, params) = (uri.to_owned(), owned_params(params, "versions")?);
        self.run(move |registry| registry.versions(&uri, &params)).await
    }

    /// As [`Registry::search`].
    ///
    /// # Errors
    ///
    /// As [`Registry::search`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// registry.create("u", &(), &NewItem::new().attr("rows", 5)).await?;
    /// assert_eq!(registry.search(cache_registry::Filter::attr("rows").gt(1)).await?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn search(&self, query: impl Into<Query>) -> Result<Vec<Item>> {
        let query = query.into();
        self.run(move |registry| registry.search(query)).await
    }

    /// As [`Registry::cleanup`].
    ///
    /// # Errors
    ///
    /// As [`Registry::cleanup`].
    ///
    /// ```
    /// use cache_registry::AsyncRegistry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let report = registry.cleanup(&cache_registry::Cleanup::new().dry_run(true)).await?;
    /// assert!(report.removed.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn cleanup(&self, plan: &Cleanup) -> Result<CleanupReport> {
        let plan = plan.clone();
        self.run(move |registry| registry.cleanup(&plan)).await
    }

    /// As [`Item::write`]: claims `item` for writing and gives the [`AsyncWriter`] that fills
    /// its file.
    ///
    /// # Errors
    ///
    /// As [`Item::write`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("https://example.org/a.txt", &(), &NewItem::new()).await?;
    /// let mut writer = registry.write(&item).await?;
    /// writer.write_all(b"hello").await?;
    /// let item = writer.commit().await?;
    /// assert_eq!(item.size(), Some(5));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write(&self, item: &Item) -> Result<AsyncWriter> {
        let item = item.clone();
        blocking("write", move || item.write()).await.map(AsyncWriter::new)
    }

    /// As [`Item::open`]: the decoded content as an [`AsyncRead`].
    ///
    /// # Errors
    ///
    /// As [`Item::open`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("https://example.org/a.txt", &(), &NewItem::new()).await?;
    /// let mut writer = registry.write(&item).await?;
    /// writer.write_all(b"hello").await?;
    /// let item = writer.commit().await?;
    /// let mut text = String::new();
    /// registry.open_item(&item).await?.read_to_string(&mut text).await?;
    /// assert_eq!(text, "hello");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_item(&self, item: &Item) -> Result<AsyncReader> {
        let item = item.clone();
        blocking("open", move || item.open()).await.map(AsyncReader::new)
    }

    /// As [`Item::open_member`]: one archive member as an [`AsyncRead`].
    ///
    /// # Errors
    ///
    /// As [`Item::open_member`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let mut archive = tar::Builder::new(Vec::new());
    /// let mut header = tar::Header::new_gnu();
    /// header.set_size(2);
    /// archive.append_data(&mut header, "a.txt", &b"hi"[..])?;
    /// let item = registry.create("https://example.org/b.tar", &(), &NewItem::new()).await?;
    /// let mut writer = registry.write(&item).await?;
    /// writer.write_all(&archive.into_inner()?).await?;
    /// let item = writer.commit().await?;
    /// let mut text = String::new();
    /// registry.open_member(&item, "a.txt").await?.read_to_string(&mut text).await?;
    /// assert_eq!(text, "hi");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_member(&self, item: &Item, name: &str) -> Result<AsyncReader> {
        let (item, name) = (item.clone(), name.to_owned());
        blocking("open member", move || item.open_member(&name)).await.map(AsyncReader::new)
    }
}

/// What [`AsyncRegistry::best_or_new`] found.
///
/// ```
/// use cache_registry::{AsyncBestOrNew, AsyncRegistry, NewItem};
/// use tokio::io::AsyncWriteExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = AsyncRegistry::open(dir.path()).await?;
/// let item = match registry.best_or_new("https://example.org/a.csv", &(), &NewItem::new()).await? {
///     AsyncBestOrNew::Found(item) => item,
///     AsyncBestOrNew::New(mut writer) => {
///         writer.write_all(b"a,b\n").await?;
///         writer.commit().await?
///     }
/// };
/// assert_eq!(item.size(), Some(4));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per call and matched at once: a Box would be an allocation for nothing"
)]
pub enum AsyncBestOrNew {
    /// The newest Ready version.
    Found(Item),
    /// There was none: a new version, already in [`Status::Write`](crate::Status::Write), for
    /// the caller to fill.
    New(AsyncWriter),
}

/// Moves a value to the blocking pool and back: `Idle` holds it between operations, `Busy`
/// while a blocking task has it.
enum Slot<T, R> {
    Idle(T),
    Busy(JoinHandle<(T, R)>),
    /// Only after a failure that lost the value (the runtime shut down mid-operation).
    Gone,
}

impl<T: Send + 'static, R: Send + 'static> Slot<T, R> {
    /// Starts `f` on the value; it must be `Idle`.
    fn start(&mut self, f: impl FnOnce(&mut T) -> R + Send + 'static) -> io::Result<()> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| io::Error::other("the async registry must be used inside a Tokio runtime"))?;
        match std::mem::replace(self, Slot::Gone) {
            Slot::Idle(mut value) => {
                *self = Slot::Busy(handle.spawn_blocking(move || {
                    let result = f(&mut value);
                    (value, result)
                }));
                Ok(())
            }
            other => {
                *self = other;
                Err(io::Error::other("a blocking operation is already running"))
            }
        }
    }

    /// Waits for the running operation, leaving the value `Idle` again.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let Slot::Busy(handle) = self else {
            return Poll::Ready(Err(io::Error::other("no blocking operation is running")));
        };
        let joined = ready!(Pin::new(handle).poll(cx));
        match joined {
            Ok((value, result)) => {
                *self = Slot::Idle(value);
                Poll::Ready(Ok(result))
            }
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => {
                *self = Slot::Gone;
                Poll::Ready(Err(io::Error::other(error)))
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("the stream was lost when the runtime shut down")
}

/// An item's content as an [`AsyncRead`]: the same decoded stream as [`Reader`], read in
/// 64 KiB chunks on the blocking pool. Get one from [`AsyncRegistry::open_item`] or
/// [`AsyncRegistry::open_member`]; errors are those of [`Reader`].
///
/// ```
/// use cache_registry::{AsyncRegistry, NewItem};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = AsyncRegistry::open(dir.path()).await?;
/// let item = registry.create("https://example.org/n.txt", &(), &NewItem::new()).await?;
/// let mut writer = registry.write(&item).await?;
/// writer.write_all(b"12345").await?;
/// let item = writer.commit().await?;
/// let mut reader = registry.open_item(&item).await?;
/// let mut first = [0u8; 2];
/// reader.read_exact(&mut first).await?;
/// assert_eq!(&first, b"12");
/// # Ok(())
/// # }
/// ```
pub struct AsyncReader {
    slot: Slot<(Reader, Vec<u8>), io::Result<usize>>,
    /// The unread part of the last chunk is `buf[pos..len]` of the idle value's buffer.
    pos: usize,
    len: usize,
}

impl fmt::Debug for AsyncReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncReader").field("buffered", &(self.len - self.pos)).finish_non_exhaustive()
    }
}

impl AsyncReader {
    fn new(reader: Reader) -> AsyncReader {
        AsyncReader { slot: Slot::Idle((reader, Vec::new())), pos: 0, len: 0 }
    }
}

impl AsyncRead for AsyncReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.slot {
                Slot::Idle((_, buf)) if this.pos < this.len => {
                    let n = out.remaining().min(this.len - this.pos);
                    out.put_slice(&buf[this.pos..this.pos + n]);
                    this.pos += n;
                    return Poll::Ready(Ok(()));
                }
                Slot::Idle(_) => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    this.slot.start(|(reader, buf)| {
                        buf.resize(CHUNK, 0);
                        reader.read(buf)
                    })?;
                }
                Slot::Busy(_) => {
                    let read = ready!(this.slot.poll_done(cx))?;
                    this.pos = 0;
                    this.len = read?;
                    if this.len == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
                Slot::Gone => return Poll::Ready(Err(gone())),
            }
        }
    }
}

/// Fills a version's file from async code: an [`AsyncWrite`] over a [`Writer`], whose bytes
/// are gathered into 64 KiB chunks and written on the blocking pool. Get one from
/// [`AsyncRegistry::write`] or [`AsyncRegistry::best_or_new`].
///
/// [`commit`](AsyncWriter::commit) finishes as [`Writer::commit`] does (the version is Ready
/// only once the whole file is in place); dropping the writer uncommitted marks the version
/// Failed and removes the partial file, on the blocking pool.
///
/// ```
/// use cache_registry::{AsyncRegistry, NewItem};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = AsyncRegistry::open(dir.path()).await?;
/// let item = registry.create("https://example.org/big.bin", &(), &NewItem::new()).await?;
/// let mut writer = registry.write(&item).await?;
/// // Any AsyncRead, such as a download's body, streams in without being held in memory.
/// let mut download: &[u8] = &[7u8; 200_000];
/// tokio::io::copy(&mut download, &mut writer).await?;
/// assert_eq!(writer.commit().await?.size(), Some(200_000));
/// # Ok(())
/// # }
/// ```
pub struct AsyncWriter {
    item: Item,
    slot: Slot<(Writer, Vec<u8>), io::Result<()>>,
}

impl fmt::Debug for AsyncWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWriter").field("item", &self.item).finish_non_exhaustive()
    }
}

impl AsyncWriter {
    fn new(writer: Writer) -> AsyncWriter {
        AsyncWriter { item: writer.item().clone(), slot: Slot::Idle((writer, Vec::with_capacity(CHUNK))) }
    }

    /// The version being written, as it was when writing started.
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("u", &(), &NewItem::new()).await?;
    /// let writer = registry.write(&item).await?;
    /// assert_eq!(writer.item().status(), cache_registry::Status::Write);
    /// writer.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn item(&self) -> &Item {
        &self.item
    }

    /// Writes what is buffered, then finishes as [`Writer::commit`] does.
    ///
    /// # Errors
    ///
    /// As [`Writer::commit`]; an earlier write's I/O error.
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    /// use tokio::io::AsyncWriteExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("https://example.org/a.txt", &(), &NewItem::new()).await?;
    /// let mut writer = registry.write(&item).await?;
    /// writer.write_all(b"hello").await?;
    /// let item = writer.commit().await?;
    /// assert_eq!(item.status(), cache_registry::Status::Ready);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit(mut self) -> Result<Item> {
        let writer = self.finish_writes("commit").await?;
        blocking("commit", move || writer.commit()).await
    }

    /// Gives up as [`Writer::abort`] does.
    ///
    /// # Errors
    ///
    /// As [`Writer::abort`].
    ///
    /// ```
    /// use cache_registry::{AsyncRegistry, NewItem};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = AsyncRegistry::open(dir.path()).await?;
    /// let item = registry.create("u", &(), &NewItem::new()).await?;
    /// registry.write(&item).await?.abort().await?;
    /// assert_eq!(registry.get(item.key(), 1).await?.map(|item| item.status()), Some(cache_registry::Status::Failed));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn abort(mut self) -> Result<()> {
        let writer = match std::mem::replace(&mut self.slot, Slot::Gone) {
            Slot::Idle((writer, _)) => writer,
            Slot::Busy(handle) => {
                self.slot = Slot::Busy(handle);
                self.wait("abort").await?
            }
            Slot::Gone => return Err(Error::new(ErrorKind::Io, "abort").with_source(gone())),
        };
        blocking("abort", move || writer.abort()).await
    }

    /// Waits for a running write and takes the writer out.
    async fn wait(&mut self, operation: &'static str) -> Result<Writer> {
        if matches!(self.slot, Slot::Busy(_)) {
            let written = std::future::poll_fn(|cx| self.slot.poll_done(cx)).await;
            written.and_then(|result| result).map_err(|error| io_error(operation, &self.item, error))?;
        }
        match std::mem::replace(&mut self.slot, Slot::Gone) {
            Slot::Idle((writer, _)) => Ok(writer),
            _ => Err(io_error(operation, &self.item, gone())),
        }
    }

    /// Flushes the buffer and takes the writer out.
    async fn finish_writes(&mut self, operation: &'static str) -> Result<Writer> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx))
            .await
            .map_err(|error| io_error(operation, &self.item, error))?;
        self.wait(operation).await
    }
}

fn io_error(operation: &'static str, item: &Item, error: io::Error) -> Error {
    Error::io(operation, &item.path(), error).with_item(item.uri(), Some(item.version()))
}

impl AsyncWrite for AsyncWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match &mut this.slot {
                Slot::Idle((_, buf)) if buf.len() < CHUNK || data.is_empty() => {
                    let n = data.len().min(CHUNK - buf.len());
                    buf.extend_from_slice(&data[..n]);
                    return Poll::Ready(Ok(n));
                }
                Slot::Idle(_) => this.slot.start(|(writer, buf)| {
                    let written = writer.write_all(buf);
                    buf.clear();
                    written
                })?,
                Slot::Busy(_) => ready!(this.slot.poll_done(cx))??,
                Slot::Gone => return Poll::Ready(Err(gone())),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.slot {
                Slot::Idle((_, buf)) if buf.is_empty() => return Poll::Ready(Ok(())),
                Slot::Idle(_) => this.slot.start(|(writer, buf)| {
                    let written = writer.write_all(buf).and_then(|()| writer.flush());
                    buf.clear();
                    written
                })?,
                Slot::Busy(_) => ready!(this.slot.poll_done(cx))??,
                Slot::Gone => return Poll::Ready(Err(gone())),
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Drop for AsyncWriter {
    fn drop(&mut self) {
        // An uncommitted Writer marks its version Failed when dropped, which touches the disk
        // and the database: do that on the blocking pool when there is one. A running write
        // owns the writer and drops it there itself.
        if let Slot::Idle((writer, _)) = std::mem::replace(&mut self.slot, Slot::Gone) {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                drop(handle.spawn_blocking(move || drop(writer)));
            }
        }
    }
}
