//! `bench`: a load generator over `Arc<dyn Cache>`, its HDR-histogram summary, and the
//! side-by-side comparison of several stores under the same workload.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache::{Bytes, Cache, Ttl};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::args::Bench;
use crate::fail::{Exit, Failure};
use crate::interrupt::ctrl_c;
use crate::open::open;
use crate::output::{json_line, stdout_bytes};
use crate::table::{Fit, Table};

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Distribution {
    /// Key `i` (from 1) drawn with probability proportional to `1 / i^s`: a few hot keys.
    Zipf(f64),
    /// Every key equally likely.
    Uniform,
}

impl Distribution {
    pub(crate) fn parse(text: &str) -> Result<Distribution, String> {
        if text == "uniform" {
            return Ok(Distribution::Uniform);
        }
        let exponent = text.strip_prefix("zipf:").or((text == "zipf").then_some("1.0"));
        match exponent.map(str::parse::<f64>) {
            Some(Ok(s)) if s > 0.0 && s.is_finite() => Ok(Distribution::Zipf(s)),
            _ => Err("expected `uniform` or `zipf:S` with S > 0, e.g. zipf:1.0".to_owned()),
        }
    }

    fn label(self) -> String {
        match self {
            Distribution::Zipf(s) => format!("zipf:{s}"),
            Distribution::Uniform => "uniform".to_owned(),
        }
    }
}

/// One workload, run the same way on every store.
#[derive(Debug, Clone)]
struct Workload {
    ops: Option<u64>,
    duration: Duration,
    concurrency: u32,
    value_size: usize,
    read_ratio: f64,
    keys: u64,
    distribution: Distribution,
}

/// What one run measured.
struct Summary {
    store: String,
    ops: u64,
    elapsed: Duration,
    reads: u64,
    hits: u64,
    writes: u64,
    /// Latency of every call, in nanoseconds.
    latency: Histogram<u64>,
    interrupted: bool,
}

/// Latency bounds of the histogram: 1 ns to an hour at 3 significant digits (about 0.1%
/// error), which covers an in-process hit and a timed-out network call alike.
const LOWEST_NS: u64 = 1;
const HIGHEST_NS: u64 = 3_600_000_000_000;

fn histogram() -> Result<Histogram<u64>, Failure> {
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, 3)
        .map_err(|error| Failure::other(format!("bench: latency histogram: {error}")))
}

pub(crate) async fn run(url: &Option<String>, args: Bench, json: bool) -> Result<Exit, Failure> {
    let workload = Workload {
        ops: args.ops,
        duration: args.duration.unwrap_or(Duration::from_secs(10)),
        concurrency: args.concurrency,
        value_size: args.value_size,
        read_ratio: args.read_ratio,
        keys: args.keys,
        distribution: args.distribution,
    };
    let first = url.as_deref();
    // Open every store before running any, so a bad URL in --compare fails at once.
    let mut stores = vec![open(first).await?];
    for other in &args.compare {
        stores.push(open(Some(other)).await?);
    }
    // A store that would refuse every write is a usage error, said before any run starts.
    for (store, name) in &stores {
        if !store.capabilities().fits(workload.value_size) {
            let limit = store.capabilities().max_value_len.unwrap_or(usize::MAX);
            return Err(Failure::usage(format!(
                "bench on {name}: --value-size {} is over the store's limit of {limit} bytes",
                workload.value_size
            )));
        }
    }
    let mut summaries = Vec::new();
    for (store, name) in stores {
        let summary = run_one(store, name, &workload).await?;
        let interrupted = summary.interrupted;
        summaries.push(summary);
        if interrupted {
            break;
        }
    }
    if json {
        let runs: Vec<Value> = summaries.iter().map(Summary::to_json).collect();
        json_line(&json!({ "workload": workload.to_json(), "runs": runs }))?;
    } else {
        stdout_bytes(render(&workload, &summaries).as_bytes())?;
    }
    if let Some(path) = &args.plot {
        crate::plot::latency_svg(path, &summaries.iter().map(|s| (s.store.as_str(), &s.latency)).collect::<Vec<_>>())?;
    }
    if summaries.iter().any(|summary| summary.interrupted) {
        return Err(Failure::interrupted("bench stopped early; the figures above cover what ran"));
    }
    Ok(Exit::Done)
}

