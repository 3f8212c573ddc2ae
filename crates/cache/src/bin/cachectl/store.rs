//! The store commands: get, set, add, del, has, incr, clear, stats.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use cache::{Bytes, Cache, Ttl};
use serde_json::json;

use clap::Parser;

use crate::args::{Cli, Command, TtlArg, Write as WriteArgs};
use crate::fail::{Exit, Failure};
use crate::interrupt::ctrl_c;
use crate::open::open;
use crate::output::{json_line, json_value, line, stdout_bytes, with};

pub(crate) async fn run(url: &Option<String>, command: Command, json: bool) -> Result<Exit, Failure> {
    if matches!(command, Command::Batch) {
        return batch(url, json).await;
    }
    // Read stdin before touching the store, so a failing pipe never half-writes anything.
    let input = match &command {
        Command::Set(write) | Command::Add(write) => Some(value_of(write)?),
        _ => None,
    };
    let (cache, name) = open(url.as_deref()).await?;
    Store { cache, name, json, batch: false }.execute(command, input).await
}

/// `batch`: store commands from stdin, one per line, on one open store.
async fn batch(url: &Option<String>, json: bool) -> Result<Exit, Failure> {
    let (cache, name) = open(url.as_deref()).await?;
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let number = index + 1;
        let at_line = |failure: Failure| failure.context(&format!("batch line {number}"));
        let line = line.map_err(|error| Failure::other(format!("batch: reading stdin: {error}")))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let command = batch_command(line).map_err(at_line)?;
        let json = json || command.0;
        let store = Store { cache: Arc::clone(&cache), name: name.clone(), json, batch: true };
        let value = match &command.1 {
            Command::Set(write) | Command::Add(write) => {
                write.value.as_deref().map(|value| Bytes::copy_from_slice(value.as_bytes()))
            }
            _ => None,
        };
        match store.execute(command.1, value).await.map_err(at_line)? {
            // A miss is an answer; the next line still runs.
            Exit::Done | Exit::Miss => {}
        }
    }
    Ok(Exit::Done)
}

/// One batch line as a command (and whether it asked for `--json`), or why it cannot run.
fn batch_command(line: &str) -> Result<(bool, Command), Failure> {
    let Some(words) = shlex::split(line) else {
        return Err(Failure::usage("unbalanced quotes"));
    };
    if words.iter().any(|word| word == "--url" || word.starts_with("--url=")) {
        return Err(Failure::usage("--url is given once, for the whole batch"));
    }
    let cli = Cli::try_parse_from(std::iter::once("cachectl".to_owned()).chain(words)).map_err(|error| {
        // clap's first line says what is wrong; the rest is usage help meant for a terminal.
        let text = error.to_string();
        let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
        Failure::usage(first)
    })?;
    match &cli.command {
        Command::Set(write) | Command::Add(write) if matches!(write.value.as_deref(), None | Some("-")) => {
            Err(Failure::usage("in a batch the value is an argument: stdin holds the commands"))
        }
        Command::Clear { yes: false } => Err(Failure::usage("in a batch, clear needs --yes")),
        Command::Bench(_) | Command::Registry(_) | Command::Batch => {
            Err(Failure::usage("only store commands (get set add del has incr clear stats) run in a batch"))
        }
        _ => Ok((cli.json, cli.command)),
    }
}

/// The value argument, or stdin when it is `-` or absent.
fn value_of(write: &WriteArgs) -> Result<Bytes, Failure> {
    match write.value.as_deref() {
        // Waiting for a person to type a value they meant to give as an argument helps
        // nobody; `-` still reads a terminal, until Ctrl-D.
        None if std::io::stdin().is_terminal() => Err(Failure::usage(format!(
            "no value for `{}`: give it as an argument, `-` to type it, or pipe it in",
            write.key
        ))),
        Some("-") | None => {
            let mut value = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut value)
                .map_err(|error| Failure::other(format!("reading the value from stdin: {error}")))?;
            Ok(Bytes::from(value))
        }
        Some(value) => Ok(Bytes::copy_from_slice(value.as_bytes())),
    }
}

fn ttl_of(write: &WriteArgs) -> Ttl {
    match write.ttl {
        None => Ttl::Default,
        Some(TtlArg::Never) => Ttl::Never,
        Some(TtlArg::After(lifetime)) => Ttl::After(lifetime),
    }
}

struct Store {
    cache: Arc<dyn Cache>,
    /// The URL without secrets, for messages.
    name: String,
    json: bool,
    /// In a batch a raw `get` value ends with a newline, so results stay apart.
    batch: bool,
}

impl Store {
    async fn execute(&self, command: Command, input: Option<Bytes>) -> Result<Exit, Failure> {
        match command {
            Command::Get { key } => self.get(&key).await,
            Command::Set(write) => self.set(&write.key, input.unwrap_or_default(), ttl_of(&write)).await,
            Command::Add(write) => self.add(&write.key, input.unwrap_or_default(), ttl_of(&write)).await,
            Command::Del { keys } => self.del(&keys).await,
            Command::Has { key } => self.has(&key).await,
            Command::Incr { key, delta } => self.incr(&key, delta).await,
            Command::Clear { yes } => self.clear(yes).await,
            Command::Stats => self.stats(),
            Command::Bench(_) | Command::Registry(_) | Command::Batch => {
                Err(Failure::other("internal: not a store command"))
            }
        }
    }

