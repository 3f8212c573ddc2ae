//! `rediss://`: the whole conformance suite over TLS, on a `redis-server` these tests start
//! themselves with a CA and a server certificate `openssl` makes in a temporary directory,
//! and a server whose certificate is not trusted refused at `build()`.
//!
//! Self-contained: no xtask variable is read, but `redis-server` (built with TLS, as
//! Debian's is) and `openssl` must be on PATH. Ignored by default like the other server
//! tests; `cargo xtask test` runs them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cache_core::testkit::Harness;
use cache_core::{Cache, ErrorKind, Ttl};
use cache_redis::RedisCache;
use support::OwnServer;

/// A CA, and a server certificate it issued for `127.0.0.1` and `localhost`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Makes a CA and a server certificate under `dir` with `openssl`.
    fn generate(dir: PathBuf) -> Pki {
        std::fs::create_dir_all(&dir).expect("creating the certificates' directory");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("running openssl (needed by the TLS tests; see xtask/README.md)");
            assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cache-rs test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .expect("writing the certificate's extensions");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Pki { dir }
    }

    /// A `redis-server` speaking only TLS with this certificate; clients need no certificate.
    fn server(&self) -> OwnServer {
        self.server_with(&[])
    }

    /// [`server`](Self::server) with `extra` arguments.
    fn server_with(&self, extra: &[&str]) -> OwnServer {
        let file = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
        let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
        OwnServer::start_tls(
            &["--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca, "--tls-auth-clients", "no"]
                .iter()
                .chain(extra)
                .copied()
                .collect::<Vec<_>>(),
        )
    }
}

/// One CA for the whole test binary: generating keys is the slow part. It lives in cargo's
/// scratch directory for integration tests (a static is never dropped to remove it). Each test starts
/// its own server (about 30 ms), so every server is stopped by its `Drop`.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        Pki::generate(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-pki-{}", std::process::id())))
    })
}

/// A TLS server of the calling test's own, and the CA that issued its certificate.
fn server() -> (&'static Pki, OwnServer) {
    let pki = pki();
    (pki, pki.server())
}

struct TlsHarness {
    url: String,
    ca: PathBuf,
    // Stopped when the harness (and so the test) ends.
    _server: OwnServer,
}

impl TlsHarness {
    async fn build(&self, prefix: &str) -> RedisCache {
        RedisCache::builder()
            .url(self.url.clone())
            .tls_ca_file(&self.ca)
            .prefix(prefix)
            .clear_flushes_db(true)
            .build()
            .await
            .unwrap_or_else(|error| panic!("connecting to {}: {error}", self.url))
    }
}

impl Harness for TlsHarness {
    type Cache = RedisCache;

    /// A fresh TLS server of its own: nothing to empty, nothing shared.
    async fn isolated() -> Self {
        let (pki, server) = server();
        TlsHarness { url: format!("rediss://127.0.0.1:{}", server.port), ca: pki.ca(), _server: server }
    }

    async fn open(&self, prefix: &str) -> RedisCache {
        self.build(prefix).await
    }
}

cache_core::conformance_tests!(TlsHarness, #[ignore = "needs redis-server and openssl: cargo xtask test"]);

/// The CA as PEM bytes works as the file does, and `redis-cli --tls` sees what we wrote.
#[tokio::test]
#[ignore = "needs redis-server and openssl: cargo xtask test"]
async fn a_ca_given_as_pem_bytes_is_trusted() {
    let (pki, server) = server();
    let pem = std::fs::read(pki.ca()).expect("reading the CA");
    let cache = RedisCache::builder()
        .url(format!("rediss://localhost:{}/0", server.port))
        .tls_ca_pem(pem)
        .prefix("tls-pem:")
        .build()
        .await
        .unwrap_or_else(|error| panic!("connecting over TLS with the CA as PEM: {error}"));
    cache.set("k", "over tls".into(), Ttl::Never).await.expect("set over TLS");
    let output = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(pki.ca())
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "GET", "tls-pem:k"])
        .output()
        .expect("running redis-cli");
    assert!(output.status.success(), "redis-cli: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim_end(), "over tls");
}

/// Expects `build()` to fail with `kind`, promptly, and returns the message.
async fn refused(builder: cache_redis::RedisCacheBuilder, kind: ErrorKind) -> String {
    let started = Instant::now();
    let result =
        builder.connect_timeout(Duration::from_secs(2)).operation_timeout(Duration::from_secs(1)).build().await;
    let elapsed = started.elapsed();
    // A hang detector with a wide margin for a loaded machine, not a speed target.
    assert!(elapsed < Duration::from_secs(10), "build took {elapsed:?}");
    match result {
        Err(error) => {
            assert_eq!(error.kind(), kind, "{error}");
            // Shown with --nocapture: the message a user would read.
            eprintln!("refused as expected: {error}");
            error.to_string()
        }
        Ok(cache) => panic!("build succeeded: {cache:?}"),
    }
}

