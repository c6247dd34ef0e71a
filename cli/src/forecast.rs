//! `revscale forecast HISTORY.csv`: a Monte Carlo forecast of the coming months through
//! the real engine (`revscale_simulator::forecast`), as a table, JSON, or one
//! self-contained HTML page with a fan chart and the level probabilities.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use plotters::prelude::*;
use revscale_engine::Config;
use revscale_simulator::Scenario;
use revscale_simulator::forecast::{Forecast, ForecastOptions, forecast};

use crate::chart;

#[derive(clap::Args)]
pub struct Args {
    /// The history: `date,mrr,cost` CSV with every day (`history fetch`), or a scenario
    /// (one row on the first of each month); at least 90 days.
    history: PathBuf,
    /// Thresholds configuration (default: config/revenue_thresholds.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Months ahead, 1 to 60.
    #[arg(long, default_value_t = 12)]
    months: u32,
    /// Paths to simulate.
    #[arg(long, default_value_t = 10_000)]
    runs: u32,
    /// The generator's seed: the same seed gives the same forecast, on any machine.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// The confidence of the pre-warm days: ready in time on this share of the paths.
    #[arg(long, default_value_t = 0.9)]
    confidence: f64,
    /// Threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the forecast as JSON.
    #[arg(long)]
    json: bool,
    /// Also write one self-contained HTML page: the fan chart, the level probabilities
    /// and the tables.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Calibration instead: fit on all but the last N months of the history, forecast
    /// them, and show how often what happened fell inside the P10-P90 band.
    #[arg(long, value_name = "N", conflicts_with = "html")]
    holdout_months: Option<u32>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (text, config_name) = crate::config_text(args.config.as_ref())?;
    let config =
        crate::parse_config(&text, &config_name).map_err(|e| anyhow::anyhow!("{config_name}: {e}"))?;
    let csv = std::fs::read_to_string(&args.history)
        .with_context(|| format!("cannot read {}", args.history.display()))?;
    let at = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", args.history.display());
    let scenario = Scenario::parse_csv(&csv, &config).map_err(|e| at(&e))?;
    crate::backtest::check_currency(&csv, &config).map_err(|e| at(&e))?;
    let options = ForecastOptions {
        months: args.months,
        runs: args.runs,
        seed: args.seed,
        confidence: args.confidence,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    if let Some(holdout) = args.holdout_months {
        let calibration =
            revscale_simulator::forecast::calibrate(&config, &scenario, holdout, &options, threads)
                .map_err(|e| at(&e))?;
        let out = if args.json {
            serde_json::to_string_pretty(&calibration)? + "\n"
        } else {
            calibration_table(&calibration)
        };
        print!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let result = forecast(&config, &scenario, &options, threads).map_err(|e| at(&e))?;
    if let Some(path) = &args.html {
        let page = html(&config, &result, &args.history.display().to_string())?;
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let out = if args.json { serde_json::to_string_pretty(&result)? + "\n" } else { table(&config, &result) };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn pct(p: f64) -> String {
    format!("{:.0}%", p * 100.0)
}

fn date_or_dash(d: Option<chrono::NaiveDate>) -> String {
    d.map_or("-".into(), |d| d.to_string())
}

/// The forecast as three plain tables.
pub fn table(config: &Config, f: &Forecast) -> String {
    let mut out = format!(
        "{} paths from {} ({} days of history, L{} at {}), {} to {}, seed {}\n\n",
        f.runs, f.from, f.history_days, f.start_level, f.start_mrr, f.from, f.to, f.seed
    );
    let mut header = vec!["month".to_string()];
    header.extend(config.levels.iter().map(|l| format!("L{}", l.number)));
    header.extend(["MRR P10", "MRR P50", "MRR P90"].map(String::from));
    let rows = f.months.iter().map(|m| {
        let mut row = vec![m.month.clone()];
        row.extend(m.level_probability.iter().map(|p| pct(*p)));
        row.extend([m.mrr_p10.to_string(), m.mrr_p50.to_string(), m.mrr_p90.to_string()]);
        row
    });
    out += &text_table(&header, rows);
    out.push('\n');
    if f.levels.is_empty() {
        let _ = writeln!(out, "L{} is the top level: no level above it to reach", f.start_level);
    }
    let header = ["level", "reached", "P10", "P50", "P90"].map(String::from);
    let rows = f.levels.iter().map(|l| {
        vec![
            format!("L{}", l.level),
            pct(l.probability),
            date_or_dash(l.p10),
            date_or_dash(l.p50),
            date_or_dash(l.p90),
        ]
    });
    out += &text_table(&header, rows);
    let _ = writeln!(
        out,
        "\ncost guard holds a change on {} of the paths; runway guard on {}",
        pct(f.cost_guard_probability),
        pct(f.runway_guard_probability)
    );
    if !f.prewarm.is_empty() {
        let _ = writeln!(out, "\npre-warm by (ready in time on {} of the paths):", pct(f.confidence));
        for p in &f.prewarm {
            let _ = writeln!(
                out,
                "  {:<20} {}  (needed on {})",
                p.component.as_str(),
                p.prewarm_by.map_or("not needed at that confidence".into(), |d| d.to_string()),
                pct(p.needed_probability)
            );
        }
    }
    out
}

/// What happened in each held-out month against the forecast's P10-P90 band.
pub fn calibration_table(c: &revscale_simulator::forecast::Calibration) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let header = ["month", "MRR", "P10", "P90", "inside", "level", "P10-P90", "inside"].map(String::from);
    let rows = c.months.iter().map(|m| {
        vec![
            m.month.clone(),
            m.mrr.to_string(),
            m.mrr_p10.to_string(),
            m.mrr_p90.to_string(),
            yes(m.mrr_inside),
            format!("L{}", m.level),
            format!("L{}-L{}", m.level_p10, m.level_p90),
            yes(m.level_inside),
        ]
    });
    let (mrr, level, n) = c.coverage();
    format!(
        "fitted on the history until {}, then forecast\n\n{}\nMRR inside P10-P90 in {mrr} of {n} months; level inside in {level} of {n}\n",
        c.fitted_until,
        text_table(&header, rows)
    )
}

fn text_table(header: &[String], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        cells.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    out += &line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in &rows {
        out += &line(row);
    }
    out
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The fan chart: MRR's P10-P90 band and its median by month, with the levels'
/// thresholds.
fn fan_chart(config: &Config, f: &Forecast) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = f.months.len();
        let top = f.months.iter().map(|m| m.mrr_p90.to_decimal()).max().unwrap_or_default();
        let top = top.to_string().parse::<f64>().unwrap_or(1.0).max(1.0) * 1.1;
        let major = |m: revscale_engine::Money| m.to_decimal().to_string().parse::<f64>().unwrap_or(0.0);
        let mut chart = ChartBuilder::on(&root)
            .caption("MRR: P10-P90 band and median, with the level thresholds", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..(n.max(1) as f64 - 1.0).max(1.0), 0f64..top)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let months: Vec<String> = f.months.iter().map(|m| m.month.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| months.get(x.round() as usize).cloned().unwrap_or_default())
            .y_desc(config.currency.to_string())
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut band: Vec<(f64, f64)> =
            f.months.iter().enumerate().map(|(i, m)| (i as f64, major(m.mrr_p90))).collect();
        band.extend(f.months.iter().enumerate().rev().map(|(i, m)| (i as f64, major(m.mrr_p10))));
        chart
            .draw_series(std::iter::once(Polygon::new(band, RGBColor(190, 210, 240).filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("P10-P90")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], RGBColor(190, 210, 240).filled()));
        chart
            .draw_series(LineSeries::new(
                f.months.iter().enumerate().map(|(i, m)| (i as f64, major(m.mrr_p50))),
                RGBColor(30, 80, 160).stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("median")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], RGBColor(30, 80, 160)));
        for level in config.levels.iter().skip(1) {
            let y = major(level.min);
            if y < top {
                chart
                    .draw_series(LineSeries::new(
                        [(0.0, y), ((n.max(2) - 1) as f64, y)],
                        RGBColor(120, 120, 120).stroke_width(1),
                    ))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        chart::level_label(level),
                        (0.05, y),
                        ("sans-serif", 12).into_font().color(&RGBColor(60, 60, 60)),
                    )))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// The level probabilities by month, as stacked bars.
fn level_bars(config: &Config, f: &Forecast) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = f.months.len();
        let mut chart = ChartBuilder::on(&root)
            .caption("The level at each month's end: share of the paths", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..n as f64, 0f64..1f64)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let months: Vec<String> = f.months.iter().map(|m| m.month.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| months.get(x.floor() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for level in &config.levels {
            let colour = chart::level_colour(level.number);
            let bars: Vec<Rectangle<(f64, f64)>> = f
                .months
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let below: f64 = m.level_probability.iter().take(usize::from(level.number)).sum();
                    let p = m.level_probability.get(usize::from(level.number)).copied().unwrap_or(0.0);
                    Rectangle::new([(i as f64 + 0.1, below), (i as f64 + 0.9, below + p)], colour.filled())
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(chart::level_label(level))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// One page, nothing loaded from the network.
pub fn html(config: &Config, f: &Forecast, history: &str) -> anyhow::Result<String> {
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>revscale forecast</title><style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>revscale forecast</h1><p>History <code>{}</code> ({} days, L{} at {}); {} paths from {} to {}, seed {}, \
         each run day by day through the engine. MRR paths resample the history's own 30-day blocks of daily \
         movements; the model cannot know what the history does not show (a single large contract, a price change).</p>",
        esc(history),
        f.history_days,
        f.start_level,
        esc(&f.start_mrr.to_string()),
        f.runs,
        f.from,
        f.to,
        f.seed
    );
    let _ = write!(h, "<figure id=\"fan\">{}</figure>", fan_chart(config, f)?);
    let _ = write!(h, "<figure id=\"levels\">{}</figure>", level_bars(config, f)?);
    h.push_str("<h2>Month by month</h2><table id=\"months\"><thead><tr><th>month</th>");
    for l in &config.levels {
        let _ = write!(h, "<th>L{}</th>", l.number);
    }
    h.push_str("<th>MRR P10</th><th>MRR P50</th><th>MRR P90</th></tr></thead><tbody>");
    for m in &f.months {
        let _ = write!(h, "<tr><td>{}</td>", esc(&m.month));
        for p in &m.level_probability {
            let _ = write!(h, "<td>{}</td>", pct(*p));
        }
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.mrr_p10.to_string()),
            esc(&m.mrr_p50.to_string()),
            esc(&m.mrr_p90.to_string())
        );
    }
    h.push_str("</tbody></table><h2>When each level comes</h2><table id=\"levels-reached\"><thead><tr><th>level</th><th>reached</th><th>P10</th><th>P50</th><th>P90</th></tr></thead><tbody>");
    for l in &f.levels {
        let _ = write!(
            h,
            "<tr><td>L{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.level,
            pct(l.probability),
            date_or_dash(l.p10),
            date_or_dash(l.p50),
            date_or_dash(l.p90)
        );
    }
    let _ = write!(
        h,
        "</tbody></table><p id=\"guards\">The cost guard holds a change on {} of the paths; the runway guard on {}.</p>",
        pct(f.cost_guard_probability),
        pct(f.runway_guard_probability)
    );
    if !f.prewarm.is_empty() {
        let _ = write!(
            h,
            "<h2>Pre-warm by</h2><p>Ready in time on {} of the paths.</p><table id=\"prewarm\"><thead><tr><th>component</th><th>pre-warm by</th><th>needed on</th></tr></thead><tbody>",
            pct(f.confidence)
        );
        for p in &f.prewarm {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p.component.as_str()),
                p.prewarm_by.map_or("-".into(), |d| d.to_string()),
                pct(p.needed_probability)
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}
