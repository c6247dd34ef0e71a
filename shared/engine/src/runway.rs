//! Runway: how many months the company's cash lasts at today's net burn, and what an
//! activation would leave of it. ADR-017 exists because of runway; the cost guard
//! compares cost with revenue only, so a level can be affordable against MRR and still
//! shorten the company's life below what the founders accept.
//!
//! - Cash is what an operator last set (`revscale cash set`), with the day it was true.
//!   Today's estimate is that figure less the net burn of every day since, from the
//!   recorded snapshots (a day without one counts at the last recorded figures).
//! - Net burn = the fixed burn (team, everything outside the cloud) + the production
//!   cost - MRR, a month. Runway = cash / net burn; a net burn of zero or less is a
//!   profitable company, whose runway is unlimited.
//! - A cash figure older than [`CASH_STALE_DAYS`] is stale (a warning); older than
//!   [`CASH_UNKNOWN_DAYS`], the runway is unknown and no activation passes.
//!
//! Pure: no clock, no I/O. All amounts are integer minor units of the configuration's
//! currency; months are counted in tenths, rounded down (a guard must not round a
//! runway up over its minimum).

use std::fmt;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::history::History;
use crate::money::Money;

/// From this many days on, the cash figure is stale: a warning asks for a new one.
pub const CASH_STALE_DAYS: i64 = 45;
/// After this many days, the runway is unknown: activations are held until cash is set.
pub const CASH_UNKNOWN_DAYS: i64 = 90;
/// The warning fires this many months above the minimum.
pub const WARNING_MARGIN_MONTHS: u32 = 3;
/// Days in a month, for burn per day: 365 / 12, as a ratio of integers.
const DAYS_PER_YEAR: i128 = 365;
const MONTHS_PER_YEAR: i128 = 12;

/// The runway section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunwayConfig {
    /// Activations never take the runway below this.
    pub min_months: u32,
    /// The team and everything outside the cloud, a month.
    pub monthly_fixed_burn: Money,
}

/// The company's cash on a day, as an operator set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashBalance {
    pub amount: Money,
    /// The day the amount was the balance.
    pub as_of: NaiveDate,
    pub set_by: String,
    pub set_on: NaiveDate,
}

/// RunwayMonths of runway, in tenths; or unlimited for a company that burns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunwayMonths {
    /// Tenths of a month, rounded down: `Tenths(142)` is 14.2 months.
    Tenths(i64),
    Unlimited,
}

impl RunwayMonths {
    pub fn whole(months: u32) -> RunwayMonths {
        RunwayMonths::Tenths(i64::from(months) * 10)
    }

    /// Under `min` months (an unlimited runway never is).
    pub fn is_under(self, min: u32) -> bool {
        self < RunwayMonths::whole(min)
    }
}

impl fmt::Display for RunwayMonths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunwayMonths::Unlimited => f.write_str("unlimited"),
            RunwayMonths::Tenths(t) => {
                let sign = if *t < 0 { "-" } else { "" };
                write!(f, "{sign}{}.{}", t.abs() / 10, t.abs() % 10)
            }
        }
    }
}

/// Where the runway stands on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Runway {
    /// Known: the estimated cash, the monthly net burn and the months they give.
    Known {
        cash: Money,
        /// Fixed burn + production cost - MRR, a month (negative: profitable).
        net_burn: Money,
        months: RunwayMonths,
        /// The cash figure's age in days, for its staleness.
        cash_age_days: i64,
    },
    /// No cash set, or set too long ago: the guard holds every activation.
    Unknown { why: String },
}

impl Runway {
    pub fn months(&self) -> Option<RunwayMonths> {
        match self {
            Runway::Known { months, .. } => Some(*months),
            Runway::Unknown { .. } => None,
        }
    }
}

/// `cash / net_burn` months, in tenths rounded down; unlimited when nothing burns.
pub fn months_of(cash: Money, net_burn: Money) -> RunwayMonths {
    if net_burn.minor <= 0 {
        return RunwayMonths::Unlimited;
    }
    let tenths = (i128::from(cash.minor) * 10).div_euclid(i128::from(net_burn.minor));
    RunwayMonths::Tenths(i64::try_from(tenths).unwrap_or(if tenths < 0 { i64::MIN } else { i64::MAX }))
}

/// The monthly net burn at these figures.
pub fn net_burn(config: &RunwayConfig, cost: Money, mrr: Money) -> Money {
    Money::from_minor(
        config.monthly_fixed_burn.minor.saturating_add(cost.minor).saturating_sub(mrr.minor),
        config.monthly_fixed_burn.currency,
    )
}

