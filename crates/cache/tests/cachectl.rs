//! End to end: the built `cachectl` binary on a file store, the memory store, a registry
//! and (ignored unless run with `--include-ignored`, as `cargo xtask test` does) the
//! xtask's Redis, checked by its stdout, stderr and exit code.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on what they did not expect")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

/// Runs cachectl with `args`, `stdin` as its standard input, and no `CACHE_URL` inherited.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_with_env(args, stdin, &[])
}

fn run_with_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cachectl"));
    command.args(args).env_remove("CACHE_URL").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("cachectl starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("cachectl exited, not killed by a signal")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts the exit code, showing stderr when it differs.
#[track_caller]
fn expect(output: &Output, wanted: i32) {
    assert_eq!(code(output), wanted, "stdout: {}\nstderr: {}", stdout(output), stderr(output));
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {}", stdout(output)))
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

#[test]
fn file_store_round_trips_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    let url = url.as_str();

    let set = run(&["--url", url, "set", "greeting", "hello world"], b"");
    expect(&set, 0);
    assert!(set.stdout.is_empty());
    let get = run(&["--url", url, "get", "greeting"], b"");
    expect(&get, 0);
    assert_eq!(get.stdout, b"hello world", "raw bytes, nothing added");

    let has = run(&["--url", url, "has", "greeting"], b"");
    expect(&has, 0);
    assert_eq!(stdout(&has), "true\n");

    expect(&run(&["--url", url, "set", "visits", "10"], b""), 0);
    let incr = run(&["--url", url, "incr", "visits"], b"");
    expect(&incr, 0);
    assert_eq!(stdout(&incr), "11\n");
    let decr = run(&["--url", url, "incr", "visits", "-20"], b"");
    expect(&decr, 0);
    assert_eq!(stdout(&decr), "-9\n");
    assert_eq!(run(&["--url", url, "get", "visits"], b"").stdout, b"-9");

    let add = run(&["--url", url, "add", "greeting", "other"], b"");
    expect(&add, 0);
    assert_eq!(stdout(&add), "false\n");
    assert_eq!(run(&["--url", url, "get", "greeting"], b"").stdout, b"hello world", "add kept the old value");
    let add = run(&["--url", url, "add", "fresh", "new"], b"");
    assert_eq!(stdout(&add), "true\n");

    let del = run(&["--url", url, "del", "greeting", "visits", "never-there"], b"");
    expect(&del, 0);
    assert_eq!(stdout(&del), "2\n");
    let has = run(&["--url", url, "has", "greeting"], b"");
    expect(&has, 1);
    assert_eq!(stdout(&has), "false\n");
}

#[test]
fn prefixes_in_the_url_separate_entries() {
    let dir = tempfile::tempdir().unwrap();
    let a = format!("{}?prefix=a:", file_url(dir.path()));
    let b = format!("{}?prefix=b:", file_url(dir.path()));
    expect(&run(&["--url", &a, "set", "k", "from a"], b""), 0);
    expect(&run(&["--url", &b, "get", "k"], b""), 1);
    assert_eq!(run(&["--url", &a, "get", "k"], b"").stdout, b"from a");
}

#[test]
fn values_come_from_stdin_with_a_dash_or_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    expect(&run(&["--url", &url, "set", "dash", "-"], b"from stdin\n"), 0);
    assert_eq!(run(&["--url", &url, "get", "dash"], b"").stdout, b"from stdin\n");
    expect(&run(&["--url", &url, "set", "bare"], b"no value argument"), 0);
    assert_eq!(run(&["--url", &url, "get", "bare"], b"").stdout, b"no value argument");
    expect(&run(&["--url", &url, "set", "empty", "-"], b""), 0);
    let empty = run(&["--url", &url, "get", "empty"], b"");
    expect(&empty, 0);
    assert!(empty.stdout.is_empty(), "an empty value is found, not a miss");
}

