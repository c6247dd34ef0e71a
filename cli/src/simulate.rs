//! `revscale simulate`: argument handling and output formats around the engine's
//! simulator.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::ValueEnum;
use revscale_engine::{Config, Money};
use revscale_simulator as sim;
use revscale_simulator::{DayRecord, InjectedFailure, Scenario, SimOptions};
use serde_json::{Value, json};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Format {
    /// A month-by-month table.
    Table,
    /// One JSON object per simulated day.
    Jsonl,
}

#[derive(clap::Args)]
pub struct Args {
    /// CSV with header `date,mrr,cost` (see events/scenarios/).
    scenario: PathBuf,
    /// Thresholds configuration (default: config/revenue_thresholds.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Simulate up to this day (default: the last row's date plus one month).
    #[arg(long, value_name = "YYYY-MM-DD")]
    until: Option<NaiveDate>,
    /// Make COMPONENT's next provisioning step on or after the date fail once.
    #[arg(long = "inject-failure", value_name = "COMPONENT@YYYY-MM-DD")]
    inject_failure: Vec<InjectedFailure>,
    /// Approve level changes that wait for approval on the day they are requested.
    #[arg(long)]
    auto_approve: bool,
    /// How to print the days: a month-by-month table, or one JSON object per day.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The same as `--format jsonl`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Also draw MRR, total cost, the 90% line and the level bands to this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(args.config.as_ref())?;
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("cannot read {}", args.scenario.display()))?;
    let scenario = Scenario::parse_csv(&text, &config)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.scenario.display()))?;
    let options = SimOptions {
        until: args.until,
        failures: args.inject_failure.clone(),
        auto_approve: args.auto_approve,
    };
    let days = sim::simulate(&config, &scenario, &options)?;

    // Render everything before printing anything, so a failure never leaves half an
    // output that looks complete.
    let format = if args.json { Format::Jsonl } else { args.format };
    let output = match format {
        Format::Table => table(&config, &days),
        Format::Jsonl => jsonl(&days)?,
    };
    if let Some(svg) = &args.svg {
        crate::chart::draw(&config, &days, svg).with_context(|| format!("cannot draw {}", svg.display()))?;
    }
    write_out(&output)
}

/// Writes to stdout; a reader that closed the pipe (`| head -1`) is not an error:
/// like other Unix tools, stop quietly.
fn write_out(text: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => {
            other.context("cannot write the simulation to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn amount(m: Money) -> Value {
    // A few decimals at most, so the shortest f64 form is the exact amount.
    m.to_decimal().to_string().parse::<serde_json::Number>().map(Value::Number).unwrap_or(Value::Null)
}

pub fn day_json(day: &DayRecord) -> anyhow::Result<Value> {
    Ok(json!({
        "date": day.date.to_string(),
        "mrr": amount(day.mrr),
        "cost": amount(day.cost),
        "ratio_pct": day.ratio.map(|r| r.as_percent()),
        "runway_months": day.runway.map(|m| m.to_string()),
        "level": day.level,
        "components": day.components.iter().map(|(id, s)| (id.to_string(), Value::from(s.as_str()))).collect::<serde_json::Map<_, _>>(),
        "events": serde_json::to_value(&day.events)?,
        "decision_id": day.decision_id.to_string(),
        "outcome": serde_json::to_value(day.outcome)?,
        "reasons": day.reasons,
    }))
}

fn jsonl(days: &[DayRecord]) -> anyhow::Result<String> {
    let mut out = String::new();
    for day in days {
        out.push_str(&serde_json::to_string(&day_json(day)?)?);
        out.push('\n');
    }
    Ok(out)
}

fn join_or_dash(entries: &[sim::MonthEntry]) -> String {
    if entries.is_empty() {
        return "-".into();
    }
    entries.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn table(config: &Config, days: &[DayRecord]) -> String {
    let rows = sim::monthly(days);
    // The runway column only for a configuration that guards it.
    let runway = config.runway.is_some();
    let mut header = vec!["month", "MRR", "3-mo avg", "cost", "ratio"];
    if runway {
        header.push("runway");
    }
    header.extend(["level", "changes", "alerts"]);
    let amounts = header.len() - 3;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.month.to_string(),
                r.mrr.to_string(),
                r.average_3m.to_string(),
                r.cost.to_string(),
                r.ratio.map_or("-".into(), |x| x.to_string()),
            ];
            if runway {
                cells.push(r.runway.map_or("-".into(), |m| m.to_string()));
            }
            cells.extend([format!("L{}", r.level), join_or_dash(&r.changes), join_or_dash(&r.alerts)]);
            cells
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = header.len() - 1;
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let w = *w;
            // Amounts right-aligned, text left-aligned; the last column is not padded.
            let cell = if (1..amounts).contains(&i) {
                format!("{cell:>w$}")
            } else if i == last {
                cell.clone()
            } else {
                format!("{cell:<w$}")
            };
            text.push_str(&cell);
            if i < last {
                text.push_str("  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    line(&mut out, &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in &cells {
        line(&mut out, row);
    }
    if let Some(last) = days.last() {
        let _ = writeln!(
            out,
            "\n{} days simulated ({} to {}), mode {}; final level L{}; components: {}",
            days.len(),
            days[0].date,
            last.date,
            config.mode,
            last.level,
            last.components
                .iter()
                .filter(|(_, s)| **s != revscale_engine::ComponentState::Cold)
                .map(|(id, s)| format!("{id}={s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}