/// A server whose certificate no trusted CA issued is an error at `build()`: with only the
/// system's roots, and with a different private CA. Never a panic, never a hang.
#[tokio::test]
#[ignore = "needs redis-server and openssl: cargo xtask test"]
async fn an_untrusted_certificate_is_refused_at_build() {
    let (_, server) = server();
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let message = refused(RedisCache::builder().url(url.clone()), ErrorKind::InvalidConfig).await;
    assert!(message.contains("certificate") && message.contains(&server.port.to_string()), "{message}");

    let other =
        Pki::generate(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-pki-other-{}", std::process::id())));
    let message = refused(RedisCache::builder().url(url).tls_ca_file(other.ca()), ErrorKind::InvalidConfig).await;
    assert!(message.contains("certificate"), "{message}");
    let _ = std::fs::remove_dir_all(&other.dir);
}

/// Plain `redis://` to a TLS-only port fails at `build()` too, within the timeout.
#[tokio::test]
#[ignore = "needs redis-server and openssl: cargo xtask test"]
async fn plain_text_to_a_tls_port_fails_at_build() {
    let (_, server) = server();
    let started = Instant::now();
    let result = RedisCache::builder()
        .url(format!("redis://127.0.0.1:{}", server.port))
        .connect_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_millis(500))
        .build()
        .await;
    assert!(started.elapsed() < Duration::from_secs(10), "build took {:?}", started.elapsed());
    let error = result.expect_err("a TLS port does not answer plain RESP");
    assert!(matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout), "{error}");
}

/// A CA file that does not exist is `InvalidConfig` naming the file, before any connection.
#[tokio::test]
async fn a_missing_ca_file_is_invalid_config() {
    let path = Path::new("/nonexistent/cache-rs/ca.pem");
    let message =
        refused(RedisCache::builder().url("rediss://127.0.0.1:1").tls_ca_file(path), ErrorKind::InvalidConfig).await;
    assert!(message.contains("/nonexistent/cache-rs/ca.pem"), "{message}");
}

/// `rediss+cluster://`: a three-primary cluster whose nodes (and cluster bus) speak only
/// TLS. Keys spread over every primary come back in order, and `clear` removes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and openssl: cargo xtask test"]
async fn a_tls_cluster_works_across_its_primaries() {
    let pki = pki();
    let cluster_args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000", "--tls-cluster", "yes"];
    let nodes: Vec<OwnServer> = (0..3).map(|_| pki.server_with(&cluster_args)).collect();
    let tls_cli = |port: u16, args: &[&str]| {
        // Under `timeout`: a cluster bus that cannot handshake leaves `--cluster create`
        // waiting for the nodes to join, forever.
        let output = Command::new("timeout")
            .args(["30", "redis-cli", "--tls", "--cacert"])
            .arg(pki.ca())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("running redis-cli");
        assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let addrs: Vec<String> = nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
    let mut create = vec!["--cluster", "create"];
    create.extend(addrs.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    tls_cli(nodes[0].port, &create);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes.iter().all(|node| tls_cli(node.port, &["cluster", "info"]).contains("cluster_state:ok")) {
        assert!(Instant::now() < deadline, "the TLS cluster did not reach cluster_state:ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let cache = RedisCache::builder()
        .url(format!("rediss+cluster://{}", addrs.join(",")))
        .tls_ca_file(pki.ca())
        .prefix("tls-cluster:")
        .build()
        .await
        .unwrap_or_else(|error| panic!("connecting to the TLS cluster: {error}"));
    assert!(cache.is_cluster());
    let keys: Vec<String> = (0..60).map(|i| format!("key-{i}")).collect();
    let entries: Vec<(&str, bytes::Bytes)> =
        keys.iter().map(|key| (key.as_str(), bytes::Bytes::from(format!("value of {key}")))).collect();
    cache.set_many(&entries, Ttl::Never).await.expect("set_many over TLS");
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = cache.get_many(&key_refs).await.expect("get_many over TLS");
    let expected: Vec<Option<bytes::Bytes>> = entries.iter().map(|(_, value)| Some(value.clone())).collect();
    assert_eq!(values, expected);
    for node in &nodes {
        let count: u64 = tls_cli(node.port, &["dbsize"]).trim().parse().expect("DBSIZE is a number");
        assert!(count > 0, "node {} holds none of the 60 keys", node.port);
    }
    cache.clear().await.expect("clear over TLS");
    for node in &nodes {
        assert_eq!(tls_cli(node.port, &["dbsize"]).trim(), "0", "node {} after clear", node.port);
    }
}
