//! A Monte Carlo forecast: future MRR paths resampled from the history's own daily
//! movements, each run day by day through the real engine (the simulator's
//! [`Simulation`], so the cost guard, the runway guard and every rule apply as they
//! would), and what they say about the coming months.
//!
//! - **MRR paths** are a moving-block bootstrap of the history's daily log-changes:
//!   blocks of [`BLOCK_DAYS`] consecutive changes, drawn uniformly with replacement and
//!   chained from the last recorded MRR. Blocks keep a month's shape (a month-end jump,
//!   a week of churn) that drawing single days would scatter.
//! - **Cost**: the engine adds each managed component's configured cost for the state it
//!   is in; the rest (the history's `cost` column, what revscale does not manage) goes on
//!   from its last figure along its least-squares trend over the last 90 days, never
//!   under zero, computed in exact integer arithmetic.
//! - **Cash** (with a runway section): the last figure of the history, carried every 30
//!   days at the engine's own estimate (less the net burn of the path so far), so that
//!   the runway guard sees the money, never a figure grown too old to use. No round,
//!   no other income: the model knows only what the history shows.
//! - **Deterministic**: path `i` draws from its own generator, seeded from `--seed` and
//!   `i`, so the output is the same for the same seed whatever the number of threads.
//!
//! The paths' decisions are the engine's, by the same rules; they are named without the
//! hash of their inputs (`Identify::Unrecorded`), as nothing records them, which is a
//! most of an evaluation's time (10,000 one-year paths: 32.5 s with it, 9.5 s without).
//!
//! The statistics are floating point (log-changes, their products); every amount the
//! engine sees is rounded to the currency's minor unit first.

use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};
use revscale_engine::config::Config;
use revscale_engine::decision::Event;
use revscale_engine::history::YearMonth;
use revscale_engine::model::{ComponentId, ComponentState};
use revscale_engine::money::Money;

use crate::{Scenario, Simulation};

/// Days per resampled block.
pub const BLOCK_DAYS: usize = 30;
/// The least history a forecast is made from: three months of daily movements.
pub const MIN_HISTORY_DAYS: usize = 90;
/// The longest horizon.
pub const MAX_MONTHS: u32 = 60;
/// The days the unmanaged cost's trend is fitted on.
const TREND_DAYS: usize = 90;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastOptions {
    pub months: u32,
    pub runs: u32,
    pub seed: u64,
    /// The confidence of the pre-warm days (0.9: ready in time on 90% of the paths).
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("--months must be 1 to {MAX_MONTHS} (got {0})")]
    Months(u32),
    #[error("--runs must be at least 1 (got 0)")]
    Runs,
    #[error("--confidence must be above 0 and below 1 (got {0})")]
    Confidence(f64),
    #[error(
        "the history has {days} days; a forecast needs at least {MIN_HISTORY_DAYS} days of daily MRR to resample from"
    )]
    TooShort { days: usize },
    #[error(
        "line {line}: {date} follows {previous}: a daily history (history fetch) must have every day; {previous} to {date} is a gap"
    )]
    Gap { line: u64, date: NaiveDate, previous: NaiveDate },
    #[error(
        "the configuration guards the runway, and the history has no cash column: add one (the bank balance on at least one day), or forecast with a configuration without a runway section"
    )]
    NoCash,
    #[error("--holdout-months must be at least 1, and leave at least {MIN_HISTORY_DAYS} days to fit on")]
    Holdout,
    #[error("{0}")]
    Simulation(#[from] crate::SimError),
}

/// The history as the forecast reads it: one figure a day.
#[derive(Debug, Clone)]
struct Daily {
    dates: Vec<NaiveDate>,
    mrr: Vec<i64>,
    cost: Vec<i64>,
}

