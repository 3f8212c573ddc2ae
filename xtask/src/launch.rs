//! Installing, starting and stopping the servers of the table in `servers.rs`.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{self, Install, Ready, Server, Start, Stop};
use crate::state::{self, Record};
use crate::{Paths, Result, net};

/// Generous: the first start of a Python server compiles its bytecode.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long each way of stopping (the stop command, SIGTERM, SIGKILL) gets to free the ports.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 200;

/// The servers this run started; dropping it stops them (also on an error or a panic),
/// unless [`Servers::leave_running`] was called.
#[derive(Debug)]
pub(crate) struct Servers<'a> {
    paths: &'a Paths,
    running: Vec<Record>,
    /// Foreground servers are our children: waited for after they stop, so they do not linger
    /// as zombies (nothing else would reap them: PID 1 does not).
    children: Vec<Child>,
    done: bool,
}

impl<'a> Servers<'a> {
    pub(crate) fn new(paths: &'a Paths) -> Self {
        Self { paths, running: Vec::new(), children: Vec::new(), done: false }
    }

    pub(crate) fn paths(&self) -> &'a Paths {
        self.paths
    }

    /// The variables for the tests, in start order.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.running.iter().flat_map(|record| record.env.iter().cloned()).collect()
    }

    /// Starts every node of `server` on fresh ports and waits until it is ready.
    pub(crate) fn start(&mut self, server: &'static Server) -> Result<()> {
        let started = Instant::now();
        let dir = self.paths.xtask.join(server.name);
        // A fresh directory: a cluster node that finds an old nodes.conf rejoins a cluster
        // that no longer exists.
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(|error| format!("{}: removing {}: {error}", server.name, dir.display()))?;
        }
        let ports = net::free_ports(server.nodes, server.extra_port_offsets)
            .map_err(|error| format!("{}: picking ports: {error}", server.name))?;
        let node_dirs: Vec<PathBuf> = if server.nodes == 1 {
            vec![dir.clone()]
        } else {
            (1..=server.nodes).map(|node| dir.join(format!("node{node}"))).collect()
        };
        for node_dir in &node_dirs {
            fs::create_dir_all(node_dir).map_err(|error| format!("creating {}: {error}", node_dir.display()))?;
        }
        let env = server
            .env
            .iter()
            .map(|env| {
                let values: Vec<String> =
                    ports.iter().map(|&port| servers::expand(&[env.value], port, &dir).concat()).collect();
                (env.var.to_owned(), values.join(","))
            })
            .collect();
        let also = ports
            .iter()
            .flat_map(|&port| server.extra_port_offsets.iter().filter_map(move |&offset| port.checked_add(offset)))
            .collect();
        let mut record = Record { name: server.name.to_owned(), dir, ports, also, pids: Vec::new(), env };
        // Recorded before anything runs, so a crash part-way still leaves what to stop.
        self.save(Some(&record))?;
        let launched = self.launch(server, &node_dirs, &mut record);
        self.running.push(record);
        let saved = self.save(None);
        launched?;
        saved?;
        let addrs: Vec<String> = self
            .running
            .last()
            .map_or_else(Vec::new, |record| record.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect());
        eprintln!("    {} ready on {} in {:.1} s", server.name, addrs.join(" "), started.elapsed().as_secs_f64());
        Ok(())
    }

    fn launch(&mut self, server: &Server, node_dirs: &[PathBuf], record: &mut Record) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let venv = self.paths.venv();
        let first_child = self.children.len();

        let mut opened = self.spawn_nodes(server, node_dirs, record, &venv);
        if opened.is_ok() {
            for &port in &record.ports {
                let children = &mut self.children[first_child..];
                opened = net::wait_for(&format!("{}: port {port} open", server.name), remaining(), || {
                    still_running(server, children)?;
                    Ok(net::port_open(port))
                })
                .map(drop);
                if opened.is_err() {
                    break;
                }
            }
        }
        if let Start::Daemon { argv, pidfile } = &server.start {
            // Also when something failed: whatever did start must be found to be stopped.
            let program = argv.first().and_then(|part| part.first()).map_or_else(String::new, |name| base_name(name));
            let wait = if opened.is_ok() { remaining() } else { Duration::from_secs(1) };
            for (&port, dir) in record.ports.iter().zip(node_dirs) {
                let pidfile = PathBuf::from(servers::expand(&[pidfile], port, dir).concat());
                let mut pid = None;
                let read = net::wait_for(&format!("{}: pid file {}", server.name, pidfile.display()), wait, || {
                    pid = fs::read_to_string(&pidfile).ok().and_then(|text| text.trim().parse().ok());
                    Ok(pid.is_some())
                });
                if let Some(pid) = pid {
                    record.pids.push((pid, program.clone()));
                }
                opened = opened.and(read.map(drop));
            }
        }
        opened?;

        if let Some(setup) = server.setup {
            let dir = &record.dir;
            let argv: Vec<String> = setup
                .iter()
                .flat_map(|&arg| {
                    if arg == "{addrs}" {
                        record.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect()
                    } else {
                        servers::expand(&[arg], record.ports[0], dir)
                    }
                })
                .collect();
            run_logged(server, &venv, &argv, &dir.join("setup.log"))?;
        }

        let children = &mut self.children[first_child..];
        for (&port, dir) in record.ports.iter().zip(node_dirs) {
            let what = format!("{}: 127.0.0.1:{port} ready ({:?})", server.name, server.ready);
            match &server.ready {
                Ready::PortOpen => {}
                Ready::Http200(path) => {
                    net::wait_for(&what, remaining(), || {
                        still_running(server, children)?;
                        Ok(matches!(net::http_status(port, path), Ok(200)))
                    })?;
                }
                Ready::Output { argv, contains } => {
                    let argv = servers::expand(argv, port, dir);
                    net::wait_for(&what, remaining(), || {
                        still_running(server, children)?;
                        let output = command(server, &venv, &argv).stdin(Stdio::null()).output();
                        Ok(output.is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(contains)))
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Starts every node before any is waited for, so they come up in parallel.
    fn spawn_nodes(&mut self, server: &Server, node_dirs: &[PathBuf], record: &mut Record, venv: &Path) -> Result<()> {
        for (&port, dir) in record.ports.iter().zip(node_dirs) {
            match &server.start {
                Start::Daemon { argv, .. } => {
                    let argv = servers::expand(&argv.concat(), port, dir);
                    run_logged(server, venv, &argv, &dir.join("start.log"))?;
                }
                Start::Foreground { argv } => {
                    let argv = servers::expand(argv, port, dir);
                    let log = dir.join(format!("{}.log", server.name));
                    let child = command(server, venv, &argv)
                        .stdin(Stdio::null())
                        .stdout(log_file(&log)?)
                        .stderr(log_file(&log)?)
                        // Its own process group: a Ctrl-C meant for cargo does not kill it
                        // half-way; the state file lets the next run stop it.
                        .process_group(0)
                        .spawn()
                        .map_err(|error| format!("{}: cannot run {}: {error}", server.name, argv[0]))?;
                    record.pids.push((child.id(), base_name(&argv[0])));
                    self.children.push(child);
                }
            }
        }
        Ok(())
    }

    /// Kills every node of the running server `name` with SIGKILL, as a crash would, and
    /// starts it again on the same ports with the same directories; returns how long it was
    /// down. Not for servers with a `setup` step (a cluster would have to be formed again).
    pub(crate) fn restart(&mut self, name: &str) -> Result<Duration> {
        let index = self
            .running
            .iter()
            .position(|record| record.name == name)
            .ok_or_else(|| format!("{name} is not running"))?;
        let server = servers::find(name).ok_or_else(|| format!("no server named {name}"))?;
        if server.setup.is_some() {
            return Err(format!("{name}: restarting a server with a setup step is not supported"));
        }
        let killed = Instant::now();
        let mut record = self.running.remove(index);
        for (pid, program) in &record.pids {
            if runs(*pid, program) {
                send_signal(*pid, SIGKILL);
            }
        }
        for &port in &record.ports {
            net::wait_port_free(port, STOP_TIMEOUT).map_err(|error| format!("{name}: after SIGKILL: {error}"))?;
        }
        // Reap what we can: our own foreground children that just died.
        for child in &mut self.children {
            let _ = child.try_wait();
        }
        record.pids.clear();
        let node_dirs: Vec<PathBuf> = if server.nodes == 1 {
            vec![record.dir.clone()]
        } else {
            (1..=server.nodes).map(|node| record.dir.join(format!("node{node}"))).collect()
        };
        if let Start::Daemon { pidfile, .. } = &server.start {
            // A stale pid file would be read as the new daemon's pid.
            for (&port, dir) in record.ports.iter().zip(&node_dirs) {
                let _ = fs::remove_file(servers::expand(&[pidfile], port, dir).concat());
            }
        }
        let launched = self.launch(server, &node_dirs, &mut record);
        self.running.push(record);
        self.save(None)?;
        launched?;
        Ok(killed.elapsed())
    }

    /// Prints the end of every log file of every server this run started.
    pub(crate) fn print_logs(&self) {
        for record in &self.running {
            print_logs_of(record);
        }
    }

    /// Stops every server, reporting those whose ports stay busy.
    pub(crate) fn stop_all(&mut self) -> Result<()> {
        self.done = true;
        if self.running.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = self.running.iter().rev().map(|record| record.name.as_str()).collect();
        eprintln!("\n==> stopping {}", names.join(", "));
        let mut errors = Vec::new();
        let mut left = Vec::new();
        for record in self.running.drain(..).rev() {
            match stop(&record) {
                Ok(()) => eprintln!("    {} stopped", record.name),
                Err(error) => {
                    errors.push(error);
                    left.push(record);
                }
            }
        }
        for child in &mut self.children {
            // Their ports are free, so they have exited or are about to.
            let _ = net::wait_for("child exit", Duration::from_secs(2), || Ok(!matches!(child.try_wait(), Ok(None))));
        }
        self.running = left;
        self.save(None)?;
        if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
    }

    /// Returns leaving the servers running; the state file says what to stop later.
    pub(crate) fn leave_running(mut self) {
        self.done = true;
    }

    /// Writes the state file: the running servers, plus one being started.
    fn save(&self, starting: Option<&Record>) -> Result<()> {
        let file = self.paths.state_file();
        if self.running.is_empty() && starting.is_none() {
            return match fs::remove_file(&file) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    Err(format!("removing {}: {error}", file.display()))
                }
                _ => Ok(()),
            };
        }
        let text = state::render(self.running.iter().chain(starting));
        let write = || -> io::Result<()> {
            fs::create_dir_all(&self.paths.xtask)?;
            // Whole or not at all: a crash mid-write must not lose what is running.
            let partial = file.with_extension("state.partial");
            fs::write(&partial, text)?;
            fs::rename(&partial, &file)
        };
        write().map_err(|error| format!("writing {}: {error}", file.display()))
    }
}

impl Drop for Servers<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(error) = self.stop_all() {
                eprintln!("cargo xtask: {error}");
            }
        }
    }
}

