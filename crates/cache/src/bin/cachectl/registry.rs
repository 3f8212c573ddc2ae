//! `registry`: list, show, search and clean a file registry.
//!
//! The registry's API is synchronous (SQLite), so every call runs on a blocking thread and the
//! async side only waits for it, or for Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cache::registry::{
    AttrValue, Attributes, Cleanup, CleanupReport, DATABASE_FILE, Filter, Item, Query, Reason, Registry, Status,
};
use serde_json::{Value, json};

use crate::args::{Registry as RegistryArgs, RegistryCommand, StatusArg};
use crate::fail::{Exit, Failure};
use crate::interrupt::ctrl_c;
use crate::output::{json_line, stdout_bytes};
use crate::size::format_size;
use crate::store::Spinner;
use crate::table::{Fit, Table, stdout_width};

pub(crate) async fn run(args: RegistryArgs, json: bool) -> Result<Exit, Failure> {
    let dir = args.dir;
    // Opening creates a registry; a typo in --dir must not leave an empty one behind.
    if !dir.join(DATABASE_FILE).is_file() {
        return Err(Failure::usage(format!("registry {}: no registry here (no {DATABASE_FILE})", dir.display())));
    }
    match args.command {
        RegistryCommand::Ls { uri, status, limit } => {
            let mut filter = Filter::all();
            if let Some(uri) = uri {
                filter = filter.and(Filter::uri_like(uri));
            }
            if let Some(status) = status {
                filter = filter.and(Filter::status(status_of(status)));
            }
            let query =
                limit.map_or_else(|| Query::new(filter.clone()), |limit| Query::new(filter.clone()).limit(limit));
            let items = blocking(&dir, move |registry| registry.search(query)).await?;
            print_items(&items, json)
        }
        RegistryCommand::Show { key } => show(&dir, key, json).await,
        RegistryCommand::Search { conditions, limit } => {
            let mut filter = Filter::all();
            for condition in &conditions {
                filter = filter.and(parse_condition(condition).map_err(Failure::usage)?);
            }
            let query =
                limit.map_or_else(|| Query::new(filter.clone()), |limit| Query::new(filter.clone()).limit(limit));
            let items = blocking(&dir, move |registry| registry.search(query)).await?;
            print_items(&items, json)
        }
        RegistryCommand::Gc { dry_run, keep, stale_after } => gc(&dir, dry_run, keep, stale_after, json).await,
    }
}

fn status_of(status: StatusArg) -> Status {
    match status {
        StatusArg::Uninitialized => Status::Uninitialized,
        StatusArg::Write => Status::Write,
        StatusArg::Ready => Status::Ready,
        StatusArg::Failed => Status::Failed,
        StatusArg::Trash => Status::Trash,
    }
}

/// Opens the registry at `dir` and runs `work` on it on a blocking thread.
async fn blocking<T: Send + 'static>(
    dir: &Path,
    work: impl FnOnce(&Registry) -> cache::registry::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    let owned: PathBuf = dir.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || Registry::open(&owned).and_then(|registry| work(&registry))).await;
    match joined {
        Ok(result) => result.map_err(|error| Failure::registry(dir, &error)),
        Err(panic) => Err(Failure::other(format!("registry {}: {panic}", dir.display()))),
    }
}

async fn show(dir: &Path, key: String, json: bool) -> Result<Exit, Failure> {
    let wanted = key.clone();
    let items = blocking(dir, move |registry| {
        let exact = registry.search(Filter::key(wanted.clone()))?;
        if !exact.is_empty() {
            return Ok(exact);
        }
        // A unique start of a key, as git takes a short hash.
        Ok(registry.search(Filter::all())?.into_iter().filter(|item| item.key().starts_with(&wanted)).collect())
    })
    .await?;
    let keys: std::collections::BTreeSet<&str> = items.iter().map(Item::key).collect();
    match keys.len() {
        0 => {
            if json {
                json_line(&json!({"key": key, "found": false}))?;
            } else {
                eprintln!("cachectl: registry {}: no item key starts with `{key}`", dir.display());
            }
            return Ok(Exit::Miss);
        }
        1 => {}
        many => {
            return Err(Failure::usage(format!(
                "registry {}: `{key}` starts {many} item keys; give more of it",
                dir.display()
            )));
        }
    }
    let mut details = Vec::new();
    for item in &items {
        let attributes = item.attributes().map_err(|error| Failure::registry(dir, &error))?;
        details.push((item, attributes));
    }
    if json {
        let versions: Vec<Value> = details
            .iter()
            .map(|(item, attributes)| {
                let mut value = item_json(item);
                value["params"] = item.params_json().unwrap_or_else(|_| Value::String(item.params().to_owned()));
                value["path"] = json!(item.path());
                value["read_count"] = json!(item.read_count());
                value["attributes"] = attributes_json(attributes);
                value
            })
            .collect();
        json_line(&json!({"key": items[0].key(), "found": true, "versions": versions}))?;
        return Ok(Exit::Done);
    }
    let mut text = String::new();
    for (item, attributes) in details {
        text.push_str(&format!("key       {}\nversion   {}\n", item.key(), item.version()));
        text.push_str(&format!("status    {}\nuri       {}\n", item.status(), item.uri()));
        text.push_str(&format!("params    {}\n", item.params()));
        text.push_str(&format!("label     {}\n", item.label().unwrap_or("-")));
        text.push_str(&format!("size      {}\n", item.size().map_or_else(|| "-".to_owned(), format_size)));
        text.push_str(&format!("created   {}\n", datetime(item.created())));
        text.push_str(&format!(
            "read      {} times, last {}\n",
            item.read_count(),
            item.last_read().map_or_else(|| "never".to_owned(), datetime)
        ));
        text.push_str(&format!("path      {}\n", item.path().display()));
        for (name, value) in attributes.iter() {
            text.push_str(&format!("attr      {name} = {}\n", attr_text(value)));
        }
        text.push('\n');
    }
    stdout_bytes(text.trim_end().as_bytes())?;
    stdout_bytes(b"\n")?;
    Ok(Exit::Done)
}