/// Every day from the first row to the last. A daily history (nine steps in ten are
/// one day, as `history fetch` writes it) must have every day: any other step is a
/// gap, refused with its line. Anything else is a scenario, whose rows are change
/// points held until the next, the last one for its month.
fn daily(scenario: &Scenario) -> Result<Daily, ForecastError> {
    let lines = &scenario.lines;
    let rows = &scenario.rows;
    let steps = rows.len().saturating_sub(1);
    let one_day = rows.windows(2).filter(|w| (w[1].date - w[0].date).num_days() == 1).count();
    let is_daily = steps > 0 && one_day * 10 >= steps * 9;
    if is_daily
        && let Some((i, w)) =
            rows.windows(2).enumerate().find(|(_, w)| (w[1].date - w[0].date).num_days() != 1)
    {
        return Err(ForecastError::Gap {
            line: lines.get(i + 1).copied().unwrap_or(0),
            date: w[1].date,
            previous: w[0].date,
        });
    }
    let (first, last) = (scenario.first_date(), scenario.last_date());
    // A monthly scenario's last row holds for its month.
    let last = if is_daily || rows.len() < 2 { last } else { last + Months::new(1) - Days::new(1) };
    let mut d = Daily { dates: Vec::new(), mrr: Vec::new(), cost: Vec::new() };
    let mut date = first;
    while date <= last {
        if let Some(row) = scenario.row_on(date) {
            d.dates.push(date);
            d.mrr.push(row.mrr.minor);
            d.cost.push(row.cost.minor);
        }
        date = date + Days::new(1);
    }
    Ok(d)
}

/// The daily log-changes of MRR (a day at or from zero is no change: there is nothing
/// to scale).
fn log_changes(mrr: &[i64]) -> Vec<f64> {
    mrr.windows(2)
        .map(|w| if w[0] > 0 && w[1] > 0 { (w[1] as f64 / w[0] as f64).ln() } else { 0.0 })
        .collect()
}

/// The unmanaged cost's least-squares line over its last days: the slope as an exact
/// fraction `(numerator, denominator)` of minor units a day.
fn trend(cost: &[i64]) -> (i128, i128) {
    let tail = &cost[cost.len().saturating_sub(TREND_DAYS)..];
    let n = tail.len() as i128;
    if n < 2 {
        return (0, 1);
    }
    let (mut sx, mut sy, mut sxx, mut sxy) = (0i128, 0i128, 0i128, 0i128);
    for (x, y) in tail.iter().enumerate() {
        let (x, y) = (x as i128, i128::from(*y));
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let den = n * sxx - sx * sx;
    if den == 0 { (0, 1) } else { (n * sxy - sx * sy, den) }
}

/// `last` after `days` along the slope, rounded to the minor unit, never under zero.
fn projected_cost(last: i64, (num, den): (i128, i128), days: i64) -> i64 {
    let moved = i128::from(last) + (2 * num * i128::from(days) + den).div_euclid(2 * den);
    i64::try_from(moved.max(0)).unwrap_or(i64::MAX)
}

/// What one path went through.
#[derive(Debug, Clone)]
struct PathOutcome {
    /// Level and MRR (minor units) at each month's end.
    month_levels: Vec<u8>,
    month_mrr: Vec<i64>,
    /// The first day at or above each level (index = level).
    first_at_level: Vec<Option<NaiveDate>>,
    /// The first day each component was HOT, for those that were not at the start.
    first_hot: BTreeMap<ComponentId, NaiveDate>,
    cost_guard_held: bool,
    runway_guard_held: bool,
}

/// A path's generator: seeded from the run's seed and the path's index (splitmix64),
/// so that each path draws the same numbers on any thread.
fn path_rng(seed: u64, path: u32) -> fastrand::Rng {
    let mut z = seed ^ (u64::from(path).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    fastrand::Rng::with_seed(z ^ (z >> 31))
}

struct Model<'a> {
    config: &'a Config,
    start: Simulation<'a>,
    first_day: NaiveDate,
    horizon: u32,
    last_mrr: i64,
    last_cost: i64,
    slope: (i128, i128),
    changes: Vec<f64>,
    month_ends: Vec<NaiveDate>,
    hot_at_start: Vec<ComponentId>,
}

impl Model<'_> {
    fn run(&self, seed: u64, path: u32) -> PathOutcome {
        let mut rng = path_rng(seed, path);
        let mut sim = self.start.clone();
        let levels = self.config.levels.len();
        let mut out = PathOutcome {
            month_levels: Vec::with_capacity(self.month_ends.len()),
            month_mrr: Vec::with_capacity(self.month_ends.len()),
            first_at_level: vec![None; levels],
            first_hot: BTreeMap::new(),
            cost_guard_held: false,
            runway_guard_held: false,
        };
        let blocks = self.changes.len().saturating_sub(BLOCK_DAYS) + 1;
        let mut mrr = self.last_mrr as f64;
        let mut block = 0usize;
        let mut offset = BLOCK_DAYS;
        let mut month = 0usize;
        let currency = self.config.currency;
        for t in 0..self.horizon {
            if offset == BLOCK_DAYS {
                block = rng.usize(0..blocks);
                offset = 0;
            }
            mrr *= self.changes.get(block + offset).map_or(1.0, |c| c.exp());
            offset += 1;
            let date = self.first_day + Days::new(u64::from(t));
            // The balance the engine estimates, entered every 30 days, as a founder
            // reading the bank would (the history's last figure ages otherwise).
            if t % 30 == 0 {
                sim.carry_cash(date - Days::new(1));
            }
            let minor = mrr.round().clamp(0.0, i64::MAX as f64) as i64;
            let cost = projected_cost(self.last_cost, self.slope, i64::from(t) + 1);
            let step =
                sim.step(date, Money::from_minor(minor, currency), Money::from_minor(cost, currency), None);
            for e in &step.events {
                match e {
                    Event::Blocked { .. } => out.cost_guard_held = true,
                    Event::RunwayHeld { .. } => out.runway_guard_held = true,
                    _ => {}
                }
            }
            let level = usize::from(sim.state().level);
            for slot in out.first_at_level.iter_mut().take(level + 1) {
                slot.get_or_insert(date);
            }
            for (id, record) in &sim.state().components {
                if record.state == ComponentState::Hot && !self.hot_at_start.contains(id) {
                    out.first_hot.entry(id.clone()).or_insert(date);
                }
            }
            if self.month_ends.get(month) == Some(&date) {
                out.month_levels.push(sim.state().level);
                out.month_mrr.push(minor);
                month += 1;
            }
        }
        out
    }
}