#[test]
fn binary_values_round_trip_raw_and_as_base64_json() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    expect(&run(&["--url", &url, "set", "bin"], &binary), 0);
    assert_eq!(run(&["--url", &url, "get", "bin"], b"").stdout, binary);

    let output = run(&["--url", &url, "--json", "get", "bin"], b"");
    expect(&output, 0);
    let value = json(&output);
    assert_eq!(value["found"], true);
    assert_eq!(value["key"], "bin");
    assert_eq!(value["encoding"], "base64");
    let decoded = base64::engine::general_purpose::STANDARD.decode(value["value"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, binary);

    expect(&run(&["--url", &url, "set", "text", "héllo"], b""), 0);
    let value = json(&run(&["--url", &url, "--json", "get", "text"], b""));
    assert_eq!((value["encoding"].as_str(), value["value"].as_str()), (Some("utf8"), Some("héllo")));
}

#[test]
fn a_miss_exits_1_quietly_and_says_so_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    let miss = run(&["--url", &url, "get", "absent"], b"");
    expect(&miss, 1);
    assert!(miss.stdout.is_empty() && miss.stderr.is_empty(), "a miss is an answer, not an error");
    let miss = run(&["--url", &url, "--json", "get", "absent"], b"");
    expect(&miss, 1);
    assert_eq!(json(&miss), serde_json::json!({"key": "absent", "found": false}));
}

#[test]
fn a_bad_url_is_a_usage_error_naming_the_problem() {
    let unknown_key = run(&["--url", "memory://?max_capacty=10", "get", "k"], b"");
    expect(&unknown_key, 2);
    let message = stderr(&unknown_key);
    assert!(message.starts_with("cachectl: open on memory://: memory open: invalid configuration"), "{message}");
    assert!(message.contains("max_capacty"), "{message}");

    let scheme = run(&["--url", "nosuch://host", "get", "k"], b"");
    expect(&scheme, 2);
    assert!(stderr(&scheme).contains("nosuch"), "{}", stderr(&scheme));

    let missing = run(&["get", "k"], b"");
    expect(&missing, 2);
    assert!(stderr(&missing).contains("--url URL or set CACHE_URL"), "{}", stderr(&missing));
}

#[test]
fn secrets_in_the_url_never_reach_stderr() {
    let output = run(&["--url", "memory://user:hunter2@?bogus=1", "get", "k"], b"");
    expect(&output, 2);
    assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
}

#[test]
fn a_path_that_cannot_hold_a_store_is_a_usage_error_naming_it() {
    // A regular file where the store's directory should be: the URL names no usable store.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let url = file_url(&blocker.join("cache"));
    let output = run(&["--url", &url, "get", "k"], b"");
    expect(&output, 2);
    let message = stderr(&output);
    assert!(message.starts_with(&format!("cachectl: open on {url}: fs build: ")), "{message}");
    assert!(message.contains("Not a directory"), "{message}");
}

#[test]
fn a_store_error_during_an_operation_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    expect(&run(&["--url", &url, "set", "word", "abc"], b""), 0);
    let output = run(&["--url", &url, "incr", "word"], b"");
    expect(&output, 3);
    let message = stderr(&output);
    assert!(message.starts_with(&format!("cachectl: incr on {url}: ")), "{message}");
    assert!(message.contains("not an integer"), "{message}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["--url", "memory://", "set", "k", "v", "--ttl", "soon"][..],
        &["--url", "memory://", "frobnicate"],
        &["--url", "memory://", "incr", "k", "1.5"],
        &["--url", "memory://", "bench", "--read-ratio", "2"],
        &["--url", "memory://", "bench", "--distribution", "zipf:0"],
        &["--url", "memory://", "bench", "--ops", "10", "--duration", "1s"],
    ] {
        let output = run(args, b"");
        expect(&output, 2);
        assert!(!stderr(&output).is_empty(), "{args:?} says why");
    }
}

#[test]
fn ttl_expires_entries() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    expect(&run(&["--url", &url, "set", "short", "v", "--ttl", "50ms"], b""), 0);
    expect(&run(&["--url", &url, "set", "long", "v", "--ttl", "1h"], b""), 0);
    expect(&run(&["--url", &url, "set", "forever", "v", "--ttl", "never"], b""), 0);
    std::thread::sleep(std::time::Duration::from_millis(120));
    expect(&run(&["--url", &url, "get", "short"], b""), 1);
    expect(&run(&["--url", &url, "get", "long"], b""), 0);
    expect(&run(&["--url", &url, "get", "forever"], b""), 0);
}