/// Shared between the workers of one run.
struct Shared {
    store: Arc<dyn Cache>,
    /// The store's URL without secrets, for messages.
    name: String,
    workload: Workload,
    value: Bytes,
    /// Calls started, to stop at `--ops` exactly.
    issued: AtomicU64,
    /// Calls finished, for progress.
    done: AtomicU64,
    stop: AtomicBool,
    deadline: Instant,
}

impl Shared {
    /// Claims the right to make one more call; false once the run is over.
    fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.workload.ops {
            Some(ops) => self.issued.fetch_add(1, Ordering::Relaxed) < ops,
            None => Instant::now() < self.deadline,
        }
    }
}

/// What one worker saw.
struct Tally {
    reads: u64,
    hits: u64,
    writes: u64,
    latency: Histogram<u64>,
}

async fn run_one(store: Arc<dyn Cache>, name: String, workload: &Workload) -> Result<Summary, Failure> {
    let shared = Arc::new(Shared {
        store,
        name: name.clone(),
        workload: workload.clone(),
        value: value_of(workload.value_size),
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        deadline: Instant::now() + workload.duration,
    });
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..workload.concurrency {
        let shared = Arc::clone(&shared);
        workers.spawn(async move {
            let result = work(&shared, worker).await;
            if result.is_err() {
                // One failure ends the run for everyone: its message is what matters.
                shared.stop.store(true, Ordering::Relaxed);
            }
            result
        });
    }
    let progress = Progress::start(&name, workload);
    let mut tallies = Vec::new();
    let mut failure = None;
    let mut interrupted = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(Ok(Ok(tally))) => tallies.push(tally),
                Some(Ok(Err(error))) => { failure.get_or_insert(error); }
                Some(Err(panic)) => { failure.get_or_insert(Failure::other(format!("bench worker failed: {panic}"))); }
            },
            _ = tick.tick() => progress.update(shared.done.load(Ordering::Relaxed), started.elapsed()),
            () = ctrl_c(), if !interrupted => {
                // Workers finish the call they are in, so no write is cut in half.
                interrupted = true;
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
    }
    let elapsed = started.elapsed();
    progress.finish(shared.done.load(Ordering::Relaxed), elapsed);
    if let Some(failure) = failure {
        return Err(failure);
    }
    let mut summary =
        Summary { store: name, ops: 0, elapsed, reads: 0, hits: 0, writes: 0, latency: histogram()?, interrupted };
    for tally in tallies {
        summary.reads += tally.reads;
        summary.hits += tally.hits;
        summary.writes += tally.writes;
        summary
            .latency
            .add(&tally.latency)
            .map_err(|error| Failure::other(format!("bench: merging latencies: {error}")))?;
    }
    summary.ops = summary.latency.len();
    Ok(summary)
}

/// A value of `size` bytes that no store can compress to nothing.
fn value_of(size: usize) -> Bytes {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut value = vec![0_u8; size];
    rng.fill(&mut value[..]);
    Bytes::from(value)
}