/// An error once one of the server's foreground processes has exited: waiting longer is pointless.
fn still_running(server: &Server, children: &mut [Child]) -> Result<()> {
    for child in children {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited ({status}) before it was ready", server.name));
        }
    }
    Ok(())
}

/// Stops what the state file lists (left by `servers up`, or by a run that was killed).
/// Returns whether it listed anything.
pub(crate) fn stop_leftovers(paths: &Paths) -> Result<bool> {
    let file = paths.state_file();
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(format!("reading {}: {error}", file.display())),
    };
    let records = state::parse(&text)
        .map_err(|error| format!("{error}\n(stop those servers by hand, then delete {})", file.display()))?;
    if records.is_empty() {
        let _ = fs::remove_file(&file);
        return Ok(false);
    }
    eprintln!("\n==> servers recorded as running in {}", file.display());
    // The same guard as a run that started them: it saves what is left and stops it all.
    let mut servers = Servers::new(paths);
    servers.running = records;
    servers.stop_all()?;
    Ok(true)
}

/// Asks every node to stop, then insists, until every port it held is free.
fn stop(record: &Record) -> Result<()> {
    let ports: Vec<u16> = record.ports.iter().chain(&record.also).copied().collect();
    let all_free = |timeout| ports.iter().all(|&port| net::wait_port_free(port, timeout).is_ok());
    if all_free(Duration::ZERO) {
        return Ok(());
    }
    let server = servers::find(&record.name);
    if let Some(Server { stop: Stop::Command(argv), .. }) = server {
        for &port in &record.ports {
            if net::port_open(port) {
                let argv = servers::expand(argv, port, &record.dir);
                let _ = Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::null()).output();
            }
        }
        if all_free(STOP_TIMEOUT) {
            return Ok(());
        }
    }
    for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGKILL, "SIGKILL")] {
        for (pid, program) in &record.pids {
            if runs(*pid, program) {
                eprintln!("    {}: {name} to {program} (pid {pid})", record.name);
                send_signal(*pid, signal);
            }
        }
        if all_free(STOP_TIMEOUT) {
            return Ok(());
        }
    }
    let busy: Vec<String> = ports.iter().filter(|&&port| !net::port_free(port)).map(u16::to_string).collect();
    Err(format!(
        "{}: ports {} still in use after SIGKILL to pids {:?}; files in {}",
        record.name,
        busy.join(", "),
        record.pids,
        record.dir.display()
    ))
}

