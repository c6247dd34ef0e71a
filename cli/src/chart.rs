//! The chart of a simulation (`simulate --svg`, `backtest --html`): MRR, total cost, the
//! cost guard's line, the level thresholds, and the level in force each day as a
//! coloured band named on the chart. The x axis is labelled at month starts.

use std::ops::Range;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use revscale_engine::Config;
use revscale_engine::config::Level;
use revscale_simulator::DayRecord;

// Solid colours only: some SVG renderers ignore opacity, which turns translucent
// lines black.
const THRESHOLD: RGBColor = RGBColor(120, 120, 120);
const GUARD: RGBColor = RGBColor(220, 90, 90);
const BAND_TEXT: RGBColor = RGBColor(60, 60, 60);

/// One light tint per level, of different hues so that neighbouring levels are told
/// apart without relying on shade alone (grey, green, yellow, orange, violet).
const LEVEL_COLOURS: [RGBColor; 5] = [
    RGBColor(238, 238, 238),
    RGBColor(214, 239, 208),
    RGBColor(252, 243, 196),
    RGBColor(253, 219, 183),
    RGBColor(226, 212, 242),
];

pub const SIZE: (u32, u32) = (1200, 600);

/// `L2 growth` for `level_2_growth`: short enough to sit on a band.
pub fn level_label(level: &Level) -> String {
    let prefix = format!("level_{}_", level.number);
    let name = level.name.strip_prefix(&prefix).unwrap_or(&level.name).replace('_', " ");
    format!("L{} {name}", level.number)
}

pub fn level_colour(number: u8) -> RGBColor {
    LEVEL_COLOURS[usize::from(number).min(LEVEL_COLOURS.len() - 1)]
}

/// Day indices (0 = the first simulated day), ticked at the first of each month.
struct DayAxis {
    days: i32,
    month_starts: Vec<i32>,
    dates: Vec<NaiveDate>,
}

impl DayAxis {
    fn new(dates: &[NaiveDate]) -> Self {
        let month_starts =
            dates.iter().enumerate().filter(|(_, d)| d.day() == 1).map(|(i, _)| i as i32).collect();
        DayAxis { days: dates.len() as i32, month_starts, dates: dates.to_vec() }
    }
}

/// A tick's label: its month, `Jan 2026`.
impl ValueFormatter<i32> for DayAxis {
    fn format(value: &i32) -> String {
        value.to_string()
    }

    fn format_ext(&self, value: &i32) -> String {
        self.dates.get(*value as usize).map(|d| d.format("%b %Y").to_string()).unwrap_or_default()
    }
}

impl Ranged for DayAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = i32;

    fn map(&self, value: &i32, limit: (i32, i32)) -> i32 {
        let span = i64::from(limit.1 - limit.0);
        limit.0 + (span * i64::from(*value) / i64::from(self.days.max(1))) as i32
    }

    /// Every month start, or every second, third... when there are more than fit.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<i32> {
        let fit = hint.max_num_points().max(1);
        let step = self.month_starts.len().div_ceil(fit).max(1);
        self.month_starts.iter().step_by(step).copied().collect()
    }

    fn range(&self) -> Range<i32> {
        0..self.days
    }
}

/// Runs of days with the same level: (first index, end index exclusive, level).
fn level_runs(days: &[DayRecord]) -> Vec<(usize, usize, u8)> {
    let mut runs: Vec<(usize, usize, u8)> = Vec::new();
    for (i, d) in days.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.2 == d.level => run.1 = i + 1,
            _ => runs.push((i, i + 1, d.level)),
        }
    }
    runs
}

/// The chart as an SVG document.
pub fn svg(config: &Config, days: &[DayRecord], title: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    render(config, days, title, SVGBackend::with_string(&mut out, SIZE))?;
    Ok(out)
}

pub fn draw(config: &Config, days: &[DayRecord], path: &Path) -> anyhow::Result<()> {
    let Some(last) = days.last() else { anyhow::bail!("nothing was simulated") };
    let title = format!("revscale simulation {} to {}", days[0].date, last.date);
    std::fs::write(path, svg(config, days, &title)?)?;
    Ok(())
}

fn render(config: &Config, days: &[DayRecord], title: &str, backend: SVGBackend) -> anyhow::Result<()> {
    if days.is_empty() {
        anyhow::bail!("nothing was simulated");
    }
    // Display only: the chart's coordinates are the one place money becomes a float.
    let per_unit = config.currency.minor_per_unit() as f64;
    let major = |minor: i64| minor as f64 / per_unit;
    let top = days.iter().map(|d| d.mrr.minor.max(d.cost.minor)).max().unwrap_or(0);
    let y_max = major(top) * 1.15 + 1.0;
    let n = days.len() as i32;
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.date).collect();

    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(DayAxis::new(&dates), 0f64..y_max)?;

    // Background: the level in force each day, one band per run, named when wide enough.
    let runs = level_runs(days);
    chart.draw_series(runs.iter().map(|(from, to, level)| {
        Rectangle::new([(*from as i32, 0.0), (*to as i32, y_max)], level_colour(*level).filled())
    }))?;
    let plot_width = f64::from(SIZE.0 - 120);
    let label_style = ("sans-serif", 13).into_font().color(&BAND_TEXT);
    for (from, to, number) in &runs {
        let wide_enough = (to - from) as f64 * plot_width / f64::from(n) >= 70.0;
        if let (true, Some(level)) = (wide_enough, config.levels.iter().find(|l| l.number == *number)) {
            chart.draw_series(std::iter::once(Text::new(
                level_label(level),
                (*from as i32 + 1, y_max * 0.97),
                label_style.clone(),
            )))?;
        }
    }
    // Thresholds: each level's band start.
    for level in config.levels.iter().skip(1) {
        let y = major(level.min.minor);
        if y < y_max {
            chart
                .draw_series(DashedLineSeries::new([(0, y), (n, y)], 6, 4, THRESHOLD.stroke_width(1)))?
                .label(format!("{} from {}", level_label(level), level.min))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], THRESHOLD));
        }
    }

    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_labels(16)
        .y_label_formatter(&|v| format!("{v:.0}"))
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
    // The legend tells the levels apart by their band colour.
    for level in &config.levels {
        let colour = level_colour(level.number);
        chart
            .draw_series(std::iter::empty::<Rectangle<(i32, f64)>>())?
            .label(format!("{} in force", level_label(level)))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        // Below the band names along the top, which the legend would otherwise hide.
        .position(SeriesLabelPosition::Coordinate(8, 24))
        .background_style(WHITE)
        .border_style(THRESHOLD)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_is_ticked_at_month_starts_and_thinned_when_they_do_not_fit() {
        let first = NaiveDate::from_ymd_opt(2026, 1, 20).unwrap();
        let dates: Vec<NaiveDate> = first.iter_days().take(400).collect();
        let axis = DayAxis::new(&dates);
        let all = axis.key_points(20usize);
        assert_eq!(all.len(), 13, "Feb 2026 to Feb 2027");
        assert!(all.iter().all(|i| dates[*i as usize].day() == 1));
        assert_eq!(dates[all[0] as usize], NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        let thinned = axis.key_points(5usize);
        assert!(thinned.len() <= 5 && thinned.len() >= 4, "{thinned:?}");
        assert_eq!(axis.map(&0, (100, 500)), 100);
        assert_eq!(axis.map(&400, (100, 500)), 500);
    }
}
