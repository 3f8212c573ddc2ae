//! The one table of real servers the tests use.
//!
//! A store that needs a server adds one entry to [`SERVERS`]: `cargo xtask test` starts it
//! as soon as `crates/<needed_by>/Cargo.toml` exists, and its tests read the variables in
//! `env`. In command templates, `{port}` is the node's port and `{dir}` its directory
//! (`target/xtask/<name>`, or `target/xtask/<name>/node<i>` for several nodes); in `setup`,
//! the argument `{addrs}` becomes one `127.0.0.1:<port>` argument per node. The facts behind
//! each entry, checked by hand on these machines, are in `xtask/README.md`.

use std::path::Path;

/// A server the tests of one workspace crate need.
#[derive(Debug)]
pub(crate) struct Server {
    /// Names the server in `cargo xtask servers up NAME` and its directory under `target/xtask`.
    pub(crate) name: &'static str,
    /// The crate (directory under `crates/`) whose tests need it.
    pub(crate) needed_by: &'static str,
    /// The variables the tests read.
    pub(crate) env: &'static [Env],
    pub(crate) install: Install,
    /// Processes started, each on its own port.
    pub(crate) nodes: usize,
    /// Ports at `port + offset` that each node also binds, which must be free too.
    pub(crate) extra_port_offsets: &'static [u16],
    pub(crate) start: Start,
    /// Run once after every node's port is open, before `ready` is checked.
    pub(crate) setup: Option<&'static [&'static str]>,
    /// Checked on every node after its port is open (and after `setup`).
    pub(crate) ready: Ready,
    pub(crate) stop: Stop,
}

/// An environment variable given to the tests.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) var: &'static str,
    /// Expanded per node; several nodes give a comma-separated list.
    pub(crate) value: &'static str,
}

/// How to get the server's programs onto this machine when they are missing.
#[derive(Debug)]
pub(crate) enum Install {
    /// Debian packages, installed (after one `apt-get update`) when a binary is not on `PATH`.
    Apt { binaries: &'static [&'static str], packages: &'static [&'static str] },
    /// pip packages in the shared venv `target/xtask/venv` (kept between runs), installed when
    /// `binary` is not in its `bin/`. The start command's program is taken from that `bin/`.
    Venv { binary: &'static str, packages: &'static [&'static str] },
}

/// How each node is started.
#[derive(Debug)]
pub(crate) enum Start {
    /// The command daemonizes itself and writes its pid to `pidfile`.
    /// `argv` is the concatenation of its parts.
    Daemon { argv: &'static [&'static [&'static str]], pidfile: &'static str },
    /// The command stays in the foreground; the xtask keeps its pid, and its output goes to
    /// `{dir}/<name>.log`.
    Foreground { argv: &'static [&'static str] },
}

/// When a node is ready, beyond its port accepting connections.
#[derive(Debug)]
pub(crate) enum Ready {
    /// An open port is enough.
    PortOpen,
    /// `GET path` answers 200.
    Http200(&'static str),
    /// The command's output contains the text.
    Output { argv: &'static [&'static str], contains: &'static str },
}

/// How a node is asked to stop. SIGTERM, then SIGKILL, follow when its ports are still busy.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Run once per node whose port is open; the program is looked up on `PATH`.
    Command(&'static [&'static str]),
    Sigterm,
}

const REDIS_SERVER: &[&str] = &[
    "redis-server",
    "--port",
    "{port}",
    "--bind",
    "127.0.0.1",
    "--daemonize",
    "yes",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "{dir}",
    "--pidfile",
    "{dir}/redis.pid",
    "--logfile",
    "{dir}/redis.log",
];

/// `openssl` makes the certificates of cache-redis's TLS tests; most Debian machines have it,
/// a minimal one may not.
const REDIS_INSTALL: Install = Install::Apt {
    binaries: &["redis-server", "redis-cli", "openssl"],
    packages: &["redis-server", "redis-tools", "openssl"],
};