/// The cash on `day`: the figure set, less the net burn of each day in
/// `(as_of, day]`, each day at its snapshot's MRR and cost (the last recorded before
/// it when it has none; its first after when nothing is recorded before; a day whose
/// cost is missing at the last cost recorded). Burn is rounded up, so the estimate
/// errs towards less cash.
pub fn cash_on(config: &RunwayConfig, cash: &CashBalance, history: &History, day: NaiveDate) -> Money {
    let currency = cash.amount.currency;
    if day <= cash.as_of {
        return cash.amount;
    }
    let mut last = history.before(cash.as_of + Days::new(1)).copied();
    let mut last_cost = last.and_then(|s| s.cost).map(|c| c.minor);
    let mut monthly_total: i128 = 0;
    let mut next = cash.as_of + Days::new(1);
    let recorded: Vec<_> = history.range(next, day).copied().collect();
    let mut recorded = recorded.into_iter().peekable();
    while next <= day {
        while let Some(s) = recorded.next_if(|s| s.date <= next) {
            last = Some(s);
        }
        let figures = last.or_else(|| recorded.peek().copied());
        let mrr = figures.map_or(0, |s| s.mrr.minor);
        // A day without a cost figure (Cost Explorer late or failing) counts at the
        // last cost recorded, never at zero: the estimate errs towards less cash.
        if let Some(cost) = figures.and_then(|s| s.cost) {
            last_cost = Some(cost.minor);
        }
        let cost = last_cost.or_else(|| history.range(next, day).find_map(|s| s.cost).map(|c| c.minor));
        monthly_total +=
            i128::from(config.monthly_fixed_burn.minor) + i128::from(cost.unwrap_or(0)) - i128::from(mrr);
        next = next + Days::new(1);
    }
    // Per day: a month's burn x 12 / 365, rounded up for a burn, down for a gain.
    let burned = (monthly_total * MONTHS_PER_YEAR + DAYS_PER_YEAR - 1).div_euclid(DAYS_PER_YEAR);
    let left = i128::from(cash.amount.minor) - burned;
    Money::from_minor(i64::try_from(left).unwrap_or(if left < 0 { i64::MIN } else { i64::MAX }), currency)
}

