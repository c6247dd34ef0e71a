//! `revscale history`: a company's own past as the simulator's CSV, and back.
//!
//! - `fetch`: daily MRR rebuilt from Stripe invoices (`stripe::invoices`) and daily
//!   cost from Cost Explorer (`DAILY`, the collector's metric, record-type filter,
//!   component tag and FX), with where they came from in the header comments.
//! - `import`: those days into a stack's snapshot table, so a new installation starts
//!   with its debounce windows filled. Each day is written only if the table has
//!   neither of its snapshots: a collected day is never overwritten.
//! - `export`: the stored days back out as the same CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{Months, NaiveDate, Utc};
use revscale_aws::cost_explorer::{CostExplorerSource, DEFAULT_EXCLUDED_RECORD_TYPES, monthly_cost_per_day};
use revscale_aws::dynamo::{DynamoStore, StoredDay};
use revscale_aws::stripe::invoices::{DailyMrr, reconstruct};
use revscale_aws::stripe::{STRIPE_VERSION, StripeSource};
use revscale_engine::money::{FxRates, parse_pair};
use revscale_engine::ports::{CostSnapshot, RevenueSnapshot, Written};
use revscale_engine::{Currency, Money, YearMonth};
use revscale_simulator::Scenario;

use crate::stack::Target;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rebuild daily MRR from Stripe invoices and daily cost from Cost Explorer, and write
    /// them as the simulator's CSV (`date,mrr,cost`) for `revscale backtest`.
    Fetch(FetchArgs),
    /// Write a history CSV into a stack's snapshot table, so a new installation starts
    /// with its windows filled; a day already collected is never overwritten.
    Import(ImportArgs),
    /// Write the stack's stored snapshots out as the same CSV.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct FetchArgs {
    /// How many calendar months, the last one included (1 to 14: Cost Explorer keeps
    /// daily data for 14 months).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=14))]
    months: u32,
    /// The CSV to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The last day [default: yesterday, UTC: the last complete day].
    #[arg(long, value_name = "YYYY-MM-DD")]
    until: Option<NaiveDate>,
    /// Thresholds configuration, for the revenue currency.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Stripe API base URL (a test server, for instance).
    #[arg(long, default_value = "https://api.stripe.com")]
    stripe_api_base: String,
    /// Exchange rate into the revenue currency, e.g. `USD=0.93`; repeatable; overrides
    /// the rates in FX_RATES. Used for Stripe amounts and Cost Explorer's USD alike.
    #[arg(long = "fx", value_name = "CUR=RATE")]
    fx: Vec<String>,
    /// Cost Explorer metric, as the collector's COST_METRIC.
    #[arg(long, default_value = "UnblendedCost")]
    cost_metric: String,
    /// Cost allocation tag naming a managed component, as the collector's COST_TAG_KEY:
    /// spend carrying it is left out (the simulator adds the components it runs).
    #[arg(long, default_value = "revscale-component")]
    cost_tag_key: String,
    /// AWS profile for Cost Explorer [default: AWS_PROFILE, then `default`].
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// AWS region for the SDK (Cost Explorer answers from us-east-1 whatever it is).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The history CSV (from `history fetch`, or any `date,mrr,cost` file: each row
    /// holds until the next).
    file: PathBuf,
    #[command(flatten)]
    target: Target,
    /// Thresholds configuration, for the revenue currency (it must be the stack's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Count what would be written and what is already there, writing nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    target: Target,
    /// The CSV to write [default: standard output].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// First day [default: the first stored].
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<NaiveDate>,
    /// Last day [default: the last stored].
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<NaiveDate>,
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match command {
        Command::Fetch(args) => runtime.block_on(fetch(args)),
        Command::Import(args) => runtime.block_on(import(args)),
        Command::Export(args) => runtime.block_on(export(args)),
    }
}

fn fx_rates(cli: &[String]) -> anyhow::Result<FxRates> {
    let mut fx = FxRates::parse_list(&std::env::var("FX_RATES").unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("FX_RATES: {e}"))?;
    for pair in cli {
        let (currency, rate) = parse_pair(pair).map_err(|e| anyhow::anyhow!("--fx: {e}"))?;
        fx.set(currency, rate);
    }
    Ok(fx)
}

/// The days `--months N` covers up to `until`: from the first of the month N-1 months
/// before `until`'s.
pub fn window(months: u32, until: NaiveDate) -> NaiveDate {
    YearMonth::of(until).first_day() - Months::new(months.saturating_sub(1))
}

