//! The command line, as clap derive types. Every `about`/`long_about` here is the `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench::Distribution;
use crate::size::parse_size;

const EXAMPLES: &str = "\
Examples:
  cachectl --url memory:// incr visits
  export CACHE_URL='file:///var/cache/app?prefix=web:'
  cachectl set greeting 'hello' --ttl 5m
  cachectl get greeting                      # raw bytes to stdout; exit 1 on a miss
  tar c src | cachectl set src.tar -         # the value from stdin
  cachectl --json get src.tar                # base64 when the value is not UTF-8
  cachectl del a b c
  cachectl clear --yes
  printf 'set k v\\nget k\\n' | cachectl --url memory:// batch   # many commands, one store
  cachectl bench --duration 10s --concurrency 8 --compare memory://
  cachectl registry --dir ~/.cache/app ls --status ready

Exit codes:
  0  found / done
  1  miss (get, has), like grep
  2  usage error (bad arguments, bad URL, clear refused without --yes)
  3  store error (unreachable server, I/O, a value the store rejects)
  130 interrupted (Ctrl-C)

Errors go to stderr and name the store, the operation and the cause.";

/// A command line for every cache store, through one URL.
#[derive(Debug, Parser)]
#[command(name = "cachectl", version, after_long_help = EXAMPLES, max_term_width = 100)]
#[command(long_about = "A command line for every cache store, through one URL.\n\n\
    The store comes from --url or the CACHE_URL environment variable: memory://, \
    file:///abs/path, redis://host:port/db, memcache://h1:p1,h2:p2, dynamodb://table, \
    mongodb://host:port/db (each where its cargo feature is built in), with `prefix` and `ttl` \
    query settings on every scheme. A memory:// store lives only as long as one command (or one `batch`).")]
pub(crate) struct Cli {
    /// The store, e.g. `memory://`, `file:///var/cache/app?prefix=web:`, `redis://127.0.0.1:6379/0`.
    #[arg(long, global = true, env = "CACHE_URL", hide_env_values = true, value_name = "URL")]
    pub(crate) url: Option<String>,

    /// Machine-readable JSON on stdout instead of raw bytes and text (values that are not
    /// UTF-8 are base64).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the value of KEY as raw bytes; exit 1 when it is missing.
    #[command(after_help = "Example: cachectl get user:7 > user7.json")]
    Get {
        /// The key.
        key: String,
    },
    /// Store VALUE (or stdin, with `-` or no VALUE) under KEY, replacing any entry.
    #[command(after_help = "Examples:\n  cachectl set greeting hello --ttl 30s\n  cachectl set report - < report.pdf")]
    Set(Write),
    /// Store VALUE under KEY only if KEY has no live entry; prints whether it did.
    #[command(after_help = "Example: cachectl add lock:nightly \"$HOSTNAME\" --ttl 1h")]
    Add(Write),
    /// Remove KEYs; prints how many live entries were removed.
    #[command(visible_alias = "delete", after_help = "Example: cachectl del session:1 session:2")]
    Del {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Exit 0 when KEY has a live entry, 1 when it does not (prints true or false).
    #[command(after_help = "Example: cachectl has lock:nightly && echo running")]
    Has {
        /// The key.
        key: String,
    },
    /// Add DELTA (default 1, may be negative) to the integer under KEY; prints the new value.
    #[command(after_help = "Examples:\n  cachectl incr visits\n  cachectl incr stock -3")]
    Incr {
        /// The key.
        key: String,
        /// How much to add; a missing key counts as 0.
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        delta: i64,
    },
    /// Remove every entry of this store (with a prefix: every entry under it).
    ///
    /// Without --yes it asks on a terminal, and refuses (exit 2) when stdin is not one.
    #[command(after_help = "Example: cachectl --url 'redis://127.0.0.1/0?prefix=tmp:' clear --yes")]
    Clear {
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
    /// Print what the store is and what it can do (its capabilities).
    Stats,
    /// Run store commands read from stdin, one per line, on one open store.
    ///
    /// Each line is a store command as on the command line, without `cachectl` and `--url`
    /// (`set k "two words"`, `--json get k`); blank lines and lines starting with `#` are
    /// skipped. Values must be arguments (stdin holds the commands) and `clear` needs
    /// `--yes`. Every raw `get` prints one line: the value and a newline, or an empty line on
    /// a miss (use `--json` to tell a miss from an empty value, and for binary values). A
    /// miss does not stop the batch; the first error does, with its exit code. A memory://
    /// store lives for the whole batch.
    #[command(after_help = "Example: printf 'set k v\\nget k\\nincr n 5\\n' | cachectl --url memory:// batch")]
    Batch,
    /// Generate load on the store and print throughput, latency percentiles and hit ratio.
    #[command(after_long_help = BENCH_EXAMPLES)]
    Bench(Bench),
    /// Inspect and clean a file registry (versioned cached files with status and attributes).
    Registry(Registry),
}

/// `set` and `add`.
#[derive(Debug, Args)]
pub(crate) struct Write {
    /// The key.
    pub(crate) key: String,
    /// The value; `-` or nothing reads it from stdin.
    pub(crate) value: Option<String>,
    /// How long the entry lives (`30s`, `5m`, `1h30m`, `never`); default: the store's.
    #[arg(long, value_parser = parse_ttl, value_name = "DURATION")]
    pub(crate) ttl: Option<TtlArg>,
}

/// A `--ttl` as given.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TtlArg {
    Never,
    After(Duration),
}

fn parse_ttl(text: &str) -> Result<TtlArg, String> {
    if text == "never" {
        return Ok(TtlArg::Never);
    }
    humantime::parse_duration(text)
        .map(TtlArg::After)
        .map_err(|error| format!("{error} (expected a duration such as 30s, 5m, 1h30m, or `never`)"))
}

const BENCH_EXAMPLES: &str = "\
Each worker loops: pick a key (zipf or uniform over --keys), then with probability
--read-ratio get it (and set it on a miss, as a read-through cache would), otherwise set it.
Every call (get or set) is one timed operation. Keys are `cachectl-bench:N`: give the URL
a prefix to keep them apart from real data.

Examples:
  cachectl --url memory:// bench --ops 200000
  cachectl --url file:///tmp/c bench --duration 10s --concurrency 4 --value-size 4KiB
  cachectl --url redis://127.0.0.1/0 bench --duration 5s --compare memory:// file:///tmp/c --plot lat.svg
  cachectl --url memory:// --json bench --ops 10000 --distribution uniform";

/// `bench`.
#[derive(Debug, Args)]
pub(crate) struct Bench {
    /// Stop after this many operations in total.
    #[arg(long, conflicts_with = "duration")]
    pub(crate) ops: Option<u64>,
    /// Stop after this long (`10s`, `1m`); default 10s when --ops is not given.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) duration: Option<Duration>,
    /// Concurrent workers (async tasks over one shared store handle).
    #[arg(long, short = 'c', default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) concurrency: u32,
    /// Size of every value written (`100`, `1KiB`, `1MiB`).
    #[arg(long, default_value = "1KiB", value_parser = parse_value_size, value_name = "SIZE")]
    pub(crate) value_size: usize,
    /// Share of operations that are reads (0.0 to 1.0).
    #[arg(long, default_value_t = 0.9, value_parser = parse_ratio)]
    pub(crate) read_ratio: f64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) keys: u64,
    /// Key popularity: `zipf:S` (S > 0, e.g. zipf:1.0) or `uniform`.
    #[arg(long, default_value = "zipf:1.0", value_parser = Distribution::parse)]
    pub(crate) distribution: Distribution,
    /// Run the same workload on these stores too, one after the other, and print them side by side.
    #[arg(long, num_args = 1.., value_name = "URL")]
    pub(crate) compare: Vec<String>,
    /// Draw the latency distributions into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub(crate) plot: Option<PathBuf>,
}

