//! `revscale backtest HISTORY.csv --html REPORT.html`: the simulator over a company's
//! own past (from `history fetch` or `history export`), written as one self-contained
//! HTML page: the chart, the month-by-month table, the cost the configuration would
//! have added, and every decision with its reasons. Nothing is loaded from the
//! network: the chart is inline SVG and the styles are inline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use revscale_engine::config::Component;
use revscale_engine::history::YearMonth;
use revscale_engine::{ComponentId, ComponentState, Config, Money};
use revscale_simulator as sim;
use revscale_simulator::{DayRecord, Scenario, SimOptions};

use crate::chart;

#[derive(clap::Args)]
pub struct Args {
    /// The history: `date,mrr,cost` CSV, from `revscale history fetch` or `history export`
    /// (any simulator scenario works too).
    history: PathBuf,
    /// Thresholds configuration to replay (default: config/revenue_thresholds.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to write the report: one HTML file with nothing loaded from the network.
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    /// Replay up to this day (default: the history's last day, so nothing is made up).
    #[arg(long, value_name = "YYYY-MM-DD")]
    until: Option<NaiveDate>,
    /// Approve level changes that wait for approval on the day they are requested.
    #[arg(long)]
    auto_approve: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (text, config_name) = crate::config_text(args.config.as_ref())?;
    let config =
        crate::parse_config(&text, &config_name).map_err(|e| anyhow::anyhow!("{config_name}: {e}"))?;
    let csv = std::fs::read_to_string(&args.history)
        .with_context(|| format!("cannot read {}", args.history.display()))?;
    let scenario =
        Scenario::parse_csv(&csv, &config).map_err(|e| anyhow::anyhow!("{}: {e}", args.history.display()))?;
    check_currency(&csv, &config).map_err(|e| anyhow::anyhow!("{}: {e}", args.history.display()))?;
    let options = SimOptions {
        // A backtest replays what happened: by default it stops on the last known day
        // instead of holding the last row for another month as `simulate` does.
        until: Some(args.until.unwrap_or(scenario.last_date())),
        failures: Vec::new(),
        auto_approve: args.auto_approve,
    };
    let days = sim::simulate(&config, &scenario, &options)?;
    let added = added_cost(&config, &days);
    let report = Report {
        history: &args.history,
        config_name: &config_name,
        provenance: provenance(&csv),
        config: &config,
        days: &days,
        added: &added,
    };
    let html = report.html()?;
    std::fs::write(&args.html, html).with_context(|| format!("cannot write {}", args.html.display()))?;
    let added = total_added(&added, config.currency);
    let changes = days.iter().filter(|d| d.events.iter().any(is_level_change)).count();
    let last = days.last().context("nothing was replayed")?;
    println!(
        "{}: {} days replayed ({} to {}), {changes} level change(s), final level L{}, {added} added by managed components; report written to {}",
        args.history.display(),
        days.len(),
        days[0].date,
        last.date,
        last.level,
        args.html.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn is_level_change(event: &revscale_engine::decision::Event) -> bool {
    matches!(event, revscale_engine::decision::Event::LevelChanged { .. })
}

/// A `# currency: XXX` header line, which `history fetch` and `history export` write,
/// must name the configuration's currency: amounts in another currency would be read
/// as this one's.
pub fn check_currency(csv: &str, config: &Config) -> Result<(), String> {
    for line in csv.lines().filter_map(|l| l.trim().strip_prefix('#')) {
        if let Some(code) = line.trim().strip_prefix("currency:") {
            let code = code.trim();
            if !code.eq_ignore_ascii_case(config.currency.as_str()) {
                return Err(format!(
                    "the history is in {code} and the configuration in {}: convert it, or use a configuration in {code}",
                    config.currency
                ));
            }
        }
    }
    Ok(())
}

/// The CSV's header comments: where the numbers came from.
fn provenance(csv: &str) -> Vec<String> {
    csv.lines()
        .take_while(|l| l.trim().starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.trim().strip_prefix('#'))
        .map(|l| l.trim().to_string())
        .collect()
}

/// What the managed components the configuration switched on would have cost in one
/// month: each day in a state is 1/(days in the month) of that state's monthly cost.
/// Components that are always on cost the same with or without revscale and are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedCost {
    pub month: YearMonth,
    pub days: u32,
    pub per_component: BTreeMap<ComponentId, Money>,
    pub total: Money,
}

pub fn added_cost(config: &Config, days: &[DayRecord]) -> Vec<AddedCost> {
    // Minor units x days, per month and component; divided once per month, so the
    // rounding happens once.
    let mut sums: BTreeMap<YearMonth, (u32, BTreeMap<ComponentId, i128>)> = BTreeMap::new();
    for day in days {
        let month = sums.entry(YearMonth::of(day.date)).or_default();
        month.0 += 1;
        for (id, state) in &day.components {
            let Some(component) = config.component(id) else { continue };
            if component.is_always_on() {
                continue;
            }
            *month.1.entry(id.clone()).or_default() += i128::from(state_cost(component, *state).minor);
        }
    }
    sums.into_iter()
        .map(|(month, (simulated, per_component))| {
            let in_month = i128::from(month.last_day().day());
            let per_component: BTreeMap<ComponentId, Money> = per_component
                .into_iter()
                .filter(|(_, sum)| *sum != 0)
                .map(|(id, sum)| {
                    // Half up: (2 x sum + days) / (2 x days).
                    let minor = (2 * sum + in_month).div_euclid(2 * in_month);
                    (id, Money::from_minor(i64::try_from(minor).unwrap_or(i64::MAX), config.currency))
                })
                .collect();
            let total = Money::from_minor(per_component.values().map(|m| m.minor).sum(), config.currency);
            AddedCost { month, days: simulated, per_component, total }
        })
        .collect()
}

fn state_cost(component: &Component, state: ComponentState) -> Money {
    match state {
        ComponentState::Hot => component.hot_cost,
        ComponentState::Warm => component.warm_cost,
        _ => Money::zero(component.hot_cost.currency),
    }
}

struct Report<'a> {
    history: &'a Path,
    config_name: &'a str,
    provenance: Vec<String>,
    config: &'a Config,
    days: &'a [DayRecord],
    added: &'a [AddedCost],
}

