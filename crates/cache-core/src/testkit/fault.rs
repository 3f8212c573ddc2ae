//! Network faults on demand: a loopback TCP proxy that can add latency, cut bandwidth,
//! reset connections or black-hole traffic, and the fault suite every network store runs
//! through it.
//!
//! A store's `tests/faults.rs` implements [`FaultHarness`] (how to reach its server, and
//! how to open a cache on an address with a given operation timeout) and calls
//! [`fault_tests!`](crate::fault_tests). Each behaviour starts its own [`FaultProxy`] in
//! front of the real server, so faults never leak into other tests.
//!
//! The suite holds a store to what a service needs from a cache on its hot path: when the
//! server is slow, restarting or unreachable, every call returns within the operation
//! timeout plus [`MARGIN`] with a temporary error (`Timeout` or `Unavailable`), never a
//! wrong value and never a panic, and the same cache object works again once the network
//! does.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::{Cache, CacheExt, Error, Result, Ttl};

/// What the proxy does to traffic; switch with [`FaultProxy::set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything as it comes.
    None,
    /// Hold every chunk this long before forwarding it, in both directions.
    Latency(Duration),
    /// Forward at most this many bytes per second in each direction.
    Bandwidth(u64),
    /// Reset (RST) every open connection and every new one.
    Reset,
    /// Accept new connections and never answer them (nor dial the server for them); open
    /// connections stall, holding what they were sent (as TCP does on a path that drops
    /// packets) and forwarding it once the fault is lifted. A side that gives up during
    /// the fault (closes or resets) ends its connection at once, held bytes dropped, so a
    /// server is never kept waiting on a client that has gone.
    BlackHole,
}