const REDIS_STOP: Stop = Stop::Command(&["redis-cli", "-p", "{port}", "shutdown", "nosave"]);

const MEMCACHED_INSTALL: Install = Install::Apt { binaries: &["memcached"], packages: &["memcached"] };

// `-u root` is required when running as root and ignored otherwise.
const MEMCACHED_START: Start = Start::Daemon {
    argv: &[&[
        "memcached",
        "-d",
        "-l",
        "127.0.0.1",
        "-p",
        "{port}",
        "-U",
        "0",
        "-m",
        "64",
        "-u",
        "root",
        "-P",
        "{dir}/memcached.pid",
    ]],
    pidfile: "{dir}/memcached.pid",
};
/// `moto_server` itself, but serving one request at a time. moto's server runs each
/// request on its own thread with no lock around a table, so concurrent `ADD`s lose
/// updates (9 of 5,000 racing increments were lost) and concurrent conditional puts can
/// both succeed; DynamoDB makes every single-item write atomic. One thread restores
/// that, at no cost in throughput (moto is bound by Python's GIL anyway).
///
/// Before its port opens it also makes the empty table [`MOTO_SOAK_TABLE`] (through the
/// app's own DynamoDB API, not moto's internals): moto keeps tables in memory, so after
/// the soak's restarts a table must be there again before the first request, as a real
/// DynamoDB table outlives any server; the data in it is lost, as the soak allows.
const MOTO_ONE_THREAD: &str = "\
import json, sys, werkzeug.test, moto.server as moto
run = moto.run_simple
def serve(host, port, app, **options):
    table = {'TableName': 'cache-soak', 'BillingMode': 'PAY_PER_REQUEST',
             'KeySchema': [{'AttributeName': 'cache_key', 'KeyType': 'HASH'}],
             'AttributeDefinitions': [{'AttributeName': 'cache_key', 'AttributeType': 'S'}]}
    headers = {'X-Amz-Target': 'DynamoDB_20120810.CreateTable', 'Content-Type': 'application/x-amz-json-1.0',
               'Authorization': 'AWS4-HMAC-SHA256 Credential=soak/20260101/us-east-1/dynamodb/aws4_request, '
                                'SignedHeaders=host, Signature=0'}
    made = werkzeug.test.Client(app).post('/', headers=headers, data=json.dumps(table))
    if made.status_code != 200:
        sys.exit(f'creating the table cache-soak: HTTP {made.status_code} {made.get_data(as_text=True)}')
    run(host, port, app, **{**options, 'threaded': False})
moto.run_simple = serve
sys.argv[0] = 'moto_server'
moto.main()
";

/// The table every moto start makes (in region `us-east-1`, key `cache_key`), for the soak.
pub(crate) const MOTO_SOAK_TABLE: &str = "cache-soak";