fn print_logs_of(record: &Record) {
    let mut logs = Vec::new();
    collect_logs(&record.dir, &mut logs);
    logs.sort();
    if logs.is_empty() {
        eprintln!("\n---- {}: no log files in {}", record.name, record.dir.display());
    }
    for log in logs {
        let text = fs::read_to_string(&log).unwrap_or_else(|error| format!("(unreadable: {error})\n"));
        if text.trim().is_empty() {
            eprintln!("\n---- {}: {} is empty", record.name, log.display());
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let shown = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        let cut = if shown.len() < lines.len() { format!(", last {} lines", shown.len()) } else { String::new() };
        eprintln!("\n---- {}: {}{cut} ----", record.name, log.display());
        for line in shown {
            eprintln!("{line}");
        }
    }
}

fn collect_logs(dir: &Path, logs: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_logs(&path, logs);
        } else if path.extension().is_some_and(|extension| extension == "log") {
            logs.push(path);
        }
    }
}

/// Installs what the servers need and is missing: Debian packages (one `apt-get update`,
/// one install) and pip packages in the shared venv. Nothing is run when nothing is missing.
pub(crate) fn provision(paths: &Paths, wanted: &[&Server]) -> Result<()> {
    let venv = paths.venv();
    let mut apt: Vec<&str> = Vec::new();
    let mut pip: Vec<&str> = Vec::new();
    for server in wanted {
        match &server.install {
            Install::Apt { binaries, packages } => {
                if binaries.iter().any(|binary| on_path(binary).is_none()) {
                    for package in *packages {
                        if !apt.contains(package) {
                            apt.push(package);
                        }
                    }
                }
            }
            Install::Venv { binary, packages } => {
                if !venv.join("bin").join(binary).is_file() {
                    for package in *packages {
                        if !pip.contains(package) {
                            pip.push(package);
                        }
                    }
                }
            }
        }
    }
    if !apt.is_empty() {
        eprintln!("\n==> installing Debian packages: {}", apt.join(" "));
        let hint = format!("installing needs root; or install these yourself: {}", apt.join(" "));
        // Waits for another apt or dpkg (a second checkout's xtask) instead of failing at once.
        let lock_timeout = "DPkg::Lock::Timeout=300";
        run_to_stderr(Command::new("apt-get").args(["-o", lock_timeout, "update"]), &hint)?;
        run_to_stderr(
            Command::new("apt-get")
                .args(["-o", lock_timeout, "install", "-y", "--no-install-recommends"])
                .args(&apt)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            &hint,
        )?;
    }
    if !pip.is_empty() {
        let python = venv.join("bin").join("python");
        // A venv whose interpreter is gone (Python upgraded under it) is rebuilt.
        let usable = Command::new(&python).args(["-c", ""]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !usable.is_ok_and(|status| status.success()) {
            eprintln!("\n==> creating the venv {}", venv.display());
            if venv.exists() {
                fs::remove_dir_all(&venv).map_err(|error| format!("removing {}: {error}", venv.display()))?;
            }
            let hint = "the Python servers need python3 with the venv module";
            run_to_stderr(Command::new("python3").args(["-m", "venv"]).arg(&venv), hint)?;
        }
        eprintln!("\n==> installing into the venv: {}", pip.join(" "));
        run_to_stderr(
            Command::new(venv.join("bin").join("pip")).args(["install", "--disable-pip-version-check"]).args(&pip),
            "pip could not install the Python servers",
        )?;
    }
    for server in wanted {
        let missing: Vec<&str> = match &server.install {
            Install::Apt { binaries, .. } => {
                binaries.iter().copied().filter(|binary| on_path(binary).is_none()).collect()
            }
            Install::Venv { binary, .. } => {
                Some(*binary).filter(|binary| !venv.join("bin").join(binary).is_file()).into_iter().collect()
            }
        };
        if !missing.is_empty() {
            return Err(format!("{}: still missing after installing: {}", server.name, missing.join(" ")));
        }
    }
    Ok(())
}

/// Runs a command with its output on our stderr: stdout stays for `export` lines.
fn run_to_stderr(command: &mut Command, hint: &str) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let stderr = io::stderr().as_fd().try_clone_to_owned().map_err(|error| format!("duplicating stderr: {error}"))?;
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(stderr))
        .status()
        .map_err(|error| format!("cannot run {program}: {error} ({hint})"))?;
    if status.success() { Ok(()) } else { Err(format!("{program} failed ({status}); {hint}")) }
}