async fn fetch(args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(args.config.as_ref())?;
    let currency = config.currency;
    let api_key = std::env::var("STRIPE_API_KEY").ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
        anyhow::anyhow!("STRIPE_API_KEY is not set (a restricted key with read access to invoices, subscriptions and prices is enough)")
    })?;
    let fx = fx_rates(&args.fx)?;
    let today = Utc::now().date_naive();
    let until = args.until.unwrap_or(today - chrono::Days::new(1));
    if until >= today {
        // An open invoice bills ahead, and Cost Explorer has not seen the day: a day not
        // over would be made up on both sides.
        anyhow::bail!(
            "--until {until} is not over yet: the last complete day is {}",
            today - chrono::Days::new(1)
        );
    }
    let from = window(args.months, until);

    let mut stripe = StripeSource::new(&args.stripe_api_base, api_key, currency, fx.clone())?;
    // A history reads every invoice of a year or more: far more than a daily collection.
    stripe.budget = Duration::from_secs(30 * 60);
    let deadline = tokio::time::Instant::now() + stripe.budget;
    let invoices =
        stripe.invoice_history(from, deadline).await.context("cannot read the invoices from Stripe")?;
    let mrr = reconstruct(&invoices, from, until, currency, &fx)?;

    let target = Target { profile: args.profile.clone(), region: args.region.clone(), ..Default::default() };
    let sdk = target.sdk().await;
    let cost_source =
        CostExplorerSource::new(&sdk, &args.cost_metric, &args.cost_tag_key, currency, fx.clone());
    let next = until.succ_opt().context("no day after --until")?;
    let daily =
        cost_source.daily(from, next).await.context("cannot read the daily cost from Cost Explorer")?;
    let per_day = monthly_cost_per_day(&daily.unmanaged, from, until);
    let mut cost = BTreeMap::new();
    for (day, value) in per_day {
        cost.insert(day, fx.convert(value, daily.currency, currency)?);
    }
    let rate = fx.rate(daily.currency, currency)?;

    let mut out = String::new();
    let _ = writeln!(out, "# revscale history: {} to {}, {} days", from, until, mrr.days.len());
    let _ = writeln!(
        out,
        "# generated {} by revscale {}",
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "# currency: {currency}");
    let _ = writeln!(out, "# mrr: {}", mrr_provenance(&mrr, &args.stripe_api_base));
    let _ = writeln!(
        out,
        "# cost: AWS Cost Explorer {}, DAILY, record types {} left out, spend tagged {} left out ({} {} over the window); \
         FX {}->{currency} {}; each day carries its calendar month's total (a month not over: its spend so far scaled to the month); \
         {} request(s), {} day(s) still estimated",
        args.cost_metric,
        DEFAULT_EXCLUDED_RECORD_TYPES.join(","),
        args.cost_tag_key,
        daily.currency,
        daily.managed_total.round_dp(2),
        daily.currency,
        rate.normalize(),
        cost_source.requests(),
        daily.estimated_days
    );
    out.push_str("date,mrr,cost\n");
    for (day, value) in &mrr.days {
        let spent = cost.get(day).copied().unwrap_or(Money::zero(currency));
        let _ = writeln!(out, "{day},{},{}", value.to_decimal(), spent.to_decimal());
    }
    std::fs::write(&args.out, &out).with_context(|| format!("cannot write {}", args.out.display()))?;
    let last = mrr.days.values().last().copied().unwrap_or(Money::zero(currency));
    println!(
        "{}: {} days ({from} to {until}); MRR on the last day {last}; {} invoices, {} lines counted",
        args.out.display(),
        mrr.days.len(),
        mrr.stats.invoices_counted,
        mrr.stats.lines_counted
    );
    Ok(ExitCode::SUCCESS)
}

fn mrr_provenance(mrr: &DailyMrr, base: &str) -> String {
    let s = &mrr.stats;
    format!(
        "Stripe invoices ({base}, API {STRIPE_VERSION}): {} read, {} paid or open counted, {} subscription lines \
         over {} subscriptions; left out: {} proration lines, {} invoice-item, one-off or metered lines; \
         {} subscription(s) cut short by a cancellation; refunds and credit notes are not revenue changes",
        s.invoices_read,
        s.invoices_counted,
        s.lines_counted,
        s.subscriptions,
        s.prorations_left_out,
        s.other_lines_left_out,
        s.cut_short_by_cancellation
    )
}