#[test]
fn clear_refuses_without_yes_when_stdin_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    expect(&run(&["--url", &url, "set", "k", "v"], b""), 0);
    // Even a "y" on a pipe is not a person's answer.
    let refused = run(&["--url", &url, "clear"], b"y\n");
    expect(&refused, 2);
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    expect(&run(&["--url", &url, "get", "k"], b""), 0);

    expect(&run(&["--url", &url, "clear", "--yes"], b""), 0);
    expect(&run(&["--url", &url, "get", "k"], b""), 1);
}

#[test]
fn the_url_comes_from_cache_url_too() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    expect(&run_with_env(&["set", "k", "from env"], b"", &[("CACHE_URL", &url)]), 0);
    assert_eq!(run(&["--url", &url, "get", "k"], b"").stdout, b"from env");
}

#[test]
fn memory_store_answers_within_one_process() {
    // A memory:// store lives as long as one command: each starts empty.
    let incr = run(&["--url", "memory://", "incr", "n", "5"], b"");
    expect(&incr, 0);
    assert_eq!(stdout(&incr), "5\n");
    expect(&run(&["--url", "memory://", "set", "k", "v"], b""), 0);
    expect(&run(&["--url", "memory://", "get", "k"], b""), 1);
    let has = run(&["--url", "memory://", "--json", "has", "k"], b"");
    expect(&has, 1);
    assert_eq!(json(&has)["found"], false);
    let del = run(&["--url", "memory://", "--json", "del", "a", "b"], b"");
    assert_eq!(json(&del)["removed"], 0);
}

#[test]
fn memory_store_round_trips_in_a_batch() {
    let commands = "\
set greeting 'hello world'
get greeting
# comments and blank lines are skipped

has greeting
get absent
incr visits
incr visits -3
add greeting other
--json get greeting
del greeting absent
has greeting
set n 41
incr n
get n
";
    let output = run(&["--url", "memory://", "batch"], commands.as_bytes());
    expect(&output, 0);
    let text = stdout(&output);
    let mut lines: Vec<&str> = text.lines().collect();
    // The JSON line is compared as JSON: its key order depends on serde_json's
    // `preserve_order`, which the network stores' dependencies turn on.
    let json_line = lines.get_mut(6).map(std::mem::take).unwrap_or_default();
    let value: Value = serde_json::from_str(json_line).unwrap_or_else(|error| panic!("{error}: {json_line}"));
    assert_eq!(
        value,
        serde_json::json!({"encoding": "utf8", "found": true, "key": "greeting", "value": "hello world"})
    );
    assert_eq!(lines, ["hello world", "true", "", "1", "-2", "false", "", "1", "false", "42", "42"]);
}

#[test]
fn a_batch_stops_at_the_first_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    let output = run(&["--url", &url, "batch"], b"set a 1\nset word abc\nincr word\nset b 2\n");
    expect(&output, 3);
    assert!(stderr(&output).starts_with("cachectl: batch line 3: incr on "), "{}", stderr(&output));
    expect(&run(&["--url", &url, "get", "a"], b""), 0);
    expect(&run(&["--url", &url, "get", "b"], b""), 1);

    for (line, why) in [
        ("set k -", "value is an argument"),
        ("clear", "needs --yes"),
        ("bench --ops 1", "only store commands"),
        ("--url memory:// get k", "once, for the whole batch"),
        ("get 'k", "unbalanced quotes"),
        ("frobnicate", "unrecognized subcommand"),
    ] {
        let output = run(&["--url", "memory://", "batch"], format!("{line}\n").as_bytes());
        expect(&output, 2);
        assert!(
            stderr(&output).contains("batch line 1: ") && stderr(&output).contains(why),
            "{line}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn stats_show_the_capabilities() {
    let output = run(&["--url", "memory://?max_capacity=10", "--json", "stats"], b"");
    expect(&output, 0);
    let stats = json(&output);
    assert_eq!(stats["store"], "memory://");
    assert_eq!(stats["clear"], true);
    assert_eq!(stats["shared_between_processes"], false);
    let dir = tempfile::tempdir().unwrap();
    let text = stdout(&run(&["--url", &file_url(dir.path()), "stats"], b""));
    assert!(text.lines().any(|line| line.starts_with("shared between processes") && line.ends_with("yes")), "{text}");
}

/// The text summary as metric -> cells.
fn summary_rows(text: &str) -> std::collections::HashMap<String, Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace().map(str::to_owned);
            let metric = words.next()?;
            Some((metric, words.collect()))
        })
        .collect()
}

