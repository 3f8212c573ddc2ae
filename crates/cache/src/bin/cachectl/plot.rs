//! `bench --plot`: latency distributions as an SVG, one line per store.
//!
//! The x axis is the percentile on a "nines" scale (90%, 99%, 99.9%... equally spaced), the
//! way HdrHistogram's own plots show tails; the y axis is latency on a log scale.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::fail::Failure;

/// Line colours, one per store in turn; distinguishable in greyscale too.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(80, 80, 80),
];

/// Draws `runs` (store name, latencies in nanoseconds) into an SVG at `path`.
pub(crate) fn latency_svg(path: &Path, runs: &[(&str, &Histogram<u64>)]) -> Result<(), Failure> {
    draw(path, runs).map_err(|error| Failure::other(format!("bench --plot {}: {error}", path.display())))
}

fn draw(path: &Path, runs: &[(&str, &Histogram<u64>)]) -> Result<(), Box<dyn std::error::Error>> {
    // Far enough into the tail to show the max of the largest run, at most 99.999%.
    let samples = runs.iter().map(|(_, histogram)| histogram.len()).max().unwrap_or(1).max(1);
    let max_nines = (samples as f64).log10().clamp(1.0, 5.0);
    let micros = |nanos: u64| (nanos as f64 / 1_000.0).max(0.001);
    let lowest = runs.iter().map(|(_, histogram)| micros(histogram.min())).fold(f64::INFINITY, f64::min);
    let highest = runs.iter().map(|(_, histogram)| micros(histogram.max())).fold(0.0, f64::max);
    let (lowest, highest) = if lowest.is_finite() && highest > 0.0 { (lowest, highest) } else { (0.001, 1.0) };

    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("cachectl bench: latency by percentile", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..max_nines, (lowest * 0.8..highest * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    for (index, (name, histogram)) in runs.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        // 400 points evenly spread in nines from 0% to the tail.
        let points = (0..=400).map(|step| {
            let x = max_nines * f64::from(step) / 400.0;
            let percentile = 100.0 * (1.0 - 10f64.powf(-x));
            (x, micros(histogram.value_at_percentile(percentile)))
        });
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn percentile_label(x: f64) -> String {
    let percentile = 100.0 * (1.0 - 10f64.powf(-x));
    // As many decimals as the nines need: 90, 99, 99.9, 99.99.
    let decimals = (x.round() as usize).saturating_sub(2);
    format!("{percentile:.decimals$}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_are_labelled_as_percentiles() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
    }
}
