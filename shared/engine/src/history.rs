//! Daily revenue and cost snapshots, and the monthly views the rules read from them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::{Money, Ratio};

/// What the collectors recorded for one day: MRR on that day and the monthly run-rate
/// of total cost (managed components included), both in the revenue currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DailySnapshot {
    pub date: NaiveDate,
    pub mrr: Money,
    pub cost: Money,
}

impl DailySnapshot {
    /// Cost / MRR; `None` when there is no revenue.
    pub fn ratio(&self) -> Option<Ratio> {
        self.cost.ratio_to(self.mrr)
    }
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

/// A closed month and its MRR, `None` when the month has no snapshot on its last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthClose {
    pub month: YearMonth,
    pub mrr: Option<Money>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    days: BTreeMap<NaiveDate, DailySnapshot>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_snapshots(snapshots: impl IntoIterator<Item = DailySnapshot>) -> Self {
        History { days: snapshots.into_iter().map(|s| (s.date, s)).collect() }
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

    /// Drops snapshots older than `keep_from`: the engine never reads them.
    pub fn prune_before(&mut self, keep_from: NaiveDate) {
        self.days = self.days.split_off(&keep_from);
    }

    /// A month's MRR is the MRR on its last day.
    pub fn month_close(&self, month: YearMonth) -> MonthClose {
        MonthClose { month, mrr: self.get(month.last_day()).map(|s| s.mrr) }
    }

    /// The `n` closed months before `today`'s month, newest first. The current month is
    /// never closed, whatever the day.
    pub fn closed_months(&self, today: NaiveDate, n: usize) -> Vec<MonthClose> {
        let mut month = YearMonth::of(today);
        (0..n)
            .map(|_| {
                month = month.prev();
                self.month_close(month)
            })
            .collect()
    }

    /// Mean MRR of the last three closed months that have data (fewer if fewer exist).
    pub fn three_month_average(&self, today: NaiveDate) -> Option<Money> {
        let closes: Vec<Money> = self.closed_months(today, 3).into_iter().filter_map(|m| m.mrr).collect();
        Money::mean(&closes)
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
    use crate::money::Currency;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn snap(d: &str, mrr: i64) -> DailySnapshot {
        DailySnapshot {
            date: day(d),
            mrr: Money::whole(mrr, Currency::EUR),
            cost: Money::whole(10, Currency::EUR),
        }
    }

    #[test]
    fn a_months_mrr_is_the_mrr_on_its_last_day() {
        let h = History::from_snapshots([
            snap("2026-02-27", 900),
            snap("2026-02-28", 500),
            snap("2026-03-01", 1000),
        ]);
        let feb = YearMonth { year: 2026, month: 2 };
        assert_eq!(h.month_close(feb).mrr, Some(Money::whole(500, Currency::EUR)));
        assert_eq!(feb.last_day(), day("2026-02-28"));
        assert_eq!(YearMonth { year: 2028, month: 2 }.last_day(), day("2028-02-29"));
        assert_eq!(YearMonth { year: 2026, month: 12 }.next(), YearMonth { year: 2027, month: 1 });
        assert_eq!(feb.to_string(), "2026-02");
    }

    #[test]
    fn the_current_month_is_never_closed() {
        // Even on its last day, the current month is not among the closed months.
        let h = History::from_snapshots([snap("2026-03-31", 5000)]);
        let closed = h.closed_months(day("2026-03-31"), 1);
        assert_eq!(closed[0].month, YearMonth { year: 2026, month: 2 });
        assert_eq!(closed[0].mrr, None);
    }

    #[test]
    fn a_month_without_a_last_day_snapshot_has_no_data() {
        let h = History::from_snapshots([snap("2026-01-30", 900)]);
        assert_eq!(h.closed_months(day("2026-02-10"), 1)[0].mrr, None);
    }

    #[test]
    fn three_month_average_uses_fewer_months_when_fewer_exist() {
        let h = History::from_snapshots([snap("2026-01-31", 600), snap("2026-02-28", 900)]);
        assert_eq!(h.three_month_average(day("2026-03-15")), Some(Money::whole(750, Currency::EUR)));
        assert_eq!(History::new().three_month_average(day("2026-03-15")), None);
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