/// One month of the forecast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonthForecast {
    pub month: String,
    /// The probability of each level at the month's end (index = level).
    pub level_probability: Vec<f64>,
    pub mrr_p10: Money,
    pub mrr_p50: Money,
    pub mrr_p90: Money,
}

/// When a level is first reached.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LevelForecast {
    pub level: u8,
    /// The share of paths that reach it (or above) within the horizon.
    pub probability: f64,
    /// The day it is first reached, among the paths that reach it.
    pub p10: Option<NaiveDate>,
    pub p50: Option<NaiveDate>,
    pub p90: Option<NaiveDate>,
}

/// The day to pre-warm a component so that it is ready before it is needed on
/// `confidence` of the paths: the `1 - confidence` quantile of the day it first goes
/// HOT, the paths where it never does counting as later than any.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrewarmDay {
    pub component: ComponentId,
    /// The share of paths where it goes HOT within the horizon.
    pub needed_probability: f64,
    /// `None`: needed on fewer than `1 - confidence` of the paths.
    pub prewarm_by: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Forecast {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub runs: u32,
    pub seed: u64,
    pub confidence: f64,
    pub history_days: usize,
    pub start_level: u8,
    pub start_mrr: Money,
    pub months: Vec<MonthForecast>,
    /// The levels above `start_level`.
    pub levels: Vec<LevelForecast>,
    /// The share of paths on which the cost guard held a change at least once.
    pub cost_guard_probability: f64,
    /// The same for the runway guard (0 without a runway section).
    pub runway_guard_probability: f64,
    pub prewarm: Vec<PrewarmDay>,
}

/// The `q` quantile (nearest rank) of sorted values.
fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    // A hair under, so that 0.1 x 10,000 (1000.0000000000001 in floating point) is rank
    // 1,000, not 1,001.
    let rank = (q * sorted.len() as f64 - 1e-9).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// `history` (a scenario: daily rows, or monthly rows held until the next), then