/// The runway on `day` at that day's snapshot (`None`: nothing recorded that day, so
/// the runway cannot be figured), with `extra` monthly cost added (an activation's).
pub fn runway_on(
    config: &RunwayConfig,
    cash: Option<&CashBalance>,
    history: &History,
    day: NaiveDate,
    extra: Money,
) -> Option<Runway> {
    let Some(cash) = cash else {
        return Some(Runway::Unknown {
            why: "no cash figure is set (revscale cash set --amount N --as-of DATE)".into(),
        });
    };
    let age = (day - cash.as_of).num_days();
    if age > CASH_UNKNOWN_DAYS {
        return Some(Runway::Unknown {
            why: format!(
                "the cash figure is {age} days old (as of {}), more than {CASH_UNKNOWN_DAYS}: set it again with revscale cash set",
                cash.as_of
            ),
        });
    }
    let snapshot = history.get(day)?;
    // Without today's cost the net burn is not known: never taken as zero.
    let Some(today_cost) = snapshot.cost else {
        return Some(Runway::Unknown { why: format!("no cost figure for {day} yet") });
    };
    let cost = Money::from_minor(today_cost.minor.saturating_add(extra.minor), extra.currency);
    let estimate = cash_on(config, cash, history, day);
    let burn = net_burn(config, cost, snapshot.mrr);
    Some(Runway::Known {
        cash: estimate,
        net_burn: burn,
        months: months_of(estimate, burn),
        cash_age_days: age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::DailySnapshot;
    use crate::money::Currency;

    fn eur(n: i64) -> Money {
        Money::whole(n, Currency::EUR)
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn config() -> RunwayConfig {
        RunwayConfig { min_months: 12, monthly_fixed_burn: eur(50_000) }
    }

    fn cash(amount: i64, as_of: &str) -> CashBalance {
        CashBalance { amount: eur(amount), as_of: day(as_of), set_by: "ada".into(), set_on: day(as_of) }
    }

    fn flat(from: &str, days: u64, mrr: i64, cost: i64) -> History {
        History::from_snapshots((0..days).map(|i| DailySnapshot {
            date: day(from) + Days::new(i),
            mrr: eur(mrr),
            cost: Some(eur(cost)),
        }))
    }

    #[test]
    fn months_are_tenths_rounded_down_and_nothing_burning_is_unlimited() {
        assert_eq!(months_of(eur(420_000), eur(30_000)), RunwayMonths::Tenths(140));
        assert_eq!(months_of(eur(100), eur(30)), RunwayMonths::Tenths(33), "3.33 is 3.3");
        assert_eq!(months_of(eur(100), eur(0)), RunwayMonths::Unlimited);
        assert_eq!(months_of(eur(100), eur(-5)), RunwayMonths::Unlimited);
        assert_eq!(months_of(eur(-100), eur(30)), RunwayMonths::Tenths(-34), "overdrawn: rounded down too");
        assert_eq!(RunwayMonths::Tenths(142).to_string(), "14.2");
        assert_eq!(RunwayMonths::Tenths(-34).to_string(), "-3.4");
        assert!(RunwayMonths::Tenths(119).is_under(12) && !RunwayMonths::Tenths(120).is_under(12));
        assert!(!RunwayMonths::Unlimited.is_under(u32::MAX));
    }

    #[test]
    fn cash_is_the_figure_set_less_each_days_net_burn_since() {
        // 50k fixed + 1k cost - 6k MRR = 45k a month: 45k x 12 / 365 a day.
        let history = flat("2026-11-01", 60, 6_000, 1_000);
        let c = cash(420_000, "2026-12-01");
        assert_eq!(cash_on(&config(), &c, &history, day("2026-12-01")), eur(420_000));
        assert_eq!(cash_on(&config(), &c, &history, day("2026-11-20")), eur(420_000), "before as_of");
        // 30 days: 45,000 x 12 x 30 / 365 = 44,383.56..., rounded up to the cent.
        let left = cash_on(&config(), &c, &history, day("2026-12-31"));
        assert_eq!(left, Money::from_minor(42_000_000 - 4_438_357, Currency::EUR));
    }

    #[test]
    fn a_day_without_a_snapshot_counts_at_the_last_figures_recorded() {
        let mut history = flat("2026-12-01", 1, 6_000, 1_000);
        history.insert(DailySnapshot { date: day("2026-12-11"), mrr: eur(51_000), cost: Some(eur(1_000)) });
        let c = cash(420_000, "2026-12-01");
        // Dec 2..10 at 45k a month (9 days), Dec 11 at 0.
        let expected = 42_000_000 - (4_500_000i128 * 9 * 12 + 364) / 365;
        assert_eq!(cash_on(&config(), &c, &history, day("2026-12-11")).minor as i128, expected);
    }

    #[test]
    fn the_runway_divides_the_cash_by_the_net_burn_with_an_activations_cost() {
        let history = flat("2026-11-01", 31, 6_000, 1_000);
        let c = cash(540_000, "2026-12-01");
        let now = runway_on(&config(), Some(&c), &history, day("2026-12-01"), eur(0)).unwrap();
        assert_eq!(now.months(), Some(RunwayMonths::Tenths(120)), "540k / 45k");
        let after = runway_on(&config(), Some(&c), &history, day("2026-12-01"), eur(5_000)).unwrap();
        assert_eq!(after.months(), Some(RunwayMonths::Tenths(108)), "540k / 50k");
        assert_eq!(runway_on(&config(), Some(&c), &history, day("2026-12-02"), eur(0)), None, "no snapshot");
    }

    #[test]
    fn a_day_without_a_cost_figure_counts_at_the_last_cost_and_today_without_one_is_unknown() {
        let mut history = flat("2026-12-01", 1, 6_000, 1_000);
        // Dec 2..11: MRR recorded, Cost Explorer silent.
        for i in 1..=10 {
            history.insert(DailySnapshot {
                date: day("2026-12-01") + Days::new(i),
                mrr: eur(6_000),
                cost: None,
            });
        }
        let c = cash(420_000, "2026-12-01");
        // 10 days at 45,000 a month, as if the cost had been recorded.
        let expected = 42_000_000 - (4_500_000i128 * 10 * 12 + 364) / 365;
        assert_eq!(cash_on(&config(), &c, &history, day("2026-12-11")).minor as i128, expected);
        let Some(Runway::Unknown { why }) =
            runway_on(&config(), Some(&c), &history, day("2026-12-11"), eur(0))
        else {
            panic!("no cost today: unknown");
        };
        assert_eq!(why, "no cost figure for 2026-12-11 yet");
    }

    #[test]
    fn a_profitable_company_has_an_unlimited_runway() {
        let history = flat("2026-12-01", 1, 60_000, 5_000);
        let r = runway_on(&config(), Some(&cash(1, "2026-12-01")), &history, day("2026-12-01"), eur(0));
        assert_eq!(r.and_then(|r| r.months()), Some(RunwayMonths::Unlimited));
    }

    #[test]
    fn without_cash_or_with_cash_older_than_ninety_days_the_runway_is_unknown() {
        let history = flat("2026-09-01", 120, 6_000, 1_000);
        let unknown = |r: Option<Runway>| matches!(r, Some(Runway::Unknown { .. }));
        assert!(unknown(runway_on(&config(), None, &history, day("2026-12-01"), eur(0))));
        let c = cash(420_000, "2026-09-01");
        assert!(!unknown(runway_on(&config(), Some(&c), &history, day("2026-11-30"), eur(0))), "90 days");
        let Some(Runway::Unknown { why }) =
            runway_on(&config(), Some(&c), &history, day("2026-12-01"), eur(0))
        else {
            panic!("91 days old");
        };
        assert!(why.contains("91 days old (as of 2026-09-01)"), "{why}");
    }
}