/// Every day from the first row to the last, each holding its row's values (the
/// simulator's reading of a CSV).
pub fn expand(scenario: &Scenario) -> Vec<(NaiveDate, Money, Money)> {
    scenario
        .first_date()
        .iter_days()
        .take_while(|d| *d <= scenario.last_date())
        .filter_map(|d| scenario.row_on(d).map(|r| (d, r.mrr, r.cost)))
        .collect()
}

#[derive(Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct ImportCounts {
    pub days_in_file: usize,
    pub written: usize,
    pub already_stored: usize,
    /// Today or later: the collectors' days, never imported.
    pub not_yet_over: usize,
    pub dry_run: bool,
}

async fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let config = crate::load_config(args.config.as_ref())?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let scenario =
        Scenario::parse_csv(&text, &config).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    crate::backtest::check_currency(&text, &config)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let sdk = args.target.sdk().await;
    let stack = args.target.stack(&sdk).await?;
    let stack_currency: Currency = stack
        .parameter("RevenueCurrency")?
        .parse()
        .map_err(|e| anyhow::anyhow!("stack {}: RevenueCurrency: {e}", stack.name))?;
    if stack_currency != config.currency {
        anyhow::bail!(
            "stack {} counts revenue in {stack_currency}, and {} would be read in {}: pass --config with the stack's configuration",
            stack.name,
            args.file.display(),
            config.currency
        );
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), stack.output("TableName")?);
    let zone = stack.parameters.get("ScheduleTimezone").map(String::as_str);
    let today = collectors_today(Utc::now(), zone)?;
    let counts =
        import_days(&store, &expand(&scenario), today, &source_name(&args.file), args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string(&counts)?);
    } else {
        let verb = if args.dry_run { "would write" } else { "wrote" };
        println!(
            "{}: {} days; {verb} {} into {}; {} already stored (collected or imported) and left as they were; \
             {} today or later left to the collectors{}",
            args.file.display(),
            counts.days_in_file,
            counts.written,
            store.table(),
            counts.already_stored,
            counts.not_yet_over,
            if args.dry_run { " (dry run: nothing written)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The day the stack's collectors are on: the date in the schedule's time zone (the
/// stack's `ScheduleTimezone`), or the UTC date when the stack has none. Import leaves
/// that day and later ones to them: a collector finding a day already written skips it.
pub fn collectors_today(now: chrono::DateTime<Utc>, zone: Option<&str>) -> anyhow::Result<NaiveDate> {
    match zone.filter(|z| !z.trim().is_empty()) {
        Some(zone) => {
            revscale_aws::lambda::local_date(now, zone).map_err(|e| anyhow::anyhow!("ScheduleTimezone: {e}"))
        }
        None => Ok(now.date_naive()),
    }
}

fn source_name(file: &Path) -> String {
    let name =
        file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    format!("revscale history import of {name} at {}", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"))
}

/// Writes each past day that the table has nothing for; counts the rest.
pub async fn import_days(
    store: &DynamoStore,
    days: &[(NaiveDate, Money, Money)],
    today: NaiveDate,
    source: &str,
    dry_run: bool,
) -> anyhow::Result<ImportCounts> {
    let mut counts = ImportCounts { days_in_file: days.len(), dry_run, ..Default::default() };
    let past: Vec<_> = days.iter().filter(|(d, ..)| *d < today).collect();
    counts.not_yet_over = days.len() - past.len();
    let (Some(first), Some(last)) = (past.first(), past.last()) else { return Ok(counts) };
    if dry_run {
        let stored = store.stored_days(first.0, last.0).await?;
        counts.already_stored = past.iter().filter(|(d, ..)| stored.contains_key(d)).count();
        counts.written = past.len() - counts.already_stored;
        return Ok(counts);
    }
    let now = Utc::now();
    for (date, mrr, cost) in past {
        let revenue = RevenueSnapshot {
            date: *date,
            mrr: *mrr,
            subscriptions_counted: 0,
            customers: 0,
            collected_at: now,
        };
        let cost = CostSnapshot {
            date: *date,
            monthly_run_rate: *cost,
            month_to_date: Money::zero(cost.currency),
            previous_month: Money::zero(cost.currency),
            per_component: BTreeMap::new(),
            estimated: false,
            forecast_used: false,
            fx_rate: "1".into(),
            requests: 0,
            collected_at: now,
        };
        match store
            .import_day(&revenue, &cost, source)
            .await
            .with_context(|| format!("cannot import {date}"))?
        {
            Written::Created => counts.written += 1,
            Written::AlreadyExists => counts.already_stored += 1,
        }
    }
    Ok(counts)
}

async fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let sdk = args.target.sdk().await;
    let stack = args.target.stack(&sdk).await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), stack.output("TableName")?);
    // Before any Stripe account's first invoice: every stored day.
    let from = args.from.unwrap_or(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default());
    let to = args.to.unwrap_or_else(|| Utc::now().date_naive());
    let stored = store.stored_days(from, to).await?;
    let csv = export_csv(&stack.name, store.table(), &stored)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &csv.text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{}: {} days ({} collected, {} imported); {} incomplete days left out",
                path.display(),
                csv.days,
                csv.days - csv.imported,
                csv.imported,
                csv.incomplete
            );
        }
        None => print!("{}", csv.text),
    }
    Ok(ExitCode::SUCCESS)
}

