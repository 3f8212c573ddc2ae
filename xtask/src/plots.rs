//! `cargo xtask plots`: SVG charts for docs/benchmarks.md from the benches' own output.
//!
//! - Criterion: every `<target>/criterion/**/new/benchmark.json` + `estimates.json` pair. One
//!   SVG per bench file (the group id's part before `/`: `memory`, `fs`, `registry`, ...), one
//!   panel per group (and per parameter, such as `2 threads`), one bar per contender: Mops/s
//!   when the group declares a throughput, otherwise the mean time per iteration.
//! - The memory simulator: its stdout saved to a file (`--sim`), whose hit-ratio table becomes
//!   `memory_hit_ratio.svg`, one panel per trace and cache size.
//!
//! The SVG is written by hand: bars, labels and numbers need no plotting crate, and the
//! xtask stays quick to build. Nothing here invents a figure: a chart is drawn only from files
//! a bench run wrote.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Result;

/// One horizontal bar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) value: f64,
}

/// A titled set of bars sharing one scale and unit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panel {
    pub(crate) title: String,
    /// Said after each value, e.g. `Mops/s`, `µs`, `%`.
    pub(crate) unit: String,
    /// Whether a longer bar is better (throughput, hit ratio) or worse (time).
    pub(crate) higher_is_better: bool,
    pub(crate) bars: Vec<Bar>,
}

/// What to read and where to write.
pub(crate) struct Plan {
    pub(crate) criterion: PathBuf,
    pub(crate) sim: Option<PathBuf>,
    pub(crate) out: PathBuf,
}