fn number(rows: &std::collections::HashMap<String, Vec<String>>, metric: &str, column: usize) -> f64 {
    rows.get(metric).and_then(|cells| cells.get(column)).and_then(|cell| cell.parse().ok()).unwrap_or_else(|| {
        panic!("no number for {metric} in column {column}: {rows:?}");
    })
}

#[test]
fn bench_prints_a_parsable_summary() {
    let output = run(&["--url", "memory://", "bench", "--ops", "2000", "--keys", "100"], b"");
    expect(&output, 0);
    let rows = summary_rows(&stdout(&output));
    assert_eq!(rows["store"], ["memory://"]);
    assert_eq!(number(&rows, "ops", 0), 2000.0, "--ops is exact");
    assert_eq!(number(&rows, "reads", 0) + number(&rows, "writes", 0), 2000.0);
    assert!(number(&rows, "ops/s", 0) > 0.0);
    let latencies: Vec<f64> = ["p50(µs)", "p90(µs)", "p99(µs)", "p99.9(µs)", "max(µs)"]
        .iter()
        .map(|metric| number(&rows, metric, 0))
        .collect();
    assert!(latencies.windows(2).all(|pair| pair[0] <= pair[1]), "percentiles rise: {latencies:?}");
    // 100 keys and about 1 800 reads: most reads find what an earlier miss filled in.
    let hit_ratio = number(&rows, "hit_ratio", 0);
    assert!(hit_ratio > 0.5 && hit_ratio <= 1.0, "{hit_ratio}");
    // Not a terminal: progress is plain lines on stderr, never on stdout.
    assert!(stderr(&output).contains("bench memory://: done, 2000 ops"), "{}", stderr(&output));
}

#[test]
fn bench_json_compare_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let url = file_url(&store);
    let plot = dir.path().join("latency.svg");
    let plot_arg = plot.to_str().unwrap();
    let output = run(
        &[
            "--url",
            "memory://",
            "--json",
            "bench",
            "--ops",
            "2000",
            "--concurrency",
            "2",
            "--value-size",
            "100",
            "--distribution",
            "uniform",
            "--compare",
            &url,
            "--plot",
            plot_arg,
        ],
        b"",
    );
    expect(&output, 0);
    let summary = json(&output);
    assert_eq!(summary["workload"]["ops"], 2000);
    assert_eq!(summary["workload"]["distribution"], "uniform");
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0]["store"].as_str(), runs[1]["store"].as_str()), (Some("memory://"), Some(url.as_str())));
    for run in runs {
        assert_eq!(run["ops"], 2000);
        assert!(run["ops_per_sec"].as_f64().unwrap() > 0.0);
        let latency = &run["latency_us"];
        let p50 = latency["p50"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= latency["p99.9"].as_f64().unwrap());
        assert!(latency["p99.9"].as_f64().unwrap() <= latency["max"].as_f64().unwrap());
        let hit_ratio = run["hit_ratio"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&hit_ratio));
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.contains("memory://") && svg.contains(&url), "both stores in the legend");
}

#[test]
fn bench_with_a_bad_compare_url_runs_nothing() {
    let output = run(&["--url", "memory://", "bench", "--ops", "100", "--compare", "memory://?nope=1"], b"");
    expect(&output, 2);
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("nope"), "{}", stderr(&output));
}

#[test]
fn help_is_complete_with_examples_and_exit_codes() {
    let help = run(&["--help"], b"");
    expect(&help, 0);
    let text = stdout(&help);
    for needle in ["Exit codes", "CACHE_URL", "Examples", "bench", "registry", "clear"] {
        assert!(text.contains(needle), "--help mentions {needle}:\n{text}");
    }
    for command in ["get", "set", "add", "del", "has", "incr", "clear", "stats", "batch", "bench", "registry"] {
        let help = run(&[command, "--help"], b"");
        expect(&help, 0);
        assert!(stdout(&help).contains("Usage: cachectl"), "{command} --help");
    }
}