async fn work(shared: &Shared, worker: u32) -> Result<Tally, Failure> {
    let workload = &shared.workload;
    // A fixed seed per worker: two runs (and two stores in --compare) see the same key sequence.
    let mut rng = SmallRng::seed_from_u64(u64::from(worker).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xcafe);
    let zipf = match workload.distribution {
        Distribution::Zipf(s) => Some(
            rand_distr::Zipf::new(workload.keys as f64, s)
                .map_err(|error| Failure::usage(format!("bench: --distribution zipf:{s}: {error}")))?,
        ),
        Distribution::Uniform => None,
    };
    let mut tally = Tally { reads: 0, hits: 0, writes: 0, latency: histogram()? };
    let failed = |operation: &str, error: &cache::Error| Failure::store(&shared.name, operation, error);
    while shared.claim() {
        let index = match &zipf {
            // Zipf draws 1..=keys as a float; rank 1 is the hottest key.
            Some(zipf) => (rng.sample(zipf) as u64).saturating_sub(1).min(workload.keys - 1),
            None => rng.random_range(0..workload.keys),
        };
        let key = format!("cachectl-bench:{index}");
        let read = rng.random_bool(workload.read_ratio);
        if read {
            let started = Instant::now();
            let found = shared.store.get(&key).await.map_err(|error| failed("bench get", &error))?;
            record(&mut tally.latency, started);
            shared.done.fetch_add(1, Ordering::Relaxed);
            tally.reads += 1;
            if found.is_some() {
                tally.hits += 1;
                continue;
            }
            // A miss is filled, as a read-through cache would, if the budget allows one more call.
            if !shared.claim() {
                break;
            }
        }
        let started = Instant::now();
        shared
            .store
            .set(&key, shared.value.clone(), Ttl::Default)
            .await
            .map_err(|error| failed("bench set", &error))?;
        record(&mut tally.latency, started);
        shared.done.fetch_add(1, Ordering::Relaxed);
        tally.writes += 1;
    }
    Ok(tally)
}

fn record(histogram: &mut Histogram<u64>, started: Instant) {
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    // Clamped into the histogram's range, so an outlier beyond an hour is counted, not lost.
    histogram.saturating_record(nanos.clamp(LOWEST_NS, HIGHEST_NS));
}

impl Workload {
    fn to_json(&self) -> Value {
        json!({
            "ops": self.ops,
            "duration_s": self.ops.is_none().then_some(self.duration.as_secs_f64()),
            "concurrency": self.concurrency,
            "value_size": self.value_size,
            "read_ratio": self.read_ratio,
            "keys": self.keys,
            "distribution": self.distribution.label(),
        })
    }

    fn describe(&self) -> String {
        let length = match self.ops {
            Some(ops) => format!("{ops} ops"),
            None => humantime::format_duration(self.duration).to_string(),
        };
        format!(
            "{length}, {} workers, {} B values, {:.0}% reads, {} keys ({})",
            self.concurrency,
            self.value_size,
            self.read_ratio * 100.0,
            self.keys,
            self.distribution.label()
        )
    }
}

/// The percentiles every summary reports, with their names in text and JSON.
const PERCENTILES: [(&str, f64); 4] = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];

impl Summary {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn hit_ratio(&self) -> Option<f64> {
        (self.reads > 0).then(|| self.hits as f64 / self.reads as f64)
    }

    fn micros_at(&self, percentile: f64) -> f64 {
        self.latency.value_at_percentile(percentile) as f64 / 1_000.0
    }

    fn max_micros(&self) -> f64 {
        self.latency.max() as f64 / 1_000.0
    }

    fn to_json(&self) -> Value {
        let mut latency = serde_json::Map::new();
        for (name, percentile) in PERCENTILES {
            latency.insert(name.to_owned(), json!(self.micros_at(percentile)));
        }
        latency.insert("max".to_owned(), json!(self.max_micros()));
        latency.insert("mean".to_owned(), json!(self.latency.mean() / 1_000.0));
        json!({
            "store": self.store,
            "ops": self.ops,
            "seconds": self.elapsed.as_secs_f64(),
            "ops_per_sec": self.ops_per_sec(),
            "latency_us": latency,
            "reads": self.reads,
            "hits": self.hits,
            "writes": self.writes,
            "hit_ratio": self.hit_ratio(),
            "interrupted": self.interrupted,
        })
    }
}