/// Draws every chart there is data for; returns the files written. No data at all is an
/// error, so a forgotten bench run is noticed rather than leaving old charts in place.
pub(crate) fn run(plan: &Plan) -> Result<Vec<PathBuf>> {
    let mut charts: BTreeMap<String, Vec<Panel>> = criterion_panels(&plan.criterion)?;
    if let Some(sim) = &plan.sim {
        let text = std::fs::read_to_string(sim).map_err(|error| format!("reading {}: {error}", sim.display()))?;
        let panels = hit_ratio_panels(&text);
        if panels.is_empty() {
            return Err(format!("{}: no hit-ratio table from the memory simulator in it", sim.display()));
        }
        charts.insert("memory_hit_ratio".to_owned(), panels);
        if let Some(panel) = footprint_panel(&text) {
            charts.insert("memory_footprint".to_owned(), vec![panel]);
        }
    }
    if charts.is_empty() {
        return Err(format!(
            "no bench output: nothing under {} (run `cargo xtask bench` first) and no --sim file",
            plan.criterion.display()
        ));
    }
    std::fs::create_dir_all(&plan.out).map_err(|error| format!("creating {}: {error}", plan.out.display()))?;
    let mut written = Vec::new();
    for (name, panels) in charts {
        let path = plan.out.join(format!("{name}.svg"));
        std::fs::write(&path, svg(&name, &panels)).map_err(|error| format!("writing {}: {error}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Every criterion result under `dir`, as panels keyed by bench file.
fn criterion_panels(dir: &Path) -> Result<BTreeMap<String, Vec<Panel>>> {
    let mut found = Vec::new();
    if dir.is_dir() {
        find_results(dir, &mut found)?;
    }
    // (chart, panel title) -> bars, in a stable order.
    let mut panels: BTreeMap<(String, String), (bool, Vec<Bar>)> = BTreeMap::new();
    for result_dir in found {
        let Some(result) = read_result(&result_dir)? else { continue };
        let chart = result.group.split('/').next().unwrap_or(&result.group).to_owned();
        let title = match &result.parameter {
            Some(parameter) => format!("{} ({parameter})", result.group),
            None => result.group.clone(),
        };
        let (throughput, bars) = panels.entry((chart, title)).or_insert((result.elements.is_some(), Vec::new()));
        let value = match result.elements {
            // Elements per nanosecond * 1000 = millions per second.
            Some(elements) if *throughput => elements * 1_000.0 / result.mean_ns,
            _ => result.mean_ns,
        };
        bars.push(Bar { label: result.function, value });
    }
    let mut charts: BTreeMap<String, Vec<Panel>> = BTreeMap::new();
    for ((chart, title), (throughput, mut bars)) in panels {
        bars.sort_by(|a, b| a.label.cmp(&b.label));
        let panel = if throughput {
            Panel { title, unit: "Mops/s".to_owned(), higher_is_better: true, bars }
        } else {
            time_panel(title, bars)
        };
        charts.entry(chart).or_default().push(panel);
    }
    Ok(charts)
}

/// A panel of times in nanoseconds, in the unit that suits its largest bar.
fn time_panel(title: String, mut bars: Vec<Bar>) -> Panel {
    let largest = bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
    let (unit, scale) = match largest {
        ns if ns >= 1e9 => ("s", 1e9),
        ns if ns >= 1e6 => ("ms", 1e6),
        ns if ns >= 1e3 => ("µs", 1e3),
        _ => ("ns", 1.0),
    };
    for bar in &mut bars {
        bar.value /= scale;
    }
    Panel { title, unit: unit.to_owned(), higher_is_better: false, bars }
}

/// Directories named `new` holding a criterion result (criterion keeps the previous run
/// in `base`, which is not drawn).
fn find_results(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|error| format!("reading {}: {error}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|error| format!("reading {}: {error}", dir.display()))?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            if path.join("benchmark.json").is_file() && path.join("estimates.json").is_file() {
                found.push(path);
            }
        } else if path.file_name().is_none_or(|name| name != "report") {
            find_results(&path, found)?;
        }
    }
    Ok(())
}

struct CriterionResult {
    group: String,
    function: String,
    parameter: Option<String>,
    /// Elements per iteration, when the group set `Throughput::Elements`.
    elements: Option<f64>,
    mean_ns: f64,
}

// serde_json (already built for the workspace) reads criterion's files: a hand-written scan
// of its JSON would break on the first change of field order or number format.
fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("reading {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

fn read_result(dir: &Path) -> Result<Option<CriterionResult>> {
    let benchmark = read_json(&dir.join("benchmark.json"))?;
    let estimates = read_json(&dir.join("estimates.json"))?;
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let (Some(group), Some(function), Some(mean_ns)) = (
        text(&benchmark["group_id"]),
        text(&benchmark["function_id"]).or_else(|| text(&benchmark["value_str"])),
        estimates["mean"]["point_estimate"].as_f64(),
    ) else {
        return Err(format!("{}: not a criterion result (group_id, function_id or mean missing)", dir.display()));
    };
    if mean_ns <= 0.0 {
        return Ok(None);
    }
    let parameter = if benchmark["function_id"].is_string() { text(&benchmark["value_str"]) } else { None };
    let elements = benchmark["throughput"]["Elements"].as_f64();
    Ok(Some(CriterionResult { group, function, parameter, elements, mean_ns }))
}

/// The simulator's hit-ratio table: `| trace | cache size | A | B | ... |` then one row per
/// trace and size. One panel per row.
fn hit_ratio_panels(text: &str) -> Vec<Panel> {
    let mut panels = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for line in text.lines().map(str::trim) {
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let cells: Vec<String> = line.trim_matches('|').split('|').map(|cell| cell.trim().to_owned()).collect();
        if cells.first().is_some_and(|cell| cell == "trace") && cells.get(1).is_some_and(|cell| cell.contains("size")) {
            header = Some(cells);
            continue;
        }
        let Some(names) = &header else { continue };
        if cells.iter().all(|cell| cell.chars().all(|c| c == '-' || c == ':')) {
            continue;
        }
        let bars: Vec<Bar> = names
            .iter()
            .zip(&cells)
            .skip(2)
            .filter_map(|(name, cell)| {
                let value = cell.trim_matches('*').parse().ok()?;
                Some(Bar { label: name.trim_matches('*').to_owned(), value })
            })
            .collect();
        if let (Some(trace), Some(size)) = (cells.first(), cells.get(1))
            && !bars.is_empty()
        {
            panels.push(Panel {
                title: format!("hit ratio, {trace}, cache {size}"),
                unit: "%".to_owned(),
                higher_is_better: true,
                bars,
            });
        }
    }
    panels
}

/// The simulator's memory table: `| cache | entries held | bytes per entry | ... |`, drawn as
/// one panel of bytes per entry.
fn footprint_panel(text: &str) -> Option<Panel> {
    let mut column = None;
    let mut bars = Vec::new();
    for line in text.lines().map(str::trim) {
        if !line.starts_with('|') {
            if !bars.is_empty() {
                break;
            }
            column = None;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.first() == Some(&"cache") {
            column = cells.iter().position(|cell| *cell == "bytes per entry");
            continue;
        }
        let Some(column) = column else { continue };
        if let (Some(name), Some(Ok(value))) = (cells.first(), cells.get(column).map(|cell| cell.parse::<f64>())) {
            bars.push(Bar { label: (*name).to_owned(), value });
        }
    }
    (!bars.is_empty()).then(|| Panel {
        title: "heap bytes per entry at 1M entries (key and value included)".to_owned(),
        unit: "B".to_owned(),
        higher_is_better: false,
        bars,
    })
}

const WIDTH: f64 = 900.0;
const LABEL_WIDTH: f64 = 250.0;
const BAR_AREA: f64 = 520.0;
const BAR_HEIGHT: f64 = 16.0;
const BAR_GAP: f64 = 5.0;
const TITLE_HEIGHT: f64 = 30.0;
const PANEL_GAP: f64 = 14.0;

/// The chart as SVG text: panels stacked, each bar labelled with its value.
fn svg(name: &str, panels: &[Panel]) -> String {
    let height: f64 = 40.0
        + panels
            .iter()
            .map(|panel| TITLE_HEIGHT + panel.bars.len() as f64 * (BAR_HEIGHT + BAR_GAP) + PANEL_GAP)
            .sum::<f64>();
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(&format!("{name}: generated by cargo xtask plots"))
    );
    let mut y = 40.0;
    for panel in panels {
        let direction = if panel.higher_is_better { "higher is better" } else { "lower is better" };
        let _ = writeln!(
            out,
            r##"<text x="10" y="{}" font-weight="bold">{} <tspan font-weight="normal" fill="#666">({}, {direction})</tspan></text>"##,
            y + 18.0,
            escape(&panel.title),
            escape(&panel.unit)
        );
        y += TITLE_HEIGHT;
        let largest = panel.bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
        for bar in &panel.bars {
            let length = if largest > 0.0 { (bar.value / largest * BAR_AREA).max(1.0) } else { 1.0 };
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LABEL_WIDTH - 8.0,
                y + BAR_HEIGHT - 4.0,
                escape(&bar.label)
            );
            let _ = writeln!(
                out,
                r#"<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1}" height="{BAR_HEIGHT}" fill="{}"/>"#,
                colour(&bar.label)
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}">{} {}</text>"#,
                LABEL_WIDTH + length + 6.0,
                y + BAR_HEIGHT - 4.0,
                number(bar.value),
                escape(&panel.unit)
            );
            y += BAR_HEIGHT + BAR_GAP;
        }
        y += PANEL_GAP;
    }
    out.push_str("</svg>\n");
    out
}

/// Reference bars (a floor, the offline optimum, bare clients) are grey, so the eye goes to
/// the contenders; everything else is one colour.
fn colour(label: &str) -> &'static str {
    let lower = label.to_lowercase();
    if ["floor", "bélády", "belady", "optimal", "bare"].iter().any(|word| lower.contains(word)) {
        "#b0b0b0"
    } else {
        "#3b75af"
    }
}

