//! Daily revenue and cost snapshots, and the windows the rules read from them.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, Ratio};

/// What the collectors recorded for one day: MRR on that day and, when the cost
/// collector ran too, the monthly run-rate of cost, both in the revenue currency. A day
/// with revenue and no cost still counts for the debounce windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DailySnapshot {
    pub date: NaiveDate,
    pub mrr: Money,
    pub cost: Option<Money>,
}

impl DailySnapshot {
    /// Cost / MRR; `None` without revenue or without a cost figure.
    pub fn ratio(&self) -> Option<Ratio> {
        self.cost?.ratio_to(self.mrr)
    }
}

/// The exact mean of daily MRR over a window, and how much of the window it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyMean {
    total: i128,
    /// Days with a snapshot.
    pub recorded: u32,
    /// Calendar days in the window.
    pub days: u32,
    currency: Currency,
}

impl DailyMean {
    /// Compared exactly (total >= min x days): no rounding decides a level.
    pub fn at_least(&self, min: Money) -> bool {
        self.recorded > 0 && self.total >= i128::from(min.minor) * i128::from(self.recorded)
    }

    /// Rounded down to the minor unit: the reference revenue of the cost guard, so that
    /// rounding never makes a limit more permissive.
    pub fn floor(&self) -> Money {
        let n = i128::from(self.recorded.max(1));
        Money::from_minor(self.total.div_euclid(n) as i64, self.currency)
    }

    /// Rounded half up to the minor unit, for people (EUR 2,766.67, not 2,766.66).
    pub fn rounded(&self) -> Money {
        let n = i128::from(self.recorded.max(1));
        Money::from_minor((self.total * 2 + n).div_euclid(2 * n) as i64, self.currency)
    }

    /// At least 90% of the window's days have a snapshot.
    pub fn covered(&self) -> bool {
        covered(self.recorded, self.days)
    }
}

/// A window is usable when at least 90% of its days have a snapshot: one missed
/// collection does not void it, a month of silence does.
pub fn covered(recorded: u32, days: u32) -> bool {
    u64::from(recorded) * 10 >= u64::from(days) * 9
}

/// A calendar month, such as `2026-10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