mod registry {
    use super::*;
    use cache::registry::{NewItem, Registry, Status};
    use serde_json::json;

    /// A registry with one Ready version, one Failed and one in the Trash; returns its keys.
    fn registry(dir: &Path) -> (String, String) {
        let registry = Registry::open(dir).unwrap();
        let ready =
            registry.create("https://example.org/a.csv", &json!({"y": 1}), &NewItem::new().attr("rows", 5)).unwrap();
        let mut writer = ready.write().unwrap();
        writer.write_all(b"a,b\n1,2\n").unwrap();
        let ready = writer.commit().unwrap();
        let mut failed =
            registry.create("https://example.org/b.csv", &json!({}), &NewItem::new().label("nightly")).unwrap();
        failed.set_status(Status::Failed).unwrap();
        let mut trashed = registry.create("https://example.org/a.csv", &json!({"y": 2}), &NewItem::new()).unwrap();
        trashed.trash().unwrap();
        (ready.key().to_owned(), failed.key().to_owned())
    }

    fn listed(output: &Output) -> Vec<(String, String)> {
        json(output)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| (item["key"].as_str().unwrap().to_owned(), item["status"].as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn ls_lists_filters_and_fits_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let (ready, failed) = registry(dir.path());
        let dir_arg = dir.path().to_str().unwrap();

        let all = run(&["registry", "--dir", dir_arg, "--json", "ls"], b"");
        expect(&all, 0);
        assert_eq!(listed(&all).len(), 3);
        let only_ready = run(&["registry", "--dir", dir_arg, "--json", "ls", "--status", "ready"], b"");
        assert_eq!(listed(&only_ready), [(ready.clone(), "ready".to_owned())]);
        let by_uri = run(&["registry", "--dir", dir_arg, "--json", "ls", "--uri", "%b.csv"], b"");
        assert_eq!(listed(&by_uri), [(failed, "failed".to_owned())]);

        let table = run(&["registry", "--dir", dir_arg, "ls"], b"");
        expect(&table, 0);
        let text = stdout(&table);
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("KEY"), "{text}");
        assert_eq!(lines.count(), 3, "{text}");
        assert!(text.contains(&ready) && text.contains("https://example.org/a.csv"), "a pipe gets whole cells: {text}");
    }

    #[test]
    fn show_and_search_find_items_by_key_start_and_attribute() {
        let dir = tempfile::tempdir().unwrap();
        let (ready, _) = registry(dir.path());
        let dir_arg = dir.path().to_str().unwrap();

        let show = run(&["registry", "--dir", dir_arg, "show", &ready[..10]], b"");
        expect(&show, 0);
        let text = stdout(&show);
        assert!(text.contains(&format!("key       {ready}")) && text.contains("attr      rows = 5"), "{text}");
        let missing = run(&["registry", "--dir", dir_arg, "show", "zzzz"], b"");
        expect(&missing, 1);

        let found = run(&["registry", "--dir", dir_arg, "--json", "search", "rows>=5"], b"");
        expect(&found, 0);
        assert_eq!(listed(&found), [(ready, "ready".to_owned())]);
        let none = run(&["registry", "--dir", dir_arg, "--json", "search", "rows>5"], b"");
        assert!(listed(&none).is_empty());
        let bad = run(&["registry", "--dir", dir_arg, "search", "rows"], b"");
        expect(&bad, 2);
        assert!(stderr(&bad).contains("no operator"), "{}", stderr(&bad));
    }