/// Every worker shares one value, but it is still held in memory: 1 GiB is plenty for a bench.
fn parse_value_size(text: &str) -> Result<usize, String> {
    match parse_size(text)? {
        size if size <= 1 << 30 => Ok(size),
        _ => Err("bench values are at most 1GiB".to_owned()),
    }
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("expected a number from 0.0 to 1.0".to_owned()),
    }
}

/// `registry`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  cachectl registry --dir ~/.cache/app ls --uri 'https://example.org/%' --status ready
  cachectl registry --dir ~/.cache/app show 3f2a9c
  cachectl registry --dir ~/.cache/app search 'rows>=1000' 'source=survey'
  cachectl registry --dir ~/.cache/app gc --dry-run --keep 2")]
pub(crate) struct Registry {
    /// The registry directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: PathBuf,
    #[command(subcommand)]
    pub(crate) command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// List versions, newest first.
    Ls {
        /// Only this URI; `%` and `_` are SQL LIKE wildcards.
        #[arg(long)]
        uri: Option<String>,
        /// Only versions with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Show every version of one item key (or a unique start of one), with params and attributes.
    Show {
        /// The item key, or enough of its start to be unique.
        key: String,
    },
    /// Find versions whose attributes match every condition.
    ///
    /// A condition is `NAME OP VALUE` with OP one of = != < <= > >= ~ (SQL LIKE), or `NAME?`
    /// (the attribute exists). VALUE is an integer, a float, `true`/`false`, or text (quotes
    /// optional). Dotted names reach nested attributes.
    Search {
        /// Conditions, all of which must hold (e.g. `rows>=1000` `source=survey`).
        #[arg(required = true)]
        conditions: Vec<String>,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Remove Failed and Trash versions, versions whose file is gone, and unowned files.
    Gc {
        /// Only report what would go.
        #[arg(long)]
        dry_run: bool,
        /// Also remove Ready versions beyond the newest N of each key.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Also remove Uninitialized and Write versions older than this (`1d`, `12h`).
        #[arg(long, value_parser = humantime::parse_duration, value_name = "AGE")]
        stale_after: Option<Duration>,
    },
}

/// `--status`, named as the registry names them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StatusArg {
    Uninitialized,
    Write,
    Ready,
    Failed,
    Trash,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