fn datetime(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

fn attr_text(value: &AttrValue) -> String {
    match value {
        AttrValue::Int(value) => value.to_string(),
        AttrValue::Float(value) => value.to_string(),
        AttrValue::Text(value) => format!("{value:?}"),
        AttrValue::DateTime(value) => datetime(*value),
        AttrValue::Bool(value) => value.to_string(),
        AttrValue::Map(map) => {
            let inner: Vec<String> = map.iter().map(|(name, value)| format!("{name}: {}", attr_text(value))).collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn attr_json(value: &AttrValue) -> Value {
    match value {
        AttrValue::Int(value) => json!(value),
        AttrValue::Float(value) => json!(value),
        AttrValue::Text(value) => json!(value),
        AttrValue::DateTime(value) => json!(datetime(*value)),
        AttrValue::Bool(value) => json!(value),
        AttrValue::Map(map) => attributes_json(map),
        other => json!(format!("{other:?}")),
    }
}

fn attributes_json(attributes: &Attributes) -> Value {
    Value::Object(attributes.iter().map(|(name, value)| (name.to_owned(), attr_json(value))).collect())
}

fn item_json(item: &Item) -> Value {
    json!({
        "key": item.key(),
        "version": item.version(),
        "status": item.status().as_str(),
        "uri": item.uri(),
        "label": item.label(),
        "size": item.size(),
        "created": datetime(item.created()),
    })
}

fn print_items(items: &[Item], json: bool) -> Result<Exit, Failure> {
    if json {
        let rows: Vec<Value> = items.iter().map(item_json).collect();
        json_line(&json!({ "items": rows }))?;
        return Ok(Exit::Done);
    }
    let mut table = Table::new(&[
        ("KEY", Fit::End(12)),
        ("VER", Fit::Whole),
        ("STATUS", Fit::Whole),
        ("SIZE", Fit::Whole),
        ("CREATED", Fit::Whole),
        ("URI", Fit::Middle(20)),
        ("LABEL", Fit::End(8)),
    ]);
    for item in items {
        table.row(vec![
            item.key().to_owned(),
            item.version().to_string(),
            item.status().to_string(),
            item.size().map_or_else(|| "-".to_owned(), format_size),
            datetime(item.created()),
            item.uri().to_owned(),
            item.label().unwrap_or("").to_owned(),
        ]);
    }
    stdout_bytes(table.render(stdout_width()).as_bytes())?;
    Ok(Exit::Done)
}

async fn gc(
    dir: &Path,
    dry_run: bool,
    keep: Option<usize>,
    stale_after: Option<Duration>,
    json: bool,
) -> Result<Exit, Failure> {
    let mut plan = Cleanup::new().dry_run(dry_run);
    if let Some(keep) = keep {
        plan = plan.keep_newest(keep);
    }
    if let Some(age) = stale_after {
        plan = plan.stale_after(age);
    }
    let verb = if dry_run { "checking" } else { "cleaning" };
    let spinner = Spinner::start(&format!("{verb} registry {}", dir.display()));
    let work = blocking(dir, move |registry| registry.cleanup(&plan));
    let report = tokio::select! {
        report = work => report,
        () = ctrl_c() => {
            spinner.finish();
            // Cleanup removes records in one transaction (all or none) before their files,
            // so stopping here leaves at worst unowned files, which the next gc removes.
            return Err(Failure::interrupted(format!(
                "registry {}: gc stopped; the registry is consistent, and files it had not yet \
                 removed are removed by the next gc",
                dir.display()
            )));
        }
    };
    spinner.finish();
    print_report(&report?, json)
}

fn reason_text(reason: Reason) -> &'static str {
    match reason {
        Reason::Failed => "failed",
        Reason::Trash => "trash",
        Reason::FileMissing => "file missing",
        Reason::Superseded => "superseded",
        Reason::Stale => "stale",
        _ => "other",
    }
}

fn print_report(report: &CleanupReport, json: bool) -> Result<Exit, Failure> {
    if json {
        let removed: Vec<Value> = report
            .removed
            .iter()
            .map(|removed| {
                json!({
                    "key": removed.key,
                    "version": removed.version,
                    "uri": removed.uri,
                    "status": removed.status.as_str(),
                    "reason": reason_text(removed.reason),
                    "bytes": removed.bytes,
                })
            })
            .collect();
        let orphans: Vec<Value> = report.orphan_files.iter().map(|path| json!(path)).collect();
        json_line(&json!({
            "dry_run": report.dry_run,
            "removed": removed,
            "orphan_files": orphans,
            "bytes_freed": report.bytes_freed,
        }))?;
        return Ok(Exit::Done);
    }
    let mut table = Table::new(&[
        ("KEY", Fit::End(12)),
        ("VER", Fit::Whole),
        ("STATUS", Fit::Whole),
        ("REASON", Fit::Whole),
        ("SIZE", Fit::Whole),
        ("URI", Fit::Middle(20)),
    ]);
    for removed in &report.removed {
        table.row(vec![
            removed.key.clone(),
            removed.version.to_string(),
            removed.status.to_string(),
            reason_text(removed.reason).to_owned(),
            format_size(removed.bytes),
            removed.uri.clone(),
        ]);
    }
    let mut text = if report.removed.is_empty() { String::new() } else { table.render(stdout_width()) };
    let verb = if report.dry_run { "would remove" } else { "removed" };
    text.push_str(&format!(
        "{verb} {} versions and {} unowned files, {}\n",
        report.removed.len(),
        report.orphan_files.len(),
        format_size(report.bytes_freed)
    ));
    stdout_bytes(text.as_bytes())?;
    Ok(Exit::Done)
}

/// One search condition: `NAME OP VALUE` or `NAME?`.
fn parse_condition(text: &str) -> Result<Filter, String> {
    let text = text.trim();
    if let Some(name) = text.strip_suffix('?') {
        return Ok(Filter::attr(name.trim()).exists());
    }
    // Two-character operators first, so `>=` is not read as `>` followed by `=value`.
    const OPERATORS: [&str; 8] = [">=", "<=", "!=", "==", "=", "<", ">", "~"];
    let found = OPERATORS
        .iter()
        .filter_map(|op| text.find(op).map(|at| (at, *op)))
        .min_by_key(|(at, op)| (*at, std::cmp::Reverse(op.len())));
    let Some((at, op)) = found else {
        return Err(format!("search: `{text}` has no operator (use = != < <= > >= ~, or NAME? for exists)"));
    };
    let name = text[..at].trim();
    let value = text[at + op.len()..].trim();
    if name.is_empty() {
        return Err(format!("search: `{text}` has no attribute name before `{op}`"));
    }
    let attr = Filter::attr(name);
    if op == "~" {
        return Ok(attr.like(unquote(value)));
    }
    let value = parse_value(value);
    Ok(match op {
        ">=" => attr.ge(value),
        "<=" => attr.le(value),
        "!=" => attr.ne(value),
        "<" => attr.lt(value),
        ">" => attr.gt(value),
        _ => attr.eq(value),
    })
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

/// An integer, a float, a bool, or else text; quotes force text (`'42'`).
fn parse_value(value: &str) -> AttrValue {
    let unquoted = unquote(value);
    if unquoted.len() != value.len() {
        return AttrValue::Text(unquoted.to_owned());
    }
    if let Ok(int) = value.parse::<i64>() {
        return AttrValue::Int(int);
    }
    if let Ok(float) = value.parse::<f64>()
        && float.is_finite()
    {
        return AttrValue::Float(float);
    }
    match value {
        "true" => AttrValue::Bool(true),
        "false" => AttrValue::Bool(false),
        _ => AttrValue::Text(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_the_narrowest_kind_and_quotes_force_text() {
        assert_eq!(parse_value("42"), AttrValue::Int(42));
        assert_eq!(parse_value("1.5"), AttrValue::Float(1.5));
        assert_eq!(parse_value("true"), AttrValue::Bool(true));
        assert_eq!(parse_value("'42'"), AttrValue::Text("42".into()));
        assert_eq!(parse_value("survey"), AttrValue::Text("survey".into()));
        assert_eq!(parse_value("NaN"), AttrValue::Text("NaN".into()));
    }

    #[test]
    fn conditions_need_a_name_and_an_operator() {
        for good in ["rows>=1", "rows >= 1", "source=survey", "name~census%", "rows?", "a.b!=2", "x==1"] {
            assert!(parse_condition(good).is_ok(), "{good}");
        }
        for bad in ["rows", ">=1", ""] {
            assert!(parse_condition(bad).is_err(), "{bad:?}");
        }
    }
}