/// `options.months` ahead, `options.runs` times, on `threads` threads.
pub fn forecast(
    config: &Config,
    history: &Scenario,
    options: &ForecastOptions,
    threads: usize,
) -> Result<Forecast, ForecastError> {
    if options.months == 0 || options.months > MAX_MONTHS {
        return Err(ForecastError::Months(options.months));
    }
    if options.runs == 0 {
        return Err(ForecastError::Runs);
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(ForecastError::Confidence(options.confidence));
    }
    let days = daily(history)?;
    if days.dates.len() < MIN_HISTORY_DAYS {
        return Err(ForecastError::TooShort { days: days.dates.len() });
    }
    if config.runway.is_some() && history.rows.iter().all(|r| r.cash.is_none()) {
        return Err(ForecastError::NoCash);
    }
    // The history through the real engine once: the state every path starts from.
    // Changes that wait for approval are approved the same day, in the history and on
    // every path: the forecast says when levels come if the operators say yes.
    let mut start = Simulation::new(config, days.dates[0], Vec::new(), true);
    for (i, date) in days.dates.iter().enumerate() {
        let row = history.row_on(*date);
        let cash = row.and_then(|r| r.cash.filter(|_| r.date == *date));
        start.step(
            *date,
            Money::from_minor(days.mrr[i], config.currency),
            Money::from_minor(days.cost[i], config.currency),
            cash,
        );
    }
    let last_day = *days.dates.last().unwrap_or(&days.dates[0]);
    let first_day = last_day + Days::new(1);
    let to = first_day + Months::new(options.months) - Days::new(1);
    // `to` is the last month's end.
    let horizon = u32::try_from((to - first_day).num_days() + 1).unwrap_or(u32::MAX);
    // The k-th month ends the day before `first_day + k months`.
    let month_ends: Vec<NaiveDate> =
        (1..=options.months).map(|k| first_day + Months::new(k) - Days::new(1)).collect();
    // The paths' decisions are never recorded: their ids need no hash.
    let start = start.unrecorded();
    let hot_at_start: Vec<ComponentId> = start
        .state()
        .components
        .iter()
        .filter(|(_, r)| r.state == ComponentState::Hot)
        .map(|(id, _)| id.clone())
        .collect();
    let start_level = start.state().level;
    let model = Model {
        config,
        first_day,
        horizon,
        last_mrr: *days.mrr.last().unwrap_or(&0),
        last_cost: *days.cost.last().unwrap_or(&0),
        slope: trend(&days.cost),
        changes: log_changes(&days.mrr),
        month_ends: month_ends.clone(),
        hot_at_start,
        start,
    };
    let outcomes = run_paths(&model, options, threads);
    Ok(summarise(config, &model, options, &outcomes, &days, start_level, to))
}

