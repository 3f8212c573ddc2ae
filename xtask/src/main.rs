//! `cargo xtask`: the project's own build tasks (matklad's cargo-xtask pattern).
//!
//! - `cargo xtask test`: fmt, clippy, doc, then every workspace test including the ignored ones,
//!   against real servers this task provisions, starts and stops.
//! - `cargo xtask servers up [NAME...]` / `down` / `list`: the same servers for manual work.
//! - `cargo xtask bench [ARGS]`: the criterion benches.
//! - `cargo xtask soak --store redis --secs 60`: a workload checked against a model while
//!   the store's server is killed and restarted.
//! - `cargo xtask plots`: SVG charts of the last bench run for docs/benchmarks.md.
//!
//! The servers, and which crate needs which, are listed in one table: `servers.rs`.

mod launch;
mod net;
mod plots;
mod servers;
mod state;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use launch::Servers;
use servers::Server;

/// Errors are messages for a person at a terminal; nothing matches on them.
type Result<T, E = String> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test                     cargo fmt --check, cargo clippy -D warnings, cargo doc (warnings
                           denied), then cargo test
                           --include-ignored with every server a workspace crate needs
                           (installed if missing, started on free loopback ports, stopped after)
  servers up [NAME...]     start the named servers (default: all), print `export VAR=value`
                           lines and leave them running
  servers down             stop the servers `servers up` started
  servers list             the known servers, the crate that needs each, and their variables
  bench [ARGS...]          cargo bench -p benches [ARGS...]
  soak --store STORE [--secs N]
                           64 tasks of mixed operations on STORE (redis, memcached, mongo)
                           for N seconds (default 60, at most 600) while its server is killed
                           and restarted three times; every value read is checked against a
                           model, and the run fails on a wrong value
  plots [--sim FILE] [--out DIR]
                           SVG charts from the last bench run (target/criterion) and from the
                           memory simulator's saved output (default target/memory_sim.md, if
                           present) into DIR (default docs/plots)
  help                     this message
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test"] => Paths::find().and_then(|paths| test(&paths)),
        ["servers", "up", names @ ..] => Paths::find().and_then(|paths| servers_up(&paths, names)),
        ["servers", "down"] => Paths::find().and_then(|paths| servers_down(&paths)),
        ["servers", "list"] => Paths::find().map(|paths| servers_list(&paths)),
        ["soak", rest @ ..] => Paths::find().and_then(|paths| soak(&paths, rest)),
        ["bench", rest @ ..] => {
            Paths::find().and_then(|paths| cargo(&paths, "bench", &[&["bench", "-p", "benches"], rest]))
        }
        ["plots", rest @ ..] => Paths::find().and_then(|paths| plots(&paths, rest)),
        ["help" | "-h" | "--help"] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            let problem = if args.is_empty() {
                "a command is needed".to_owned()
            } else {
                format!("unknown command `{}`", args.join(" "))
            };
            eprint!("cargo xtask: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cargo xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where things live. Server files go under the target directory so one `cargo clean`
/// removes them and a CI machine with a persistent `CARGO_TARGET_DIR` keeps its venv warm.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The workspace root.
    pub(crate) root: PathBuf,
    /// `target/xtask`: one directory per server, the shared venv, the state file.
    pub(crate) xtask: PathBuf,
}

impl Paths {
    fn find() -> Result<Self> {
        // `cargo run` sets it at run time; the compile-time value is the fallback for a binary
        // started by hand, and can be stale if the checkout moved since the build.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let root = manifest_dir
            .parent()
            .filter(|root| root.join("Cargo.toml").is_file())
            .ok_or_else(|| format!("no workspace Cargo.toml above {}", manifest_dir.display()))?
            .to_path_buf();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => {
                let dir = PathBuf::from(dir);
                if dir.is_absolute() {
                    dir
                } else {
                    // Cargo resolves a relative target dir against the directory it ran in.
                    std::env::current_dir().map_err(|error| format!("current directory: {error}"))?.join(dir)
                }
            }
            _ => root.join("target"),
        };
        Ok(Self::at(root, &target))
    }

    pub(crate) fn at(root: PathBuf, target: &Path) -> Self {
        Self { root, xtask: target.join("xtask") }
    }

    pub(crate) fn state_file(&self) -> PathBuf {
        self.xtask.join("servers.state")
    }

    pub(crate) fn venv(&self) -> PathBuf {
        self.xtask.join("venv")
    }
}

/// Runs `cargo <args>` in the workspace root, with the cargo that started us.
fn cargo(paths: &Paths, step: &str, args: &[&[&str]]) -> Result<()> {
    cargo_with_env(paths, step, args, &[])
}

