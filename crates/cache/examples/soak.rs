//! A soak: 64 tasks of mixed operations on one store for a while, checked against a model.
//!
//! `cargo xtask soak --store redis --secs 60` runs it while the xtask kills and restarts the
//! server three times; on its own it runs against any URL:
//!
//! ```sh
//! cargo run -p cache --example soak --features redis -- --url redis://127.0.0.1:6379 --secs 30
//! ```
//!
//! Every value read is checked against what its task wrote: a key's value is
//! `<key>=<sequence>`, so a read may be a miss (the server lost its data in a restart) or a
//! write of this key not older than the last acknowledged one, never another key's value
//! or an older write. Counters must never go backwards except to a fresh start after a
//! loss. It prints operations, errors by kind, the worst latency and every violation, and
//! exits with 1 when there was one (or when an error was not temporary).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::{Bytes, Cache, Ttl};

const TASKS: usize = 64;
const KEYS_PER_TASK: usize = 8;

struct Settings {
    url: String,
    secs: u64,
}

fn settings() -> Result<Settings, String> {
    let mut url = std::env::var(cache::CACHE_URL).ok();
    let mut secs = 60;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value()?),
            "--secs" => secs = value()?.parse().map_err(|_| "--secs takes whole seconds".to_owned())?,
            other => return Err(format!("unknown argument {other}; usage: soak --url URL [--secs N]")),
        }
    }
    let url = url.ok_or("give the store's URL with --url or CACHE_URL")?;
    Ok(Settings { url, secs })
}

/// What one task saw.
#[derive(Default)]
struct Report {
    operations: u64,
    errors: BTreeMap<String, u64>,
    worst: Duration,
    violations: Vec<String>,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.operations += other.operations;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.worst = self.worst.max(other.worst);
        self.violations.extend(other.violations);
    }

    async fn time<T>(&mut self, call: impl Future<Output = cache::Result<T>>) -> Option<T> {
        let started = Instant::now();
        let outcome = call.await;
        self.operations += 1;
        self.worst = self.worst.max(started.elapsed());
        match outcome {
            Ok(value) => Some(value),
            Err(error) => {
                if !error.is_temporary() {
                    self.violations.push(format!("a permanent error under faults: {error}"));
                }
                *self.errors.entry(format!("{:?}", error.kind())).or_default() += 1;
                None
            }
        }
    }
}

/// One task's model: per key the last acknowledged and the last attempted write.
struct Model {
    keys: Vec<String>,
    acked: Vec<u64>,
    attempted: Vec<u64>,
    counter: String,
    counted: i64,
}

impl Model {
    fn new(task: usize) -> Self {
        Model {
            keys: (0..KEYS_PER_TASK).map(|index| format!("soak-{task}-{index}")).collect(),
            acked: vec![0; KEYS_PER_TASK],
            attempted: vec![0; KEYS_PER_TASK],
            counter: format!("soak-{task}-counter"),
            counted: 0,
        }
    }

    /// A read of key `index` must be a miss or one of its writes not older than the last
    /// acknowledged one. A miss means the server lost its data: later reads may then be
    /// older than what was acknowledged before the loss, so the floor drops to 0.
    fn check(&mut self, index: usize, value: Option<&Bytes>, report: &mut Report) {
        let key = &self.keys[index];
        let Some(value) = value else {
            self.acked[index] = 0;
            return;
        };
        let text = String::from_utf8_lossy(value);
        match text.strip_prefix(&format!("{key}=")).and_then(|seq| seq.parse::<u64>().ok()) {
            Some(seq) if (self.acked[index]..=self.attempted[index]).contains(&seq) => self.acked[index] = seq,
            _ => report.violations.push(format!(
                "{key} read {text:?}; expected a miss or {key}=<{}..={}>",
                self.acked[index], self.attempted[index]
            )),
        }
    }

    async fn step(&mut self, cache: &dyn Cache, round: u64, report: &mut Report) {
        let index = (round as usize * 7 + 3) % KEYS_PER_TASK;
        match round % 5 {
            0 | 1 => {
                self.attempted[index] += 1;
                let seq = self.attempted[index];
                let value = Bytes::from(format!("{}={seq}", self.keys[index]));
                if report.time(cache.set(&self.keys[index], value, Ttl::secs(600))).await.is_some() {
                    self.acked[index] = seq;
                }
            }
            2 => {
                if let Some(value) = report.time(cache.get(&self.keys[index])).await {
                    self.check(index, value.as_ref(), report);
                }
            }
            3 => {
                let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
                if let Some(values) = report.time(cache.get_many(&keys)).await {
                    if values.len() != keys.len() {
                        report.violations.push(format!("get_many of {} keys gave {}", keys.len(), values.len()));
                    }
                    for (index, value) in values.iter().enumerate().take(KEYS_PER_TASK) {
                        self.check(index, value.as_ref(), report);
                    }
                }
            }
            _ => {
                if let Some(value) = report.time(cache.incr(&self.counter, 1)).await {
                    // Backwards only to a fresh count after the server lost its data.
                    if value <= self.counted && value != 1 {
                        report.violations.push(format!("{} went from {} to {value}", self.counter, self.counted));
                    }
                    self.counted = value;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    let cache = match cache::open(&settings.url).await {
        Ok(cache) => cache,
        Err(error) => {
            eprintln!("soak: opening the store: {error}");
            return ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(settings.secs);
    println!("soak: {TASKS} tasks on {} for {} s", cache_name(&*cache), settings.secs);

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let cache: Arc<dyn Cache> = Arc::clone(&cache);
        tasks.spawn(async move {
            let mut model = Model::new(task);
            let mut report = Report::default();
            let mut round = 0;
            while Instant::now() < deadline {
                model.step(&*cache, round, &mut report).await;
                round += 1;
            }
            report
        });
    }
    let mut total = Report::default();
    for report in tasks.join_all().await {
        total.merge(report);
    }

    let errors: u64 = total.errors.values().sum();
    println!("operations: {}", total.operations);
    println!("errors: {errors} {:?}", total.errors);
    println!("worst latency: {:.3} s", total.worst.as_secs_f64());
    println!("values checked against the model: {} violations", total.violations.len());
    for violation in total.violations.iter().take(20) {
        println!("  {violation}");
    }
    if total.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The store's type, from its `Debug` output, for the first line.
fn cache_name(cache: &dyn Cache) -> String {
    format!("{cache:?}").split([' ', '{', '(']).next().unwrap_or("a cache").to_owned()
}