impl YearMonth {
    pub fn of(date: NaiveDate) -> Self {
        YearMonth { year: date.year(), month: date.month() }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MIN)
    }

    pub fn next(self) -> Self {
        YearMonth::of(self.first_day() + Months::new(1))
    }

    pub fn prev(self) -> Self {
        YearMonth::of(self.first_day() - Months::new(1))
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Which of a day's figures were written after the day, from their source's record of
/// it, because the collector missed the day: revenue rebuilt from Stripe invoices, cost
/// read from Cost Explorer for that date. The rules read such a day like any other; the
/// evaluator names it in its reasons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Backfilled {
    pub revenue: bool,
    pub cost: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    days: BTreeMap<NaiveDate, DailySnapshot>,
    /// The days whose figures were backfilled (absent from histories written before
    /// backfills existed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    backfilled: BTreeMap<NaiveDate, Backfilled>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_snapshots(snapshots: impl IntoIterator<Item = DailySnapshot>) -> Self {
        History { days: snapshots.into_iter().map(|s| (s.date, s)).collect(), backfilled: BTreeMap::new() }
    }

    /// Notes that some of `date`'s figures were backfilled (added to any earlier mark).
    /// A day without a snapshot in this history takes no mark: it is not a day of it.
    pub fn mark_backfilled(&mut self, date: NaiveDate, mark: Backfilled) {
        if self.days.contains_key(&date) {
            let entry = self.backfilled.entry(date).or_default();
            entry.revenue |= mark.revenue;
            entry.cost |= mark.cost;
        }
    }

    /// The backfilled days from `from` to `to`, both included, oldest first.
    pub fn backfilled(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = (NaiveDate, Backfilled)> + '_ {
        self.backfilled.range(from..=to.max(from)).map(|(d, b)| (*d, *b))
    }

    pub fn insert(&mut self, snapshot: DailySnapshot) {
        self.days.insert(snapshot.date, snapshot);
    }

    pub fn get(&self, date: NaiveDate) -> Option<&DailySnapshot> {
        self.days.get(&date)
    }

    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &DailySnapshot> {
        self.days.values()
    }

    /// Snapshots from `from` to `to`, both included, oldest first.
    pub fn range(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = &DailySnapshot> {
        self.days.range(from..=to.max(from)).map(|(_, s)| s)
    }

    /// The latest snapshot strictly before `date`.
    pub fn before(&self, date: NaiveDate) -> Option<&DailySnapshot> {
        self.days.range(..date).next_back().map(|(_, s)| s)
    }

    /// Snapshots in `(after, to]`, oldest first: a debounce window ending on `to`.
    pub fn window(&self, after: NaiveDate, to: NaiveDate) -> impl Iterator<Item = &DailySnapshot> {
        let lower = Bound::Excluded(after.min(to));
        self.days.range((lower, Bound::Included(to))).map(|(_, s)| s)
    }

    /// Mean daily MRR over `(after, to]`; `None` without a snapshot in it.
    pub fn daily_mean(&self, after: NaiveDate, to: NaiveDate) -> Option<DailyMean> {
        let mut total = 0i128;
        let mut recorded = 0u32;
        let mut currency = None;
        for s in self.window(after, to) {
            total += i128::from(s.mrr.minor);
            recorded += 1;
            currency = Some(s.mrr.currency);
        }
        let days = u32::try_from((to - after).num_days().max(0)).unwrap_or(u32::MAX);
        currency.map(|currency| DailyMean { total, recorded, days, currency })
    }

    /// Mean daily MRR over the three months up to `today` (today included).
    pub fn three_month_mean(&self, today: NaiveDate) -> Option<DailyMean> {
        self.daily_mean(today - Months::new(3), today)
    }

    /// The same days with every cost figure passed through `cost`.
    pub fn with_costs(&self, cost: impl Fn(Money) -> Money) -> History {
        let mut out = History::from_snapshots(
            self.days.values().map(|s| DailySnapshot { cost: s.cost.map(&cost), ..*s }),
        );
        out.backfilled = self.backfilled.clone();
        out
    }

    /// Drops snapshots older than `keep_from`: the engine never reads them.
    pub fn prune_before(&mut self, keep_from: NaiveDate) {
        self.days = self.days.split_off(&keep_from);
        self.backfilled = self.backfilled.split_off(&keep_from);
    }

    /// The last `days` calendar days up to and including `today`, `None` if any is missing.
    pub fn last_days(&self, today: NaiveDate, days: u32) -> Option<Vec<&DailySnapshot>> {
        (0..days)
            .map(|back| today.checked_sub_days(chrono::Days::new(u64::from(back))).and_then(|d| self.get(d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn snap(d: &str, mrr: i64) -> DailySnapshot {
        DailySnapshot {
            date: day(d),
            mrr: Money::whole(mrr, Currency::EUR),
            cost: Some(Money::whole(10, Currency::EUR)),
        }
    }

    #[test]
    fn year_months_know_their_bounds() {
        let feb = YearMonth { year: 2026, month: 2 };
        assert_eq!(feb.last_day(), day("2026-02-28"));
        assert_eq!(YearMonth { year: 2028, month: 2 }.last_day(), day("2028-02-29"));
        assert_eq!(YearMonth { year: 2026, month: 12 }.next(), YearMonth { year: 2027, month: 1 });
        assert_eq!(feb.prev(), YearMonth { year: 2026, month: 1 });
        assert_eq!(feb.to_string(), "2026-02");
    }

    #[test]
    fn a_window_excludes_its_start_and_includes_its_end() {
        let h =
            History::from_snapshots([snap("2026-03-01", 1), snap("2026-03-02", 2), snap("2026-03-03", 3)]);
        let dates: Vec<NaiveDate> = h.window(day("2026-03-01"), day("2026-03-03")).map(|s| s.date).collect();
        assert_eq!(dates, [day("2026-03-02"), day("2026-03-03")]);
        assert_eq!(h.window(day("2026-03-05"), day("2026-03-03")).count(), 0);
    }

    #[test]
    fn the_daily_mean_is_exact_and_rounds_only_for_display() {
        // 2,766.66.. : the engine compares exactly, people read 2,766.67.
        let h = History::from_snapshots([
            snap("2026-03-01", 2_500),
            snap("2026-03-02", 2_800),
            snap("2026-03-03", 3_000),
        ]);
        let m = h.daily_mean(day("2026-02-28"), day("2026-03-03")).unwrap();
        assert_eq!((m.recorded, m.days), (3, 3));
        assert_eq!(m.rounded(), Money::from_minor(276_667, Currency::EUR));
        assert_eq!(m.floor(), Money::from_minor(276_666, Currency::EUR));
        assert!(m.at_least(Money::from_minor(276_666, Currency::EUR)));
        assert!(!m.at_least(Money::from_minor(276_667, Currency::EUR)));
        assert!(h.daily_mean(day("2026-04-01"), day("2026-04-30")).is_none());
    }

    #[test]
    fn a_window_needs_ninety_percent_of_its_days() {
        assert!(covered(27, 30) && !covered(26, 30));
        assert!(covered(55, 61) && !covered(54, 61));
        let h = History::from_snapshots([snap("2026-03-02", 1), snap("2026-03-03", 1)]);
        assert!(!h.daily_mean(day("2026-02-28"), day("2026-03-03")).unwrap().covered());
        assert!(h.three_month_mean(day("2026-03-03")).is_some());
    }

    #[test]
    fn last_days_requires_every_day() {
        let h = History::from_snapshots([snap("2026-03-01", 1), snap("2026-03-03", 1)]);
        assert!(h.last_days(day("2026-03-03"), 3).is_none());
        assert_eq!(h.last_days(day("2026-03-03"), 1).unwrap().len(), 1);
        assert_eq!(h.before(day("2026-03-03")).unwrap().date, day("2026-03-01"));
        let mut h = h;
        h.prune_before(day("2026-03-02"));
        assert_eq!(h.len(), 1);
        assert!(!h.is_empty());
        assert_eq!(h.iter().count(), 1);
    }
}
