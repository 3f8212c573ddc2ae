//! What the memcached tests share: server addresses from the xtask and a conformance
//! harness over one server or the ring.

#![allow(dead_code, unreachable_pub)]

use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use cache_core::Cache;
use cache_core::testkit::Harness;
use cache_memcached::MemcachedCache;
use tokio::sync::OwnedMutexGuard;

/// The single server's variable.
pub const SINGLE: &str = "CACHE_TEST_MEMCACHED_ADDR";
/// The three-node ring's variable (comma-separated).
pub const RING: &str = "CACHE_TEST_MEMCACHED_RING_ADDRS";

/// The addresses in `var`; a missing variable fails the test, never skips it.
pub fn addresses(var: &str) -> Vec<String> {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up memcached memcached-ring)\"` first")
    });
    value.split(',').map(str::to_owned).collect()
}

/// A cache on the servers in `var`.
pub async fn cache_on(var: &str) -> MemcachedCache {
    let addresses = addresses(var);
    MemcachedCache::builder()
        .servers(addresses.iter().map(String::as_str))
        .build()
        .await
        .unwrap_or_else(|error| panic!("building a MemcachedCache on {addresses:?}: {error}"))
}

/// Which servers a harness uses.
pub trait Servers: Send + Sync + 'static {
    const VAR: &'static str;
}

pub struct One;
pub struct Three;

impl Servers for One {
    const VAR: &'static str = SINGLE;
}

impl Servers for Three {
    const VAR: &'static str = RING;
}

/// Every test of a run shares the servers. Prefixed tests each get a fresh random prefix,
/// but the unprefixed variant of every behaviour uses the one namespace `""` (and `clear`s
/// it): run concurrently, they would see each other's keys. So a harness that opens `""`
/// holds this lock until it is dropped, and clears `""` first. The prefixed tests still
/// run in parallel.
static UNPREFIXED: LazyLock<Arc<tokio::sync::Mutex<()>>> = LazyLock::new(Arc::default);

pub struct MemcachedHarness<S> {
    store: MemcachedCache,
    unprefixed: Mutex<Option<OwnedMutexGuard<()>>>,
    servers: PhantomData<S>,
}

impl<S: Servers> Harness for MemcachedHarness<S> {
    type Cache = MemcachedCache;

    async fn isolated() -> Self {
        MemcachedHarness { store: cache_on(S::VAR).await, unprefixed: Mutex::new(None), servers: PhantomData }
    }

    async fn open(&self, prefix: &str) -> MemcachedCache {
        let cache = self.store.with_prefix(prefix);
        let held = self.unprefixed.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        if prefix.is_empty() && !held {
            let guard = Arc::clone(&UNPREFIXED).lock_owned().await;
            cache.clear().await.expect("clearing the unprefixed namespace before the test");
            *self.unprefixed.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
        }
        cache
    }
}

/// A raw text-protocol client: one connection, one command at a time, no library between
/// the test and the server.
pub struct Raw {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Raw {
    pub fn connect(address: &str) -> Raw {
        let stream =
            std::net::TcpStream::connect(address).unwrap_or_else(|error| panic!("connecting to {address}: {error}"));
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("setting a read timeout");
        Raw { reader: std::io::BufReader::new(stream) }
    }

    fn send(&mut self, request: &[u8]) {
        use std::io::Write as _;
        self.reader.get_mut().write_all(request).expect("writing a raw command");
    }

    fn line(&mut self) -> String {
        use std::io::BufRead as _;
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reading a raw answer");
        line.trim_end_matches("\r\n").to_owned()
    }

    /// `get KEY`: the value's exact bytes, `None` for a miss.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        use std::io::Read as _;
        self.send(format!("get {key}\r\n").as_bytes());
        let header = self.line();
        if header == "END" {
            return None;
        }
        let length: usize = header
            .rsplit(' ')
            .next()
            .and_then(|length| length.parse().ok())
            .unwrap_or_else(|| panic!("unexpected answer to get: {header:?}"));
        let mut value = vec![0; length + 2];
        self.reader.read_exact(&mut value).expect("reading a raw value");
        value.truncate(length);
        assert_eq!(self.line(), "END");
        Some(value)
    }

    /// One command with a one-line answer (`incr`, `set` with its data, `mg ... t`).
    pub fn command(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        self.line()
    }
}

/// A memcached of the test's own, on a free port, stopped (and reaped) when dropped.
pub struct OwnMemcached {
    child: std::process::Child,
    pub port: u16,
}

impl OwnMemcached {
    /// Starts one on a port that was free a moment ago.
    pub fn start() -> OwnMemcached {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        OwnMemcached::start_on(port)
    }

    /// Starts one on `port`, once nothing listens there any more: memcached restarted on
    /// a port within ~50 ms of a SIGTERM fails silently (TEST-SERVERS.md).
    pub fn start_on(port: u16) -> OwnMemcached {
        wait_until(&format!("port {port} to be free"), || std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        // `-u root` is required as root and ignored otherwise.
        let child = std::process::Command::new("memcached")
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-m", "64", "-u", "root"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("starting memcached (is it installed? cargo xtask test installs it): {error}")
            });
        wait_until(&format!("memcached on port {port}"), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        OwnMemcached { child, port }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it and waits for it, so it neither lingers as a zombie nor holds its port.
    pub fn kill(mut self) -> u16 {
        self.stop();
        self.port
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnMemcached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `done` every 10 ms for up to 10 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
