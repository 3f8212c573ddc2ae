//! `target/xtask/servers.state`: what was started, so `servers down` (or the next run, after
//! a crash or Ctrl-C) can stop it.
//!
//! One line per fact, a `server` line opening each record:
//!
//! ```text
//! server redis
//! dir /repo/target/xtask/redis
//! port 41234
//! also 51234
//! pid 5678 redis-server
//! env CACHE_TEST_REDIS_URL=redis://127.0.0.1:41234
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::Result;

/// One started server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Record {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    /// One per node: where clients connect.
    pub(crate) ports: Vec<u16>,
    /// Also bound by the nodes (cluster bus); must be free after a stop too.
    pub(crate) also: Vec<u16>,
    /// With the program name, so a pid the kernel has since reused is never signalled.
    pub(crate) pids: Vec<(u32, String)>,
    pub(crate) env: Vec<(String, String)>,
}

const HEADER: &str = "# cargo xtask servers: running servers; `cargo xtask servers down` stops them\n";

/// The state file's text for `records`.
pub(crate) fn render<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    let mut text = HEADER.to_owned();
    for record in records {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "server {}", record.name);
        let _ = writeln!(text, "dir {}", record.dir.display());
        for port in &record.ports {
            let _ = writeln!(text, "port {port}");
        }
        for port in &record.also {
            let _ = writeln!(text, "also {port}");
        }
        for (pid, program) in &record.pids {
            let _ = writeln!(text, "pid {pid} {program}");
        }
        for (name, value) in &record.env {
            let _ = writeln!(text, "env {name}={value}");
        }
    }
    text
}

/// The records in a state file's text.
pub(crate) fn parse(text: &str) -> Result<Vec<Record>> {
    let mut records: Vec<Record> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("state file line {}: {why}: {line:?}", number + 1);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(' ').ok_or_else(|| bad("no value"))?;
        if key == "server" {
            records.push(Record { name: value.to_owned(), ..Record::default() });
            continue;
        }
        let record = records.last_mut().ok_or_else(|| bad("before any `server` line"))?;
        let port = || value.parse::<u16>().map_err(|_| bad("not a port"));
        match key {
            "dir" => record.dir = PathBuf::from(value),
            "port" => record.ports.push(port()?),
            "also" => record.also.push(port()?),
            "pid" => {
                let (pid, program) = value.split_once(' ').ok_or_else(|| bad("pid without program"))?;
                let pid = pid.parse().map_err(|_| bad("not a pid"))?;
                record.pids.push((pid, program.to_owned()));
            }
            "env" => {
                let (name, value) = value.split_once('=').ok_or_else(|| bad("env without ="))?;
                record.env.push((name.to_owned(), value.to_owned()));
            }
            _ => return Err(bad("unknown key")),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record {
                name: "redis-cluster".to_owned(),
                dir: PathBuf::from("/repo with space/target/xtask/redis-cluster"),
                ports: vec![40001, 40002, 40003],
                also: vec![50001, 50002, 50003],
                pids: vec![(101, "redis-server".to_owned()), (102, "redis-server".to_owned())],
                env: vec![(
                    "CACHE_TEST_REDIS_CLUSTER_URLS".to_owned(),
                    "redis://127.0.0.1:40001,redis://127.0.0.1:40002,redis://127.0.0.1:40003".to_owned(),
                )],
            },
            Record {
                name: "dynamodb".to_owned(),
                dir: PathBuf::from("/t/xtask/dynamodb"),
                ports: vec![40100],
                also: vec![],
                pids: vec![(4242, "moto_server".to_owned())],
                // A value holding '=' and spaces survives.
                env: vec![("CACHE_TEST_X".to_owned(), "a=b c".to_owned())],
            },
            // Recorded before its pid was known: a start that failed half-way.
            Record { name: "memcached".to_owned(), dir: PathBuf::from("/m"), ports: vec![1], ..Record::default() },
        ]
    }

    #[test]
    fn records_round_trip() {
        let records = sample();
        let text = render(&records);
        assert!(text.starts_with('#'));
        assert!(text.contains("\nserver redis-cluster\n"), "{text}");
        assert!(text.contains("\npid 4242 moto_server\n"), "{text}");
        assert_eq!(parse(&text).expect("our own output parses"), records);
    }

    #[test]
    fn nothing_round_trips_to_nothing() {
        assert_eq!(parse(&render(&[])).expect("header only"), []);
        assert_eq!(parse("").expect("empty"), []);
    }

    #[test]
    fn garbage_is_rejected_with_its_line() {
        for (text, why) in [
            ("port 1\n", "before any `server` line"),
            ("server a\nport 70000\n", "not a port"),
            ("server a\npid x redis\n", "not a pid"),
            ("server a\npid 12\n", "pid without program"),
            ("server a\nenv NOVALUE\n", "env without ="),
            ("server a\ncolour blue\n", "unknown key"),
            ("server a\nlonely\n", "no value"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
            assert!(error.contains("line "), "{error}");
        }
    }
}