/// Every path, split in contiguous ranges over `threads` scoped threads, gathered in
/// path order.
fn run_paths(model: &Model<'_>, options: &ForecastOptions, threads: usize) -> Vec<PathOutcome> {
    let threads = threads.clamp(1, options.runs as usize);
    let per = options.runs.div_ceil(threads as u32);
    let mut outcomes = Vec::with_capacity(options.runs as usize);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u32)
            .map(|t| {
                let range = (t * per)..((t + 1) * per).min(options.runs);
                scope.spawn(move || range.map(|path| model.run(options.seed, path)).collect::<Vec<_>>())
            })
            .collect();
        for handle in handles {
            // A path's panic is the engine's bug: it is raised here, not hidden.
            match handle.join() {
                Ok(part) => outcomes.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    outcomes
}

fn summarise(
    config: &Config,
    model: &Model<'_>,
    options: &ForecastOptions,
    outcomes: &[PathOutcome],
    days: &Daily,
    start_level: u8,
    to: NaiveDate,
) -> Forecast {
    let runs = outcomes.len() as f64;
    let share = |n: usize| n as f64 / runs;
    let currency = config.currency;
    let levels = config.levels.len();
    let months = model
        .month_ends
        .iter()
        .enumerate()
        .map(|(i, end)| {
            let mut counts = vec![0usize; levels];
            let mut mrr: Vec<i64> = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                if let (Some(level), Some(m)) = (o.month_levels.get(i), o.month_mrr.get(i)) {
                    counts[usize::from(*level).min(levels - 1)] += 1;
                    mrr.push(*m);
                }
            }
            mrr.sort_unstable();
            let q = |p| Money::from_minor(quantile(&mrr, p).unwrap_or(0), currency);
            MonthForecast {
                month: YearMonth::of(*end).to_string(),
                level_probability: counts.into_iter().map(share).collect(),
                mrr_p10: q(0.1),
                mrr_p50: q(0.5),
                mrr_p90: q(0.9),
            }
        })
        .collect();
    // The levels above the one the history ends at: those below are reached already.
    let levels_out = (usize::from(start_level) + 1..levels)
        .map(|l| {
            let mut reached: Vec<NaiveDate> = outcomes.iter().filter_map(|o| o.first_at_level[l]).collect();
            reached.sort_unstable();
            LevelForecast {
                level: l as u8,
                probability: share(reached.len()),
                p10: quantile(&reached, 0.1),
                p50: quantile(&reached, 0.5),
                p90: quantile(&reached, 0.9),
            }
        })
        .collect();
    let prewarm = config
        .activation_order
        .iter()
        .filter(|id| !model.hot_at_start.contains(id) && !config.components[*id].is_always_on())
        .map(|id| {
            let mut needed: Vec<NaiveDate> =
                outcomes.iter().filter_map(|o| o.first_hot.get(id).copied()).collect();
            needed.sort_unstable();
            // The (1 - confidence) quantile over every path, the ones that never need
            // it counting as later than any day.
            let rank = ((1.0 - options.confidence) * runs - 1e-9).ceil().max(1.0) as usize;
            PrewarmDay {
                component: id.clone(),
                needed_probability: share(needed.len()),
                prewarm_by: needed.get(rank - 1).copied(),
            }
        })
        .collect();
    Forecast {
        from: model.first_day,
        to,
        runs: options.runs,
        seed: options.seed,
        confidence: options.confidence,
        history_days: days.dates.len(),
        start_level,
        start_mrr: Money::from_minor(model.last_mrr, currency),
        months,
        levels: levels_out,
        cost_guard_probability: share(outcomes.iter().filter(|o| o.cost_guard_held).count()),
        runway_guard_probability: share(outcomes.iter().filter(|o| o.runway_guard_held).count()),
        prewarm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_is_the_exact_least_squares_slope_and_the_projection_never_goes_under_zero() {
        // 100, 110, 120...: 10 a day.
        let cost: Vec<i64> = (0..10).map(|i| 100 + 10 * i).collect();
        let slope = trend(&cost);
        assert_eq!(slope.0 / slope.1, 10);
        assert_eq!(projected_cost(190, slope, 3), 220);
        let falling: Vec<i64> = (0..10).map(|i| 100 - 10 * i).collect();
        assert_eq!(projected_cost(10, trend(&falling), 5), 0);
        assert_eq!(trend(&[5]), (0, 1));
        assert_eq!(projected_cost(7, trend(&[7, 7, 7]), 100), 7);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(quantile(&v, 0.1), Some(1));
        assert_eq!(quantile(&v, 0.5), Some(5));
        assert_eq!(quantile(&v, 0.9), Some(9));
        assert_eq!(quantile::<i64>(&[], 0.5), None);
        assert_eq!(quantile(&[3], 0.9), Some(3));
    }

    #[test]
    fn a_day_at_or_from_zero_is_no_change_and_a_doubling_is_ln_2() {
        let c = log_changes(&[0, 100, 200, 0, 50]);
        assert_eq!(c.len(), 4);
        assert_eq!(c[0], 0.0);
        assert!((c[1] - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!((c[2], c[3]), (0.0, 0.0));
    }

    #[test]
    fn each_path_draws_the_same_numbers_whatever_the_order() {
        let a: Vec<u64> = (0..5).map(|p| path_rng(42, p).u64(..)).collect();
        let b: Vec<u64> =
            (0..5).rev().map(|p| path_rng(42, p).u64(..)).collect::<Vec<_>>().into_iter().rev().collect();
        assert_eq!(a, b);
        assert_ne!(path_rng(42, 0).u64(..), path_rng(43, 0).u64(..));
        assert_ne!(path_rng(42, 0).u64(..), path_rng(42, 1).u64(..));
    }
}

/// One held-out month: what happened against what the forecast made of the months
/// before it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CalibrationMonth {
    pub month: String,
    pub mrr: Money,
    pub mrr_p10: Money,
    pub mrr_p90: Money,
    pub mrr_inside: bool,
    pub level: u8,
    /// The P10 and P90 of the forecast's level at the month's end.
    pub level_p10: u8,
    pub level_p90: u8,
    pub level_inside: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Calibration {
    pub fitted_until: NaiveDate,
    pub months: Vec<CalibrationMonth>,
}

impl Calibration {
    /// (months with the realised MRR inside P10-P90, months with the level inside, months).
    pub fn coverage(&self) -> (usize, usize, usize) {
        let mrr = self.months.iter().filter(|m| m.mrr_inside).count();
        let level = self.months.iter().filter(|m| m.level_inside).count();
        (mrr, level, self.months.len())
    }
}

/// The level at a cumulative share `q` of the paths.
fn level_quantile(probabilities: &[f64], q: f64) -> u8 {
    let mut cumulative = 0.0;
    for (level, p) in probabilities.iter().enumerate() {
        cumulative += p;
        if cumulative + 1e-9 >= q {
            return level as u8;
        }
    }
    probabilities.len().saturating_sub(1) as u8
}

/// Honest calibration: the forecast fitted on all but the last `holdout` months of
/// `history`, against what the same engine did on those months.
pub fn calibrate(
    config: &Config,
    history: &Scenario,
    holdout: u32,
    options: &ForecastOptions,
    threads: usize,
) -> Result<Calibration, ForecastError> {
    if holdout == 0 {
        return Err(ForecastError::Holdout);
    }
    let days = daily(history)?;
    let Some(&last) = days.dates.last() else {
        return Err(ForecastError::TooShort { days: 0 });
    };
    // The last day fitted on: the held-out months end on or before the history's last.
    let mut fitted_until = last - Months::new(holdout);
    while fitted_until + Days::new(1) + Months::new(holdout) - Days::new(1) > last {
        fitted_until = fitted_until - Days::new(1);
    }
    // The fit is the history's days up to then, one row a day (a scenario's change
    // points expanded, so that nothing after `fitted_until` leaks in), cash on its day.
    let rows: Vec<crate::ScenarioRow> = days
        .dates
        .iter()
        .enumerate()
        .take_while(|(_, d)| **d <= fitted_until)
        .map(|(i, d)| crate::ScenarioRow {
            date: *d,
            mrr: Money::from_minor(days.mrr[i], config.currency),
            cost: Money::from_minor(days.cost[i], config.currency),
            cash: history.row_on(*d).and_then(|r| r.cash.filter(|_| r.date == *d)),
        })
        .collect();
    if rows.len() < MIN_HISTORY_DAYS {
        return Err(ForecastError::Holdout);
    }
    let fit = Scenario { lines: vec![0; rows.len()], rows, failures: Vec::new() };
    let fitted = forecast(config, &fit, &ForecastOptions { months: holdout, ..*options }, threads)?;
    // What happened: the same engine over the whole history, approving as the
    // forecast's paths do, without the scenario's injected failures (the fit has none).
    let plain = Scenario { failures: Vec::new(), ..history.clone() };
    let realised = crate::simulate(
        config,
        &plain,
        &crate::SimOptions { until: Some(last), auto_approve: true, ..crate::SimOptions::default() },
    )?;
    let months = fitted
        .months
        .iter()
        .enumerate()
        .filter_map(|(k, m)| {
            let end = fitted.from + Months::new(k as u32 + 1) - Days::new(1);
            let day = realised.iter().find(|d| d.date == end)?;
            let (level_p10, level_p90) =
                (level_quantile(&m.level_probability, 0.1), level_quantile(&m.level_probability, 0.9));
            Some(CalibrationMonth {
                month: m.month.clone(),
                mrr: day.mrr,
                mrr_p10: m.mrr_p10,
                mrr_p90: m.mrr_p90,
                mrr_inside: m.mrr_p10.minor <= day.mrr.minor && day.mrr.minor <= m.mrr_p90.minor,
                level: day.level,
                level_p10,
                level_p90,
                level_inside: level_p10 <= day.level && day.level <= level_p90,
            })
        })
        .collect();
    Ok(Calibration { fitted_until, months })
}

#[cfg(test)]
mod calibration_tests {
    use super::*;

    #[test]
    fn the_level_quantiles_read_the_cumulative_shares() {
        assert_eq!(level_quantile(&[0.0, 1.0, 0.0], 0.1), 1);
        assert_eq!(level_quantile(&[0.05, 0.5, 0.45], 0.1), 1);
        assert_eq!(level_quantile(&[0.05, 0.5, 0.45], 0.9), 2);
        assert_eq!(level_quantile(&[0.1, 0.8, 0.1], 0.1), 0);
        assert_eq!(level_quantile(&[0.1, 0.8, 0.1], 0.9), 1);
    }
}