/// Three significant digits, the precision the bench runs support at best.
fn number(value: f64) -> String {
    match value.abs() {
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes one result the way criterion lays it out.
    fn write_result(root: &Path, path: &str, benchmark: &str, mean_ns: f64) {
        let dir = root.join(path).join("new");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("benchmark.json"), benchmark).expect("benchmark.json");
        let estimates = format!(r#"{{"mean":{{"point_estimate":{mean_ns},"standard_error":1.0}}}}"#);
        std::fs::write(dir.join("estimates.json"), estimates).expect("estimates.json");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-plots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn criterion_results_become_panels_per_bench_and_group() {
        let root = temp_dir("criterion");
        write_result(
            &root,
            "memory_zipf/quick_cache/2 threads",
            r#"{"group_id":"memory/zipf","function_id":"quick_cache","value_str":"2 threads","throughput":{"Elements":2}}"#,
            500.0,
        );
        write_result(
            &root,
            "fs_get_1KiB/floor",
            r#"{"group_id":"fs/get_1KiB","function_id":"floor","value_str":null,"throughput":null}"#,
            21_900.0,
        );
        // The previous run, which is not drawn.
        std::fs::create_dir_all(root.join("fs_get_1KiB/floor/base")).expect("base");
        let charts = criterion_panels(&root).expect("read");
        let _ = std::fs::remove_dir_all(&root);

        let memory = &charts["memory"][0];
        assert_eq!(memory.title, "memory/zipf (2 threads)");
        assert_eq!((memory.unit.as_str(), memory.higher_is_better), ("Mops/s", true));
        // 2 elements per 500 ns = 4 Mops/s.
        assert_eq!(memory.bars, [Bar { label: "quick_cache".into(), value: 4.0 }]);
        let fs = &charts["fs"][0];
        assert_eq!((fs.unit.as_str(), fs.higher_is_better), ("µs", false));
        assert!((fs.bars[0].value - 21.9).abs() < 1e-9);
    }

    #[test]
    fn the_simulator_table_becomes_one_panel_per_row() {
        let text = "\n## Hit ratio (%)\n\n| trace | cache size | S3-FIFO | moka | Bélády (optimal) |\n|---|---|---|---|---|\n\
                    | Zipf 1.0 | 1% (10000) | 66.01 | 65.28 | 71.45 |\n| Zipf 1.2 | 1% (10000) | 89.83 | 89.75 | 91.77 |\n\n\
                    | cache | bytes |\n|---|---|\n| moka | 339.1 |\n";
        let panels = hit_ratio_panels(text);
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].title, "hit ratio, Zipf 1.0, cache 1% (10000)");
        let labels: Vec<&str> = panels[0].bars.iter().map(|bar| bar.label.as_str()).collect();
        assert_eq!(labels, ["S3-FIFO", "moka", "Bélády (optimal)"]);
        assert_eq!(panels[1].bars[2].value, 91.77);
    }

    #[test]
    fn the_simulator_memory_table_becomes_one_panel() {
        let text = "| cache | entries held | bytes per entry | overhead per entry |\n|---|---|---|---|\n\
                    | memory S3Fifo | 997107 | 159.1 | 117.3 |\n| moka | 1000000 | 339.1 | 297.2 |\n\n\
                    | trace | cache size | moka |\n|---|---|---|\n| Zipf 1.0 | 1% | 65.28 |\n";
        let panel = footprint_panel(text).expect("a panel");
        assert_eq!(
            panel.bars,
            [Bar { label: "memory S3Fifo".into(), value: 159.1 }, Bar { label: "moka".into(), value: 339.1 }]
        );
        assert!(!panel.higher_is_better);
        assert!(footprint_panel("no tables here").is_none());
    }

    #[test]
    fn the_svg_has_every_bar_and_escapes_labels() {
        let panel = Panel {
            title: "a<b".into(),
            unit: "µs".into(),
            higher_is_better: false,
            bars: vec![Bar { label: "floor".into(), value: 2.0 }, Bar { label: "x&y".into(), value: 4.0 }],
        };
        let text = svg("t", &[panel]);
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        assert!(text.contains("a&lt;b") && text.contains("x&amp;y"));
        assert_eq!(text.matches("<rect x=").count(), 2);
        // The larger bar takes the whole area, the other half of it.
        assert!(text.contains(&format!(r#"width="{BAR_AREA:.1}""#)));
        assert!(text.contains(&format!(r#"width="{:.1}""#, BAR_AREA / 2.0)));
    }

    #[test]
    fn no_bench_output_is_an_error() {
        let root = temp_dir("empty");
        let plan = Plan { criterion: root.join("criterion"), sim: None, out: root.join("out") };
        assert!(run(&plan).is_err_and(|error| error.contains("no bench output")));
        assert!(!root.join("out").exists());
    }
}