fn cargo_with_env(paths: &Paths, step: &str, args: &[&[&str]], env: &[(String, String)]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let args: Vec<&str> = args.concat();
    eprintln!("\n==> cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(&args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .current_dir(&paths.root)
        .status()
        .map_err(|error| format!("{step}: cannot run {}: {error}", cargo.to_string_lossy()))?;
    if status.success() { Ok(()) } else { Err(format!("{step} failed ({status})")) }
}

fn plots(paths: &Paths, args: &[&str]) -> Result<()> {
    let target = paths.xtask.parent().map_or_else(|| paths.root.join("target"), Path::to_path_buf);
    let default_sim = target.join("memory_sim.md");
    let mut plan = plots::Plan {
        criterion: target.join("criterion"),
        sim: default_sim.is_file().then_some(default_sim),
        out: paths.root.join("docs").join("plots"),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().map(PathBuf::from).ok_or_else(|| format!("plots: {arg} needs a value"));
        match *arg {
            "--sim" => plan.sim = Some(value()?),
            "--out" => plan.out = value()?,
            other => return Err(format!("plots: unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    for path in plots::run(&plan)? {
        println!("{}", path.display());
    }
    Ok(())
}

/// A store the soak can run on: its server in the table, the umbrella's cargo feature,
/// and how the store's URL is made from the server's first variable.
struct Soak {
    store: &'static str,
    server: &'static str,
    feature: &'static str,
    url: fn(&str) -> String,
}

/// moto keeps its tables in memory, so the xtask starts it with the soak's table made
/// before its port opens ([`servers::MOTO_SOAK_TABLE`]): a restart loses the data, as the
/// soak's model allows, but never the table, which no real DynamoDB restart does either.
const SOAKS: &[Soak] = &[
    Soak { store: "redis", server: "redis", feature: "redis", url: |address| address.to_owned() },
    Soak {
        store: "memcached",
        server: "memcached",
        feature: "memcached",
        url: |address| format!("memcache://{address}"),
    },
    Soak {
        store: "dynamo",
        server: "dynamodb",
        feature: "dynamo",
        // The emulator takes any credentials; the region is the one the table was made in.
        url: |address| format!("dynamodb://soak:soak@{}?region=us-east-1&endpoint={address}", servers::MOTO_SOAK_TABLE),
    },
    Soak {
        store: "mongo",
        server: "mongodb",
        feature: "mongo",
        url: |address| format!("{address}/soak?collection=soak"),
    },
];

/// The longest soak: the run must stay bounded in time.
const SOAK_MAX_SECS: u64 = 600;

fn soak(paths: &Paths, args: &[&str]) -> Result<()> {
    let mut store = None;
    let mut secs: u64 = 60;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().copied().ok_or_else(|| format!("soak: {arg} needs a value"));
        match *arg {
            "--store" => store = Some(value()?),
            "--secs" => {
                secs = value()?.parse().map_err(|_| "soak: --secs takes whole seconds".to_owned())?;
            }
            other => return Err(format!("soak: unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    let known: Vec<&str> = SOAKS.iter().map(|soak| soak.store).collect();
    let store = store.ok_or_else(|| format!("soak: --store is needed, one of {}", known.join(", ")))?;
    let soak = SOAKS
        .iter()
        .find(|soak| soak.store == store)
        .ok_or_else(|| format!("soak: no soak for `{store}`; one of {}", known.join(", ")))?;
    if !(4..=SOAK_MAX_SECS).contains(&secs) {
        return Err(format!("soak: --secs must be from 4 to {SOAK_MAX_SECS}"));
    }
    let server = servers::find(soak.server).ok_or_else(|| format!("soak: no server named {}", soak.server))?;
    let example = ["--package", "cache", "--example", "soak", "--features", soak.feature];
    // Built before the clock starts, so the soak's seconds are all load.
    cargo(paths, "build the soak", &[&["build"], &example])?;

    launch::stop_leftovers(paths)?;
    let mut servers = Servers::new(paths);
    start_all(&mut servers, &[server])?;
    let address = servers.env().first().map(|(_, value)| value.clone()).ok_or("soak: the server set no variable")?;
    let url = (soak.url)(&address);
    let secs_text = secs.to_string();
    eprintln!("\n==> soak: {store} at {url} for {secs} s, killed and restarted 3 times");
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["run", "--quiet"])
        .args(example)
        .args(["--", "--url", &url, "--secs", &secs_text])
        .current_dir(&paths.root)
        .spawn()
        .map_err(|error| format!("soak: cannot start the workload: {error}"))?;
    // Kills at a quarter, half and three quarters of the run.
    let quarter = Duration::from_secs(secs) / 4;
    let mut restarts = Vec::new();
    for round in 1..=3 {
        std::thread::sleep(quarter);
        match servers.restart(server.name) {
            Ok(down) => {
                eprintln!("    restart {round}: {} back after {:.2} s", server.name, down.as_secs_f64());
                restarts.push(down);
            }
            Err(error) => {
                let _ = child.kill();
                servers.print_logs();
                return Err(format!("soak: restart {round}: {error}"));
            }
        }
    }
    let status = child.wait().map_err(|error| format!("soak: waiting for the workload: {error}"))?;
    let stopped = servers.stop_all();
    if !status.success() {
        return Err(format!("soak: the workload failed ({status}): see its report above"));
    }
    stopped?;
    eprintln!("\n==> soak: {store} survived {} restarts with every value right", restarts.len());
    Ok(())
}

fn test(paths: &Paths) -> Result<()> {
    cargo(paths, "cargo fmt", &[&["fmt", "--all", "--check"]])?;
    cargo(
        paths,
        "cargo clippy",
        &[&["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]],
    )?;
    // Broken intra-doc links and malformed doc comments fail here, not on docs.rs.
    cargo_with_env(
        paths,
        "cargo doc",
        &[&["doc", "--workspace", "--all-features", "--no-deps"]],
        &[("RUSTDOCFLAGS".to_owned(), "-D warnings".to_owned())],
    )?;

    let needed = servers::needed_by(&paths.root);
    if needed.is_empty() {
        eprintln!("\n==> servers: no workspace crate needs one");
    } else {
        let list: Vec<String> =
            needed.iter().map(|server| format!("{} (for {})", server.name, server.needed_by)).collect();
        eprintln!("\n==> servers: {}", list.join(", "));
    }
    launch::stop_leftovers(paths)?;
    let mut servers = Servers::new(paths);
    if let Err(error) = start_all(&mut servers, &needed) {
        servers.print_logs();
        return Err(error);
    }
    let env = servers.env();
    for (name, value) in &env {
        eprintln!("    {name}={value}");
    }

    let tested = cargo_with_env(
        paths,
        "cargo test",
        &[&["test", "--workspace", "--all-features", "--no-fail-fast", "--", "--include-ignored"]],
        &env,
    );
    if tested.is_err() {
        servers.print_logs();
    }
    let stopped = servers.stop_all();
    tested.and(stopped)?;
    eprintln!("\n==> cargo xtask test: fmt, clippy, doc and every test passed");
    Ok(())
}

fn start_all(servers: &mut Servers<'_>, wanted: &[&'static Server]) -> Result<()> {
    launch::provision(servers.paths(), wanted)?;
    for server in wanted {
        servers.start(server)?;
    }
    Ok(())
}

fn servers_up(paths: &Paths, names: &[&str]) -> Result<()> {
    let wanted: Vec<&'static Server> = if names.is_empty() {
        servers::SERVERS.iter().collect()
    } else {
        names
            .iter()
            .map(|name| {
                servers::find(name).ok_or_else(|| {
                    let known: Vec<&str> = servers::SERVERS.iter().map(|server| server.name).collect();
                    format!("no server named `{name}`; known: {}", known.join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    launch::stop_leftovers(paths)?;
    let mut servers = Servers::new(paths);
    if let Err(error) = start_all(&mut servers, &wanted) {
        servers.print_logs();
        return Err(error);
    }
    for (name, value) in servers.env() {
        println!("export {name}={value}");
    }
    eprintln!("servers left running; stop them with `cargo xtask servers down` ({})", paths.state_file().display());
    servers.leave_running();
    Ok(())
}

fn servers_down(paths: &Paths) -> Result<()> {
    if !launch::stop_leftovers(paths)? {
        eprintln!("no servers recorded in {}", paths.state_file().display());
    }
    Ok(())
}

fn servers_list(paths: &Paths) {
    let needed = servers::needed_by(&paths.root);
    for server in servers::SERVERS {
        let vars: Vec<&str> = server.env.iter().map(|env| env.var).collect();
        let used =
            if needed.iter().any(|wanted| wanted.name == server.name) { "started by `test`" } else { "not needed yet" };
        println!("{:<14} for {:<16} {:<34} {used}", server.name, server.needed_by, vars.join(" "));
    }
}

/// Held by every test that frees a port and then looks at it: tests run in parallel, and the
/// kernel may hand a port one test just released to another test's `bind(0)`.
#[cfg(test)]
fn port_lock() -> std::sync::MutexGuard<'static, ()> {
    static PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PORTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