/// The summary as a table: one row per figure, one column per store, so the first column can
/// be matched by scripts (`awk '$1 == "p99(µs)"'`).
fn render(workload: &Workload, summaries: &[Summary]) -> String {
    let mut columns: Vec<(&'static str, Fit)> = vec![("metric", Fit::Whole)];
    columns.extend(summaries.iter().map(|_| ("", Fit::Whole)));
    let mut table = Table::new(&columns);
    let mut row = |metric: &str, cell: &dyn Fn(&Summary) -> String| {
        let mut cells = vec![metric.to_owned()];
        cells.extend(summaries.iter().map(cell));
        table.row(cells);
    };
    row("store", &|s| s.store.clone());
    row("ops", &|s| s.ops.to_string());
    row("seconds", &|s| format!("{:.3}", s.elapsed.as_secs_f64()));
    row("ops/s", &|s| format!("{:.0}", s.ops_per_sec()));
    if summaries.len() > 1 {
        let first = summaries[0].ops_per_sec();
        row("ops/s÷first", &|s| format!("{:.2}", s.ops_per_sec() / first.max(f64::MIN_POSITIVE)));
    }
    for (name, percentile) in PERCENTILES {
        row(&format!("{name}(µs)"), &|s| format!("{:.1}", s.micros_at(percentile)));
    }
    row("max(µs)", &|s| format!("{:.1}", s.max_micros()));
    row("reads", &|s| s.reads.to_string());
    row("writes", &|s| s.writes.to_string());
    row("hit_ratio", &|s| s.hit_ratio().map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.4}")));
    // The header row is empty but for `metric`; the workload line says what ran instead.
    let text = table.render(None);
    let body: String = text.lines().skip(1).map(|line| format!("{line}\n")).collect();
    format!("workload  {}\n{body}", workload.describe())
}

/// Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise.
enum Progress {
    /// `by_ops`: the bar counts operations (`--ops`), else milliseconds of `--duration`.
    Bar {
        bar: indicatif::ProgressBar,
        by_ops: bool,
    },
    Lines {
        name: String,
        last: std::sync::Mutex<Instant>,
    },
}

/// How often the plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    fn start(name: &str, workload: &Workload) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines { name: name.to_owned(), last: std::sync::Mutex::new(Instant::now()) };
        }
        let (length, template) = match workload.ops {
            Some(ops) => (ops, "{msg} [{bar:30}] {pos}/{len} ops, {prefix}, eta {eta}"),
            None => (workload.duration.as_millis().try_into().unwrap_or(u64::MAX), "{msg} [{bar:30}] {prefix}"),
        };
        let bar = indicatif::ProgressBar::new(length).with_message(name.to_owned());
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress::Bar { bar, by_ops: workload.ops.is_some() }
    }

    fn update(&self, done: u64, elapsed: Duration) {
        match self {
            Progress::Bar { bar, by_ops: true } => {
                bar.set_position(done);
                bar.set_prefix(format!("{:.0} ops/s", rate(done, elapsed)));
            }
            Progress::Bar { bar, by_ops: false } => {
                bar.set_position(elapsed.as_millis().try_into().unwrap_or(u64::MAX));
                bar.set_prefix(format!("{done} ops, {:.0} ops/s", rate(done, elapsed)));
            }
            Progress::Lines { name, last } => {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    eprintln!(
                        "bench {name}: {done} ops in {:.1} s, {:.0} ops/s",
                        elapsed.as_secs_f64(),
                        rate(done, elapsed)
                    );
                }
            }
        }
    }

    fn finish(&self, done: u64, elapsed: Duration) {
        match self {
            Progress::Bar { bar, .. } => bar.finish_and_clear(),
            Progress::Lines { name, .. } => {
                eprintln!("bench {name}: done, {done} ops in {:.2} s", elapsed.as_secs_f64());
            }
        }
    }
}

fn rate(done: u64, elapsed: Duration) -> f64 {
    done as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_parse() {
        assert_eq!(Distribution::parse("uniform"), Ok(Distribution::Uniform));
        assert_eq!(Distribution::parse("zipf:1.2"), Ok(Distribution::Zipf(1.2)));
        assert_eq!(Distribution::parse("zipf"), Ok(Distribution::Zipf(1.0)));
        for bad in ["zipf:0", "zipf:-1", "zipf:x", "normal", "zipf:inf"] {
            assert!(Distribution::parse(bad).is_err(), "{bad}");
        }
    }
}