    #[test]
    fn gc_dry_run_reports_and_keeps_then_gc_removes() {
        let dir = tempfile::tempdir().unwrap();
        let (ready, _) = registry(dir.path());
        let dir_arg = dir.path().to_str().unwrap();

        let dry = run(&["registry", "--dir", dir_arg, "gc", "--dry-run"], b"");
        expect(&dry, 0);
        assert!(stdout(&dry).contains("would remove 2 versions and 0 unowned files"), "{}", stdout(&dry));
        assert_eq!(listed(&run(&["registry", "--dir", dir_arg, "--json", "ls"], b"")).len(), 3, "a dry run keeps all");

        let gc = run(&["registry", "--dir", dir_arg, "--json", "gc"], b"");
        expect(&gc, 0);
        let report = json(&gc);
        assert_eq!(report["dry_run"], false);
        let mut reasons: Vec<&str> =
            report["removed"].as_array().unwrap().iter().map(|removed| removed["reason"].as_str().unwrap()).collect();
        reasons.sort_unstable();
        assert_eq!(reasons, ["failed", "trash"]);
        assert_eq!(listed(&run(&["registry", "--dir", dir_arg, "--json", "ls"], b"")), [(ready, "ready".to_owned())]);

        // --keep 0 lets the Ready version go too.
        let keep = run(&["registry", "--dir", dir_arg, "gc", "--keep", "0"], b"");
        expect(&keep, 0);
        assert!(stdout(&keep).contains("removed 1 versions"), "{}", stdout(&keep));
    }

    #[test]
    fn a_directory_without_a_registry_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("typo");
        let output = run(&["registry", "--dir", missing.to_str().unwrap(), "ls"], b"");
        expect(&output, 2);
        assert!(stderr(&output).contains("no registry here"), "{}", stderr(&output));
        assert!(!missing.exists());
    }
}

/// A store that cannot be reached is a store error (exit 3), not a usage error: the URL
/// is fine, the server is not there. The message names the store without its password.
#[test]
fn an_unreachable_redis_exits_3_naming_the_store() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
    let url = format!("redis://:secret@127.0.0.1:{port}/0?connect_timeout=500ms");
    let output = run(&["--url", &url, "get", "k"], b"");
    expect(&output, 3);
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!("cachectl: open on redis://127.0.0.1:{port}/0: redis build: store unavailable")),
        "{message}"
    );
    assert!(message.contains(&format!("connecting to redis 127.0.0.1:{port}/0")), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

/// The same commands against the xtask's Redis, each a process of its own.
mod redis {
    use super::*;

    /// Database 9 of the xtask's Redis, under a prefix no other run uses.
    fn url() -> String {
        let server = std::env::var("CACHE_TEST_REDIS_URL").expect(
            "CACHE_TEST_REDIS_URL is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up redis)\"`",
        );
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("{server}/9?prefix=cachectl-{}-{nanos}:", std::process::id())
    }

    #[test]
    #[ignore = "needs redis: cargo xtask test"]
    fn set_get_incr_del_round_trip() {
        let url = url();
        let url = url.as_str();
        expect(&run(&["--url", url, "set", "greeting", "hello redis", "--ttl", "5m"], b""), 0);
        let get = run(&["--url", url, "get", "greeting"], b"");
        expect(&get, 0);
        assert_eq!(get.stdout, b"hello redis");

        expect(&run(&["--url", url, "set", "blob", "-"], &[0, 159, 146, 150]), 0);
        let blob = json(&run(&["--url", url, "--json", "get", "blob"], b""));
        assert_eq!(blob["encoding"], "base64");
        let decoded = base64::engine::general_purpose::STANDARD.decode(blob["value"].as_str().unwrap()).unwrap();
        assert_eq!(decoded, [0, 159, 146, 150]);

        let incr = run(&["--url", url, "incr", "visits"], b"");
        expect(&incr, 0);
        assert_eq!(stdout(&incr), "1\n");
        let incr = run(&["--url", url, "incr", "visits", "41"], b"");
        assert_eq!(stdout(&incr), "42\n");
        let word = run(&["--url", url, "incr", "greeting"], b"");
        expect(&word, 3);
        assert!(stderr(&word).contains("not an integer"), "{}", stderr(&word));

        let add = run(&["--url", url, "add", "greeting", "other"], b"");
        assert_eq!(stdout(&add), "false\n");
        let del = run(&["--url", url, "del", "greeting", "visits", "never-there"], b"");
        expect(&del, 0);
        assert_eq!(stdout(&del), "2\n");
        expect(&run(&["--url", url, "get", "greeting"], b""), 1);
        let has = run(&["--url", url, "has", "visits"], b"");
        expect(&has, 1);
        assert_eq!(stdout(&has), "false\n");

        expect(&run(&["--url", url, "clear", "--yes"], b""), 0);
        expect(&run(&["--url", url, "get", "blob"], b""), 1);
    }
}
