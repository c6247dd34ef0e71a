//! The forecast: its input checks, the same output for the same seed whatever the
//! threads, levels and pre-warm days read from the paths, and the runway guard inside
//! each path.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use chrono::{Days, NaiveDate};
use revscale_engine::Config;
use revscale_simulator::Scenario;
use revscale_simulator::forecast::{ForecastError, ForecastOptions, forecast};
use revscale_test_support::*;

/// Daily rows from 2026-01-01: MRR `mrr(day)`, cost 40.
fn daily_csv(days: u64, mrr: impl Fn(u64) -> u64) -> String {
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut csv = String::from("date,mrr,cost\n");
    for i in 0..days {
        csv.push_str(&format!("{},{},40\n", start + Days::new(i), mrr(i)));
    }
    csv
}

fn options(runs: u32) -> ForecastOptions {
    ForecastOptions { months: 6, runs, seed: 7, confidence: 0.9 }
}

fn run(
    config: &Config,
    csv: &str,
    opts: &ForecastOptions,
    threads: usize,
) -> Result<revscale_simulator::forecast::Forecast, ForecastError> {
    forecast(config, &Scenario::parse_csv(csv, config).unwrap(), opts, threads)
}

/// MRR climbing from 300 to about 750 in 150 days, with noise of its own: L1 within
/// the history, L2 in the months after.
fn growing() -> String {
    daily_csv(150, |i| 300 + i * 3 + (i * 7919) % 23)
}

#[test]
fn the_same_seed_gives_the_same_forecast_on_one_thread_or_three() {
    let c = config();
    let one = run(&c, &growing(), &options(60), 1).unwrap();
    let three = run(&c, &growing(), &options(60), 3).unwrap();
    assert_eq!(one, three);
    let other = run(&c, &growing(), &ForecastOptions { seed: 8, ..options(60) }, 1).unwrap();
    assert_ne!(one.months, other.months, "another seed draws other paths");
}

#[test]
fn a_growing_history_reaches_the_next_level_in_most_paths_and_says_when() {
    let c = config();
    let f = run(&c, &growing(), &options(100), 2).unwrap();
    assert_eq!(f.start_level, 1, "{f:?}");
    assert_eq!(f.months.len(), 6);
    assert_eq!(f.months[0].month, "2026-06", "the month after the history's last day, 2026-05-30");
    for m in &f.months {
        let total: f64 = m.level_probability.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{m:?}");
        assert!(m.mrr_p10.minor <= m.mrr_p50.minor && m.mrr_p50.minor <= m.mrr_p90.minor, "{m:?}");
    }
    let l2 = &f.levels[0];
    assert_eq!(l2.level, 2);
    assert!(l2.probability > 0.5, "{l2:?}");
    let (p10, p50, p90) = (l2.p10.unwrap(), l2.p50.unwrap(), l2.p90.unwrap());
    assert!(f.from <= p10 && p10 <= p50 && p50 <= p90 && p90 <= f.to, "{l2:?}");
    // The pre-warm day of L2's workers is the 10th percentile of the day they are
    // needed: at or before the day L2 comes on 10% of the paths.
    let workers = f.prewarm.iter().find(|p| p.component.as_str() == "k8s_workers").unwrap();
    assert!(workers.prewarm_by.is_some_and(|d| d <= p10), "{workers:?}");
    assert!(f.levels.iter().skip(1).all(|l| l.probability < l2.probability));
}

#[test]
fn a_flat_history_stays_where_it_is_with_certainty() {
    let c = config();
    let f = run(&c, &daily_csv(120, |_| 300), &options(30), 2).unwrap();
    assert!(f.months.iter().all(|m| m.level_probability[0] == 1.0));
    assert!(f.months.iter().all(|m| m.mrr_p10 == eur(300) && m.mrr_p90 == eur(300)));
    assert!(f.levels.iter().all(|l| l.probability == 0.0 && l.p50.is_none()));
    assert!(f.prewarm.iter().all(|p| p.prewarm_by.is_none()));
}

#[test]
fn bad_options_and_short_or_gapped_histories_are_refused_with_the_reason() {
    let c = config();
    let csv = growing();
    for (opts, says) in [
        (ForecastOptions { runs: 0, ..options(1) }, "--runs must be at least 1 (got 0)"),
        (ForecastOptions { months: 0, ..options(1) }, "--months must be 1 to 60 (got 0)"),
        (ForecastOptions { months: 61, ..options(1) }, "--months must be 1 to 60 (got 61)"),
        (
            ForecastOptions { confidence: 1.0, ..options(1) },
            "--confidence must be above 0 and below 1 (got 1)",
        ),
    ] {
        assert_eq!(run(&c, &csv, &opts, 1).unwrap_err().to_string(), says);
    }
    let short = daily_csv(89, |_| 300);
    assert!(run(&c, &short, &options(1), 1).unwrap_err().to_string().contains("the history has 89 days"));
    // 2026-01-05 missing: a daily file with a gap.
    let gapped: String =
        growing().lines().filter(|l| !l.starts_with("2026-01-05")).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        run(&c, &gapped, &options(1), 1).unwrap_err().to_string(),
        "line 6: 2026-01-06 follows 2026-01-04: a daily history (history fetch) must have every day; 2026-01-04 to 2026-01-06 is a gap"
    );
    // A scenario's rows are change points, held until the next: not gaps.
    let scenario =
        "date,mrr,cost\n2026-01-01,300,40\n2026-02-01,320,40\n2026-04-15,350,40\n2026-05-01,360,40\n";
    assert_eq!(run(&c, scenario, &options(5), 1).unwrap().history_days, 151, "to May 31st");
}