fn total_added(rows: &[AddedCost], currency: revscale_engine::Currency) -> Money {
    Money::from_minor(rows.iter().fold(0i64, |sum, r| sum.saturating_add(r.total.minor)), currency)
}

/// Escapes text for HTML element content and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1280px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px}\
table{border-collapse:collapse;font-size:13px;width:100%}\
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
td.date{white-space:nowrap}ul{margin:0;padding-left:18px}pre{background:#f7f7f7;padding:8px;font-size:12px;white-space:pre-wrap}\
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #999;margin-right:4px;vertical-align:middle}\
.muted{color:#666}figure{margin:0}figure svg{max-width:100%;height:auto}";

impl Report<'_> {
    fn html(&self) -> anyhow::Result<String> {
        let days = self.days;
        let (Some(first), Some(last)) = (days.first(), days.last()) else {
            anyhow::bail!("nothing was replayed")
        };
        let title =
            format!("revscale backtest of {} ({} to {})", self.history.display(), first.date, last.date);
        let svg = chart::svg(self.config, days, &title)?;
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
            esc(&title),
            esc(&title)
        );
        let _ = writeln!(
            h,
            "<p>Configuration <code>{}</code>: mode {}, currency {}. {} days replayed by the same engine the \
             Lambdas run; final level L{}.</p>",
            esc(self.config_name),
            self.config.mode,
            self.config.currency,
            days.len(),
            last.level
        );
        if !self.provenance.is_empty() {
            let _ = writeln!(
                h,
                "<h2>Where the numbers come from</h2><pre id=\"provenance\">{}</pre>",
                esc(&self.provenance.join("\n"))
            );
        }
        let _ = writeln!(h, "<h2>Chart</h2><figure id=\"chart\">{svg}</figure>");
        self.legend(&mut h);
        self.monthly(&mut h);
        self.added(&mut h);
        self.decisions(&mut h);
        h.push_str("</body></html>\n");
        Ok(h)
    }

    fn legend(&self, h: &mut String) {
        h.push_str("<p id=\"legend\">Bands: the level in force each day. ");
        for level in &self.config.levels {
            let c = chart::level_colour(level.number);
            let _ = write!(
                h,
                "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{} (from {}) ",
                c.0,
                c.1,
                c.2,
                esc(&chart::level_label(level)),
                level.min
            );
        }
        h.push_str("</p>\n");
    }

    fn level_name(&self, number: u8) -> String {
        self.config
            .levels
            .iter()
            .find(|l| l.number == number)
            .map_or(format!("L{number}"), chart::level_label)
    }

    fn monthly(&self, h: &mut String) {
        // The runway column only for a configuration that guards it.
        let runway = self.config.runway.is_some();
        let _ = writeln!(
            h,
            "<h2>Month by month</h2><table id=\"monthly\"><thead><tr><th>month</th><th>MRR</th>\
             <th>3-month average</th><th>cost</th><th>cost / MRR</th>{}<th>level at month end</th>\
             <th>changes</th><th>alerts</th></tr></thead><tbody>",
            if runway { "<th>runway (months)</th>" } else { "" }
        );
        for r in sim::monthly(self.days) {
            let list = |entries: &[sim::MonthEntry]| {
                if entries.is_empty() {
                    "-".to_string()
                } else {
                    entries.iter().map(|e| esc(&e.to_string())).collect::<Vec<_>>().join("<br>")
                }
            };
            let runway_cell = if runway {
                format!("<td class=\"num\">{}</td>", r.runway.map_or("-".into(), |m| m.to_string()))
            } else {
                String::new()
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"date\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td>{runway_cell}<td>{}</td><td>{}</td><td>{}</td></tr>",
                r.month,
                r.mrr,
                r.average_3m,
                r.cost,
                r.ratio.map_or("-".into(), |x| x.to_string()),
                esc(&self.level_name(r.level)),
                list(&r.changes),
                list(&r.alerts)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    fn added(&self, h: &mut String) {
        let rows = self.added;
        let _ = writeln!(
            h,
            "<h2>What the configuration would have added</h2><p class=\"muted\">The managed components' \
             configured monthly cost (hot or warm), for the days they were in that state; components that \
             are always on are left out. Total: {}.</p><table id=\"added-cost\"><thead><tr><th>month</th>\
             <th>days replayed</th><th>added cost</th><th>per component</th></tr></thead><tbody>",
            total_added(rows, self.config.currency)
        );
        for r in rows {
            let parts = if r.per_component.is_empty() {
                "-".to_string()
            } else {
                r.per_component
                    .iter()
                    .map(|(id, m)| format!("{} {m}", esc(id.as_str())))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"date\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{parts}</td></tr>",
                r.month, r.days, r.total
            );
        }
        h.push_str("</tbody></table>\n");
    }

    /// Every day's decision; consecutive days that decided the same, for the same
    /// reasons and with no event, share a row.
    fn decisions(&self, h: &mut String) {
        h.push_str(
            "<h2>Every decision</h2><table id=\"decisions\"><thead><tr><th>days</th><th>decision</th>\
             <th>outcome</th><th>level</th><th>reasons</th><th>events</th></tr></thead><tbody>\n",
        );
        let mut i = 0;
        while i < self.days.len() {
            let day = &self.days[i];
            let mut end = i;
            while day.events.is_empty()
                && end + 1 < self.days.len()
                && self.days[end + 1].events.is_empty()
                && self.days[end + 1].reasons == day.reasons
                && self.days[end + 1].outcome == day.outcome
                && self.days[end + 1].level == day.level
            {
                end += 1;
            }
            let dates = if end == i {
                day.date.to_string()
            } else {
                format!("{} to {} ({} days)", day.date, self.days[end].date, end - i + 1)
            };
            let reasons = day.reasons.iter().map(|r| format!("<li>{}</li>", esc(r))).collect::<String>();
            let events = if day.events.is_empty() {
                "-".to_string()
            } else {
                day.events.iter().map(|e| format!("<li>{}</li>", esc(&e.summary()))).collect::<String>()
            };
            let events = if events == "-" { events } else { format!("<ul>{events}</ul>") };
            let _ = writeln!(
                h,
                "<tr><td class=\"date\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><ul>{reasons}</ul></td><td>{events}</td></tr>",
                esc(&dates),
                esc(&day.decision_id.to_string()),
                esc(&format!("{:?}", day.outcome).to_lowercase()),
                esc(&self.level_name(day.level)),
            );
            i = end + 1;
        }
        h.push_str("</tbody></table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_yaml(revscale_engine::DEFAULT_CONFIG_YAML).unwrap()
    }

    fn monthly_table(config: &Config, csv: &str) -> String {
        let scenario = Scenario::parse_csv(csv, config).unwrap();
        let days = sim::simulate(config, &scenario, &SimOptions::default()).unwrap();
        let report = Report {
            history: Path::new("h.csv"),
            config_name: "c.yaml",
            provenance: Vec::new(),
            config,
            days: &days,
            added: &[],
        };
        let mut html = String::new();
        report.monthly(&mut html);
        html
    }

    #[test]
    fn the_month_table_shows_the_runway_for_a_configuration_that_guards_it() {
        let scenario = include_str!("../../events/scenarios/runway-guard.csv");
        let guarded = Config::from_yaml(include_str!("../../config/examples/runway.yaml")).unwrap();
        let html = monthly_table(&guarded, scenario);
        assert!(
            html.contains("<th>cost / MRR</th><th>runway (months)</th><th>level at month end</th>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"num\">10.0</td>"), "December 2026's runway: {html}");
        assert!(html.contains("held L3: runway under 12 months (31 days)"), "{html}");
        assert!(!monthly_table(&config(), scenario).contains("runway"), "no column without the guard");
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn a_history_in_another_currency_is_refused() {
        let c = config();
        assert!(check_currency("# currency: EUR\ndate,mrr,cost\n", &c).is_ok());
        let err = check_currency("# currency: USD\ndate,mrr,cost\n", &c).unwrap_err();
        assert!(err.contains("USD") && err.contains("EUR"), "{err}");
        assert!(check_currency("date,mrr,cost\n", &c).is_ok(), "no header: the configuration's currency");
    }

    #[test]
    fn the_added_cost_is_each_state_s_monthly_cost_for_the_days_it_held() {
        let c = config();
        let scenario = Scenario::parse_csv("date,mrr,cost\n2026-01-01,0,0\n", &c).unwrap();
        let mut days = sim::simulate(&c, &scenario, &SimOptions::default()).unwrap();
        days.truncate(31);
        let component = c
            .components
            .values()
            .find(|x| x.level >= 1 && !x.is_always_on() && !x.hot_cost.is_zero())
            .unwrap();
        // Ten days of January HOT: 10/31 of its monthly cost.
        for day in days.iter_mut().take(10) {
            day.components.insert(component.id.clone(), ComponentState::Hot);
        }
        let rows = added_cost(&c, &days);
        assert_eq!(rows.len(), 1);
        let expected = (2 * component.hot_cost.minor * 10 + 31) / 62;
        assert_eq!(rows[0].per_component[&component.id].minor, expected);
        assert_eq!(rows[0].days, 31);
    }
}
