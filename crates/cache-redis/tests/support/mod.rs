//! What the integration tests share: the servers' addresses from the xtask's variables,
//! and a `redis-server` of a test's own for tests that stop it or set a password.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The single node the xtask started (`CACHE_TEST_REDIS_URL`). Panics when it is unset:
/// a test that cannot reach its server fails, it never passes by returning early.
pub fn redis_url() -> String {
    std::env::var("CACHE_TEST_REDIS_URL").expect(
        "CACHE_TEST_REDIS_URL is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up redis)\"`",
    )
}

/// The cluster's nodes the xtask started (`CACHE_TEST_REDIS_CLUSTER_URLS`, comma-separated).
pub fn cluster_nodes() -> Vec<String> {
    let urls = std::env::var("CACHE_TEST_REDIS_CLUSTER_URLS").expect(
        "CACHE_TEST_REDIS_CLUSTER_URLS is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up redis-cluster)\"`",
    );
    urls.split(',').map(str::to_owned).collect()
}

/// `host:port` of a `redis://host:port...` URL, for `redis-cli -h -p`.
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority.rsplit_once(':').expect("the URL names a port");
    (host.to_owned(), port.parse().expect("a numeric port"))
}

/// Runs `redis-cli -h host -p port args...` and returns its raw output (redis-cli prints
/// replies unquoted when its output is not a terminal), the trailing newline removed.
pub fn redis_cli_bytes<S: AsRef<std::ffi::OsStr>>(url: &str, args: &[S]) -> Vec<u8> {
    let (host, port) = host_port(url);
    let output = Command::new("redis-cli")
        .args(["-h", &host, "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("running redis-cli (installed with redis-server by the xtask)");
    assert!(output.status.success(), "redis-cli: {}", String::from_utf8_lossy(&output.stderr));
    let mut text = output.stdout;
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    text
}

/// [`redis_cli_bytes`] as text.
pub fn redis_cli<S: AsRef<std::ffi::OsStr>>(url: &str, args: &[S]) -> String {
    String::from_utf8(redis_cli_bytes(url, args)).expect("redis-cli printed UTF-8")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("binding a free port").port()
}

pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A `redis-server` of this test's own on a free loopback port, stopped on drop.
pub struct OwnServer {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// Listens with TLS only: `--port 0 --tls-port P`.
    tls: bool,
}

impl OwnServer {
    /// Starts one with `extra` arguments (such as `--requirepass x`) and waits for its port.
    pub fn start(extra: &[&str]) -> OwnServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("cache-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the server's directory");
        let server = OwnServer { port, dir, extra: extra.iter().map(|arg| (*arg).to_owned()).collect(), tls: false };
        server.launch();
        server
    }

    /// Starts one that speaks only TLS on its port, with `extra` arguments (the
    /// `--tls-cert-file` and friends).
    pub fn start_tls(extra: &[&str]) -> OwnServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("cache-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the server's directory");
        let server = OwnServer { port, dir, extra: extra.iter().map(|arg| (*arg).to_owned()).collect(), tls: true };
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and directory.
    pub fn launch(&self) {
        let dir = self.dir.to_string_lossy().into_owned();
        let port = self.port.to_string();
        let ports = if self.tls { ["--port", "0", "--tls-port", &port] } else { ["--port", &port, "", ""] };
        let status = Command::new("redis-server")
            .args(ports.iter().filter(|arg| !arg.is_empty()))
            .args(["--bind", "127.0.0.1", "--daemonize", "yes"])
            .args(["--save", "", "--appendonly", "no", "--dir", &dir])
            .args(["--pidfile", &format!("{dir}/redis.pid"), "--logfile", &format!("{dir}/redis.log")])
            .args(&self.extra)
            .status()
            .expect("running redis-server (installed by the xtask)");
        assert!(status.success(), "redis-server did not start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !port_open(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not open port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL, as a crash would) and waits until its port is free.
    pub fn kill(&self) {
        let pidfile = self.dir.join("redis.pid");
        let pid = std::fs::read_to_string(&pidfile).expect("reading the pid file");
        let pid = pid.trim();
        // Only signal the pid while it is still our redis-server: pids are reused.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("redis-server") {
            let status = Command::new("kill").args(["-9", pid]).status().expect("running kill");
            assert!(status.success(), "kill -9 {pid}");
        }
        let _ = std::fs::remove_file(pidfile);
        // The process may linger as a zombie (nothing reaps it here): wait for the port.
        let deadline = Instant::now() + Duration::from_secs(10);
        while port_open(self.port) {
            assert!(Instant::now() < deadline, "port {} still open after kill", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if port_open(self.port) {
            self.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