/// A TCP proxy on a free loopback port in front of one server. Dropping it closes every
/// connection it holds.
///
/// ```
/// use std::time::Duration;
/// use cache_core::testkit::fault::{Fault, FaultProxy};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::{TcpListener, TcpStream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// // A server that answers every connection with "hi".
/// let server = TcpListener::bind("127.0.0.1:0").await?;
/// let upstream = server.local_addr()?;
/// tokio::spawn(async move {
///     while let Ok((mut socket, _)) = server.accept().await {
///         let _ = socket.write_all(b"hi").await;
///     }
/// });
///
/// let proxy = FaultProxy::start(upstream).await?;
/// let mut greeting = [0; 2];
/// TcpStream::connect(proxy.addr()).await?.read_exact(&mut greeting).await?;
/// assert_eq!(&greeting, b"hi");
///
/// proxy.set(Fault::BlackHole);
/// let mut silent = TcpStream::connect(proxy.addr()).await?;
/// let waited = tokio::time::timeout(Duration::from_millis(100), silent.read_exact(&mut greeting)).await;
/// assert!(waited.is_err(), "a black hole accepts and never answers");
/// proxy.set(Fault::None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    accepting: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy that forwards to `upstream`, with no fault.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (fault, watching) = watch::channel(Fault::None);
        let accepting = tokio::spawn(accept(listener, upstream, watching));
        Ok(FaultProxy { addr, fault, accepting })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` to open and new connections from now on.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop owns every connection task; aborting it drops them all.
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, fault: watch::Receiver<Fault>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(serve(client, upstream, fault.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    // Every close is a reset: a proxy that is told to reset must not wait for a
    // graceful shutdown, and in tests nothing is lost by it.
    let _ = client.set_zero_linger();
    let current = *fault.borrow_and_update();
    match current {
        Fault::Reset => return,
        Fault::BlackHole => {
            // Accept and never answer: read nothing, forward nothing, until the fault
            // changes; then drop the connection, which the client sees as a reset.
            let _ = fault.changed().await;
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = server.set_zero_linger();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending (a close, an error, a reset) ends both.
    tokio::select! {
        () = pump(client_read, server_write, fault.clone()) => {}
        () = pump(server_read, client_write, fault) => {}
    }
}

/// The most a black-holed direction holds before it stops reading its sender (which
/// then sees a full window, as over a real link): enough for any request or answer the
/// suite sends, small enough that a stalled peer costs little memory.
const HOLD_LIMIT: usize = 4 * 1024 * 1024;

/// Forwards one direction, applying the fault in force to each chunk.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut fault: watch::Receiver<Fault>) {
    let mut buffer = vec![0; 64 * 1024];
    // What a black hole kept from the receiver, forwarded in order once it is lifted.
    let mut held: Vec<u8> = Vec::new();
    loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::Reset => return,
            Fault::BlackHole => {
                // Keep reading the sender and hold what it sends, instead of leaving it
                // unread: a sender that gives up (a client past its timeout) is then seen
                // at once, and the connection ends, so the far side is not kept waiting on
                // a peer that is gone. A server that serves one connection at a time
                // (moto on one thread) would otherwise stall for every client until the
                // hole closed.
                if !hold(&mut from, &mut buffer, &mut held, &mut fault).await {
                    return;
                }
                continue;
            }
            Fault::None | Fault::Latency(_) | Fault::Bandwidth(_) => {}
        }
        if !held.is_empty() {
            let chunk = std::mem::take(&mut held);
            match deliver(&chunk, &mut to, &mut fault).await {
                Sent::Done => {}
                Sent::Held => held = chunk,
                Sent::Closed => return,
            }
            continue;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = fault.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let Ok(len @ 1..) = read else { return };
        match deliver(&buffer[..len], &mut to, &mut fault).await {
            Sent::Done => {}
            // Read just as the hole opened: held, not dropped.
            Sent::Held => held.extend_from_slice(&buffer[..len]),
            Sent::Closed => return,
        }
    }
}

/// Reads the sender into `held` while the black hole lasts; false when the sender has
/// gone (closed or reset) and the connection must end, dropping what was held: a path
/// that drops packets never delivered it, and its sender has given up on it.
async fn hold(
    from: &mut OwnedReadHalf,
    buffer: &mut [u8],
    held: &mut Vec<u8>,
    fault: &mut watch::Receiver<Fault>,
) -> bool {
    while *fault.borrow_and_update() == Fault::BlackHole {
        if held.len() >= HOLD_LIMIT {
            return fault.changed().await.is_ok();
        }
        tokio::select! {
            read = from.read(buffer) => match read {
                Ok(len @ 1..) => held.extend_from_slice(&buffer[..len]),
                _ => return false,
            },
            changed = fault.changed() => if changed.is_err() {
                return false;
            },
        }
    }
    true
}

/// What became of a chunk handed to [`deliver`].
enum Sent {
    Done,
    /// A black hole opened: the caller holds the chunk.
    Held,
    /// The connection must end.
    Closed,
}

/// Writes `chunk` under the fault in force.
async fn deliver(chunk: &[u8], to: &mut OwnedWriteHalf, fault: &mut watch::Receiver<Fault>) -> Sent {
    let written = |result: std::io::Result<()>| if result.is_ok() { Sent::Done } else { Sent::Closed };
    let current = *fault.borrow_and_update();
    match current {
        Fault::Reset => Sent::Closed,
        Fault::BlackHole => Sent::Held,
        Fault::None => written(to.write_all(chunk).await),
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            let now = *fault.borrow();
            match now {
                Fault::Reset => Sent::Closed,
                Fault::BlackHole => Sent::Held,
                _ => written(to.write_all(chunk).await),
            }
        }
        Fault::Bandwidth(bytes_per_second) => {
            let piece = usize::try_from(bytes_per_second / 10).unwrap_or(usize::MAX).max(1);
            // Each piece goes out once the link would have carried it.
            for part in chunk.chunks(piece) {
                let seconds = part.len() as f64 / bytes_per_second.max(1) as f64;
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                if to.write_all(part).await.is_err() {
                    return Sent::Closed;
                }
            }
            Sent::Done
        }
    }
}

/// How far past its operation timeout a call may return under a fault.
pub const MARGIN: Duration = Duration::from_secs(1);

/// The operation timeout the fault suite gives the caches it opens: short, so the suite
/// is quick, and long enough for a loaded 2-core test machine to answer 32 concurrent
/// calls in time without faults (1 s was not, for MongoDB at a load average over 15).
pub const SUITE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a network store's fault tests reach its server.
///
/// A store's `tests/faults.rs`, in outline (`RedisCache` and its builder stand for the
/// store's own types):
///
/// ```text
/// struct RedisFaults;
///
/// impl FaultHarness for RedisFaults {
///     type Cache = RedisCache;
///     fn upstream() -> SocketAddr {
///         address_from_env("CACHE_TEST_REDIS_URL")
///     }
///     async fn open(addr: SocketAddr, prefix: &str, timeout: Duration) -> RedisCache {
///         RedisCache::builder().url(format!("redis://{addr}")).prefix(prefix)
///             .connect_timeout(timeout).response_timeout(timeout).build().await.expect("building")
///     }
/// }
///
/// cache_core::fault_tests!(RedisFaults, #[ignore = "needs redis: cargo xtask test"]);
/// ```
pub trait FaultHarness: Send + Sync + 'static {
    /// The store's cache type.
    type Cache: Cache + 'static;

    /// The address of the real server the proxy forwards to (usually read from the
    /// store's `CACHE_TEST_*` variable; panics with a clear message when it is unset).
    fn upstream() -> SocketAddr;

    /// A cache that reaches its server at `addr` (the proxy), keeps its keys under
    /// `prefix`, and bounds every operation, connecting included, by `timeout`.
    fn open(addr: SocketAddr, prefix: &str, timeout: Duration) -> impl Future<Output = Self::Cache> + Send;
}