/// Every server any store's tests use.
pub(crate) static SERVERS: &[Server] = &[
    Server {
        name: "redis",
        needed_by: "cache-redis",
        env: &[Env { var: "CACHE_TEST_REDIS_URL", value: "redis://127.0.0.1:{port}" }],
        install: REDIS_INSTALL,
        nodes: 1,
        extra_port_offsets: &[],
        // cache-redis gives every conformance harness a database of its own, so that the
        // unprefixed variant can empty it without touching the others: 16 are too few.
        start: Start::Daemon { argv: &[REDIS_SERVER, &["--databases", "1024"]], pidfile: "{dir}/redis.pid" },
        setup: None,
        ready: Ready::PortOpen,
        stop: REDIS_STOP,
    },
    Server {
        name: "redis-cluster",
        needed_by: "cache-redis",
        env: &[Env { var: "CACHE_TEST_REDIS_CLUSTER_URLS", value: "redis://127.0.0.1:{port}" }],
        install: REDIS_INSTALL,
        nodes: 3,
        // The cluster bus.
        extra_port_offsets: &[10000],
        start: Start::Daemon {
            argv: &[
                REDIS_SERVER,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "{dir}/nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ],
            ],
            pidfile: "{dir}/redis.pid",
        },
        setup: Some(&["redis-cli", "--cluster", "create", "{addrs}", "--cluster-replicas", "0", "--cluster-yes"]),
        ready: Ready::Output { argv: &["redis-cli", "-p", "{port}", "cluster", "info"], contains: "cluster_state:ok" },
        stop: REDIS_STOP,
    },
    Server {
        name: "memcached",
        needed_by: "cache-memcached",
        env: &[Env { var: "CACHE_TEST_MEMCACHED_ADDR", value: "127.0.0.1:{port}" }],
        install: MEMCACHED_INSTALL,
        nodes: 1,
        extra_port_offsets: &[],
        start: MEMCACHED_START,
        setup: None,
        ready: Ready::PortOpen,
        stop: Stop::Sigterm,
    },
    // Independent servers: the client spreads keys over them, so nothing joins them.
    Server {
        name: "memcached-ring",
        needed_by: "cache-memcached",
        env: &[Env { var: "CACHE_TEST_MEMCACHED_RING_ADDRS", value: "127.0.0.1:{port}" }],
        install: MEMCACHED_INSTALL,
        nodes: 3,
        extra_port_offsets: &[],
        start: MEMCACHED_START,
        setup: None,
        ready: Ready::PortOpen,
        stop: Stop::Sigterm,
    },
    Server {
        name: "dynamodb",
        needed_by: "cache-dynamo",
        env: &[Env { var: "CACHE_TEST_DYNAMO_ENDPOINT", value: "http://127.0.0.1:{port}" }],
        install: Install::Venv { binary: "moto_server", packages: &["moto[dynamodb]", "flask", "flask-cors"] },
        nodes: 1,
        extra_port_offsets: &[],
        start: Start::Foreground { argv: &["python", "-c", MOTO_ONE_THREAD, "-H", "127.0.0.1", "-p", "{port}"] },
        setup: None,
        ready: Ready::Http200("/moto-api/"),
        stop: Stop::Sigterm,
    },
    Server {
        name: "mongodb",
        needed_by: "cache-mongo",
        env: &[Env { var: "CACHE_TEST_MONGO_URL", value: "mongodb://127.0.0.1:{port}" }],
        install: Install::Venv { binary: "secantusd-py", packages: &["secantusdb"] },
        nodes: 1,
        extra_port_offsets: &[],
        start: Start::Foreground {
            argv: &[
                "secantusd-py",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--storage-path",
                ":memory:",
                "--standalone",
            ],
        },
        setup: None,
        ready: Ready::PortOpen,
        stop: Stop::Sigterm,
    },
];

/// The server called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Server> {
    SERVERS.iter().find(|server| server.name == name)
}

/// The servers whose crate exists in the workspace at `root`, in table order.
pub(crate) fn needed_by(root: &Path) -> Vec<&'static Server> {
    SERVERS.iter().filter(|server| root.join("crates").join(server.needed_by).join("Cargo.toml").is_file()).collect()
}