#[test]
fn each_path_runs_the_runway_guard_when_cash_is_known() {
    let guarded = Config::from_yaml(include_str!("../../../config/examples/runway.yaml")).unwrap();
    // The growing history with EUR 300,000 in the bank on its first day: at EUR 50,000 a
    // month of fixed burn the runway is about 6 months, under the minimum 12, and the
    // figure is older than 90 days when the forecast begins: every activation is held.
    let mut csv = growing().replacen("date,mrr,cost\n", "date,mrr,cost,cash\n", 1);
    csv = csv
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\n"),
            1 => format!("{l},300000\n"),
            _ => format!("{l},\n"),
        })
        .collect();
    let f = run(&guarded, &csv, &options(40), 2).unwrap();
    assert!(f.runway_guard_probability > 0.5, "{f:?}");
    // Without any cash figure, a guarded configuration is refused with what to do.
    let refused = run(&guarded, &growing(), &options(1), 1).unwrap_err().to_string();
    assert!(
        refused.starts_with("the configuration guards the runway, and the history has no cash column"),
        "{refused}"
    );
    assert_eq!(f.start_level, 0, "held in the history too");
    assert!(f.levels.iter().all(|l| l.probability == 0.0), "no level passes the runway guard: {f:?}");
    let free = run(&config(), &csv, &options(40), 2).unwrap();
    assert_eq!(free.runway_guard_probability, 0.0);
    assert!(free.levels.iter().any(|l| l.probability > 0.5), "{free:?}");
}

#[test]
fn calibration_holds_out_the_last_months_and_compares_what_happened_with_the_band() {
    let c = config();
    let csv = include_str!("../../../events/scenarios/steady-growth.csv");
    let history = Scenario::parse_csv(csv, &c).unwrap();
    let cal = revscale_simulator::forecast::calibrate(&c, &history, 6, &options(40), 2).unwrap();
    assert_eq!(cal.fitted_until, NaiveDate::from_ymd_opt(2027, 4, 30).unwrap());
    // Too few days left to fit on, or nothing held out: refused, never a panic.
    for holdout in [0, 20, 30] {
        let refused =
            revscale_simulator::forecast::calibrate(&c, &history, holdout, &options(5), 1).unwrap_err();
        assert!(
            refused.to_string().starts_with("--holdout-months must be at least 1"),
            "{holdout}: {refused}"
        );
    }
    // A daily history ending on the 30th: the held-out months still end on or before it.
    let daily = daily_csv(150, |i| 300 + i);
    let d = Scenario::parse_csv(&daily, &c).unwrap();
    let cal1 = revscale_simulator::forecast::calibrate(&c, &d, 1, &options(5), 1).unwrap();
    assert_eq!(cal1.months.len(), 1, "{cal1:?}");
    assert_eq!(cal.months.len(), 6);
    assert_eq!(cal.months[0].month, "2027-05");
    // What happened is the scenario through the same engine: May 2027's MRR and level.
    assert_eq!((cal.months[0].mrr, cal.months[0].level), (eur(10_800), 3));
    for m in &cal.months {
        assert_eq!(m.mrr_inside, m.mrr_p10.minor <= m.mrr.minor && m.mrr.minor <= m.mrr_p90.minor, "{m:?}");
        assert_eq!(m.level_inside, m.level_p10 <= m.level && m.level <= m.level_p90, "{m:?}");
    }
    let (mrr, level, n) = cal.coverage();
    assert!(mrr <= n && level <= n && n == 6);
}

#[test]
fn a_known_cash_figure_is_carried_at_the_engines_estimate_and_a_stale_one_is_not() {
    use revscale_simulator::Simulation;
    let guarded = Config::from_yaml(include_str!("../../../config/examples/runway.yaml")).unwrap();
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut sim = Simulation::new(&guarded, start, Vec::new(), false);
    sim.step(start, eur(900), eur(100), Some(eur(1_000_000)));
    for i in 1..=30 {
        sim.step(start + Days::new(i), eur(900), eur(100), None);
    }
    let day31 = start + Days::new(31);
    sim.carry_cash(day31);
    let carried = sim.state().cash.clone().unwrap();
    // January 2nd to February 1st, 31 days at 50,000 + 125 (production) - 900 a month:
    // 49,225 x 12 x 31 / 365, rounded up.
    let burned = (4_922_500i64 * 12 * 31 + 364) / 365;
    assert_eq!((carried.as_of, carried.amount.minor), (day31, 100_000_000 - burned));
    assert_eq!(carried.set_by, "forecast");
    // A figure over 90 days old is not carried: the runway stays unknown.
    let mut stale = Simulation::new(&guarded, start, Vec::new(), false);
    stale.step(start, eur(900), eur(100), Some(eur(1_000_000)));
    stale.carry_cash(start + Days::new(91));
    assert_eq!(stale.state().cash.as_ref().unwrap().as_of, start);
}