pub struct ExportedCsv {
    pub text: String,
    pub days: usize,
    pub imported: usize,
    /// Days with only one of the two snapshots (a collector failed that day).
    pub incomplete: usize,
}

/// The stored days as `date,mrr,cost`. A collected cost is Cost Explorer's whole bill,
/// managed components included; the CSV's cost is everything else (the simulator adds
/// the components it runs), so the components' share of the month to date is taken out
/// of the run-rate.
pub fn export_csv(
    stack: &str,
    table: &str,
    days: &BTreeMap<NaiveDate, StoredDay>,
) -> anyhow::Result<ExportedCsv> {
    let mut rows = String::new();
    let mut currency: Option<Currency> = None;
    let (mut count, mut imported, mut incomplete) = (0, 0, 0);
    let mut share = None;
    let mut span: Option<(NaiveDate, NaiveDate)> = None;
    for (date, day) in days {
        let (Some(revenue), Some(cost)) = (&day.revenue, &day.cost) else {
            incomplete += 1;
            continue;
        };
        for c in [revenue.mrr.currency, cost.monthly_run_rate.currency] {
            match currency {
                None => currency = Some(c),
                Some(seen) if seen != c => anyhow::bail!(
                    "{date}: stored in {c}, earlier days in {seen}: export each currency's days with --from/--to"
                ),
                Some(_) => {}
            }
        }
        count += 1;
        imported += usize::from(day.imported_from.is_some());
        span = Some(span.map_or((*date, *date), |(first, _)| (first, *date)));
        let (other, today_share) = unmanaged(cost, share);
        share = today_share;
        let _ = writeln!(rows, "{date},{},{}", revenue.mrr.to_decimal(), other.to_decimal());
    }
    let span = match span {
        Some((a, b)) => format!("{a} to {b}"),
        None => "no complete day stored".into(),
    };
    let mut text = String::new();
    let _ = writeln!(text, "# revscale history export of stack {stack} (table {table}): {span}");
    let _ = writeln!(
        text,
        "# generated {} by revscale {}",
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(c) = currency {
        let _ = writeln!(text, "# currency: {c}");
    }
    let _ = writeln!(
        text,
        "# {count} days: {} collected, {imported} imported; {incomplete} days with only one of the two snapshots left out; \
         cost = the collected run-rate less the managed components' share of the month to date",
        count - imported
    );
    text.push_str("date,mrr,cost\n");
    text.push_str(&rows);
    Ok(ExportedCsv { text, days: count, imported, incomplete })
}

/// The unmanaged part of a month's spend so far: (unmanaged, total), minor units.
type Share = (i128, i128);

/// The run-rate less the managed components' share of the month to date, and that
/// share. On the 1st nothing of the month is known yet (the collector stores a month to
/// date of 0): the previous day's share is used, so the components do not show up as a
/// spike of other costs on the first of every month.
fn unmanaged(cost: &CostSnapshot, previous: Option<Share>) -> (Money, Option<Share>) {
    let run_rate = cost.monthly_run_rate;
    let mtd = i128::from(cost.month_to_date.minor);
    let managed: i128 = cost.per_component.values().map(|m| i128::from(m.minor)).sum();
    let share = if mtd > 0 { Some(((mtd - managed).clamp(0, mtd), mtd)) } else { previous };
    let Some((other, total)) = share else { return (run_rate, None) };
    // Half up: (2 x run_rate x other + total) / (2 x total).
    let minor = (2 * i128::from(run_rate.minor) * other + total).div_euclid(2 * total);
    (Money::from_minor(i64::try_from(minor).unwrap_or(i64::MAX), run_rate.currency), share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn twelve_months_start_on_the_first_of_the_eleventh_month_before() {
        assert_eq!(window(12, d("2026-11-29")), d("2025-12-01"));
        assert_eq!(window(1, d("2026-11-29")), d("2026-11-01"));
        assert_eq!(window(14, d("2026-03-31")), d("2025-02-01"));
    }

    #[test]
    fn a_scenario_s_rows_are_expanded_to_every_day_they_hold() {
        let config = revscale_engine::Config::from_yaml(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
        let s =
            Scenario::parse_csv("date,mrr,cost\n2026-01-30,100,10\n2026-02-02,200,20\n", &config).unwrap();
        let days = expand(&s);
        assert_eq!(days.len(), 4);
        assert_eq!(days[2].0, d("2026-02-01"));
        assert_eq!(days[2].1.to_decimal().to_string(), "100.00");
        assert_eq!(days[3].1.to_decimal().to_string(), "200.00");
    }

    fn cost(run_rate: i64, mtd: i64, managed: &[i64]) -> CostSnapshot {
        let eur = |m| Money::from_minor(m, Currency::EUR);
        CostSnapshot {
            date: d("2026-03-10"),
            monthly_run_rate: eur(run_rate),
            month_to_date: eur(mtd),
            previous_month: eur(0),
            per_component: managed
                .iter()
                .enumerate()
                .map(|(i, m)| (revscale_engine::ComponentId::new(format!("c{i}")), eur(*m)))
                .collect(),
            estimated: false,
            forecast_used: true,
            fx_rate: "0.93".into(),
            requests: 2,
            collected_at: Utc::now(),
        }
    }

    #[test]
    fn the_exported_cost_leaves_out_the_managed_components_share() {
        let other = |c: CostSnapshot| unmanaged(&c, None).0.minor;
        // 30.00 of 90.00 so far was managed: a third of the 300.00 run-rate.
        assert_eq!(other(cost(30_000, 9_000, &[2_000, 1_000])), 20_000);
        assert_eq!(other(cost(30_000, 9_000, &[])), 30_000, "nothing managed");
        assert_eq!(other(cost(30_000, 0, &[100])), 30_000, "nothing spent yet, nothing known before");
        assert_eq!(other(cost(30_000, 9_000, &[12_000])), 0, "never negative");
        // 100.00 x 2/3 = 66.666... -> 66.67
        assert_eq!(other(cost(10_000, 300, &[100])), 6_667);
    }

    #[test]
    fn on_the_first_of_a_month_the_previous_day_s_managed_share_is_taken_out() {
        // The 31st: a third managed. The 1st: month to date 0, no components yet.
        let (_, share) = unmanaged(&cost(30_000, 9_000, &[3_000]), None);
        let (first, kept) = unmanaged(&cost(33_000, 0, &[]), share);
        assert_eq!(first.minor, 22_000, "two thirds of 330.00, not all of it");
        assert_eq!(kept, share);
    }

    #[test]
    fn the_collectors_day_is_the_schedule_s_local_date() {
        let now: chrono::DateTime<Utc> = "2026-11-30T05:00:00Z".parse().unwrap();
        assert_eq!(collectors_today(now, Some("Pacific/Honolulu")).unwrap(), d("2026-11-29"));
        assert_eq!(collectors_today(now, Some("Asia/Tokyo")).unwrap(), d("2026-11-30"));
        assert_eq!(collectors_today(now, None).unwrap(), d("2026-11-30"));
        assert!(collectors_today(now, Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn an_export_writes_complete_days_and_counts_the_rest() {
        let mut days = BTreeMap::new();
        let revenue = |date: &str, mrr: i64| RevenueSnapshot {
            date: d(date),
            mrr: Money::from_minor(mrr, Currency::EUR),
            subscriptions_counted: 1,
            customers: 1,
            collected_at: Utc::now(),
        };
        days.insert(
            d("2026-03-09"),
            StoredDay {
                revenue: Some(revenue("2026-03-09", 50_000)),
                cost: Some(cost(30_000, 9_000, &[])),
                imported_from: Some("x".into()),
                backfilled_from: vec![],
            },
        );
        days.insert(
            d("2026-03-10"),
            StoredDay {
                revenue: Some(revenue("2026-03-10", 51_000)),
                cost: None,
                imported_from: None,
                backfilled_from: vec![],
            },
        );
        let csv = export_csv("s", "t", &days).unwrap();
        assert_eq!((csv.days, csv.imported, csv.incomplete), (1, 1, 1));
        assert!(csv.text.contains("# currency: EUR\n"), "{}", csv.text);
        assert!(csv.text.ends_with("date,mrr,cost\n2026-03-09,500.00,300.00\n"), "{}", csv.text);
    }
}