/// Generates the fault suite as `#[test]`s in a module `faults`, for a type that
/// implements [`FaultHarness`]. Attributes after the type (such as
/// `#[ignore = "needs redis: cargo xtask test"]`) go on every generated test. The tests
/// run one at a time (see [`one_at_a_time`]).
#[macro_export]
macro_rules! fault_tests {
    ($harness:ty $(, #[$attr:meta])* $(,)?) => {
        /// The cache-core fault suite on this store.
        mod faults {
            #[allow(unused_imports)]
            use super::*;

            $crate::__fault_each! { $harness, [$(#[$attr])*]
                latency_under_the_timeout_is_harmless,
                slow_server_times_out,
                reset_connections_fail_fast,
                black_hole_fails_fast,
                bulk_calls_under_faults_never_mix_keys,
                get_or_insert_serves_the_loaded_value_during_a_fault,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fault_each {
    // One behaviour at a time: the attributes repeat once per test, which a single
    // `$(...)*` over both lists cannot express (their repetition counts differ).
    ($harness:ty, [$($attr:tt)*]) => {};
    ($harness:ty, [$($attr:tt)*] $behaviour:ident $(, $rest:ident)* $(,)?) => {
        #[test]
        $($attr)*
        fn $behaviour() {
            let _turn = $crate::testkit::fault::one_at_a_time();
            $crate::testkit::block_on($crate::testkit::fault::$behaviour::<$harness>());
        }
        $crate::__fault_each! { $harness, [$($attr)*] $($rest),* }
    };
}

/// Held by each test [`fault_tests!`](crate::fault_tests) generates, so a test binary runs
/// its fault tests one after another. Each times every call against a short timeout on a
/// server the others share: a sibling's 32 tasks, or its fault (a black-holed request
/// holds a one-request-at-a-time server until its client gives up), would slow the
/// server for all of them and fail calls the fault under test never touched.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A failed test poisons the lock; the next one still runs, on its own proxy.
    TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A proxy in front of the harness's server and a cache through it.
async fn through_proxy<H: FaultHarness>() -> (FaultProxy, Arc<H::Cache>) {
    let proxy = FaultProxy::start(H::upstream()).await.expect("starting the fault proxy");
    let cache = H::open(proxy.addr(), &super::unique_prefix(), SUITE_TIMEOUT).await;
    (proxy, Arc::new(cache))
}

/// What a mixed workload saw.
#[derive(Debug, Default)]
struct Tally {
    calls: usize,
    ok: usize,
    errors: BTreeMap<String, usize>,
    worst: Duration,
    /// Anything that must never happen: a wrong value, a permanent error.
    wrong: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.calls += other.calls;
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.worst = self.worst.max(other.worst);
        self.wrong.extend(other.wrong);
    }

    /// Times one call and checks its error, if any, is temporary.
    async fn call<T>(&mut self, what: &str, call: impl Future<Output = Result<T>>) -> Option<T> {
        let started = Instant::now();
        let outcome = call.await;
        self.calls += 1;
        self.worst = self.worst.max(started.elapsed());
        match outcome {
            Ok(value) => {
                self.ok += 1;
                Some(value)
            }
            Err(error) => {
                if !error.is_temporary() {
                    self.wrong.push(format!("{what}: a fault gave a permanent error: {error}"));
                }
                *self.errors.entry(format!("{:?}", error.kind())).or_default() += 1;
                None
            }
        }
    }
}

/// One task's keys and what it knows of them: the value of `key-i` is `key-i=<seq>`, so
/// a value read under another key, or older than the last acknowledged write, is caught.
struct Writer {
    keys: Vec<String>,
    /// Per key: the last acknowledged sequence number and the last attempted one.
    acked: Vec<u64>,
    attempted: Vec<u64>,
    counter: String,
    counter_acked: i64,
    counter_attempts: i64,
}

impl Writer {
    fn new(task: usize) -> Self {
        let keys: Vec<String> = (0..3).map(|index| format!("fault-{task}-{index}")).collect();
        Writer {
            acked: vec![0; keys.len()],
            attempted: vec![0; keys.len()],
            keys,
            counter: format!("fault-{task}-counter"),
            counter_acked: 0,
            counter_attempts: 0,
        }
    }

    fn check(&self, index: usize, value: Option<&Bytes>, wrong: &mut Vec<String>) {
        let key = &self.keys[index];
        let Some(value) = value else {
            if self.acked[index] > 0 {
                wrong.push(format!("{key}: acknowledged write {} was lost", self.acked[index]));
            }
            return;
        };
        let text = String::from_utf8_lossy(value);
        let seq = text.strip_prefix(&format!("{key}=")).and_then(|seq| seq.parse::<u64>().ok());
        match seq {
            Some(seq) if (self.acked[index]..=self.attempted[index]).contains(&seq) => {}
            _ => wrong.push(format!(
                "{key}: read {text:?}, expected {key}=<{}..={}>",
                self.acked[index], self.attempted[index]
            )),
        }
    }

    /// `rounds` of set, get, get_many, incr and delete-free reads on this task's keys.
    async fn run<C: Cache + ?Sized>(&mut self, cache: &C, rounds: usize) -> Tally {
        let mut tally = Tally::default();
        for round in 0..rounds {
            let index = round % self.keys.len();
            let key = self.keys[index].clone();
            match round % 4 {
                0 => {
                    self.attempted[index] += 1;
                    let seq = self.attempted[index];
                    let value = Bytes::from(format!("{key}={seq}"));
                    if tally.call("set", cache.set(&key, value, Ttl::Never)).await.is_some() {
                        self.acked[index] = seq;
                    }
                }
                1 => {
                    if let Some(value) = tally.call("get", cache.get(&key)).await {
                        self.check(index, value.as_ref(), &mut tally.wrong);
                    }
                }
                2 => {
                    let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
                    if let Some(values) = tally.call("get_many", cache.get_many(&keys)).await {
                        if values.len() != keys.len() {
                            tally.wrong.push(format!("get_many of {} keys gave {} answers", keys.len(), values.len()));
                        }
                        for (index, value) in values.iter().enumerate().take(keys.len()) {
                            self.check(index, value.as_ref(), &mut tally.wrong);
                        }
                    }
                }
                _ => {
                    self.counter_attempts += 1;
                    if let Some(value) = tally.call("incr", cache.incr(&self.counter, 1)).await {
                        // A timed-out incr may still have been applied, never twice.
                        if value <= self.counter_acked || value > self.counter_attempts {
                            tally.wrong.push(format!(
                                "{}: incr returned {value} after {} acknowledged of {} attempts",
                                self.counter, self.counter_acked, self.counter_attempts
                            ));
                        }
                        self.counter_acked = value;
                    }
                }
            }
        }
        tally
    }
}

/// 32 tasks, each with its own keys, run `rounds` mixed calls on `cache`.
async fn mixed_workload<C: Cache + ?Sized + 'static>(
    cache: &Arc<C>,
    writers: Vec<Writer>,
    rounds: usize,
) -> (Tally, Vec<Writer>) {
    let mut tasks = JoinSet::new();
    for mut writer in writers {
        let cache = Arc::clone(cache);
        tasks.spawn(async move {
            let tally = writer.run(&*cache, rounds).await;
            (tally, writer)
        });
    }
    let mut total = Tally::default();
    let mut writers = Vec::new();
    for (tally, writer) in tasks.join_all().await {
        total.merge(tally);
        writers.push(writer);
    }
    (total, writers)
}

const TASKS: usize = 32;
/// 32 tasks × 7 calls: the issue's "200 calls from 32 tasks", rounded up.
const ROUNDS: usize = 7;

/// Runs the mixed workload under `fault` and checks every call returned in time, with a
/// right value or a temporary error; then lifts the fault and checks that the same cache
/// recovers by itself and that no acknowledged write was lost or changed.
async fn under_fault<H: FaultHarness>(fault: Fault) {
    let (proxy, cache) = through_proxy::<H>().await;
    let writers: Vec<Writer> = (0..TASKS).map(Writer::new).collect();
    let (before, writers) = mixed_workload(&cache, writers, ROUNDS).await;
    assert!(before.wrong.is_empty(), "without a fault: {:?}", before.wrong);
    assert_eq!(before.ok, before.calls, "without a fault every call must succeed: {before:?}");

    proxy.set(fault);
    let (during, writers) = mixed_workload(&cache, writers, ROUNDS).await;
    let bound = SUITE_TIMEOUT + MARGIN;
    // What the store answers under each fault, for its docs (`--nocapture` shows it).
    println!(
        "under {fault:?}: {} calls, {} ok, errors {:?}, worst {:?}",
        during.calls, during.ok, during.errors, during.worst
    );
    assert!(during.wrong.is_empty(), "under {fault:?}: {:#?}", during.wrong);
    assert!(
        during.worst <= bound,
        "under {fault:?} a call took {:?}, more than the timeout plus margin ({bound:?}): {during:?}",
        during.worst
    );

    proxy.set(Fault::None);
    recovers(&*cache, fault).await;
    // Requests held by the fault may still reach the server on their old connections;
    // let them land before the last phase, so a stale write delivered late is not
    // mistaken for a lost one.
    if let Fault::Latency(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    let (after, _) = mixed_workload(&cache, writers, ROUNDS).await;
    assert!(after.wrong.is_empty(), "after {fault:?} was lifted: {:#?}", after.wrong);
    assert_eq!(after.ok, after.calls, "after {fault:?} was lifted every call must succeed: {after:?}");
}

/// Waits, bounded, until a round trip through `cache` works again.
async fn recovers<C: Cache + ?Sized>(cache: &C, fault: Fault) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last: Option<Error> = None;
    while Instant::now() < deadline {
        match cache.set("fault-probe", Bytes::from_static(b"up"), Ttl::Never).await {
            Ok(()) => match cache.get("fault-probe").await {
                Ok(Some(value)) if value == "up" => return,
                Ok(other) => panic!("after {fault:?}: the probe read back {other:?}"),
                Err(error) => last = Some(error),
            },
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cache did not recover within 20 s of lifting {fault:?}; last error: {last:?}");
}

/// Latency well under the operation timeout: every call still succeeds with the right
/// value.
pub async fn latency_under_the_timeout_is_harmless<H: FaultHarness>() {
    let (proxy, cache) = through_proxy::<H>().await;
    proxy.set(Fault::Latency(SUITE_TIMEOUT / 20));
    let writers: Vec<Writer> = (0..TASKS).map(Writer::new).collect();
    let (tally, _) = mixed_workload(&cache, writers, ROUNDS).await;
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    assert_eq!(tally.ok, tally.calls, "with latency under the timeout every call must succeed: {tally:?}");
}

/// Latency over the operation timeout: calls return `Timeout`/`Unavailable` in time,
/// never a late answer to another call; the cache recovers once the latency is gone.
pub async fn slow_server_times_out<H: FaultHarness>() {
    under_fault::<H>(Fault::Latency(SUITE_TIMEOUT * 3)).await;
}

/// Every connection reset: calls fail fast and temporarily; the cache reconnects by
/// itself once resets stop.
pub async fn reset_connections_fail_fast<H: FaultHarness>() {
    under_fault::<H>(Fault::Reset).await;
}

/// A black hole (connections accepted and never answered, open ones stalled): calls
/// return within the timeout; the cache recovers once traffic flows again.
pub async fn black_hole_fails_fast<H: FaultHarness>() {
    under_fault::<H>(Fault::BlackHole).await;
}

/// `set_many` and `get_many` of 100 keys while the proxy flips between resets and normal
/// service: each call fully succeeds or returns a temporary error, and no read ever
/// returns one key's value under another key.
pub async fn bulk_calls_under_faults_never_mix_keys<H: FaultHarness>() {
    let (proxy, cache) = through_proxy::<H>().await;
    let keys: Vec<String> = (0..100).map(|index| format!("bulk-{index}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let flipped = std::sync::atomic::AtomicBool::new(false);
    let flipping = async {
        for fault in
            [Fault::Reset, Fault::None, Fault::Latency(SUITE_TIMEOUT * 2), Fault::None, Fault::Reset, Fault::None]
        {
            proxy.set(fault);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        flipped.store(true, Ordering::SeqCst);
    };
    let mut tally = Tally::default();
    let working = async {
        // Until every fault has had its turn (and 12 rounds at least): a store that fails
        // fast under a reset would otherwise spend all its rounds in the first one, and no
        // call would meet a fault in its middle.
        let mut round = 0;
        while round < 12 || !flipped.load(Ordering::SeqCst) {
            let entries: Vec<(&str, Bytes)> =
                refs.iter().map(|key| (*key, Bytes::from(format!("{key}={round}")))).collect();
            tally.call("set_many", cache.set_many(&entries, Ttl::Never)).await;
            if let Some(values) = tally.call("get_many", cache.get_many(&refs)).await {
                check_bulk(&refs, &values, &mut tally.wrong);
            }
            round += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::join!(flipping, working);
    println!(
        "bulk calls under flipping faults: {} calls, {} ok, errors {:?}, worst {:?}",
        tally.calls, tally.ok, tally.errors, tally.worst
    );
    proxy.set(Fault::None);
    recovers(&*cache, Fault::Reset).await;
    let values = cache.get_many(&refs).await.expect("get_many after the faults");
    check_bulk(&refs, &values, &mut tally.wrong);
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    assert!(tally.worst <= SUITE_TIMEOUT + MARGIN, "a bulk call took {:?}: {tally:?}", tally.worst);
}

fn check_bulk(keys: &[&str], values: &[Option<Bytes>], wrong: &mut Vec<String>) {
    if values.len() != keys.len() {
        wrong.push(format!("get_many of {} keys gave {} answers", keys.len(), values.len()));
    }
    for (key, value) in keys.iter().zip(values) {
        if let Some(value) = value {
            let text = String::from_utf8_lossy(value);
            if !text.starts_with(&format!("{key}=")) {
                wrong.push(format!("{key} read {text:?}"));
            }
        }
    }
}

/// With the server black-holed, `get_or_insert_with` still returns the loader's value to
/// every caller (the read and the store fail, the load does not), in bounded time, and
/// waiters are released.
pub async fn get_or_insert_serves_the_loaded_value_during_a_fault<H: FaultHarness>() {
    let (proxy, cache) = through_proxy::<H>().await;
    proxy.set(Fault::BlackHole);
    let loads = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for _ in 0..10 {
        let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
        callers.spawn(async move {
            cache
                .get_or_insert_with("origin", Ttl::Never, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, crate::BoxError>(Bytes::from_static(b"fresh"))
                })
                .await
        });
    }
    for outcome in callers.join_all().await {
        assert_eq!(outcome.expect("the loaded value despite the fault"), Bytes::from_static(b"fresh"));
    }
    // One read and one store, each within the timeout plus the margin, around the load
    // (no second read once the first one failed); plus one margin for a waiter whose own
    // read ended just after the leader's did.
    let bound = SUITE_TIMEOUT * 2 + MARGIN * 3;
    assert!(started.elapsed() <= bound, "callers waited {:?}, more than {bound:?}", started.elapsed());
    assert!(loads.load(Ordering::SeqCst) >= 1);
    proxy.set(Fault::None);
    recovers(&*cache, Fault::BlackHole).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free loopback port.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("binding the echo server");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0; 1024];
                    while let Ok(len @ 1..) = socket.read(&mut buffer).await {
                        if socket.write_all(&buffer[..len]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Sends `text` and reads as many bytes back, within `limit`.
    async fn round_trip(stream: &mut TcpStream, text: &[u8], limit: Duration) -> std::io::Result<Vec<u8>> {
        let exchange = async {
            stream.write_all(text).await?;
            let mut back = vec![0; text.len()];
            stream.read_exact(&mut back).await?;
            Ok(back)
        };
        tokio::time::timeout(limit, exchange).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    }

    /// A black hole must not keep the server busy for a client that has left: a server
    /// that serves one connection at a time (moto on one thread) waits on the proxy's
    /// connection, and every other client with it.
    #[tokio::test]
    async fn a_black_hole_lets_the_server_go_once_the_client_leaves() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("binding the server");
        let proxy = FaultProxy::start(listener.local_addr().expect("its address")).await.expect("starting the proxy");
        let mut client = TcpStream::connect(proxy.addr()).await.expect("connecting");
        let (mut server_side, _) = listener.accept().await.expect("the proxy dials the server");

        proxy.set(Fault::BlackHole);
        client.write_all(b"half a requ").await.expect("writing into the hole");
        let mut byte = [0; 1];
        let stalled = tokio::time::timeout(Duration::from_millis(200), server_side.read(&mut byte)).await;
        assert!(stalled.is_err(), "nothing crosses a black hole");

        drop(client);
        let released = tokio::time::timeout(Duration::from_secs(2), server_side.read(&mut byte)).await;
        let ended = released.expect("the server is let go while the hole is still open");
        assert!(!matches!(ended, Ok(1..)), "the held bytes are dropped with the client, not delivered: {ended:?}");
        drop(proxy);
    }

    #[tokio::test]
    async fn forwards_delays_resets_and_stalls_on_demand() {
        let proxy = FaultProxy::start(echo().await).await.expect("starting the proxy");
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connecting");
        let second = Duration::from_secs(1);
        assert_eq!(round_trip(&mut stream, b"hello", second).await.expect("plain"), b"hello");

        proxy.set(Fault::Latency(Duration::from_millis(200)));
        let started = Instant::now();
        assert_eq!(round_trip(&mut stream, b"slow", second * 2).await.expect("delayed"), b"slow");
        assert!(started.elapsed() >= Duration::from_millis(400), "both directions are delayed");

        proxy.set(Fault::BlackHole);
        let stalled = round_trip(&mut stream, b"held", Duration::from_millis(300)).await;
        assert_eq!(stalled.map_err(|error| error.kind()), Err(std::io::ErrorKind::TimedOut));
        let mut fresh = TcpStream::connect(proxy.addr()).await.expect("a black hole still accepts");
        let unanswered = round_trip(&mut fresh, b"anyone?", Duration::from_millis(300)).await;
        assert!(unanswered.is_err(), "a new connection into a black hole is never answered");

        proxy.set(Fault::None);
        // The stalled bytes were held, not dropped: they arrive once the hole closes.
        let mut held = [0; 4];
        tokio::time::timeout(second, stream.read_exact(&mut held)).await.expect("held bytes arrive").expect("read");
        assert_eq!(&held, b"held");
        assert!(round_trip(&mut fresh, b"x", second).await.is_err(), "a black-holed connection is dropped after");

        proxy.set(Fault::Reset);
        assert!(round_trip(&mut stream, b"gone", second).await.is_err(), "open connections are reset");
        let mut refused = TcpStream::connect(proxy.addr()).await.expect("the port still accepts");
        assert!(round_trip(&mut refused, b"gone", second).await.is_err(), "new connections are reset");

        proxy.set(Fault::Bandwidth(10_000));
        let mut throttled = TcpStream::connect(proxy.addr()).await.expect("connecting");
        let started = Instant::now();
        let payload = vec![b'z'; 3_000];
        assert_eq!(round_trip(&mut throttled, &payload, second * 5).await.expect("throttled"), payload);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "3 kB at 10 kB/s takes 0.3 s one way, took {took:?}");
    }
}
