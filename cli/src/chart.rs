//! `--svg`: MRR, total cost, the 90% line and the level bands over time.

use std::path::Path;

use plotters::prelude::*;
use revscale_engine::Config;
use revscale_simulator::DayRecord;

// Solid colours only: some SVG renderers ignore opacity, which turns translucent
// lines black.
const THRESHOLD: RGBColor = RGBColor(120, 120, 120);
const GUARD: RGBColor = RGBColor(220, 90, 90);

const LEVEL_COLOURS: [RGBColor; 5] = [
    RGBColor(240, 240, 240),
    RGBColor(222, 235, 247),
    RGBColor(198, 219, 239),
    RGBColor(158, 202, 225),
    RGBColor(107, 174, 214),
];

pub fn draw(config: &Config, days: &[DayRecord], path: &Path) -> anyhow::Result<()> {
    let Some(last) = days.last() else { anyhow::bail!("nothing was simulated") };
    // Display only: the chart's coordinates are the one place money becomes a float.
    let per_unit = config.currency.minor_per_unit() as f64;
    let major = |minor: i64| minor as f64 / per_unit;
    let top = days.iter().map(|d| d.mrr.minor.max(d.cost.minor)).max().unwrap_or(0);
    let y_max = major(top) * 1.1 + 1.0;
    let n = days.len() as i32;

    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "revscale simulation {} to {} (shading: level in force, darker is higher)",
                days[0].date, last.date
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0..n, 0f64..y_max)?;

    // Background: the level in force each day.
    chart.draw_series(days.iter().enumerate().map(|(i, d)| {
        let colour = LEVEL_COLOURS[usize::from(d.level).min(LEVEL_COLOURS.len() - 1)];
        Rectangle::new([(i as i32, 0.0), (i as i32 + 1, y_max)], colour.filled())
    }))?;
    // Thresholds: each level's band start.
    for level in config.levels.iter().skip(1) {
        let y = major(level.min.minor);
        if y < y_max {
            chart
                .draw_series(DashedLineSeries::new([(0, y), (n, y)], 6, 4, THRESHOLD.stroke_width(1)))?
                .label(format!("L{} from {}", level.number, level.min))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], THRESHOLD));
        }
    }

    let dates: Vec<String> = days.iter().map(|d| d.date.to_string()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_labels(12)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|i| dates.get(*i as usize).cloned().unwrap_or_default())
        .y_desc(format!("{} per month", config.currency))
        .draw()?;

    let series = |f: &dyn Fn(&DayRecord) -> f64| -> Vec<(i32, f64)> {
        days.iter().enumerate().map(|(i, d)| (i as i32, f(d))).collect()
    };
    let block = config.safety.block_ratio;
    chart
        .draw_series(LineSeries::new(series(&|d| major(d.mrr.minor)), BLUE.stroke_width(2)))?
        .label("MRR")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(series(&|d| major(d.mrr.times(block).minor)), GUARD.stroke_width(1)))?
        .label(format!("{block} of MRR (cost guard)"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GUARD));
    chart
        .draw_series(LineSeries::new(series(&|d| major(d.cost.minor)), BLACK.stroke_width(2)))?
        .label("total cost")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE)
        .border_style(THRESHOLD)
        .draw()?;
    root.present()?;
    Ok(())
}