/// A command running `argv`, its program taken from the venv for a Python server.
fn command(server: &Server, venv: &Path, argv: &[String]) -> Command {
    let in_venv = venv.join("bin").join(&argv[0]);
    let program = match server.install {
        Install::Venv { .. } if in_venv.is_file() => in_venv,
        _ => PathBuf::from(&argv[0]),
    };
    let mut command = Command::new(program);
    command.args(&argv[1..]);
    command
}

/// Runs `argv` to completion with its output in `log`; a failure names the command and the log.
fn run_logged(server: &Server, venv: &Path, argv: &[String], log: &Path) -> Result<()> {
    let status = command(server, venv, argv)
        .stdin(Stdio::null())
        .stdout(log_file(log)?)
        .stderr(log_file(log)?)
        .status()
        .map_err(|error| format!("{}: cannot run {}: {error}", server.name, argv[0]))?;
    if !status.success() {
        return Err(format!("{}: `{}` failed ({status}), see {}", server.name, shell_words(argv), log.display()));
    }
    Ok(())
}

fn log_file(path: &Path) -> Result<File> {
    File::options().create(true).append(true).open(path).map_err(|error| format!("opening {}: {error}", path.display()))
}

/// Where `PATH` finds the executable `name`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        candidate.metadata().is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
    })
}