    fn failed(&self, operation: &str, error: &cache::Error) -> Failure {
        Failure::store(&self.name, operation, error)
    }

    async fn get(&self, key: &str) -> Result<Exit, Failure> {
        let value = self.cache.get(key).await.map_err(|error| self.failed("get", &error))?;
        match (value, self.json) {
            (Some(value), false) => {
                stdout_bytes(&value)?;
                if self.batch {
                    stdout_bytes(b"\n")?;
                }
                Ok(Exit::Done)
            }
            (Some(value), true) => {
                json_line(&with(json!({"key": key, "found": true}), json_value(&value))).map(|()| Exit::Done)
            }
            (None, false) => {
                // One line per `get` keeps a batch's results aligned with its commands.
                if self.batch {
                    stdout_bytes(b"\n")?;
                }
                Ok(Exit::Miss)
            }
            (None, true) => json_line(&json!({"key": key, "found": false})).map(|()| Exit::Miss),
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<Exit, Failure> {
        let len = value.len();
        self.cache.set(key, value, ttl).await.map_err(|error| self.failed("set", &error))?;
        if self.json {
            json_line(&json!({"key": key, "stored": true, "bytes": len}))?;
        }
        Ok(Exit::Done)
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<Exit, Failure> {
        let added = self.cache.add(key, value, ttl).await.map_err(|error| self.failed("add", &error))?;
        if self.json {
            json_line(&json!({"key": key, "stored": added}))?;
        } else {
            line(added)?;
        }
        Ok(Exit::Done)
    }

    async fn del(&self, keys: &[String]) -> Result<Exit, Failure> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let removed = self.cache.delete_many(&keys).await.map_err(|error| self.failed("del", &error))?;
        if self.json {
            json_line(&json!({"removed": removed}))?;
        } else {
            line(removed)?;
        }
        Ok(Exit::Done)
    }

    async fn has(&self, key: &str) -> Result<Exit, Failure> {
        let found = self.cache.has(key).await.map_err(|error| self.failed("has", &error))?;
        if self.json {
            json_line(&json!({"key": key, "found": found}))?;
        } else {
            line(found)?;
        }
        Ok(if found { Exit::Done } else { Exit::Miss })
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<Exit, Failure> {
        let value = self.cache.incr(key, delta).await.map_err(|error| self.failed("incr", &error))?;
        if self.json {
            json_line(&json!({"key": key, "value": value}))?;
        } else {
            line(value)?;
        }
        Ok(Exit::Done)
    }

    async fn clear(&self, yes: bool) -> Result<Exit, Failure> {
        if !self.cache.capabilities().clear {
            // The store answers with its own Unsupported error, and nobody is asked to
            // confirm something that cannot happen.
            self.cache.clear().await.map_err(|error| self.failed("clear", &error))?;
            return Err(Failure::other(format!("clear on {}: the store says it cannot clear, yet did", self.name)));
        }
        if !yes && !confirm(&format!("Remove every entry of {}?", self.name))? {
            return Err(Failure::usage(if std::io::stdin().is_terminal() {
                "clear: not confirmed, nothing removed"
            } else {
                "clear: refusing without --yes when stdin is not a terminal; nothing removed"
            }));
        }
        let spinner = Spinner::start(&format!("clearing {}", self.name));
        let result = tokio::select! {
            result = self.cache.clear() => result,
            () = ctrl_c() => {
                spinner.finish();
                return Err(Failure::interrupted(
                    "clear stopped part way: each entry is either gone or intact; run it again to finish",
                ));
            }
        };
        spinner.finish();
        result.map_err(|error| self.failed("clear", &error))?;
        if self.json {
            json_line(&json!({"cleared": true}))?;
        }
        Ok(Exit::Done)
    }

    fn stats(&self) -> Result<Exit, Failure> {
        let caps = self.cache.capabilities();
        let max_value = caps.max_value_len.map_or_else(|| "no limit".to_owned(), |len| format!("{len} bytes"));
        let resolution = if caps.ttl_resolution.is_zero() {
            "exact".to_owned()
        } else {
            humantime::format_duration(caps.ttl_resolution).to_string()
        };
        if self.json {
            return json_line(&json!({
                "store": self.name,
                "backend": format!("{:?}", self.cache),
                "max_value_len": caps.max_value_len,
                "ttl_resolution_ms": u64::try_from(caps.ttl_resolution.as_millis()).unwrap_or(u64::MAX),
                "clear": caps.clear,
                "literal_prefix": caps.literal_prefix,
                "shared_between_processes": caps.shared_between_processes,
            }))
            .map(|()| Exit::Done);
        }
        let yes_no = |flag: bool| if flag { "yes" } else { "no" };
        line(format_args!("store                     {}", self.name))?;
        line(format_args!("backend                   {:?}", self.cache))?;
        line(format_args!("max value length          {max_value}"))?;
        line(format_args!("TTL resolution            {resolution}"))?;
        line(format_args!("clear                     {}", yes_no(caps.clear)))?;
        line(format_args!("literal prefix            {}", yes_no(caps.literal_prefix)))?;
        line(format_args!("shared between processes  {}", yes_no(caps.shared_between_processes)))?;
        Ok(Exit::Done)
    }
}

/// Asks `question` on the terminal; false when stdin is not one (nobody can answer).
fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|error| Failure::other(format!("reading the answer from the terminal: {error}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// A spinner on stderr while a single long call runs, only when stderr is a terminal.
pub(crate) struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub(crate) fn start(message: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