/// The program a command runs, with `{port}` and `{dir}` expanded in every argument.
pub(crate) fn expand(argv: &[&str], port: u16, dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    argv.iter().map(|arg| arg.replace("{port}", &port.to_string()).replace("{dir}", &dir)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    /// A directory of its own under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("xtask-test-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("creating the test directory");
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn add_crate(root: &Path, name: &str) {
        let dir = root.join("crates").join(name);
        fs::create_dir_all(&dir).expect("creating the crate directory");
        fs::write(dir.join("Cargo.toml"), "[package]\n").expect("writing Cargo.toml");
    }

    fn names(servers: &[&Server]) -> Vec<&'static str> {
        servers.iter().map(|server| server.name).collect()
    }

    #[test]
    fn only_servers_of_existing_crates_are_needed() {
        let root = TempDir::new("needed");
        assert!(needed_by(&root.0).is_empty(), "no crates, no servers");

        // A directory without a manifest is not a crate (an editor's leftover, a half-done move).
        fs::create_dir_all(root.0.join("crates/cache-memcached")).expect("creating a bare directory");
        add_crate(&root.0, "cache-memory");
        assert!(needed_by(&root.0).is_empty(), "got {:?}", names(&needed_by(&root.0)));

        add_crate(&root.0, "cache-redis");
        assert_eq!(names(&needed_by(&root.0)), ["redis", "redis-cluster"]);

        add_crate(&root.0, "cache-mongo");
        assert_eq!(names(&needed_by(&root.0)), ["redis", "redis-cluster", "mongodb"]);
    }

    #[test]
    fn the_table_is_consistent() {
        let mut names = BTreeSet::new();
        let mut vars = BTreeSet::new();
        for server in SERVERS {
            assert!(names.insert(server.name), "two servers named {}", server.name);
            assert!(find(server.name).is_some_and(|found| std::ptr::eq(found, server)));
            assert!(server.needed_by.starts_with("cache-"), "{}: needed_by names a crate directory", server.name);
            assert!(server.nodes >= 1, "{}: no nodes", server.name);
            assert!(!server.env.is_empty(), "{}: the tests need an address", server.name);
            for env in server.env {
                assert!(env.var.starts_with("CACHE_TEST_"), "{}: {}", server.name, env.var);
                assert!(vars.insert(env.var), "two servers set {}", env.var);
                assert!(env.value.contains("{port}"), "{}: {} has no port", server.name, env.var);
            }
            let argv: Vec<&str> = match &server.start {
                Start::Daemon { argv, pidfile } => {
                    assert!(pidfile.starts_with("{dir}/"), "{}: pid file outside its directory", server.name);
                    argv.concat()
                }
                Start::Foreground { argv } => argv.to_vec(),
            };
            assert!(argv.contains(&"{port}"), "{}: start does not use its port", server.name);
            assert!(argv.contains(&"127.0.0.1"), "{}: must listen on loopback only", server.name);
            if let Install::Venv { binary, .. } = server.install {
                // The venv's own interpreter may run the package's code (moto, on one thread).
                assert!(
                    argv[0] == binary || argv[0] == "python",
                    "{}: starts {}, a program the venv does not provide",
                    server.name,
                    argv[0]
                );
            }
            // Nodes that form one server (a cluster) are told about each other; independent
            // nodes (a memcached ring, spread by the client) need no setup.
            if let Some(setup) = server.setup.filter(|_| server.nodes > 1) {
                assert!(setup.contains(&"{addrs}"), "{}: a multi-node setup must name every node", server.name);
            }
        }
        assert!(find("no-such-server").is_none());
    }

    #[test]
    fn moto_makes_the_soak_table_before_serving() {
        assert!(MOTO_ONE_THREAD.contains(&format!("'TableName': '{MOTO_SOAK_TABLE}'")));
        let made = MOTO_ONE_THREAD.find("CreateTable").expect("the table is made");
        assert!(made < MOTO_ONE_THREAD.find("run(host").expect("then it serves"), "before the port opens");
    }

    #[test]
    fn templates_expand_port_and_dir() {
        let redis = find("redis").expect("redis is in the table");
        let Start::Daemon { argv, pidfile } = &redis.start else { panic!("redis daemonizes") };
        let dir = Path::new("/srv/x");
        let args = expand(&argv.concat(), 6380, dir);
        assert_eq!(args[..3], ["redis-server", "--port", "6380"]);
        assert!(args.contains(&"/srv/x/redis.pid".to_owned()));
        assert!(args.contains(&String::new()), "--save '' keeps its empty argument");
        assert_eq!(expand(&[pidfile], 1, dir), ["/srv/x/redis.pid"]);
    }
}