fn base_name(program: &str) -> String {
    Path::new(program).file_name().map_or_else(|| program.to_owned(), |name| name.to_string_lossy().into_owned())
}

fn shell_words(argv: &[String]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|arg| if arg.is_empty() || arg.contains(' ') { format!("'{arg}'") } else { arg.clone() })
        .collect();
    words.join(" ")
}

/// Whether `pid` is a live `program`: the kernel reuses pids, so a pid from an old state
/// file may now be someone else's process, and a zombie has no command line left.
fn runs(pid: u32, program: &str) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline.windows(program.len()).any(|window| window == program.as_bytes()),
        // Without /proc (not Linux) there is no telling; the caller only signals its own records.
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

unsafe extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}

fn send_signal(pid: u32, signal: i32) {
    // Zero and negative pids address process groups and "everyone": never.
    let Ok(pid) = i32::try_from(pid) else { return };
    if pid > 0 {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        unsafe {
            kill(pid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::Env;

    /// A stand-in server with two nodes that needs nothing installed: python3 is on every
    /// machine this project tests on (CI uses it for the venv servers).
    const HTTP_SERVER: Server = Server {
        name: "selftest-http",
        needed_by: "cache-selftest",
        env: &[Env { var: "CACHE_TEST_SELFTEST_URLS", value: "http://127.0.0.1:{port}" }],
        install: Install::Apt { binaries: &["python3"], packages: &[] },
        nodes: 2,
        extra_port_offsets: &[],
        start: Start::Foreground {
            argv: &["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "{dir}", "{port}"],
        },
        setup: None,
        ready: Ready::Http200("/"),
        stop: Stop::Sigterm,
    };
    static HTTP: Server = HTTP_SERVER;

    /// Exits at once, as a server does on a bad flag.
    static BROKEN: Server = Server {
        name: "selftest-broken",
        start: Start::Foreground { argv: &["python3", "-c", "import sys; sys.exit(3)", "{port}"] },
        ..HTTP_SERVER
    };

    /// A workspace root and target directory of their own, removed on drop.
    struct Scratch {
        paths: Paths,
    }

    impl Scratch {
        fn new(tag: &str) -> Self {
            let root = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).expect("creating the scratch root");
            let target = root.join("target");
            Self { paths: Paths::at(root, &target) }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.paths.root);
        }
    }

    fn ports_of(env: &[(String, String)]) -> Vec<u16> {
        assert_eq!(env.len(), 1, "{env:?}");
        assert_eq!(env[0].0, "CACHE_TEST_SELFTEST_URLS");
        env[0]
            .1
            .split(',')
            .map(|url| url.strip_prefix("http://127.0.0.1:").expect("a loopback URL").parse().expect("a port"))
            .collect()
    }

    #[test]
    fn dropping_the_guard_stops_every_node() {
        let _ports = crate::port_lock();
        let scratch = Scratch::new("guard");
        let paths = &scratch.paths;
        provision(paths, &[&HTTP]).expect("python3 is on PATH, so nothing is installed");
        let ports = {
            let mut servers = Servers::new(paths);
            servers.start(&HTTP).expect("the stand-in server starts");
            let ports = ports_of(&servers.env());
            assert_eq!(ports.len(), 2);
            assert_ne!(ports[0], ports[1]);
            for &port in &ports {
                assert_eq!(net::http_status(port, "/").expect("it answers"), 200);
            }
            let recorded = fs::read_to_string(paths.state_file()).expect("the state file is written");
            let records = state::parse(&recorded).expect("and parses");
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].ports, ports);
            assert_eq!(records[0].pids.len(), 2);
            assert!(paths.xtask.join("selftest-http/node2/selftest-http.log").is_file());
            ports
        };
        for port in ports {
            assert!(net::port_free(port), "port {port} still busy after the guard dropped");
        }
        assert!(!paths.state_file().exists(), "nothing runs, so nothing is recorded");
    }

    #[test]
    fn servers_left_running_are_stopped_from_the_state_file() {
        let _ports = crate::port_lock();
        let scratch = Scratch::new("leftover");
        let paths = &scratch.paths;
        assert!(!stop_leftovers(paths).expect("no state file is fine"), "nothing was recorded");
        let mut servers = Servers::new(paths);
        servers.start(&HTTP).expect("the stand-in server starts");
        let ports = ports_of(&servers.env());
        servers.leave_running();
        for &port in &ports {
            assert!(net::port_open(port), "leave_running stopped port {port}");
        }
        // What `servers down`, or the next run after a crash, does.
        assert!(stop_leftovers(paths).expect("stops them"));
        for port in ports {
            assert!(net::port_free(port), "port {port} still busy");
        }
        assert!(!paths.state_file().exists());
        assert!(!stop_leftovers(paths).expect("nothing left"));
    }

    #[test]
    fn a_server_that_exits_fails_at_once_and_keeps_its_log() {
        let _ports = crate::port_lock();
        let scratch = Scratch::new("broken");
        let paths = &scratch.paths;
        let mut servers = Servers::new(paths);
        let start = Instant::now();
        let error = servers.start(&BROKEN).expect_err("it exits instead of listening");
        assert!(error.contains("selftest-broken exited (exit status: 3) before it was ready"), "{error}");
        assert!(start.elapsed() < READY_TIMEOUT / 2, "waited for the timeout: {:?}", start.elapsed());
        assert!(paths.xtask.join("selftest-broken/node1/selftest-broken.log").is_file());
        servers.stop_all().expect("nothing is left to stop");
        assert!(!paths.state_file().exists());
    }

    #[test]
    fn runs_knows_its_own_process_and_nobody_else() {
        let me = std::process::id();
        let name = base_name(&std::env::args().next().expect("argv[0]"));
        assert!(runs(me, &name), "{name} is running as {me}");
        assert!(!runs(me, "surely-not-a-program-name"));
    }

    #[test]
    fn on_path_finds_executables_only() {
        assert!(on_path("sh").is_some_and(|sh| sh.is_absolute()));
        assert!(on_path("no-such-program-xtask").is_none());
    }

    #[test]
    fn shell_words_quote_what_needs_it() {
        let argv = ["redis-server", "--save", "", "a b"].map(String::from);
        assert_eq!(shell_words(&argv), "redis-server --save '' 'a b'");
    }
}
